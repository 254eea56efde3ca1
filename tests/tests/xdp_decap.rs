//! Packet fixtures of the node-side IPIP decapsulation program
//! (`ferrolb_decap`): IPIP to a decapsulation address leaves as its inner
//! packet behind the same Ethernet header; everything else passes untouched;
//! malformed IPIP to a decapsulation address is dropped; all counted.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{IpFragOffset, Ipv4Options};
use lb_common::{DecapStat, maps::PROG_DECAP};
use tests::{
    dnat_fixture::{XDP_DROP, XDP_PASS},
    ipip::{self, encapsulate, inner_packet, outer_header},
    packets::{Frame, Mac, arp_request, assert_checksums_valid},
    xdp::{Harness, Run},
};

const LB_MAC: Mac = [2, 0, 0, 0, 9, 1];
const NODE_MAC: Mac = [2, 0, 0, 0, 9, 2];
const LB: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
const NODE: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 14);
const OTHER_NODE: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 15);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 2), 40000);
const POD: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 244, 1, 2), 8080);
const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 10), 80);
/// Ingress interface of the runs: loopback exists in every namespace.
const LO: u32 = 1;

fn harness() -> Harness {
    let mut h = Harness::load().unwrap();
    h.add_decap_addr(NODE).unwrap();
    h
}

fn run(h: &Harness, frame: &[u8]) -> Run {
    h.run_prog(PROG_DECAP, frame, LO).unwrap()
}

/// The frame the node receives for `inner` sent through the tunnel.
fn tunnelled(inner: &Frame, outer_dst: Ipv4Addr) -> Vec<u8> {
    encapsulate(LB_MAC, NODE_MAC, LB, outer_dst, &inner_packet(inner))
}

fn assert_decapsulated(h: &Harness, inner: &Frame) {
    let before = h.decap_stat(DecapStat::Decapsulated).unwrap();
    let out = run(h, &tunnelled(inner, NODE));
    assert_eq!(out.action, XDP_PASS);
    // The inner packet byte for byte, behind the outer frame's MACs.
    assert_eq!(out.output, inner.bytes());
    assert_checksums_valid(&out.output);
    assert_eq!(
        h.decap_stat(DecapStat::Decapsulated).unwrap(),
        before + 1,
        "counted"
    );
}

fn assert_untouched(h: &Harness, frame: &[u8], stat: DecapStat) {
    let before = h.decap_stat(stat).unwrap();
    let out = run(h, frame);
    assert_eq!(out.action, XDP_PASS, "{stat:?}");
    assert_eq!(
        out.output, frame,
        "{stat:?}: passed frames are not modified"
    );
    assert_eq!(h.decap_stat(stat).unwrap(), before + 1, "{stat:?} counted");
    assert_eq!(h.decap_stat(DecapStat::Decapsulated).unwrap(), 0);
}

fn assert_dropped(h: &Harness, frame: &[u8], stat: DecapStat) {
    let before = h.decap_stat(stat).unwrap();
    let out = run(h, frame);
    assert_eq!(out.action, XDP_DROP, "{stat:?}");
    assert_eq!(h.decap_stat(stat).unwrap(), before + 1, "{stat:?} counted");
    assert_eq!(h.decap_stat(DecapStat::Decapsulated).unwrap(), 0);
}

fn udp_to_pod() -> Frame {
    Frame::udp(LB_MAC, NODE_MAC, CLIENT, POD)
}

#[test]
fn ipip_tcp_and_udp_to_a_decap_address_leave_as_the_inner_packet() {
    let h = harness();
    assert_decapsulated(&h, &Frame::tcp(LB_MAC, NODE_MAC, CLIENT, POD).syn());
    assert_decapsulated(&h, &Frame::tcp(LB_MAC, NODE_MAC, CLIENT, POD));
    assert_decapsulated(&h, &udp_to_pod());
    assert_decapsulated(&h, &udp_to_pod().no_udp_checksum());
    assert_eq!(h.decap_stat(DecapStat::Decapsulated).unwrap(), 4);
}

/// DSR: the inner destination is the VIP, kept as it is.
#[test]
fn dsr_packet_keeps_the_vip_as_destination() {
    let h = harness();
    assert_decapsulated(&h, &Frame::tcp(LB_MAC, NODE_MAC, CLIENT, VIP).syn());
    assert_decapsulated(&h, &Frame::udp(LB_MAC, NODE_MAC, CLIENT, VIP));
}

/// Ethernet padding after the outer datagram stays after the inner one (the
/// stack trims it by the IP total length).
#[test]
fn trailing_padding_is_allowed() {
    let h = harness();
    let mut frame = tunnelled(&udp_to_pod(), NODE);
    frame.extend_from_slice(&[0; 6]);
    let out = run(&h, &frame);
    assert_eq!(out.action, XDP_PASS);
    let mut expected = udp_to_pod().bytes();
    expected.extend_from_slice(&[0; 6]);
    assert_eq!(out.output, expected);
    assert_eq!(h.decap_stat(DecapStat::Decapsulated).unwrap(), 1);
}

