//! ferrolb's XDP datapath: balances IPv4 TCP/UDP connections addressed to
//! VIPs over backends (DNAT), delivering to pods behind tunnel routes
//! encapsulated (`tunnel.rs`) and taking their encapsulated replies back
//! (`decap_return.rs`), and reverse-NATs the replies; and the node-side IPIP
//! decapsulation program (`decap.rs`).
//! See docs/datapath.md for the per-packet walk-through.
#![no_std]
#![no_main]
// BPF_CMPXCHG for the connection table's slot locks (`flow_table.rs`):
// the BPF target has no compare-and-swap in `core::sync::atomic`.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod conntrack;
mod decap;
mod decap_return;
mod encap_ipip;
mod encap_outer;
mod encap_vxlan;
mod error;
mod flow_table;
mod forward;
mod frag_needed;
mod headers;
mod maps;
mod mss_clamp;
mod nat;
mod packet;
mod parse;
mod schedule;
mod select;
mod stats;
mod tunnel;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::{Flow, NextHop, conntrack::DIR_REPLY};

use crate::error::Error;

#[xdp]
pub fn ferrolb(ctx: XdpContext) -> u32 {
    let now = conntrack::now_ns();
    let found = match decap_return::decap(&ctx, now) {
        Ok(found) => {
            if found.is_some() {
                stats::inc(lb_common::GlobalStat::Decapsulated);
            }
            found
        }
        Err(e) => {
            stats::inc(e.stat());
            return e.action();
        }
    };
    match balance(&ctx, now, found) {
        Ok(action) => action,
        Err(e) => {
            stats::inc(e.stat());
            e.action()
        }
    }
}

/// Balances the packet. `found`: its connection-table entry, when
/// `decap_return` already looked it up (a decapsulated reply).
#[inline(always)]
fn balance(ctx: &XdpContext, now: u64, found: Option<conntrack::Entry>) -> Result<u32, Error> {
    let pkt = parse::parse(ctx)?;
    let bytes = packet::frame_len(ctx);

    let established = found
        .or_else(|| conntrack::lookup(&pkt.key, now))
        .filter(|&e| conntrack::carries_on(e, pkt.tcp_flags));

    let (flow, next_hop): (&Flow, Option<*mut NextHop>) = match established {
        Some(e) => {
            nat::check_ttl(&pkt)?;
            conntrack::touch(e, pkt.key.proto, pkt.tcp_flags, now);
            let ptr = e.flow;
            // SAFETY: map value pointer, valid for this run of the program.
            // Read in place: a copy would read the same memory, 64 bytes more.
            let f = unsafe { &*ptr };
            let reply = f.direction == DIR_REPLY;
            stats::count(f.service_id, f.backend_id, reply, bytes, false);
            (f, Some(unsafe { &raw mut (*ptr).next_hop }))
        }
        None => {
            let (ptr, backend_next_hop) = schedule::schedule(&pkt, now)?;
            // SAFETY: the entry just written, in the table (see above).
            let f = unsafe { &*ptr };
            stats::count(f.service_id, f.backend_id, false, bytes, true);
            (f, backend_next_hop)
        }
    };

    if let Some(t) = tunnel::route(flow, now)? {
        return tunnel::deliver(ctx, &pkt, flow, t, next_hop, now);
    }
    nat::rewrite(ctx, &pkt, flow)?;
    if flow.direction == DIR_REPLY && mss_clamp::is_syn(&pkt) {
        clamp_reply(ctx, &pkt, flow, now);
    }
    Ok(forward::forward(ctx, &pkt, next_hop, now))
}

/// A SYN-ACK from a backend behind an encapsulating tunnel route: its MSS
/// is lowered so the client's segments fit the tunnel too. The backend's
/// address is the reply's source as received (`pkt.key`).
#[inline(always)]
fn clamp_reply(ctx: &XdpContext, pkt: &parse::Packet, flow: &Flow, now: u64) {
    if let Ok(Some(t)) = tunnel::backend_route(flow.backend_id, pkt.key.src_ip, now) {
        // SAFETY: points into a per-CPU map slot (`backend_route`).
        let t = unsafe { &*t };
        mss_clamp::clamp(
            ctx,
            tunnel::node_mtu(ctx, t),
            lb_common::tunnel::overhead(t.encap),
        );
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
