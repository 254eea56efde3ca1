//! Packet fixtures: traffic that is not balanced — passed to the stack or
//! dropped, and counted.

use std::net::{Ipv4Addr, SocketAddrV4};

use lb_common::{GlobalStat, proto, service::select};
use tests::{
    dnat_fixture::*,
    fixture_net::{CLIENT_IF_MAC, CLIENT_MAC},
    packets::{Frame, arp_request, assert_checksums_valid},
    xdp::TestService,
};

const OTHER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 22);

fn assert_passed_untouched(fx: &DnatFixture, frame: &[u8]) {
    let run = fx.lb.run(frame, fx.net.client_ifindex).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, frame, "passed frames are not modified");
}

fn assert_dropped(fx: &DnatFixture, frame: &[u8], stat: GlobalStat) {
    let before = fx.lb.global(stat).unwrap();
    let run = fx.lb.run(frame, fx.net.client_ifindex).unwrap();
    assert_eq!(run.action, XDP_DROP, "{stat:?}");
    assert_eq!(fx.lb.global(stat).unwrap(), before + 1, "{stat:?} counted");
}

#[test]
fn non_vip_tcp_and_udp_pass() {
    let fx = DnatFixture::new().unwrap();
    assert_passed_untouched(&fx, &client_tcp(OTHER).syn().bytes());
    assert_passed_untouched(&fx, &client_udp(OTHER).bytes());
    assert_eq!(fx.lb.global(GlobalStat::PassNotOurs).unwrap(), 2);
    assert!(fx.lb.conntrack().unwrap().is_empty());
}

#[test]
fn arp_passes() {
    let fx = DnatFixture::new().unwrap();
    assert_passed_untouched(&fx, &arp_request(CLIENT_MAC, [10, 0, 1, 2], VIP.octets()));
}

#[test]
fn icmp_to_vip_passes() {
    let fx = DnatFixture::new().unwrap();
    let mut frame = client_udp(TCP_VIP).bytes();
    frame[23] = 1; // protocol ICMP (checksums irrelevant: not parsed further)
    assert_passed_untouched(&fx, &frame);
}

#[test]
fn known_vip_with_unknown_port_is_dropped() {
    let fx = DnatFixture::new().unwrap();
    let frame = client_tcp(SocketAddrV4::new(VIP, 443)).syn().bytes();
    assert_dropped(&fx, &frame, GlobalStat::DropUnknownPort);
    // TCP port 53 is not a service either (only UDP 53 is).
    let frame = client_tcp(UDP_VIP).syn().bytes();
    assert_dropped(&fx, &frame, GlobalStat::DropUnknownPort);
}

/// Sets the IPv4 flags/fragment-offset field and fixes the header checksum.
fn with_frag_field(frame: &Frame, more_fragments: bool, offset_units: u16) -> Vec<u8> {
    let mut f = frame.clone();
    f.ip.more_fragments = more_fragments;
    f.ip.dont_fragment = false;
    f.ip.fragment_offset = etherparse::IpFragOffset::try_new(offset_units).unwrap();
    f.bytes()
}

#[test]
fn fragments_to_a_vip_are_dropped_others_pass() {
    let fx = DnatFixture::new().unwrap();
    let first = with_frag_field(&client_udp(UDP_VIP), true, 0);
    assert_dropped(&fx, &first, GlobalStat::DropFragment);
    let later = with_frag_field(&client_udp(UDP_VIP), false, 185);
    assert_dropped(&fx, &later, GlobalStat::DropFragment);
    let not_ours = with_frag_field(&client_udp(OTHER), true, 0);
    assert_passed_untouched(&fx, &not_ours);
}

fn with_ip_options(frame: &Frame) -> Vec<u8> {
    let mut f = frame.clone();
    f.ip.options = etherparse::Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).unwrap(); // NOP NOP NOP EOL
    f.bytes()
}

#[test]
fn ip_options_to_a_vip_are_dropped_others_pass() {
    let fx = DnatFixture::new().unwrap();
    let frame = with_ip_options(&client_tcp(TCP_VIP).syn());
    assert_eq!(frame[14], 0x46, "IHL 6");
    assert_dropped(&fx, &frame, GlobalStat::DropIpOptions);
    assert_passed_untouched(&fx, &with_ip_options(&client_tcp(OTHER).syn()));
}

#[test]
fn bare_ethernet_header() {
    // The kernel hands XDP no frame shorter than an Ethernet header
    // (BPF_PROG_TEST_RUN refuses one too), so the shortest input is a bare
    // header: IPv4 EtherType with nothing behind it is malformed, anything
    // else is not ours.
    let fx = DnatFixture::new().unwrap();
    let frame = client_tcp(TCP_VIP).syn().bytes();
    assert_dropped(&fx, &frame[..14], GlobalStat::DropMalformed);
    let mut ipv6 = frame[..14].to_vec();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_passed_untouched(&fx, &ipv6);
}

#[test]
fn truncated_or_malformed_ipv4_is_dropped() {
    let fx = DnatFixture::new().unwrap();
    let frame = client_tcp(TCP_VIP).syn().bytes();
    // Header cut short.
    assert_dropped(&fx, &frame[..14 + 19], GlobalStat::DropMalformed);
    // Total length larger than the frame.
    assert_dropped(&fx, &frame[..frame.len() - 1], GlobalStat::DropMalformed);
    // IHL below 5.
    let mut bad = frame.clone();
    bad[14] = 0x44;
    assert_dropped(&fx, &bad, GlobalStat::DropMalformed);
    // Version 6 in an IPv4 EtherType.
    let mut bad = frame.clone();
    bad[14] = 0x65;
    assert_dropped(&fx, &bad, GlobalStat::DropMalformed);
}

