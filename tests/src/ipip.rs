//! IPIP (IPv4 in IPv4, protocol 4) test packets, built with etherparse: the
//! outer header written from its fields with etherparse's checksum, so the
//! fixtures state independently what the decapsulation program receives.

use std::net::Ipv4Addr;

use etherparse::{EtherType, Ethernet2Header, IpNumber, Ipv4Header};

use crate::packets::{Frame, Mac};

/// The IPv4 packet of `frame` (its bytes after the Ethernet header): what an
/// IPIP packet carries, and what a raw `IPPROTO_IPIP` socket sends.
pub fn inner_packet(frame: &Frame) -> Vec<u8> {
    frame.bytes()[Ethernet2Header::LEN..].to_vec()
}

/// An outer IPv4 header (protocol 4) from `src` to `dst` for `inner_len`
/// bytes of payload, checksum not yet set (see [`frame`]).
pub fn outer_header(src: Ipv4Addr, dst: Ipv4Addr, inner_len: usize) -> Ipv4Header {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::IPV4, src.octets(), dst.octets())
        .expect("zero payload length fits");
    ip.identification = 0x4242;
    ip.set_payload_len(inner_len).expect("payload fits");
    ip
}

/// Ethernet (`src_mac` -> `dst_mac`) and `outer` with its checksum
/// computed from its fields (whatever they hold): the start of every
/// encapsulated test frame (IPIP here, VXLAN in `vxlan.rs`).
pub fn outer_frame(src_mac: Mac, dst_mac: Mac, outer: &Ipv4Header) -> Vec<u8> {
    let mut outer = outer.clone();
    outer.header_checksum = outer.calc_header_checksum();
    let mut out = Vec::new();
    Ethernet2Header {
        source: src_mac,
        destination: dst_mac,
        ether_type: EtherType::IPV4,
    }
    .write(&mut out)
    .expect("write to Vec");
    outer.write(&mut out).expect("write to Vec");
    out
}

/// Ethernet (`src_mac` -> `dst_mac`), `outer` with its checksum computed
/// from its fields (whatever they hold), then `inner`.
pub fn frame(src_mac: Mac, dst_mac: Mac, outer: &Ipv4Header, inner: &[u8]) -> Vec<u8> {
    let mut out = outer_frame(src_mac, dst_mac, outer);
    out.extend_from_slice(inner);
    out
}

/// A well-formed IPIP frame carrying `inner`.
pub fn encapsulate(
    src_mac: Mac,
    dst_mac: Mac,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    inner: &[u8],
) -> Vec<u8> {
    frame(
        src_mac,
        dst_mac,
        &outer_header(outer_src, outer_dst, inner.len()),
        inner,
    )
}
