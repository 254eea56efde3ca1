//! Delivery to pods through their node: which tunnel route a connection's
//! backend is behind (`TUNNELS`, cached per backend in `BACKEND_TUNNEL`),
//! and sending the DNATed packet encapsulated (IPIP or VXLAN) toward the
//! node, within the route MTU (ICMP fragmentation-needed, MSS clamping;
//! `resolve`, `clamp_syn` and `send` are shared with DSR, `dsr.rs`).
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
    error::{Error, or_verdict},
    forward::{self, Miss, Query},
    frag_needed,
    headers::IP_DF_RAW,
    maps::{BACKEND_TUNNEL, TUNNELS},
    mss_clamp,
    nat::{self, decrement_ttl},
    packet::load,
    parse::Packet,
    path_mtu, stats,
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

/// The cached tunnel route of `flow`'s backend (`BACKEND_TUNNEL` slot);
/// `None` only for a backend id beyond the array. See `cached_for`.
#[inline(always)]
pub fn cached(flow: &Flow, now: u64) -> Option<*mut BackendTunnel> {
    cached_for(flow.backend_id, flow.nat_dst_ip, now)
}

/// The cached tunnel route of backend `backend_id` at address `ip` (network
/// byte order), refilled when stale (another backend address, or an earlier
/// epoch: about once a second per backend and CPU), so the longest-prefix
/// match does not run per packet. The slot stays put for this run of the
/// program; `None` only for a backend id beyond the array.
#[inline(always)]
pub fn cached_for(backend_id: u32, ip: u32, now: u64) -> Option<*mut BackendTunnel> {
    let slot = BACKEND_TUNNEL.get_ptr_mut(backend_id)?;
    let epoch = NextHop::epoch_of(now);
    // SAFETY: per-CPU slot, see `refill`.
    if !unsafe { (*slot).valid_for(ip, epoch) } {
        refill(slot, ip, epoch);
    }
    Some(slot)
}

/// The tunnel the packets of `flow` (after DNAT) go through, if they are
/// encapsulated: only the forward direction (toward the backend) is.
/// `cache`: the connection's next hop. One resolved in this epoch toward
/// the backend itself settles it without the per-CPU route slot (two cache
/// lines a plain packet saves): an encapsulated connection's next hop is
/// resolved toward its node, which is never inside the pod CIDR of its own
/// encapsulating route (the API refuses such a route), and the route slot
/// is refilled per epoch too.
#[inline(always)]
pub fn route(
    flow: &Flow,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Result<Option<*const Tunnel>, Error> {
    if flow.direction != DIR_FORWARD {
        return Ok(None);
    }
    if let Some(c) = cache
        // SAFETY: map value pointer (see `forward::next_hop`).
        && unsafe { (*c).valid_for(flow.nat_dst_ip, NextHop::epoch_of(now)) }
    {
        return Ok(None);
    }
    backend_route(flow.backend_id, flow.nat_dst_ip, now)
}

/// The tunnel route of backend `backend_id` at address `ip` (network byte
/// order), if it is an encapsulating one. The answer points into the
/// backend's per-CPU slot (`cached_for`).
#[inline(always)]
pub fn backend_route(backend_id: u32, ip: u32, now: u64) -> Result<Option<*const Tunnel>, Error> {
    let Some(slot) = cached_for(backend_id, ip, now) else {
        return Ok(None);
    };
    let t = unsafe { &raw const (*slot).tunnel };
    let (kind, src_ip) = unsafe { ((*t).encap, (*t).src_ip) };
    if !tunnel::encapsulates(kind) {
        return Ok(None);
    }
    if src_ip == 0 {
        return Err(Error::NoTunnelSource);
    }
    Ok(Some(t))
}

/// How an encapsulated packet leaves: the outer header's source, the
/// address its next hop is resolved toward (`via`: the node, or for DSR
/// without a tunnel route the backend itself), the bytes the encapsulation
/// adds and the outer protocol.
pub struct Outer {
    pub src_ip: u32,
    pub via: u32,
    pub overhead: u16,
    pub proto: u8,
}

impl Outer {
    /// The outer packet of tunnel `t`'s encapsulation, toward its node.
    #[inline(always)]
    pub fn to_node(t: &Tunnel) -> Outer {
        Outer {
            src_ip: t.src_ip,
            via: t.node_ip,
            overhead: tunnel::overhead(t.encap),
            proto: outer_proto(t.encap),
        }
    }
}

/// The outer protocol of encapsulation `kind`.
#[inline(always)]
pub fn outer_proto(kind: u8) -> u8 {
    if kind == encap::VXLAN {
        proto::UDP
    } else {
        proto::IPIP
    }
}

/// The route MTU toward `o.via` (for the MSS of a connection whose next
/// hop is not known yet, or whose SYN-ACK comes back through the tunnel);
/// `DEFAULT_UNDERLAY_MTU` while the kernel has no route there; lowered to
/// the path MTU learned toward it (`path_mtu.rs`).
#[inline(always)]
pub fn route_mtu(ctx: &XdpContext, o: &Outer) -> u16 {
    let mtu = forward::route_mtu(ctx, o.src_ip, o.via, o.proto).unwrap_or(DEFAULT_UNDERLAY_MTU);
    path_mtu::cap(o.via, mtu)
}

/// The FIB query for the outer packet `o` will make of `pkt`, as
/// `encap_outer` will write it (TOS copied, length grown by the overhead).
#[inline(always)]
fn outer_query(pkt: &Packet, o: &Outer) -> Query {
    let ip = pkt.ip;
    // SAFETY (field pointers): `ip` was bounds-checked by `parse`.
    let inner_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len }));
    Query {
        src_ip: o.src_ip,
        dst_ip: o.via,
        tot_len: inner_len.wrapping_add(o.overhead),
        tos: load(unsafe { &raw const (*ip).tos }),
        proto: o.proto,
    }
}