/// `frame` cut to `l4_len` bytes of L4 header, IPv4 total length and
/// checksum adjusted so only the L4 header is short.
fn with_short_l4(frame: &Frame, l4_len: usize) -> Vec<u8> {
    let mut f = frame.clone();
    f.payload.clear();
    let full = f.bytes();
    let mut ip = f.ip.clone();
    ip.total_len = (20 + l4_len) as u16;
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = full[..14].to_vec();
    ip.write(&mut out).unwrap();
    out.extend_from_slice(&full[34..34 + l4_len]);
    out
}

#[test]
fn truncated_tcp_and_udp_to_a_vip_are_dropped() {
    let fx = DnatFixture::new().unwrap();
    let tcp = with_short_l4(&client_tcp(TCP_VIP).syn(), 19);
    assert_dropped(&fx, &tcp, GlobalStat::DropMalformed);
    let udp = with_short_l4(&client_udp(UDP_VIP), 7);
    assert_dropped(&fx, &udp, GlobalStat::DropMalformed);
    // Short L4 to other hosts: not ours.
    assert_passed_untouched(&fx, &with_short_l4(&client_tcp(OTHER), 19));
    assert!(fx.lb.conntrack().unwrap().is_empty());
}

#[test]
fn frame_padding_beyond_ip_total_length_is_fine() {
    let fx = DnatFixture::new().unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let mut padded = syn.bytes();
    padded.extend_from_slice(&[0; 6]); // Ethernet minimum-size padding
    let run = fx.lb.run(&padded, fx.net.client_ifindex).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    let mut expected = expect_forwarded(&syn, BACKEND1).bytes();
    expected.extend_from_slice(&[0; 6]);
    assert_eq!(run.output, expected);
}

#[test]
fn service_without_backends_drops() {
    let mut fx = DnatFixture::new().unwrap();
    let empty = SocketAddrV4::new(VIP, 8443);
    fx.lb
        .add_service(&TestService {
            id: 9,
            vip: empty,
            proto: proto::TCP,
            select: select::ROUND_ROBIN,
            timeout_s: 60,
            backends: vec![],
        })
        .unwrap();
    assert_dropped(
        &fx,
        &client_tcp(empty).syn().bytes(),
        GlobalStat::DropNoBackend,
    );
}

#[test]
fn no_neighbour_hands_the_rewritten_packet_to_the_stack() {
    let mut fx = DnatFixture::new().unwrap();
    let vip = SocketAddrV4::new(VIP, 9000);
    let unresolved = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 9), 9000);
    fx.lb
        .add_service(&TestService {
            id: 11,
            vip,
            proto: proto::TCP,
            select: select::ROUND_ROBIN,
            timeout_s: 60,
            backends: vec![unresolved],
        })
        .unwrap();
    let syn = client_tcp(vip).syn();
    let run = fx.from_client(&syn).unwrap();
    assert_eq!(run.action, XDP_PASS);
    // Rewritten above L2, MACs as received (the stack must accept the
    // frame), TTL left for the stack to decrement.
    let expected = syn.clone().addrs(CLIENT, unresolved);
    assert_eq!(run.output, expected.bytes());
    assert_checksums_valid(&run.output);
    assert_eq!(fx.lb.global(GlobalStat::PassFibMiss).unwrap(), 1);
}

#[test]
fn egress_outside_the_device_map_goes_to_the_stack_unchanged_at_l2() {
    let net = tests::fixture_net::FixtureNet::enter().unwrap();
    let mut lb = tests::xdp::Harness::load().unwrap();
    // Only the client side may be redirected to.
    lb.add_tx_port(net.client_ifindex).unwrap();
    lb.add_service(&TestService {
        id: 1,
        vip: TCP_VIP,
        proto: proto::TCP,
        select: select::ROUND_ROBIN,
        timeout_s: 60,
        backends: vec![BACKEND1],
    })
    .unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = lb.run(&syn.bytes(), net.client_ifindex).unwrap();
    assert_eq!(run.action, XDP_PASS);
    let expected = syn
        .clone()
        .addrs(CLIENT, BACKEND1)
        .macs(CLIENT_MAC, CLIENT_IF_MAC);
    assert_eq!(run.output, expected.bytes());
    assert_eq!(lb.global(GlobalStat::PassNoTxPort).unwrap(), 1);
}

/// `frame` with the TCP data offset set to `words` (checksums unchanged:
/// the datapath must not get as far as checking them).
fn with_tcp_data_offset(frame: &Frame, words: u8) -> Vec<u8> {
    let mut bytes = frame.bytes();
    bytes[14 + 20 + 12] = words << 4;
    bytes
}

#[test]
fn tcp_data_offset_outside_the_segment_is_malformed() {
    let fx = DnatFixture::new().unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    assert_dropped(
        &fx,
        &with_tcp_data_offset(&syn, 4),
        GlobalStat::DropMalformed,
    );
    // 15 words = 60 bytes, more than the 20-byte segment.
    assert_dropped(
        &fx,
        &with_tcp_data_offset(&syn, 15),
        GlobalStat::DropMalformed,
    );
    assert_passed_untouched(&fx, &with_tcp_data_offset(&client_tcp(OTHER).syn(), 4));
    assert!(fx.lb.conntrack().unwrap().is_empty());
}

#[test]
fn udp_length_outside_the_datagram_is_malformed() {
    let fx = DnatFixture::new().unwrap();
    for len in [7u16, 13] {
        // 8 header + 4 payload bytes: 7 is below the header, 13 beyond.
        let mut bytes = client_udp(UDP_VIP).bytes();
        bytes[38..40].copy_from_slice(&len.to_be_bytes());
        assert_dropped(&fx, &bytes, GlobalStat::DropMalformed);
    }
    assert!(fx.lb.conntrack().unwrap().is_empty());
}
