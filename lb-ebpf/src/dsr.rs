//! Direct server return (`service::mode::DSR`): the packet is not
//! rewritten; an IPIP header from the load balancer to the backend is put
//! in front of it (inner destination still the VIP), and the backend, which
//! holds the VIP on its loopback and decapsulates (`ferrolb_decap`, or a
//! kernel ipip device), answers the client directly. See docs/datapath.md,
//! "Direct server return".

use aya_ebpf::programs::XdpContext;
use lb_common::{Flow, GlobalStat, NextHop, tunnel::encap};

use crate::{
    encap_ipip, encap_vxlan, error::Error, forward, nat::decrement_ttl, parse::Packet, stats,
    tunnel,
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
/// resolved once per epoch with the route cache. The inner packet is routed
/// here: its TTL is decremented.
#[inline(always)]
pub fn deliver(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Result<u32, Error> {
    let backend_ip = flow.nat_dst_ip;
    let slot = tunnel::cached(flow, now).ok_or(Error::NoTunnelSource)?;
    // SAFETY: per-CPU slot (`tunnel::cached`): this CPU is its only writer.
    let t = unsafe { &mut (*slot).tunnel };
    let kind = t.encap;
    let tunnelled = kind == encap::IPIP || kind == encap::VXLAN;
    if t.src_ip == 0 && !tunnelled {
        // Kept in the slot until it is refilled (next epoch).
        t.src_ip = forward::source_toward(ctx, backend_ip).unwrap_or(0);
    }
    let src = t.src_ip;
    if src == 0 {
        return Err(Error::NoTunnelSource);
    }
    let key = pkt.key;
    decrement_ttl(pkt);
    stats::inc(GlobalStat::EncapIpip);
    let ipip = encap_ipip::encapsulate_to(ctx, pkt, src, backend_ip)?;
    // From here on `pkt`'s pointers are invalid.
    if kind == encap::VXLAN {
        stats::inc(GlobalStat::EncapVxlan);
        let outer = encap_vxlan::encapsulate(ctx, &ipip, t, &key)?;
        return Ok(tunnel::send(ctx, &outer, t.node_ip, cache, now));
    }
    let via = if kind == encap::IPIP {
        t.node_ip
    } else {
        backend_ip
    };
    Ok(tunnel::send(ctx, &ipip, via, cache, now))
}
