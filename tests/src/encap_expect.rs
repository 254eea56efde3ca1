//! What the encapsulation fixtures expect, built independently with
//! etherparse: the DNATed inner packet and its IPIP or VXLAN outer frame
//! and the ICMP fragmentation-needed answers (shared by tests/tests/xdp_encap.rs,
//! xdp_mtu.rs and xdp_pmtu.rs; the pods'
//! encapsulated replies are built in `encap_fixture`).

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{
    EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpDscp, IpNumber, Ipv4Header,
    icmpv4::DestUnreachableHeader,
};

use crate::{
    dnat_fixture::CLIENT,
    encap_fixture::*,
    fixture_net::BACKEND_IF_MAC,
    ipip,
    packets::{Frame, L4, Mac, assert_checksums_valid},
    vxlan,
    xdp::Run,
};

pub fn tcp_backend(pod: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(pod, TCP_PORT)
}

pub fn udp_backend(pod: Ipv4Addr) -> SocketAddrV4 {
    SocketAddrV4::new(pod, UDP_PORT)
}

/// The DNATed packet the pod must receive for `input` (client -> VIP):
/// destination `backend`, TTL decremented (Ethernet header still `input`'s).
pub fn dnated(input: &Frame, backend: SocketAddrV4) -> Frame {
    let ttl = input.ip.time_to_live - 1;
    input.clone().addrs(CLIENT, backend).ttl(ttl)
}

/// IPIP frame from the load balancer to `node` (`macs`: source,
/// destination) carrying `inner`.
pub fn expect_ipip(macs: (Mac, Mac), node: Ipv4Addr, inner: &Frame) -> Vec<u8> {
    let inner_ip = ipip::inner_packet(inner);
    let mut outer = ipip::outer_header(TUNNEL_SOURCE, node, inner_ip.len());
    copy_inner_fields(&mut outer, inner);
    ipip::frame(macs.0, macs.1, &outer, &inner_ip)
}

/// VXLAN frame from the load balancer to the VXLAN node carrying `inner`
/// (an inner Ethernet frame from the load balancer's VTEP to the node's).
pub fn expect_vxlan(input: &Frame, proto: u8, inner: &Frame) -> Vec<u8> {
    let inner_frame = inner.clone().macs(LB_VTEP_MAC, NODE_VTEP_MAC).bytes();
    let mut outer = vxlan::outer_header(TUNNEL_SOURCE, NODE_VXLAN, inner_frame.len());
    copy_inner_fields(&mut outer, inner);
    let port = expected_src_port(input, proto);
    assert!((49152..=65535).contains(&port));
    vxlan::frame(
        BACKEND_IF_MAC,
        NODE_VXLAN_MAC,
        &outer,
        port,
        vxlan::FLANNEL_PORT,
        None,
        vxlan::header(0x08, VNI),
        &inner_frame,
    )
}

/// Asserts the action and the exact output, and that the outer IPv4 header
/// and the inner packet (at `inner_off`, an IPv4 packet) have valid
/// checksums.
pub fn assert_encapsulated(run: &Run, action: u32, expected: &[u8], inner_off: usize) {
    assert_eq!(run.action, action, "XDP action");
    assert_eq!(run.output, expected, "output frame");
    let (outer, _) = Ipv4Header::from_slice(&run.output[Ethernet2Header::LEN..]).unwrap();
    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
    assert_eq!(outer.time_to_live, 64);
    assert_eq!(outer.source, TUNNEL_SOURCE.octets());
    let mut inner = run.output[..Ethernet2Header::LEN].to_vec();
    inner.extend_from_slice(&run.output[inner_off..]);
    assert_checksums_valid(&inner);
}

pub const IPIP_INNER: usize = 34;
pub const VXLAN_INNER: usize = 64;

/// The ICMP fragmentation-needed answer to `input` (as the client sent it)
/// carrying `mtu`: from the VIP back to the client, quoting the client's
/// IPv4 header and 8 bytes.
pub fn expect_frag_needed(input: &Frame, mtu: u16) -> Vec<u8> {
    let sent = input.bytes();
    let quote = &sent[Ethernet2Header::LEN..Ethernet2Header::LEN + 28];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );
    let mut ip = Ipv4Header::new(
        (icmp.header_len() + quote.len()) as u16,
        64,
        IpNumber::ICMP,
        input.ip.destination,
        input.ip.source,
    )
    .unwrap();
    ip.dont_fragment = false;
    ip.identification = 0;
    ip.dscp = IpDscp::try_new(0xc0 >> 2).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = Vec::new();
    Ethernet2Header {
        source: input.eth.destination,
        destination: input.eth.source,
        ether_type: EtherType::IPV4,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    icmp.write(&mut out).unwrap();
    out.extend_from_slice(quote);
    out
}

/// `f` with a payload making its IPv4 packet `ip_len` bytes long.
pub fn big(mut f: Frame, ip_len: usize) -> Frame {
    let headers = 20 + if matches!(f.l4, L4::Tcp(_)) { 20 } else { 8 };
    f.payload = (0..ip_len - headers).map(|i| i as u8).collect();
    f
}
