//! ICMP errors about balanced connections reach the connection's other end,
//! translated (what Linux's nf_nat does for related ICMP). An error
//! (destination unreachable, including fragmentation-needed; time exceeded;
//! parameter problem) quotes the start of a packet this balancer sent: the
//! quoted packet reversed is the key of one of the connection's entries,
//! and that entry says who sent the original packet and to which address:
//!
//! - quoted packet sent toward a backend (after DNAT/SNAT): the reversed
//!   quote is the reply key, the error is for the client;
//! - quoted packet sent toward a client (a reverse-NATed reply): the
//!   reversed quote is the forward key, the error is for the backend (a
//!   router's fragmentation-needed on the client side reaches the pod, so
//!   its path-MTU discovery works).
//!
//! In both cases, with `e` the entry found: the quote becomes the original
//! packet, (`e.nat_dst`:port -> `e.nat_src`:port); the error goes to
//! `e.nat_dst`; its source becomes `e.nat_src` when the quoted packet's
//! destination sent the error itself (a backend must not show its own
//! address to the client), else it is kept (a router). The error leaves the
//! way `e`'s packets go (forwarded, or encapsulated toward a pod's node).
//! Only the entries' `nat_*` fields are used, so every NAT mode is covered.
//! A DSR connection's replies never pass here and its packets are not
//! rewritten: an error about a reply (addressed to the VIP) is sent on to
//! the backend untranslated, inside the tunnel (`dsr::relay`).
//! Everything else ICMP (echo, errors about unknown flows, truncated or
//! malformed quotes) passes to the stack untouched.

use aya_ebpf::programs::XdpContext;
use lb_common::{FlowKey, GlobalStat, conntrack::DIR_FORWARD, csum, proto, service::mode};

use crate::{
    conntrack, dsr,
    error::Error,
    forward,
    headers::{
        ETH_LEN, EthHdr, ICMP_CHECK_OFF, ICMP_DEST_UNREACH, ICMP_LEN, ICMP_PARAMETER_PROBLEM,
        ICMP_TIME_EXCEEDED, IP_OFFSET_RAW, IPV4_LEN, Ipv4Hdr, L4_OFF, TCP_CHECK_OFF, UDP_CHECK_OFF,
    },
    nat,
    packet::{load, ptr_at, store},
    parse::Packet,
    stats, tunnel,
};

/// Offsets from the error's IPv4 header (20 bytes: `parse` passes ICMP with
/// options before calling us; an encapsulated one with options is not
/// decapsulated): the ICMP header, the quoted IPv4 header, the quoted
/// TCP/UDP header (a quoted header with options is never one of our
/// packets: the balancer does not rewrite packets with options).
const ICMP_AT: usize = IPV4_LEN;
const INNER_AT: usize = ICMP_AT + ICMP_LEN;
const INNER_L4_AT: usize = INNER_AT + IPV4_LEN;
/// The same from the frame start, for an error in a plain frame.
const INNER_OFF: usize = ETH_LEN + INNER_AT;
const INNER_L4_OFF: usize = ETH_LEN + INNER_L4_AT;
/// What an error must quote to name a connection: the IPv4 header and the
/// first 8 bytes of TCP/UDP (ports; RFC 792's minimum).
const QUOTE_MIN: usize = IPV4_LEN + 8;
/// Quoted length that includes the TCP checksum field (beyond the 8 bytes
/// every error carries; Linux's errors quote up to 576 bytes).
const QUOTE_TCP_CHECK: usize = IPV4_LEN + TCP_CHECK_OFF + 2;

/// The quoted packet of an ICMP error, as far as it names a connection.
pub struct Quote {
    /// The quoted 5-tuple reversed: the key of the entry that handled the
    /// packets the quoted one answered (or was produced from).
    pub key: FlowKey,
    /// Bytes after the ICMP header inside the error's datagram.
    len: usize,
}

/// `relay`'s XDP action, its error counted (the ICMP stage, `main.rs`).
#[inline(always)]
pub fn relay_action(ctx: &XdpContext, now: u64) -> u32 {
    match relay(ctx, now) {
        Ok(action) => action,
        Err(e) => {
            crate::stats::inc(e.stat());
            e.action()
        }
    }
}

