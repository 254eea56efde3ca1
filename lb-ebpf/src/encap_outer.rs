//! The outer IPv4 header both encapsulations write: tunnel source to node,
//! TTL 64, DF, TOS (DSCP and ECN) and identification copied from the inner
//! header, checksum computed.

use lb_common::{Tunnel, csum, tunnel::OUTER_TTL};

use crate::{
    headers::{IP_DF_RAW, Ipv4Hdr},
    packet::load,
    parse::Packet,
};

/// What the outer header takes from the inner one (read before the head
/// moves).
pub struct InnerFields {
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
pub fn inner_fields(pkt: &Packet) -> InnerFields {
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
pub fn outer_ipv4(inner: &InnerFields, t: &Tunnel, total: u16, protocol: u8) -> Ipv4Hdr {
    let mut h = Ipv4Hdr {
        version_ihl: 0x45,
        tos: inner.tos,
        tot_len: total.to_be(),
        id: inner.id,
        frag_off: inner.df,
        ttl: OUTER_TTL,
        protocol,
        check: 0,
        saddr: t.src_ip,
        daddr: t.node_ip,
    };
    // SAFETY: a 20-byte repr(C) header without padding is ten u16 words.
    let words = unsafe { core::mem::transmute::<Ipv4Hdr, [u16; 10]>(h) };
    h.check = csum::ipv4_header(words);
    h
}
