//! ferrolb's XDP datapath: balances IPv4 TCP/UDP connections addressed to
//! VIPs over backends (DNAT, or direct server return: `dsr.rs`), delivering
//! to pods behind tunnel routes
//! encapsulated (`tunnel.rs`) and taking their encapsulated replies back
//! (`decap_return.rs`), and reverse-NATs the replies, relaying ICMP errors
//! about its connections to their other end (`icmp_error.rs`); and the
//! node-side IPIP decapsulation program (`decap.rs`).
//! See docs/datapath.md for the per-packet walk-through.
#![no_std]
#![no_main]
// BPF_CMPXCHG for the connection table's slot claims (`flow_table.rs`):
// the BPF target has no compare-and-swap in `core::sync::atomic`.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod conntrack;
mod decap;
mod decap_return;
mod dsr;
mod encap_ipip;
mod encap_outer;
mod encap_vxlan;
mod error;
mod flow_table;
mod forward;
mod frag_needed;
mod headers;
mod icmp_error;
mod maps;
mod mss_clamp;
mod nat;
mod new_entries;
mod packet;
mod parse;
mod path_mtu;
mod schedule;
mod select;
mod snat;
mod stats;
mod tunnel;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::{
    Flow, NextHop,
    conntrack::DIR_REPLY,
    maps::{STAGE_ICMP, STAGE_NEW_FLOW},
    service::mode,
};

use crate::{
    error::{Error, or_verdict},
    maps::PROGRAMS,
};

/// The balancer's entry: encapsulated replies, then packets of live
/// connections. A packet with no live connection goes on to the new-flow
/// stage, an ICMP packet to the ICMP stage (tail calls: separate programs,
/// each within the verifier's limits; `maps::PROGRAMS`).
// `inline(always)` reaches the function `#[xdp]` wraps: without it LLVM
// keeps the large body a BPF-to-BPF subprogram, and the call into it (with
// the tail-call bookkeeping the kernel adds to every frame of a program
// that tail-calls) cost an established DNAT packet a tenth of its time.
#[xdp]
#[inline(always)]
pub fn ferrolb(ctx: XdpContext) -> u32 {
    let now = conntrack::now_ns();
    let found = match decap_return::decap(&ctx, now) {
        Ok(found) => {
            if found.is_some() {
                stats::inc(lb_common::GlobalStat::Decapsulated);
            }
            found
        }
        Err(e) => return e.verdict(),
    };
    match established(&ctx, now, found) {
        Ok(action) => action,
        Err(Error::Icmp) => stage(&ctx, STAGE_ICMP),
        Err(Error::NoConnection) => stage(&ctx, STAGE_NEW_FLOW),
        Err(e) => e.verdict(),
    }
}

/// Tail-calls stage `index`; returns only if that fails (counted).
#[inline(always)]
fn stage(ctx: &XdpContext, index: u32) -> u32 {
    // SAFETY: the stages are XDP programs of this object; on success this
    // does not return.
    unsafe { PROGRAMS.tail_call(ctx, index) };
    stats::inc(lb_common::GlobalStat::DropNoStage);
    xdp_action::XDP_DROP
}

/// Sends a packet of a live connection on. `found`: its connection-table
/// entry, when `decap_return` already looked it up (a decapsulated reply).
/// `Err(NoConnection)`: none (the new-flow stage takes it), `Err(Icmp)`: an
/// ICMP packet (the ICMP stage takes it).
#[inline(always)]
fn established(ctx: &XdpContext, now: u64, found: Option<conntrack::Entry>) -> Result<u32, Error> {
    let pkt = parse::parse(ctx)?;
    let e = found
        .or_else(|| conntrack::lookup(&pkt.key, now))
        .filter(|&e| conntrack::carries_on(e, pkt.tcp_flags))
        .ok_or(Error::NoConnection)?;
    nat::check_ttl(&pkt)?;
    conntrack::touch(e, pkt.key.proto, pkt.tcp_flags, now);
    let ptr = e.flow;
    // SAFETY: map value pointer, valid for this run of the program.
    // Read in place: a copy would read the same memory, 64 bytes more.
    let f = unsafe { &*ptr };
    let reply = f.direction == DIR_REPLY;
    stats::count(f.backend_id, reply, packet::frame_len(ctx), false);
    Ok(send(
        ctx,
        &pkt,
        f,
        Some(unsafe { &raw mut (*ptr).next_hop }),
        now,
    ))
}