/// `Hop::state`: the next hop is `Hop::nh`.
pub const HOP_OK: u8 = 0;
/// `Hop::state`: no neighbour (or route) toward `via` yet.
pub const HOP_NONE: u8 = 1;
/// `Hop::state`: the outer packet exceeds the route MTU (`Hop::mtu`).
pub const HOP_TOO_BIG: u8 = 2;
/// `Hop::state`: answered with ICMP fragmentation-needed; return
/// `Hop::action`.
pub const HOP_ANSWERED: u8 = 3;

/// What resolving the outer packet's next hop, before the packet changes,
/// came to: kept across the encapsulation, which invalidates every packet
/// pointer (the next hop is a map value, used in place).
pub struct Hop {
    /// The cached next hop (`HOP_OK`), else null.
    pub nh: *const NextHop,
    pub action: u32,
    /// The route MTU (`HOP_OK`, `HOP_TOO_BIG`).
    pub mtu: u16,
    pub state: u8,
}

impl Hop {
    /// `forward::next_hop`'s answer as a `Hop`.
    #[inline(always)]
    fn of(r: Result<*const NextHop, Miss>) -> Hop {
        match r {
            Ok(nh) => Hop {
                // SAFETY: a map value (`forward::next_hop`).
                mtu: unsafe { (*nh).mtu },
                nh,
                action: 0,
                state: HOP_OK,
            },
            Err(Miss::TooBig(mtu)) => Hop::not(HOP_TOO_BIG, mtu as u16, 0),
            Err(Miss::NoNextHop) => Hop::not(HOP_NONE, 0, 0),
        }
    }

    /// A `Hop` without a next hop.
    #[inline(always)]
    fn not(state: u8, mtu: u16, action: u32) -> Hop {
        Hop {
            nh: core::ptr::null(),
            action,
            mtu,
            state,
        }
    }
}