#[test]
fn ipip_to_another_address_passes_untouched() {
    let h = harness();
    assert_untouched(
        &h,
        &tunnelled(&udp_to_pod(), OTHER_NODE),
        DecapStat::PassNotOurs,
    );
    // Without any decapsulation address, nothing is ours.
    let empty = Harness::load().unwrap();
    assert_untouched(
        &empty,
        &tunnelled(&udp_to_pod(), NODE),
        DecapStat::PassNotOurs,
    );
}

#[test]
fn non_ipip_passes_untouched() {
    let h = harness();
    let to_node = SocketAddrV4::new(NODE, 22);
    assert_untouched(
        &h,
        &Frame::tcp(LB_MAC, NODE_MAC, CLIENT, to_node).bytes(),
        DecapStat::PassNotIpip,
    );
    assert_untouched(
        &h,
        &Frame::udp(LB_MAC, NODE_MAC, CLIENT, to_node).bytes(),
        DecapStat::PassNotIpip,
    );
    assert_untouched(
        &h,
        &arp_request(LB_MAC, LB.octets(), NODE.octets()),
        DecapStat::PassNotIpip,
    );
    // Truncated IPv4 header: cannot be told to be IPIP.
    let frame = tunnelled(&udp_to_pod(), NODE);
    assert_untouched(&h, &frame[..30], DecapStat::PassNotIpip);
}

#[test]
fn outer_header_with_options_is_dropped() {
    let h = harness();
    let inner = inner_packet(&udp_to_pod());
    let mut outer = outer_header(LB, NODE, 0);
    outer.options = Ipv4Options::try_from(&[1u8, 1, 1, 1][..]).unwrap(); // 4 NOPs
    outer.set_payload_len(inner.len()).unwrap();
    let frame = ipip::frame(LB_MAC, NODE_MAC, &outer, &inner);
    assert_dropped(&h, &frame, DecapStat::DropIpOptions);
}

#[test]
fn outer_fragments_are_dropped() {
    let h = harness();
    let inner = inner_packet(&udp_to_pod());
    let mut first = outer_header(LB, NODE, inner.len());
    first.more_fragments = true;
    assert_dropped(
        &h,
        &ipip::frame(LB_MAC, NODE_MAC, &first, &inner),
        DecapStat::DropFragment,
    );
    let mut later = outer_header(LB, NODE, inner.len());
    later.fragment_offset = IpFragOffset::try_new(8).unwrap();
    assert_dropped(
        &h,
        &ipip::frame(LB_MAC, NODE_MAC, &later, &inner),
        DecapStat::DropFragment,
    );
}

#[test]
fn truncated_inner_packets_are_dropped() {
    let h = harness();
    let inner = inner_packet(&udp_to_pod());
    // Fewer bytes than an inner IPv4 header, outer length saying so.
    assert_dropped(
        &h,
        &encapsulate(LB_MAC, NODE_MAC, LB, NODE, &inner[..12]),
        DecapStat::DropMalformed,
    );
    // The outer length claims the whole inner packet, the frame ends early.
    let frame = ipip::frame(
        LB_MAC,
        NODE_MAC,
        &outer_header(LB, NODE, inner.len()),
        &inner,
    );
    assert_dropped(&h, &frame[..frame.len() - 4], DecapStat::DropMalformed);
    // Frame ends inside the inner header.
    assert_dropped(&h, &frame[..14 + 20 + 10], DecapStat::DropMalformed);
}

#[test]
fn inner_packet_that_is_not_ipv4_is_dropped() {
    let h = harness();
    let mut inner = vec![0u8; 48];
    inner[0] = 0x60; // IPv6 version nibble
    assert_dropped(
        &h,
        &encapsulate(LB_MAC, NODE_MAC, LB, NODE, &inner),
        DecapStat::DropInnerNotIpv4,
    );
}

#[test]
fn outer_total_length_mismatch_is_dropped() {
    let h = harness();
    let inner = inner_packet(&udp_to_pod());
    // Longer than the frame.
    let mut long = outer_header(LB, NODE, inner.len());
    long.total_len += 8;
    assert_dropped(
        &h,
        &ipip::frame(LB_MAC, NODE_MAC, &long, &inner),
        DecapStat::DropMalformed,
    );
    // Shorter than the inner datagram it carries.
    let mut short = outer_header(LB, NODE, inner.len());
    short.total_len -= 4;
    assert_dropped(
        &h,
        &ipip::frame(LB_MAC, NODE_MAC, &short, &inner),
        DecapStat::DropMalformed,
    );
    // Inner header length beyond the inner total length.
    let mut bad_inner = inner_packet(&Frame::tcp(LB_MAC, NODE_MAC, CLIENT, POD));
    bad_inner[0] = 0x4f;
    bad_inner[2..4].copy_from_slice(&40u16.to_be_bytes());
    assert_dropped(
        &h,
        &encapsulate(LB_MAC, NODE_MAC, LB, NODE, &bad_inner[..40]),
        DecapStat::DropMalformed,
    );
}

#[test]
fn outer_header_with_a_bad_checksum_is_dropped() {
    let h = harness();
    let mut frame = tunnelled(&udp_to_pod(), NODE);
    frame[14 + 10] ^= 0xff;
    assert_dropped(&h, &frame, DecapStat::DropBadChecksum);
}
