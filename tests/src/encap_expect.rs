//! What the encapsulation fixtures expect, built independently with
//! etherparse: the DNATed inner packet and its IPIP or VXLAN outer frame
//! (shared by tests/tests/xdp_encap.rs, xdp_mtu.rs and xdp_pmtu.rs; the pods'
//! encapsulated replies are built in `encap_fixture`).

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Ethernet2Header, Ipv4Header};

use crate::{
    dnat_fixture::CLIENT,
    encap_fixture::*,
    fixture_net::BACKEND_IF_MAC,
    ipip,
    packets::{Frame, Mac, assert_checksums_valid},
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

/// What the node of the fixture's IPIP or VXLAN pod `pod` receives for a
/// client's TCP `input` whose DNATed form is `inner`: encapsulated as the
/// pod's route says.
pub fn expect_tcp_to_pod(pod: Ipv4Addr, input: &Frame, inner: &Frame) -> Vec<u8> {
    if pod == POD_VXLAN {
        expect_vxlan(input, lb_common::proto::TCP, inner)
    } else {
        expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, inner)
    }
}

/// Where the inner packet starts in a frame encapsulated toward `pod`'s
/// node (`assert_encapsulated`'s `inner_off`).
pub fn inner_offset(pod: Ipv4Addr) -> usize {
    if pod == POD_VXLAN {
        VXLAN_INNER
    } else {
        IPIP_INNER
    }
}
