//! What every encapsulation does first: make room in front of the packet and
//! write the outer Ethernet and IPv4 headers (tunnel source to node, or to
//! the backend for DSR; TTL 64,
//! DF, TOS (DSCP and ECN) and identification copied from the inner header,
//! checksum computed).

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{csum, tunnel::OUTER_TTL};

use crate::{
    error::Error,
    headers::{ETH_LEN, ETH_P_IP_RAW, EthHdr, IP_DF_RAW, Ipv4Hdr},
    packet::{load, load_macs, ptr_at, store, store_macs},
    parse::Packet,
};

/// Grows the frame by `overhead` bytes in front and writes the outer
/// Ethernet header (the MACs as received, until `transmit` sets the next
/// hop's: a frame passed to the stack must still be addressed to this host)
/// and the outer IPv4 header from `saddr` to `daddr` (network byte order)
/// carrying `protocol`. Returns the outer
/// Ethernet and IPv4 headers and the outer total length (host order); every
/// pointer of `pkt` is invalid afterwards.
#[inline(always)]
pub fn push_outer(
    ctx: &XdpContext,
    pkt: &Packet,
    saddr: u32,
    daddr: u32,
    overhead: u16,
    protocol: u8,
) -> Result<(*mut EthHdr, *mut Ipv4Hdr, u16), Error> {
    let inner = inner_fields(pkt);
    let macs = load_macs(pkt.eth.cast());
    // SAFETY: helper call on this program's context. Every packet pointer is
    // invalid after it (the verifier forgets them): all are derived again.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -i32::from(overhead)) } != 0 {
        return Err(Error::AdjustFailed);
    }
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::AdjustFailed)?;
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::AdjustFailed)?;
    store_macs(eth.cast(), macs);
    store(unsafe { &raw mut (*eth).ether_type }, ETH_P_IP_RAW);
    let total = inner.tot_len.wrapping_add(overhead);
    store(ip, outer_ipv4(&inner, saddr, daddr, total, protocol));
    Ok((eth, ip, total))
}

/// What the outer header takes from the inner one (read before the head
/// moves).
struct InnerFields {
    /// Inner total length, host byte order.
    pub tot_len: u16,
    pub tos: u8,
    /// Raw (network byte order).
    pub id: u16,
    /// The inner DF bit (raw `frag_off` value: DF or 0).
    pub df: u16,
}

/// Reads them from the (DNATed) inner header.
#[inline(always)]
fn inner_fields(pkt: &Packet) -> InnerFields {
    let ip = pkt.ip;
    // SAFETY (field pointers): `ip` was bounds-checked by `parse`.
    InnerFields {
        tot_len: u16::from_be(load(unsafe { &raw const (*ip).tot_len })),
        tos: load(unsafe { &raw const (*ip).tos }),
        id: load(unsafe { &raw const (*ip).id }),
        df: load(unsafe { &raw const (*ip).frag_off }) & IP_DF_RAW,
    }
}

/// The outer header: `total` bytes (host order), carrying `protocol`.
#[inline(always)]
fn outer_ipv4(inner: &InnerFields, saddr: u32, daddr: u32, total: u16, protocol: u8) -> Ipv4Hdr {
    let mut h = Ipv4Hdr {
        version_ihl: 0x45,
        tos: inner.tos,
        tot_len: total.to_be(),
        id: inner.id,
        frag_off: inner.df,
        ttl: OUTER_TTL,
        protocol,
        check: 0,
        saddr,
        daddr,
    };
    // SAFETY: a 20-byte repr(C) header without padding is ten u16 words.
    let words = unsafe { core::mem::transmute::<Ipv4Hdr, [u16; 10]>(h) };
    h.check = csum::ipv4_header(words);
    h
}
