//! Sends a rewritten packet on: next hop from the kernel's FIB, then XDP_TX
//! (same interface) or XDP_REDIRECT through the device map. When the kernel
//! cannot give a next hop yet (no neighbour entry, no route), or the packet
//! is larger than the route's MTU, the rewritten packet goes to the stack,
//! which resolves, fragments or answers ICMP and forwards it. (An
//! encapsulated packet too big for the route toward its node is answered
//! here instead, `frag_needed.rs`.)
//!
//! `bpf_fib_lookup` is the most expensive step of the fast path, so its
//! answer is cached (`NextHop`: in the connection entry, and per backend for
//! new connections) and re-resolved once per epoch (about a second).

use aya_ebpf::{
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SKIP_NEIGH,
        BPF_FIB_LOOKUP_SRC, bpf_fib_lookup as FibParams, xdp_action,
    },
    helpers::generated::bpf_fib_lookup,
    programs::XdpContext,
};
use lb_common::{GlobalStat, NextHop};

use crate::{
    maps::TX_PORTS,
    nat::decrement_ttl,
    packet::{copy_mac, load},
    parse::Packet,
    path_mtu, stats,
};

const AF_INET: u8 = 2;

/// Why the FIB gave no next hop.
pub enum Miss {
    /// No route, no neighbour yet, forwarding off, ...
    NoNextHop,
    /// The packet is larger than the route's MTU (carried; a 16-bit value
    /// held in 32 bits: a `u16` here sits at offset 2 of the
    /// `Result<NextHop, Miss>`, whose copies on the stack then start there
    /// and became misaligned 8-byte accesses, which the verifier rejects).
    TooBig(u32),
}

/// What the FIB is asked about a packet: its addresses (network byte
/// order), total length (host order), TOS and protocol.
pub struct Query {
    pub src_ip: u32,
    pub dst_ip: u32,
    pub tot_len: u16,
    pub tos: u8,
    pub proto: u8,
}

impl Query {
    /// The query for the (rewritten) packet `pkt` as it is.
    #[inline(always)]
    pub fn of(pkt: &Packet) -> Query {
        let ip = pkt.ip;
        // SAFETY (field pointers): `ip` was bounds-checked by `parse` (or
        // by the encapsulation).
        Query {
            src_ip: load(unsafe { &raw const (*ip).saddr }),
            dst_ip: load(unsafe { &raw const (*ip).daddr }),
            tot_len: u16::from_be(load(unsafe { &raw const (*ip).tot_len })),
            tos: load(unsafe { &raw const (*ip).tos }),
            proto: pkt.key.proto,
        }
    }
}

/// Asks the kernel's FIB about `q` with `flags`; the return code and the
/// answer.
#[inline(always)]
fn lookup(ctx: &XdpContext, q: &Query, flags: u32) -> (i64, FibParams) {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut fib: FibParams = unsafe { core::mem::zeroed() };
    fib.family = AF_INET;
    fib.l4_protocol = q.proto;
    fib.__bindgen_anon_1.tot_len = q.tot_len;
    fib.__bindgen_anon_2.tos = q.tos;
    fib.__bindgen_anon_3.ipv4_src = q.src_ip;
    fib.__bindgen_anon_4.ipv4_dst = q.dst_ip;
    fib.ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: helper call with the program's context and a stack buffer of
    // the size passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx.cast(),
            &mut fib,
            core::mem::size_of::<FibParams>() as i32,
            flags,
        )
    };
    (rc, fib)
}

/// Resolves the next hop of the packet `q` describes with the kernel's FIB;
/// `learned`: its MTU lowered to the path MTU learned toward `q.dst_ip`
/// (`path_mtu::cap`, looked up here while the FIB's answer is on the stack
/// anyway: anywhere later it took the program past the stack limit).
#[inline(always)]
fn resolve(ctx: &XdpContext, q: &Query, epoch: u16, learned: bool) -> Result<NextHop, Miss> {
    let (rc, fib) = lookup(ctx, q, 0);
    if rc == BPF_FIB_LKUP_RET_FRAG_NEEDED as i64 {
        // SAFETY: the kernel reports the route's MTU here for this answer.
        return Err(Miss::TooBig(u32::from(unsafe {
            fib.__bindgen_anon_1.mtu_result
        })));
    }
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        return Err(Miss::NoNextHop);
    }
    // On success the kernel reports the route's MTU here.
    let mtu = unsafe { fib.__bindgen_anon_1.mtu_result };
    Ok(NextHop {
        dst_ip: q.dst_ip,
        ifindex: fib.ifindex,
        epoch,
        mtu: if learned {
            path_mtu::cap(q.dst_ip, mtu)
        } else {
            mtu
        },
        dmac: fib.dmac,
        smac: fib.smac,
    })
}

/// The MTU of the route from `src_ip` to `dst_ip` (network byte order),
/// neighbour or not (`BPF_FIB_LOOKUP_SKIP_NEIGH`); `None` without a route.
#[inline(always)]
pub fn route_mtu(ctx: &XdpContext, src_ip: u32, dst_ip: u32, proto: u8) -> Option<u16> {
    let q = Query {
        src_ip,
        dst_ip,
        tot_len: 0,
        tos: 0,
        proto,
    };
    let (rc, fib) = lookup(ctx, &q, BPF_FIB_LOOKUP_SKIP_NEIGH);
    // SAFETY: on success the kernel reports the route's MTU here.
    (rc == BPF_FIB_LKUP_RET_SUCCESS as i64).then_some(unsafe { fib.__bindgen_anon_1.mtu_result })
}

