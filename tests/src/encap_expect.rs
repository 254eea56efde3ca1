//! What the encapsulation fixtures expect, built independently with
//! etherparse: the DNATed inner packet, its IPIP or VXLAN outer frame, and
//! the pods' encapsulated replies (shared by tests/tests/xdp_encap.rs and
//! xdp_mtu.rs).

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Ethernet2Header, Ipv4Header};
use lb_common::hash::flow_hash;

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

/// The outer header fields copied from the inner packet: identification,
/// DF, DSCP/ECN.
pub fn copy_inner_fields(outer: &mut Ipv4Header, inner: &Frame) {
    outer.identification = inner.ip.identification;
    outer.dont_fragment = inner.ip.dont_fragment;
    outer.dscp = inner.ip.dscp;
    outer.ecn = inner.ip.ecn;
}

/// IPIP frame from the load balancer to `node` (`macs`: source,
/// destination) carrying `inner`.
pub fn expect_ipip(macs: (Mac, Mac), node: Ipv4Addr, inner: &Frame) -> Vec<u8> {
    let inner_ip = ipip::inner_packet(inner);
    let mut outer = ipip::outer_header(TUNNEL_SOURCE, node, inner_ip.len());
    copy_inner_fields(&mut outer, inner);
    ipip::frame(macs.0, macs.1, &outer, &inner_ip)
}

/// The UDP source port the load balancer must use for packets of the
/// connection that arrived as `input`.
pub fn expected_src_port(input: &Frame, proto: u8) -> u16 {
    let (sport, dport) = match &input.l4 {
        crate::packets::L4::Tcp(t) => (t.source_port, t.destination_port),
        crate::packets::L4::Udp(u) => (u.source_port, u.destination_port),
    };
    let h = flow_hash(
        u32::from_ne_bytes(input.ip.source),
        u32::from_ne_bytes(input.ip.destination),
        sport.to_be(),
        dport.to_be(),
        proto,
    );
    vxlan::linux_src_port(h)
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

/// The pod's reply to the connection `input` started, as the pod sends it.
pub fn pod_reply(input: &Frame, backend: SocketAddrV4) -> Frame {
    input.clone().addrs(backend, CLIENT)
}

pub fn ipip_reply(reply: &Frame) -> Vec<u8> {
    ipip::encapsulate(
        NODE_IPIP_MAC,
        BACKEND_IF_MAC,
        NODE_IPIP,
        TUNNEL_SOURCE,
        &ipip::inner_packet(reply),
    )
}

pub fn vxlan_reply(reply: &Frame, dst_port: u16) -> Vec<u8> {
    vxlan::encapsulate(
        NODE_VXLAN_MAC,
        BACKEND_IF_MAC,
        NODE_VXLAN,
        TUNNEL_SOURCE,
        50123,
        dst_port,
        VNI,
        &reply.clone().macs(NODE_VTEP_MAC, LB_VTEP_MAC).bytes(),
    )
}