/// Resolves the next hop of the outer packet `o` will make of `pkt` (as
/// received: not rewritten yet), cached in `cache` like any next hop. A
/// packet with DF set that would exceed the route MTU once encapsulated is
/// answered with ICMP fragmentation-needed (`frag_needed.rs`, quoting the
/// packet as the client sent it) before anything in it changes
/// (`HOP_ANSWERED`).
#[inline(always)]
pub fn resolve(
    ctx: &XdpContext,
    pkt: &Packet,
    o: &Outer,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Result<Hop, Error> {
    // SAFETY (field pointer): `ip` was bounds-checked by `parse`.
    let df = load(unsafe { &raw const (*pkt.ip).frag_off }) & IP_DF_RAW != 0;
    let hop = Hop::of(forward::next_hop(
        ctx,
        &outer_query(pkt, o),
        cache,
        now,
        true,
    ));
    // The FIB's too-big verdict carries the route MTU: the learned path MTU
    // may be smaller still (a cached verdict has it already).
    if hop.state == HOP_TOO_BIG
        && df
        && let Some(action) = frag_needed::answer(
            ctx,
            path_mtu::cap(o.via, hop.mtu).saturating_sub(o.overhead),
        )?
    {
        return Ok(Hop::not(HOP_ANSWERED, 0, action));
    }
    Ok(hop)
}

/// Lowers the MSS of a SYN going out through `o` (not encapsulated yet) to
/// what fits the route MTU (or the path MTU learned toward the node, if
/// smaller) once encapsulated (`mss_clamp.rs`).
#[inline(always)]
pub fn clamp_syn(ctx: &XdpContext, pkt: &Packet, o: &Outer, hop: &Hop) {
    if !mss_clamp::is_syn(pkt) {
        return;
    }
    let mtu = if hop.state == HOP_NONE {
        route_mtu(ctx, o)
    } else {
        hop.mtu
    };
    mss_clamp::clamp(ctx, mtu, o.overhead);
}

/// Sends the packet of `flow` (as received: not rewritten yet) to its pod
/// through tunnel `t`. The next hop toward the node is resolved first
/// (`resolve`: ICMP fragmentation-needed for a packet with DF that would
/// not fit). Otherwise the packet is DNATed, a SYN's MSS is clamped to the
/// tunnel, and it is encapsulated and sent (`encapsulate_send`).
#[inline(always)]
pub fn deliver(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    t: *const Tunnel,
    cache: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    // SAFETY: points into a per-CPU map slot (`route`).
    let t = unsafe { &*t };
    let o = Outer::to_node(t);
    let hop = or_verdict!(resolve(ctx, pkt, &o, cache, now));
    if hop.state == HOP_ANSWERED {
        return hop.action;
    }
    or_verdict!(nat::rewrite(ctx, pkt, flow));
    clamp_syn(ctx, pkt, &o, &hop);
    encapsulate_send(ctx, pkt, t, hop)
}

/// Sends an ICMP error about a connection (translated already,
/// `icmp_error.rs`) to its pod through tunnel `t`: as `deliver`, without
/// the NAT and the MSS, and never answered with fragmentation-needed (no
/// ICMP error about an ICMP error, RFC 1122); too big, it goes to the
/// stack, which fragments the outer packet.
#[inline(always)]
pub fn relay(
    ctx: &XdpContext,
    pkt: &Packet,
    t: *const Tunnel,
    cache: Option<*mut NextHop>,
    now: u64,
) -> u32 {
    // SAFETY: points into a per-CPU map slot (`route`).
    let t = unsafe { &*t };
    let hop = relay_hop(ctx, pkt, &Outer::to_node(t), cache, now);
    encapsulate_send(ctx, pkt, t, hop)
}

/// The next hop of the outer packet `o` will make of the ICMP error `pkt`
/// (`resolve` without the fragmentation-needed answer). `learned`: the
/// connection's cache is shared with its packets' delivery.
#[inline(always)]
pub fn relay_hop(
    ctx: &XdpContext,
    pkt: &Packet,
    o: &Outer,
    cache: Option<*mut NextHop>,
    now: u64,
) -> Hop {
    Hop::of(forward::next_hop(
        ctx,
        &outer_query(pkt, o),
        cache,
        now,
        true,
    ))
}

/// Routes the (rewritten) inner packet, so its TTL is decremented (whether
/// the datapath or the stack transmits the outer packet), encapsulates it
/// for `t` and sends it with `hop`.
#[inline(always)]
fn encapsulate_send(ctx: &XdpContext, pkt: &Packet, t: &Tunnel, hop: Hop) -> u32 {
    decrement_ttl(pkt);
    let (outer, stat) = if t.encap == encap::IPIP {
        (
            or_verdict!(encap_ipip::encapsulate(ctx, pkt, t)),
            GlobalStat::EncapIpip,
        )
    } else {
        (
            or_verdict!(encap_vxlan::encapsulate(ctx, pkt, t, &pkt.key)),
            GlobalStat::EncapVxlan,
        )
    };
    // From here on `pkt`'s pointers are invalid: only `outer` is used.
    send(ctx, &outer, hop, stat)
}

/// Sends the encapsulated packet `outer` on with the next hop `resolve`
/// found for it; the outer TTL is left as written. `encap`: the
/// encapsulation's counter, counted with how the packet left.
#[inline(always)]
pub fn send(ctx: &XdpContext, outer: &Packet, hop: Hop, encap: GlobalStat) -> u32 {
    if hop.state == HOP_OK {
        // SAFETY: `HOP_OK`: a map value (`Hop::of`).
        return forward::transmit(ctx, outer, unsafe { &*hop.nh }, false, Some(encap));
    }
    if hop.state == HOP_TOO_BIG {
        // Without DF: the stack fragments the outer packet (its DF is the
        // inner one's), the node reassembles it.
        stats::inc_with(GlobalStat::PassEncapTooBig, Some(encap));
    } else {
        // No neighbour (or route) yet: the stack forwards the encapsulated
        // packet (it carries a local source address: the ingress interface
        // needs accept_local, see docs) and resolves the neighbour.
        stats::inc_with(GlobalStat::PassFibMiss, Some(encap));
    }
    xdp_action::XDP_PASS
}
