//! Direct server return (`service::mode::DSR`): the packet is not
//! rewritten; an IPIP header from the load balancer to the backend is put
//! in front of it (inner destination still the VIP), and the backend, which
//! holds the VIP on its loopback and decapsulates (`ferrolb_decap`, or a
//! kernel ipip device), answers the client directly. See docs/datapath.md,
//! "Direct server return".

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{
    Flow, GlobalStat, NextHop, Tunnel,
    tunnel::{IPIP_OVERHEAD, VXLAN_OVERHEAD, encap, encapsulates},
};

use crate::{
    encap_ipip, encap_vxlan,
    error::or_verdict,
    forward,
    nat::decrement_ttl,
    parse::Packet,
    stats,
    tunnel::{self, Outer},
};

/// Encapsulates the packet of the DSR connection `flow` to its backend
/// (`flow.nat_dst_ip`) and sends it:
/// - backend behind an IPIP tunnel route: to the route's node (link-layer
///   next hop), which routes the IPIP packet on to the pod;
/// - behind a VXLAN route: the IPIP packet VXLAN-encapsulated to the node's
///   VTEP, whose kernel decapsulates and routes it to the pod;
/// - no route (or `encap::NONE`): routed to the backend itself.
///
/// The outer source is the route's tunnel source; without a route (or with
/// an `encap::NONE` one), the kernel's preferred source toward the backend,
/// resolved once per epoch with the route cache. The next hop is resolved
/// before the packet changes, as for NAT delivery (`tunnel::resolve`): a
/// packet with DF that would not fit once encapsulated (20 bytes of IPIP,
/// 70 with VXLAN around it) is answered with ICMP fragmentation-needed
/// quoting it as received, and a client's SYN has its MSS clamped to what
/// fits. (The backend's SYN-ACK goes to the client directly: it cannot be
/// clamped here.) The inner packet is routed here: its TTL is decremented.
#[inline(always)]
pub fn deliver(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    cache: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    let Some((o, t)) = outer(ctx, flow, now) else {
        return no_tunnel_source();
    };
    let hop = or_verdict!(tunnel::resolve(ctx, pkt, &o, cache, now));
    if hop.state == tunnel::HOP_ANSWERED {
        return hop.action;
    }
    tunnel::clamp_syn(ctx, pkt, &o, &hop);
    encapsulate_send(ctx, pkt, flow, t, hop)
}

/// Sends an ICMP error about a reply of the DSR connection `flow` (`pkt`:
/// the error, its key the connection's forward tuple; `icmp_error.rs`) to
/// the connection's backend, encapsulated as its packets are and not
/// rewritten: the error is addressed to the VIP, which the backend holds,
/// and its kernel is the party the error is for (a router on the client's
/// side reporting the MTU of the backend's replies, which never pass
/// here). Never answered with fragmentation-needed (no ICMP error about an
/// ICMP error, RFC 1122); too big, it goes to the stack, which fragments
/// the outer packet. Counted `icmp_to_backend`.
#[inline(always)]
pub fn relay(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    cache: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    let Some((o, t)) = outer(ctx, flow, now) else {
        return no_tunnel_source();
    };
    stats::inc(GlobalStat::IcmpToBackend);
    let hop = tunnel::relay_hop(ctx, pkt, &o, cache, now);
    encapsulate_send(ctx, pkt, flow, t, hop)
}

/// No outer source toward the backend: dropped, counted. Counted and
/// answered by the callers rather than returned as `Err(NoTunnelSource)`:
/// on that path LLVM filled the (undefined) action half of the `Result`
/// with a stack pointer, and the verifier rejects the shift that packs it.
#[inline(always)]
fn no_tunnel_source() -> u32 {
    stats::inc(GlobalStat::DropNoTunnelSource);
    xdp_action::XDP_DROP
}

/// The outer packet toward `flow`'s backend, and the backend's cached tunnel
/// route (`encap::NONE` without one); `None` when there is no tunnel source
/// (a route without one, or no route toward the backend at all).
#[inline(always)]
fn outer(ctx: &XdpContext, flow: &Flow, now: u64) -> Option<(Outer, *mut Tunnel)> {
    let backend_ip = flow.nat_dst_ip;
    let slot = tunnel::cached(flow, now)?;
    // SAFETY: per-CPU slot (`tunnel::cached`): this CPU is its only writer.
    let t = unsafe { &mut (*slot).tunnel };
    let kind = t.encap;
    if t.src_ip == 0 && !encapsulates(kind) {
        // Kept in the slot until it is refilled (next epoch).
        t.src_ip = forward::source_toward(ctx, backend_ip).unwrap_or(0);
    }
    let src = t.src_ip;
    if src == 0 {
        return None;
    }
    let o = Outer {
        src_ip: src,
        via: via_of(t, backend_ip),
        // One IPIP header (behind an `ipip` route too: it is addressed to
        // the pod, the node is only the link-layer next hop), plus VXLAN's.
        overhead: if kind == encap::VXLAN {
            IPIP_OVERHEAD + VXLAN_OVERHEAD
        } else {
            IPIP_OVERHEAD
        },
        // IPIP, or UDP with VXLAN around it.
        proto: tunnel::outer_proto(kind),
    };
    Some((o, t))
}

/// Routes `pkt` (its TTL decremented), puts the IPIP header to `flow`'s
/// backend in front of it, wraps that in VXLAN behind a VXLAN route `t`,
/// and sends it with `hop`.
#[inline(always)]
fn encapsulate_send(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    t: *mut Tunnel,
    hop: tunnel::Hop,
) -> u32 {
    // SAFETY: per-CPU slot (`outer`).
    let t = unsafe { &*t };
    let key = pkt.key;
    decrement_ttl(pkt);
    let ipip = or_verdict!(encap_ipip::encapsulate_to(
        ctx,
        pkt,
        t.src_ip,
        flow.nat_dst_ip
    ));
    // From here on `pkt`'s pointers are invalid.
    if t.encap == encap::VXLAN {
        // IPIP inside VXLAN: both encapsulations counted.
        stats::inc(GlobalStat::EncapIpip);
        let outer = or_verdict!(encap_vxlan::encapsulate(ctx, &ipip, t, &key));
        return tunnel::send(ctx, &outer, hop, GlobalStat::EncapVxlan);
    }
    tunnel::send(ctx, &ipip, hop, GlobalStat::EncapIpip)
}

/// Where the outer packets of a DSR connection to `backend_ip` behind route
/// `t` (`encap::NONE` when there is none) are resolved toward
/// (`Outer::via`): the node of an encapsulating route (the link-layer next
/// hop of an IPIP packet addressed to the pod, or the VTEP of a VXLAN
/// one), else the backend itself.
#[inline(always)]
fn via_of(t: &Tunnel, backend_ip: u32) -> u32 {
    if encapsulates(t.encap) {
        t.node_ip
    } else {
        backend_ip
    }
}

/// The outer source and `via` of DSR connection `flow`'s packets as this
/// CPU last resolved them (`outer` fills the source of a backend without
/// an encapsulating route once per epoch); `None` while unresolved here.
/// What path-MTU learning checks an error's quote against (`path_mtu.rs`).
#[inline(always)]
pub fn known_outer(flow: &Flow, now: u64) -> Option<(u32, u32)> {
    let slot = tunnel::cached(flow, now)?;
    // SAFETY: per-CPU slot (`tunnel::cached`, which may refill it).
    let t = unsafe { &(*slot).tunnel };
    (t.src_ip != 0).then(|| (t.src_ip, via_of(t, flow.nat_dst_ip)))
}