/// The new-flow stage: schedules a packet that has no live connection (a
/// new connection, or one whose backend went). Inlined as the entry.
#[xdp]
#[inline(always)]
pub fn ferrolb_new_flow(ctx: XdpContext) -> u32 {
    let now = conntrack::now_ns();
    match new_flow(&ctx, now) {
        Ok(action) => action,
        Err(e) => e.verdict(),
    }
}

#[inline(always)]
fn new_flow(ctx: &XdpContext, now: u64) -> Result<u32, Error> {
    // Parsed again: a tail call keeps nothing but the packet.
    let pkt = parse::parse(ctx)?;
    let (ptr, backend_next_hop) = schedule::schedule(&pkt, now)?;
    // SAFETY: the forward entry, staged (`new_entries`: valid for this run).
    let f = unsafe { &*ptr };
    stats::count(f.backend_id, false, packet::frame_len(ctx), true);
    let action = send(ctx, &pkt, f, backend_next_hop, now);
    // Last: the entries' stores miss the cache (`new_entries`).
    new_entries::commit();
    Ok(action)
}

/// The ICMP stage: a router's fragmentation-needed about one of our
/// encapsulated packets teaches the path MTU toward its node (`path_mtu.rs`)
/// and passes; errors about our connections go to the connection's other
/// end, translated; all other ICMP passes.
#[xdp]
pub fn ferrolb_icmp(ctx: XdpContext) -> u32 {
    let now = conntrack::now_ns();
    match parse::parse(&ctx) {
        // `parse` checked the outer header `relay` relies on.
        Err(Error::Icmp) => {
            if path_mtu::learn(&ctx, now) {
                // The stack sees it as before (a kernel tunnel device
                // sharing the address may learn from it too).
                return xdp_action::XDP_PASS;
            }
            icmp_error::relay_action(&ctx, now)
        }
        // Not reached: the entry tail-calls only ICMP here.
        _ => xdp_action::XDP_PASS,
    }
}

/// Rewrites the packet as `flow` says and sends it: DSR encapsulated as it
/// is, otherwise NATed, then encapsulated to its node or forwarded. Both
/// encapsulating paths answer ICMP fragmentation-needed for what would not
/// fit and clamp a SYN's MSS to the tunnel (`tunnel::resolve`,
/// `tunnel::clamp_syn`); a SYN-ACK coming back from behind a tunnel is
/// clamped here (`clamp_reply`). Returns the action, failures counted
/// (`Error::verdict`): nothing after this point goes to another stage.
#[inline(always)]
fn send(
    ctx: &XdpContext,
    pkt: &parse::Packet,
    flow: &Flow,
    next_hop: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    if flow.mode == mode::DSR {
        // Not rewritten: encapsulated to the backend as it is.
        return dsr::deliver(ctx, pkt, flow, next_hop, now);
    }
    if let Some(t) = or_verdict!(tunnel::route(flow, next_hop, now)) {
        // NATed in there, once the next hop is known to take it.
        return tunnel::deliver(ctx, pkt, flow, t, next_hop, now);
    }
    or_verdict!(nat::rewrite(ctx, pkt, flow));
    if flow.direction == DIR_REPLY && mss_clamp::is_syn(pkt) {
        clamp_reply(ctx, pkt, flow, now);
    }
    forward::forward(ctx, pkt, next_hop, now)
}

/// A SYN-ACK from a backend behind an encapsulating tunnel route: its MSS
/// is lowered so the client's segments fit the tunnel too. The backend's
/// address is the reply's source as received (`pkt.key`).
#[inline(always)]
fn clamp_reply(ctx: &XdpContext, pkt: &parse::Packet, flow: &Flow, now: u64) {
    if let Ok(Some(t)) = tunnel::backend_route(flow.backend_id, pkt.key.src_ip, now) {
        // SAFETY: points into a per-CPU map slot (`backend_route`).
        let o = tunnel::Outer::to_node(unsafe { &*t });
        mss_clamp::clamp(ctx, tunnel::route_mtu(ctx, &o), o.overhead);
    }
}

/// Node-side IPIP decapsulation (`ferrolbd --node-decap`): see `decap.rs`.
#[xdp]
pub fn ferrolb_decap(ctx: XdpContext) -> u32 {
    decap::run(&ctx)
}

/// Drops everything: the baseline the benchmarks compare against.
#[xdp]
pub fn ferrolb_drop(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable: the datapath has no panicking operations (bounds are
    // checked, arithmetic wraps); the verifier would reject a reachable loop.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