/// Handles an options-free, unfragmented ICMP packet (`parse` checked the
/// outer header and that the datagram is inside the frame).
#[inline(always)]
fn relay(ctx: &XdpContext, now: u64) -> Result<u32, Error> {
    let q = quote::<ETH_LEN>(ctx)?;
    let entry = conntrack::lookup(&q.key, now).ok_or(Error::NotOurs)?;
    let ptr = entry.flow;
    // SAFETY: map value pointer, valid for this run of the program. The
    // entry is not refreshed: an error is no traffic of the connection.
    let flow = unsafe { &*ptr };
    // A DSR connection's replies do not pass here, and its packets are not
    // rewritten: an error about a reply (a forward entry found) is not
    // translated but sent on to the backend below (`dsr::relay`).
    let dsr = flow.mode == mode::DSR;
    if dsr && flow.direction != DIR_FORWARD {
        return Err(Error::NotOurs);
    }

    // Pointers derived again here: `parse`'s are gone with its error.
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::NotOurs)?;
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::NotOurs)?;
    let icmp: *mut [u8; ICMP_LEN] = ptr_at(ctx, L4_OFF).ok_or(Error::NotOurs)?;
    let pkt = Packet {
        eth,
        ip,
        l4: icmp.cast(),
        // The connection's tuple in the error's direction: the FIB is asked
        // about its protocol, VXLAN hashes it to the connection's source port
        // (the error takes the connection's receive queue on the node).
        key: q.key,
        tcp_flags: 0,
    };
    nat::check_ttl(&pkt)?;
    // The entry's next-hop cache: it is for `nat_dst_ip`, the error's new
    // destination too (for DSR: the backend, as it stays inside the tunnel).
    let next_hop = Some(unsafe { &raw mut (*ptr).next_hop });
    if dsr {
        return Ok(dsr::relay(ctx, &pkt, flow, next_hop, now));
    }
    let tunnel = tunnel::route(flow, next_hop, now)?;
    translate(ctx, ip, flow, q.len)?;

    stats::inc(if flow.direction == DIR_FORWARD {
        GlobalStat::IcmpToBackend
    } else {
        GlobalStat::IcmpToClient
    });
    match tunnel {
        Some(t) => Ok(tunnel::relay(ctx, &pkt, t, next_hop, now)),
        None => Ok(forward::forward(ctx, &pkt, next_hop, now)),
    }
}

/// The quote of an ICMP error whose IPv4 header (20 bytes, its datagram
/// inside the frame) is at `IP_OFF` in the frame — plain, or still
/// encapsulated (`decap_return` asks before decapsulating) — if it may be
/// about one of our connections; `NotOurs` for anything else (other ICMP,
/// short or odd quotes), which then passes untouched.
#[inline(always)]
pub fn quote<const IP_OFF: usize>(ctx: &XdpContext) -> Result<Quote, Error> {
    let ip: *mut Ipv4Hdr = ptr_at(ctx, IP_OFF).ok_or(Error::NotOurs)?;
    if load(unsafe { &raw const (*ip).protocol }) != proto::ICMP {
        return Err(Error::NotOurs);
    }
    let icmp_type: *mut u8 = ptr_at(ctx, IP_OFF + ICMP_AT).ok_or(Error::NotOurs)?;
    let t = load(icmp_type);
    if t != ICMP_DEST_UNREACH && t != ICMP_TIME_EXCEEDED && t != ICMP_PARAMETER_PROBLEM {
        return Err(Error::NotOurs);
    }
    // The quote must be inside the datagram, not only the frame (Ethernet
    // padding is no quote).
    let tot_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len })) as usize;
    if tot_len < IPV4_LEN + ICMP_LEN + QUOTE_MIN {
        return Err(Error::NotOurs);
    }
    let inner: *mut Ipv4Hdr = ptr_at(ctx, IP_OFF + INNER_AT).ok_or(Error::NotOurs)?;
    let ports: *mut [u16; 2] = ptr_at(ctx, IP_OFF + INNER_L4_AT).ok_or(Error::NotOurs)?;
    // The 8 quoted L4 bytes (UDP's checksum is the last two): in the frame.
    ptr_at::<[u8; 8]>(ctx, IP_OFF + INNER_L4_AT).ok_or(Error::NotOurs)?;
    let protocol = load(unsafe { &raw const (*inner).protocol });
    // Only what the balancer sends can be quoted back to it: IPv4 without
    // options, TCP or UDP, the first (or only) fragment.
    if load(unsafe { &raw const (*inner).version_ihl }) != 0x45
        || load(unsafe { &raw const (*inner).frag_off }) & IP_OFFSET_RAW != 0
        || (protocol != proto::TCP && protocol != proto::UDP)
    {
        return Err(Error::NotOurs);
    }
    let saddr = load(unsafe { &raw const (*inner).saddr });
    // An error goes to the quoted packet's source: anything else is not
    // about a packet we sent.
    if load(unsafe { &raw const (*ip).daddr }) != saddr {
        return Err(Error::NotOurs);
    }
    let [sport, dport] = load(ports);
    Ok(Quote {
        key: FlowKey::new(
            load(unsafe { &raw const (*inner).daddr }),
            saddr,
            dport,
            sport,
            protocol,
        ),
        len: tot_len - IPV4_LEN - ICMP_LEN,
    })
}

