//! Rewrites a packet's addresses and ports as its connection entry says and
//! updates the IPv4 and TCP/UDP checksums incrementally. The TTL is
//! decremented only when the datapath transmits the packet itself
//! (`decrement_ttl`); a packet handed to the stack is decremented there.

use lb_common::{Flow, csum, proto};

use aya_ebpf::programs::XdpContext;

use crate::{
    error::Error,
    headers::{L4_OFF, TCP_CHECK_OFF, UDP_CHECK_OFF},
    packet::{load, ptr_at, store},
    parse::Packet,
};

/// A packet that would leave with TTL 0 is not balanced: the stack drops it
/// and answers ICMP time exceeded, as a router does.
#[inline(always)]
pub fn check_ttl(pkt: &Packet) -> Result<(), Error> {
    if load(unsafe { &raw const (*pkt.ip).ttl }) <= 1 {
        Err(Error::TtlExceeded)
    } else {
        Ok(())
    }
}

/// Rewrites the packet to `flow`'s addresses and ports. Fails (before
/// writing anything) only if the L4 checksum is out of bounds, which `parse`
/// already excluded.
#[inline(always)]
pub fn rewrite(ctx: &XdpContext, pkt: &Packet, flow: &Flow) -> Result<(), Error> {
    let tcp = pkt.key.proto == proto::TCP;
    // The checksum pointer is bounds-checked again although `parse` checked
    // the whole L4 header: LLVM merges parse's TCP and UDP length checks into
    // one pointer, and the verifier then only knows the shorter (UDP) bound.
    let l4_check = if tcp {
        ptr_at::<u16>(ctx, L4_OFF + TCP_CHECK_OFF)
    } else {
        ptr_at::<u16>(ctx, L4_OFF + UDP_CHECK_OFF)
    }
    .ok_or(Error::Malformed)?;

    let ip = pkt.ip;
    let old_src = pkt.key.src_ip;
    let old_dst = pkt.key.dst_ip;
    // SAFETY (all raw field pointers below): `ip` and `l4` were bounds-checked
    // by `parse` for their full headers.
    let mut check = load(unsafe { &raw const (*ip).check });
    check = csum::replace4(check, old_src, flow.nat_src_ip);
    check = csum::replace4(check, old_dst, flow.nat_dst_ip);
    store(unsafe { &raw mut (*ip).saddr }, flow.nat_src_ip);
    store(unsafe { &raw mut (*ip).daddr }, flow.nat_dst_ip);
    store(unsafe { &raw mut (*ip).check }, check);

    // Ports: the first 32-bit word of both TCP and UDP headers.
    let ports = pkt.l4.cast::<u32>();
    let old_ports = load(ports);
    // SAFETY: [u16; 2] and u32 have the same size; this keeps wire order.
    let new_ports: u32 =
        unsafe { core::mem::transmute::<[u16; 2], u32>([flow.nat_src_port, flow.nat_dst_port]) };
    store(ports, new_ports);

    let mut l4 = load(l4_check);
    if tcp {
        l4 = csum::replace4(l4, old_src, flow.nat_src_ip);
        l4 = csum::replace4(l4, old_dst, flow.nat_dst_ip);
        l4 = csum::replace4(l4, old_ports, new_ports);
    } else {
        l4 = csum::udp_replace4(l4, old_src, flow.nat_src_ip);
        l4 = csum::udp_replace4(l4, old_dst, flow.nat_dst_ip);
        l4 = csum::udp_replace4(l4, old_ports, new_ports);
    }
    store(l4_check, l4);
    Ok(())
}

/// Decrements the TTL (router semantics), fixing the IPv4 checksum. Called
/// only for packets the datapath transmits (XDP_TX / XDP_REDIRECT).
#[inline(always)]
pub fn decrement_ttl(pkt: &Packet) {
    // SAFETY: `ip` was bounds-checked by `parse`.
    let ip = pkt.ip;
    // One 16-bit access (a `[u8; 2]` would be two byte accesses).
    let ttl_proto = unsafe { (&raw mut (*ip).ttl).cast::<u16>() };
    let old = load(ttl_proto);
    let [ttl, protocol] = old.to_ne_bytes();
    let new_ttl_proto = u16::from_ne_bytes([ttl.wrapping_sub(1), protocol]);
    let check = csum::replace2(load(unsafe { &raw const (*ip).check }), old, new_ttl_proto);
    store(ttl_proto, new_ttl_proto);
    store(unsafe { &raw mut (*ip).check }, check);
}
