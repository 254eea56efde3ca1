//! Delivery to pods through their node: which tunnel route a connection's
//! backend is behind (`TUNNELS`, cached per backend in `BACKEND_TUNNEL`),
//! and sending the DNATed packet encapsulated (IPIP or VXLAN) toward the
//! node. See docs/datapath.md, "Encapsulated delivery".

use aya_ebpf::{bindings::xdp_action, maps::lpm_trie::Key, programs::XdpContext};
use lb_common::{
    BackendTunnel, Flow, GlobalStat, NextHop, Tunnel, conntrack::DIR_FORWARD, tunnel::encap,
};

use crate::{
    encap_ipip, encap_vxlan,
    error::Error,
    forward::{self, Miss},
    maps::{BACKEND_TUNNEL, TUNNELS},
    nat::decrement_ttl,
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

/// The cached tunnel route of `flow`'s backend (`BACKEND_TUNNEL` slot),
/// refilled when stale (another backend address, or an earlier epoch: about
/// once a second per backend and CPU), so the longest-prefix match does not
/// run per packet. The slot stays put for this run of the program; `None`
/// only for a backend id beyond the array.
#[inline(always)]
pub fn cached(flow: &Flow, now: u64) -> Option<*mut BackendTunnel> {
    let slot = BACKEND_TUNNEL.get_ptr_mut(flow.backend_id)?;
    let epoch = NextHop::epoch_of(now);
    let ip = flow.nat_dst_ip;
    // SAFETY: per-CPU slot, see `refill`.
    if !unsafe { (*slot).valid_for(ip, epoch) } {
        refill(slot, ip, epoch);
    }
    Some(slot)
}

/// The tunnel the packets of `flow` (after DNAT) go through, if they are
/// encapsulated: only the forward direction (toward the backend) is. The
/// answer points into the backend's per-CPU slot (`cached`).
#[inline(always)]
pub fn route(flow: &Flow, now: u64) -> Result<Option<*const Tunnel>, Error> {
    if flow.direction != DIR_FORWARD {
        return Ok(None);
    }
    let Some(slot) = cached(flow, now) else {
        return Ok(None);
    };
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

/// Encapsulates the DNATed packet for `t` and sends it toward the node.
/// The inner packet is routed here, so its TTL is decremented (whether the
/// datapath or the stack transmits the outer packet). The outer next hop
/// (toward `t.node_ip`) is cached in `cache` like any next hop.
#[inline(always)]
pub fn deliver(
    ctx: &XdpContext,
    pkt: &Packet,
    t: *const Tunnel,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Result<u32, Error> {
    // SAFETY: points into a per-CPU map slot (`route`).
    let t = unsafe { &*t };
    decrement_ttl(pkt);
    let outer = if t.encap == encap::IPIP {
        stats::inc(GlobalStat::EncapIpip);
        encap_ipip::encapsulate(ctx, pkt, t)?
    } else {
        stats::inc(GlobalStat::EncapVxlan);
        encap_vxlan::encapsulate(ctx, pkt, t, &pkt.key)?
    };
    // From here on `pkt`'s pointers are invalid: only `outer` is used.
    Ok(send(ctx, &outer, t.node_ip, cache, now))
}

/// Sends the encapsulated packet `outer` toward `via` (the node, or the
/// outer destination itself), its next hop cached in `cache` like any next
/// hop; the outer TTL is left as written.
#[inline(always)]
pub fn send(
    ctx: &XdpContext,
    outer: &Packet,
    via: u32,
    cache: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    let nh = match forward::next_hop_via(ctx, outer, via, cache, now) {
        Ok(nh) => nh,
        Err(Miss::TooBig) => return too_big(),
        Err(Miss::NoNextHop) => {
            // No neighbour (or route) yet: the stack forwards the
            // encapsulated packet (it carries a local source address: the
            // ingress interface needs accept_local, see docs) and resolves
            // the neighbour.
            stats::inc(GlobalStat::PassFibMiss);
            return xdp_action::XDP_PASS;
        }
    };
    forward::transmit(ctx, outer, &nh, false)
}

/// The encapsulated packet is larger than the route MTU toward the node.
///
/// Hook for the path-MTU work (not built yet): answer the client with ICMP
/// fragmentation-needed for the inner packet (MTU = route MTU − the
/// encapsulation overhead, `lb_common::tunnel::*_OVERHEAD`), and clamp the
/// MSS of SYNs to encapsulated backends. Until then the encapsulated packet
/// goes to the stack, as an oversized plain packet does.
#[inline(always)]
fn too_big() -> u32 {
    stats::inc(GlobalStat::PassEncapTooBig);
    xdp_action::XDP_PASS
}
