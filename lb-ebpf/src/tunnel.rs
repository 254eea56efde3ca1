//! Delivery to pods through their node: which tunnel route a connection's
//! backend is behind (`TUNNELS`, cached per backend in `BACKEND_TUNNEL`),
//! and sending the DNATed packet encapsulated (IPIP or VXLAN) toward the
//! node, within the route MTU (ICMP fragmentation-needed, MSS clamping).
//! See docs/datapath.md, "Encapsulated delivery".

use aya_ebpf::{bindings::xdp_action, maps::lpm_trie::Key, programs::XdpContext};
use lb_common::{
    BackendTunnel, Flow, GlobalStat, NextHop, Tunnel,
    conntrack::DIR_FORWARD,
    proto,
    tunnel::{self, DEFAULT_UNDERLAY_MTU, encap},
};

use crate::{
    encap_ipip, encap_vxlan,
    error::Error,
    forward::{self, Miss, Query},
    frag_needed,
    headers::IP_DF_RAW,
    maps::{BACKEND_TUNNEL, TUNNELS},
    mss_clamp,
    nat::{self, decrement_ttl},
    packet::load,
    parse::Packet,
    stats,
};

/// Refills `slot` with the tunnel route of `ip` (network byte order); an
/// `encap::NONE` value when no route holds it. Written field by field: a
/// zeroing `Default::default()` may compile to a memset call the verifier
/// rejects, and a whole-struct copy costs stack the program does not have.
#[inline(always)]
fn refill(slot: *mut BackendTunnel, ip: u32, epoch: u16) {
    // SAFETY: per-CPU slot: this CPU is its only writer.
    let s = unsafe { &mut *slot };
    match TUNNELS.get(Key::new(32, ip)) {
        Some(t) => s.tunnel = *t,
        None => {
            s.tunnel.encap = encap::NONE;
            s.tunnel.src_ip = 0;
        }
    }
    s.backend_ip = ip;
    s.epoch = epoch;
    s.valid = 1;
}

/// The tunnel the packets of `flow` (after DNAT) go through, if they are
/// encapsulated: only the forward direction (toward the backend) is.
#[inline(always)]
pub fn route(flow: &Flow, now: u64) -> Result<Option<*const Tunnel>, Error> {
    if flow.direction != DIR_FORWARD {
        return Ok(None);
    }
    backend_route(flow.backend_id, flow.nat_dst_ip, now)
}

/// The tunnel route of backend `backend_id` at address `ip` (network byte
/// order), if it is an encapsulating one. The longest-prefix match runs
/// when the backend's cache slot is stale (another backend address, or an
/// earlier epoch: about once a second per backend and CPU), not per packet.
/// The answer points into the backend's per-CPU slot, which stays put for
/// this run of the program.
#[inline(always)]
pub fn backend_route(backend_id: u32, ip: u32, now: u64) -> Result<Option<*const Tunnel>, Error> {
    let Some(slot) = BACKEND_TUNNEL.get_ptr_mut(backend_id) else {
        return Ok(None);
    };
    let epoch = NextHop::epoch_of(now);
    // SAFETY: per-CPU slot, see `refill`.
    if !unsafe { (*slot).valid_for(ip, epoch) } {
        refill(slot, ip, epoch);
    }
    let t = unsafe { &raw const (*slot).tunnel };
    let (kind, src_ip) = unsafe { ((*t).encap, (*t).src_ip) };
    if kind != encap::IPIP && kind != encap::VXLAN {
        return Ok(None);
    }
    if src_ip == 0 {
        return Err(Error::NoTunnelSource);
    }
    Ok(Some(t))
}

/// The outer protocol of encapsulation `kind`.
#[inline(always)]
fn outer_proto(kind: u8) -> u8 {
    if kind == encap::IPIP {
        proto::IPIP
    } else {
        proto::UDP
    }
}

/// The route MTU toward `t`'s node (for the MSS of a connection whose
/// SYN-ACK comes back from it); `DEFAULT_UNDERLAY_MTU` while the kernel has
/// no route there.
#[inline(always)]
pub fn node_mtu(ctx: &XdpContext, t: &Tunnel) -> u16 {
    forward::route_mtu(ctx, t.src_ip, t.node_ip, outer_proto(t.encap))
        .unwrap_or(DEFAULT_UNDERLAY_MTU)
}

/// Sends the packet of `flow` (as received: not rewritten yet) to its pod
/// through tunnel `t`. The next hop toward the node is resolved first, for
/// the outer packet the encapsulation will make (cached in `cache` like any
/// next hop): a packet with DF set that would exceed the route MTU is
/// answered with ICMP fragmentation-needed (`frag_needed.rs`) before
/// anything in it changes. Otherwise the packet is DNATed, a SYN's MSS is
/// clamped to the tunnel (`mss_clamp.rs`), and the inner packet is routed
/// here, so its TTL is decremented (whether the datapath or the stack
/// transmits the outer packet), then encapsulated and sent.
#[inline(always)]
pub fn deliver(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    t: *const Tunnel,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Result<u32, Error> {
    // SAFETY: points into a per-CPU map slot (`route`).
    let t = unsafe { &*t };
    let overhead = tunnel::overhead(t.encap);
    let ip = pkt.ip;
    // SAFETY (field pointers): `ip` was bounds-checked by `parse`.
    let inner_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len }));
    let df = load(unsafe { &raw const (*ip).frag_off }) & IP_DF_RAW != 0;
    // The outer packet as `encap_outer` will write it.
    let outer = Query {
        src_ip: t.src_ip,
        dst_ip: t.node_ip,
        tot_len: inner_len.wrapping_add(overhead),
        tos: load(unsafe { &raw const (*ip).tos }),
        proto: outer_proto(t.encap),
    };
    let hop = forward::next_hop(ctx, &outer, cache, now);
    if let Err(Miss::TooBig(mtu)) = hop
        && df
        && let Some(action) = frag_needed::answer(ctx, mtu.saturating_sub(overhead))?
    {
        return Ok(action);
    }

    nat::rewrite(ctx, pkt, flow)?;
    if mss_clamp::is_syn(pkt) {
        let mtu = match &hop {
            Ok(nh) => nh.mtu,
            Err(Miss::TooBig(mtu)) => *mtu,
            Err(Miss::NoNextHop) => node_mtu(ctx, t),
        };
        mss_clamp::clamp(ctx, mtu, overhead);
    }
    decrement_ttl(pkt);
    let outer = if t.encap == encap::IPIP {
        stats::inc(GlobalStat::EncapIpip);
        encap_ipip::encapsulate(ctx, pkt, t)?
    } else {
        stats::inc(GlobalStat::EncapVxlan);
        encap_vxlan::encapsulate(ctx, pkt, t)?
    };
    // From here on `pkt`'s pointers are invalid: only `outer` is used.
    match hop {
        Ok(nh) => Ok(forward::transmit(ctx, &outer, &nh, false)),
        Err(Miss::TooBig(_)) => {
            // Without DF: the stack fragments the outer packet (its DF is
            // the inner one's), the node reassembles it.
            stats::inc(GlobalStat::PassEncapTooBig);
            Ok(xdp_action::XDP_PASS)
        }
        Err(Miss::NoNextHop) => {
            // No neighbour (or route) yet: the stack forwards the
            // encapsulated packet (it carries a local source address: the
            // ingress interface needs accept_local, see docs) and resolves
            // the neighbour.
            stats::inc(GlobalStat::PassFibMiss);
            Ok(xdp_action::XDP_PASS)
        }
    }
}