/// Rewrites the error for `flow` (see the module comment): the quoted
/// packet and its checksums, the ICMP checksum (which covers the quote),
/// the outer addresses and checksum. Reads everything it needs before
/// writing; fails (before writing) only if a pointer `quote` proved is
/// rejected again.
#[inline(always)]
fn translate(
    ctx: &XdpContext,
    ip: *mut Ipv4Hdr,
    flow: &lb_common::Flow,
    quote_len: usize,
) -> Result<(), Error> {
    // Every pointer bounds-checked again right here: LLVM merges the checks
    // done in `quote`, and the verifier then knows only the shortest bound.
    let inner: *mut Ipv4Hdr = ptr_at(ctx, INNER_OFF).ok_or(Error::NotOurs)?;
    let ports: *mut u32 = ptr_at(ctx, INNER_L4_OFF).ok_or(Error::NotOurs)?;
    let icmp_check: *mut u16 = ptr_at(ctx, L4_OFF + ICMP_CHECK_OFF).ok_or(Error::NotOurs)?;
    let tcp = load(unsafe { &raw const (*inner).protocol }) == proto::TCP;
    // The quoted TCP/UDP checksum, if quoted: UDP's is always within the
    // 8 bytes; TCP's only in a longer quote (else left alone, as Linux does).
    let l4_check: Option<*mut u16> = if tcp {
        if quote_len >= QUOTE_TCP_CHECK {
            Some(ptr_at(ctx, INNER_L4_OFF + TCP_CHECK_OFF).ok_or(Error::NotOurs)?)
        } else {
            None
        }
    } else {
        Some(ptr_at(ctx, INNER_L4_OFF + UDP_CHECK_OFF).ok_or(Error::NotOurs)?)
    };

    // The original packet: from the address the entry writes as destination
    // to the one it writes as source (the entry's packets answer it).
    let (new_isrc, new_idst) = (flow.nat_dst_ip, flow.nat_src_ip);
    // SAFETY: [u16; 2] and u32 have the same size; this keeps wire order.
    let new_ports: u32 =
        unsafe { core::mem::transmute::<[u16; 2], u32>([flow.nat_dst_port, flow.nat_src_port]) };
    // SAFETY (field pointers): bounds-checked above.
    let isrc = load(unsafe { &raw const (*inner).saddr });
    let idst = load(unsafe { &raw const (*inner).daddr });
    let old_ports = load(ports);
    let old_icheck = load(unsafe { &raw const (*inner).check });
    let icheck = csum::replace4(csum::replace4(old_icheck, isrc, new_isrc), idst, new_idst);

    let osrc = load(unsafe { &raw const (*ip).saddr });
    let odst = load(unsafe { &raw const (*ip).daddr });
    // The quoted packet's destination answered itself: it becomes the
    // address the original sender knows. A router keeps its address.
    let new_osrc = if osrc == idst { flow.nat_src_ip } else { osrc };
    let new_odst = flow.nat_dst_ip;

    // The ICMP checksum covers every quoted byte changed here; all of them
    // are 16-bit aligned relative to the ICMP header, so incremental updates
    // with native loads hold.
    let mut check = load(icmp_check);
    check = csum::replace4(check, isrc, new_isrc);
    check = csum::replace4(check, idst, new_idst);
    check = csum::replace2(check, old_icheck, icheck);
    check = csum::replace4(check, old_ports, new_ports);
    if let Some(p) = l4_check {
        let old = load(p);
        let new = if tcp {
            let c = csum::replace4(old, isrc, new_isrc);
            let c = csum::replace4(c, idst, new_idst);
            csum::replace4(c, old_ports, new_ports)
        } else {
            // Zero ("no checksum") stays zero.
            let c = csum::udp_replace4(old, isrc, new_isrc);
            let c = csum::udp_replace4(c, idst, new_idst);
            csum::udp_replace4(c, old_ports, new_ports)
        };
        check = csum::replace2(check, old, new);
        store(p, new);
    }
    store(unsafe { &raw mut (*inner).saddr }, new_isrc);
    store(unsafe { &raw mut (*inner).daddr }, new_idst);
    store(unsafe { &raw mut (*inner).check }, icheck);
    store(ports, new_ports);
    store(icmp_check, check);

    let mut ocheck = load(unsafe { &raw const (*ip).check });
    ocheck = csum::replace4(ocheck, osrc, new_osrc);
    ocheck = csum::replace4(ocheck, odst, new_odst);
    store(unsafe { &raw mut (*ip).saddr }, new_osrc);
    store(unsafe { &raw mut (*ip).daddr }, new_odst);
    store(unsafe { &raw mut (*ip).check }, ocheck);
    Ok(())
}