/// Forwards the rewritten packet, using and refreshing `cache`.
#[inline(always)]
pub fn forward(ctx: &XdpContext, pkt: &Packet, cache: Option<*mut NextHop>, now: u64) -> u32 {
    let Ok(nh) = next_hop(ctx, &Query::of(pkt), cache, now, false) else {
        stats::inc(GlobalStat::PassFibMiss);
        return xdp_action::XDP_PASS;
    };
    // SAFETY: `next_hop` answers with the cache slot, a map value.
    transmit(ctx, pkt, unsafe { &*nh }, true, None)
}

/// The next hop of the packet `q` describes, toward `q.dst_ip` (the
/// packet's destination, or the node an encapsulated packet goes
/// through): `cache` when it is valid for that address in this epoch,
/// else the FIB's answer, stored into `cache` first. Either way the answer
/// is the cache slot itself, used in place: copied out, a next hop went
/// through the stack up to three times, its MACs byte by byte.
/// `Miss::TooBig` when the packet exceeds the route MTU (the FIB's verdict,
/// or the cached MTU: it was resolved for another packet). `learned`: the
/// packet is an outer packet toward a node, whose MTU is lowered to the
/// path MTU learned toward it (`path_mtu::cap`) when it is resolved: cached
/// with the next hop, so a cache hit pays nothing for it. Without a cache
/// slot (a backend id beyond the per-backend array, which the daemon never
/// allocates) the stack resolves: `Miss::NoNextHop`.
#[inline(always)]
pub fn next_hop(
    ctx: &XdpContext,
    q: &Query,
    cache: Option<*mut NextHop>,
    now: u64,
    learned: bool,
) -> Result<*const NextHop, Miss> {
    let c = cache.ok_or(Miss::NoNextHop)?;
    let epoch = NextHop::epoch_of(now);
    // SAFETY: map value pointer (connection entry or per-CPU slot); a racing
    // writer stores an equally valid resolution.
    if !unsafe { (*c).valid_for(q.dst_ip, epoch) } {
        let nh = resolve(ctx, q, epoch, learned)?;
        unsafe { *c = nh };
    }
    let mtu = unsafe { (*c).mtu };
    if q.tot_len > mtu {
        return Err(Miss::TooBig(u32::from(mtu)));
    }
    Ok(c)
}

/// The kernel's preferred source address toward `dst` (network byte
/// order), as it would pick it for a packet it sends there
/// (`BPF_FIB_LOOKUP_SRC`; no neighbour needed): the outer source of DSR
/// packets to a backend no tunnel route holds. `None` without a route.
#[inline(always)]
pub fn source_toward(ctx: &XdpContext, dst: u32) -> Option<u32> {
    // `tot_len` 0: no MTU verdict; protocol and TOS do not matter here.
    let q = Query {
        src_ip: 0,
        dst_ip: dst,
        tot_len: 0,
        tos: 0,
        proto: 0,
    };
    let (rc, fib) = lookup(ctx, &q, BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_SKIP_NEIGH);
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        return None;
    }
    // SAFETY: union field written by the kernel on success.
    let src = unsafe { fib.__bindgen_anon_3.ipv4_src };
    (src != 0).then_some(src)
}

/// Sets the frame's MACs for `nh` (a cached next hop, in a map value) and
/// transmits it: `XDP_TX` on the ingress interface, else a redirect through
/// `TX_PORTS`. `route_ttl`: decrement the IPv4 TTL (router semantics) when
/// transmitting; an encapsulated packet's outer header is new and keeps its
/// TTL (the inner one was decremented). `encap`: the encapsulation's
/// counter, counted with the transmission (`stats::inc_with`).
#[inline(always)]
pub fn transmit(
    ctx: &XdpContext,
    pkt: &Packet,
    nh: &NextHop,
    route_ttl: bool,
    encap: Option<GlobalStat>,
) -> u32 {
    let (action, stat) = if nh.ifindex == ctx.ingress_ifindex() as u32 {
        (xdp_action::XDP_TX, GlobalStat::Tx)
    } else {
        // The redirect helper only records the target (the frame leaves
        // after the program returns): the frame may still be written below.
        match TX_PORTS.redirect(nh.ifindex, xdp_action::XDP_PASS as u64) {
            Ok(action) => (action, GlobalStat::Redirect),
            Err(_) => {
                // Not ours to transmit on: the stack must see the frame as
                // it arrived (its own MAC as destination), only rewritten
                // above L2.
                stats::inc_with(GlobalStat::PassNoTxPort, encap);
                return xdp_action::XDP_PASS;
            }
        }
    };
    // Words, not bytes (`copy_mac`): `nh` is a map value, not on the stack.
    copy_mac(unsafe { &raw mut (*pkt.eth).dst }, &raw const nh.dmac);
    copy_mac(unsafe { &raw mut (*pkt.eth).src }, &raw const nh.smac);
    if route_ttl {
        decrement_ttl(pkt);
    }
    stats::inc_with(stat, encap);
    action
}
