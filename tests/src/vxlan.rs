//! VXLAN (RFC 7348) test frames, built with etherparse: outer Ethernet /
//! IPv4 / UDP written from their fields (IPv4 checksum by etherparse), the
//! 8-byte VXLAN header, then the inner Ethernet frame. The fixtures use them
//! to state independently what the balancer sends and receives.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header, UdpHeader};

use crate::packets::Mac;

/// flannel's VXLAN port.
pub const FLANNEL_PORT: u16 = 8472;

/// The 8-byte VXLAN header: flags (0x08: I, a VNI is present), VNI.
pub fn header(flags: u8, vni: u32) -> [u8; 8] {
    let v = vni.to_be_bytes();
    [flags, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// The outer IPv4 header of a VXLAN packet carrying `inner_frame_len` bytes
/// of inner Ethernet frame (checksum not set; see [`frame`]).
pub fn outer_header(src: Ipv4Addr, dst: Ipv4Addr, inner_frame_len: usize) -> Ipv4Header {
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, src.octets(), dst.octets())
        .expect("zero payload length fits");
    ip.set_payload_len(UdpHeader::LEN + 8 + inner_frame_len)
        .expect("payload fits");
    ip
}

/// Ethernet (`src_mac` -> `dst_mac`), `outer` (checksum computed from its
/// fields), UDP `src_port` -> `dst_port` with checksum 0 and length `udp_len`
/// (None: the right one), VXLAN `vxlan`, then `inner_frame`.
#[allow(clippy::too_many_arguments)]
pub fn frame(
    src_mac: Mac,
    dst_mac: Mac,
    outer: &Ipv4Header,
    src_port: u16,
    dst_port: u16,
    udp_len: Option<u16>,
    vxlan: [u8; 8],
    inner_frame: &[u8],
) -> Vec<u8> {
    let mut out = crate::ipip::outer_frame(src_mac, dst_mac, outer);
    UdpHeader {
        source_port: src_port,
        destination_port: dst_port,
        length: udp_len.unwrap_or((UdpHeader::LEN + 8 + inner_frame.len()) as u16),
        checksum: 0,
    }
    .write(&mut out)
    .expect("write to Vec");
    out.extend_from_slice(&vxlan);
    out.extend_from_slice(inner_frame);
    out
}

/// A well-formed VXLAN frame (VNI `vni`) carrying `inner_frame`.
#[allow(clippy::too_many_arguments)]
pub fn encapsulate(
    src_mac: Mac,
    dst_mac: Mac,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    vni: u32,
    inner_frame: &[u8],
) -> Vec<u8> {
    frame(
        src_mac,
        dst_mac,
        &outer_header(outer_src, outer_dst, inner_frame.len()),
        src_port,
        dst_port,
        None,
        header(0x08, vni),
        inner_frame,
    )
}

/// The UDP source port Linux's `udp_flow_src_port` picks for flow hash
/// `hash` in 49152..=65535 (written here from its definition, not taken
/// from the datapath's code).
pub fn linux_src_port(hash: u32) -> u16 {
    let h = hash ^ (hash << 16);
    let (min, max) = (49152u64, 65535u64);
    ((((h as u64) * (max - min)) >> 32) + min) as u16
}
