//! Packet fixtures: ICMP errors about balanced connections reach the
//! connection's other end, translated (quote, addresses, every checksum);
//! all other ICMP passes untouched.
//!
//! Each test first makes a connection (a client packet, and for errors
//! about replies a backend reply), then sends the error about one of the
//! packets the balancer sent: `sent` below is that packet as the balancer
//! produced it, `original` the packet it was produced from. The expected
//! error quotes `original` (with the TTL the quoted packet had): the party
//! the error is for knows only that one.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{
    IcmpEchoHeader, Icmpv4Type,
    icmpv4::{DestUnreachableHeader, ParameterProblemHeader, TimeExceededCode},
};
use lb_common::{GlobalStat, hash::spread_hash};
use tests::{
    dnat_fixture::*,
    encap_fixture::{
        EncapFixture, LB_VTEP_MAC, NODE_IPIP, NODE_IPIP_MAC, NODE_VTEP_MAC, NODE_VXLAN,
        NODE_VXLAN_MAC, POD_IPIP, POD_VXLAN, TUNNEL_SOURCE, VNI,
    },
    fixture_net::{BACKEND_IF_MAC, BACKEND1_MAC, CLIENT_IF_MAC, CLIENT_MAC},
    ipip,
    packets::{Frame, assert_icmp_checksums_valid, icmp_frame, quote},
    vxlan,
    xdp::{Run, ip_be},
};

/// A router on the backend side, and one on the client side.
const BACKEND_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 254);
const CLIENT_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 254);
/// What Linux quotes at most: 576 bytes of error, so whole small packets.
const WHOLE: usize = 576 - 28;
/// RFC 792's minimum: the IPv4 header and 8 bytes of TCP/UDP.
const MINIMAL: usize = 28;

fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: mtu,
    })
}

fn port_unreachable() -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port)
}

fn ttl_exceeded() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
}

/// `frame` with the TTL a packet the balancer transmitted has.
fn routed(frame: &Frame) -> Frame {
    let ttl = frame.ip.time_to_live - 1;
    frame.clone().ttl(ttl)
}

fn assert_relayed(run: &Run, action: u32, expected: &[u8]) {
    assert_eq!(run.action, action, "XDP action");
    assert_eq!(run.output, expected, "output frame");
    assert_icmp_checksums_valid(&run.output);
}

fn assert_untouched(run: &Run, input: &[u8]) {
    assert_eq!(run.action, XDP_PASS, "XDP action");
    assert_eq!(run.output, input, "output frame");
}

#[test]
fn port_unreachable_from_the_backend_reaches_the_client_from_the_vip() {
    let fx = DnatFixture::new().unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, UDP_BACKEND1);

    let error = icmp_frame(
        (BACKEND1_MAC, BACKEND_IF_MAC),
        *UDP_BACKEND1.ip(),
        *CLIENT.ip(),
        64,
        port_unreachable(),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
    let expected = icmp_frame(
        (CLIENT_IF_MAC, CLIENT_MAC),
        VIP,
        *CLIENT.ip(),
        63,
        port_unreachable(),
        &quote(&routed(&original), WHOLE),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 0);
}

#[test]
fn frag_needed_from_a_backend_side_router_reaches_the_client_from_the_router() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let original = client_tcp(TCP_VIP);
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, BACKEND1);

    // The whole segment is quoted: its TCP checksum is updated too.
    let error = icmp_frame(
        (BACKEND1_MAC, BACKEND_IF_MAC),
        BACKEND_ROUTER,
        *CLIENT.ip(),
        64,
        frag_needed(1400),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
    let expected = icmp_frame(
        (CLIENT_IF_MAC, CLIENT_MAC),
        BACKEND_ROUTER,
        *CLIENT.ip(),
        63,
        frag_needed(1400),
        &quote(&routed(&original), WHOLE),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 1);
}

#[test]
fn minimal_quote_of_tcp_is_translated_without_its_checksum() {
    let fx = DnatFixture::new().unwrap();
    let original = client_tcp(TCP_VIP).syn();
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, BACKEND1);

    // 8 bytes of TCP: addresses, ports and the quoted IPv4 checksum change;
    // the TCP checksum is not quoted (the expected quote is cut the same).
    let error = icmp_frame(
        (BACKEND1_MAC, BACKEND_IF_MAC),
        *BACKEND1.ip(),
        *CLIENT.ip(),
        64,
        ttl_exceeded(),
        &quote(&sent, MINIMAL),
    );
    let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
    let expected = icmp_frame(
        (CLIENT_IF_MAC, CLIENT_MAC),
        VIP,
        *CLIENT.ip(),
        63,
        ttl_exceeded(),
        &quote(&routed(&original), MINIMAL),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
}

#[test]
fn frag_needed_from_a_client_side_router_reaches_the_backend() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let original = backend_reply(client_tcp(TCP_VIP), BACKEND1);
    fx.from_backend(&original).unwrap();
    let sent = expect_reverse_natted(&original, TCP_VIP);

    let error = icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        CLIENT_ROUTER,
        VIP,
        64,
        frag_needed(1280),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
    // The pod learns the path MTU toward the client for its own packet.
    let expected = icmp_frame(
        (BACKEND_IF_MAC, BACKEND1_MAC),
        CLIENT_ROUTER,
        *BACKEND1.ip(),
        63,
        frag_needed(1280),
        &quote(&routed(&original), WHOLE),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 0);
}

#[test]
fn port_unreachable_from_the_client_reaches_the_backend_from_the_client() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_udp(UDP_VIP)).unwrap();
    let original = backend_reply(client_udp(UDP_VIP), UDP_BACKEND1);
    fx.from_backend(&original).unwrap();
    let sent = expect_reverse_natted(&original, UDP_VIP);

    let error = icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        *CLIENT.ip(),
        VIP,
        64,
        port_unreachable(),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
    let expected = icmp_frame(
        (BACKEND_IF_MAC, BACKEND1_MAC),
        *CLIENT.ip(),
        *UDP_BACKEND1.ip(),
        63,
        port_unreachable(),
        &quote(&routed(&original), WHOLE),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);
}

#[test]
fn quoted_udp_without_checksum_keeps_zero_checksum() {
    let fx = DnatFixture::new().unwrap();
    let original = client_udp(UDP_VIP).no_udp_checksum();
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, UDP_BACKEND1);

    let problem = Icmpv4Type::ParameterProblem(ParameterProblemHeader::PointerIndicatesError(8));
    let error = icmp_frame(
        (BACKEND1_MAC, BACKEND_IF_MAC),
        *UDP_BACKEND1.ip(),
        *CLIENT.ip(),
        64,
        problem.clone(),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
    let expected = icmp_frame(
        (CLIENT_IF_MAC, CLIENT_MAC),
        VIP,
        *CLIENT.ip(),
        63,
        problem,
        &quote(&routed(&original), WHOLE),
    );
    assert_relayed(&run, XDP_REDIRECT, &expected);
    // Quoted UDP checksum: 14 + 20 + 8 + 20 + 6.
    assert_eq!(&run.output[68..70], &[0, 0]);
}

#[test]
fn error_about_a_reply_to_an_ipip_pod_is_encapsulated_to_its_node() {
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let pod = SocketAddrV4::new(POD_IPIP, tests::encap_fixture::TCP_PORT);
    // The pod's reply arrives plain here (routed back); the connection's
    // forward direction is what goes through the tunnel.
    let original = backend_reply(syn.clone(), pod);
    fx.from_nodes(&original.bytes()).unwrap();
    let sent = expect_reverse_natted(&original, TCP_VIP);

    let error = icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        CLIENT_ROUTER,
        VIP,
        64,
        frag_needed(1280),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
    // The error, translated for the pod and with its TTL decremented (routed
    // into the tunnel), inside IPIP to the pod's node.
    let inner = icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        CLIENT_ROUTER,
        POD_IPIP,
        63,
        frag_needed(1280),
        &quote(&routed(&original), WHOLE),
    );
    let inner_ip = &inner[14..];
    let mut outer = ipip::outer_header(TUNNEL_SOURCE, NODE_IPIP, inner_ip.len());
    outer.identification = 0x4321;
    outer.dont_fragment = true;
    let expected = ipip::frame(BACKEND_IF_MAC, NODE_IPIP_MAC, &outer, inner_ip);
    assert_eq!(run.action, XDP_REDIRECT, "XDP action");
    assert_eq!(run.output, expected, "output frame");
    let mut inner_frame = run.output[..14].to_vec();
    inner_frame.extend_from_slice(&run.output[34..]);
    assert_icmp_checksums_valid(&inner_frame);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 2);
}

#[test]
fn error_about_a_reply_to_a_vxlan_pod_is_encapsulated_with_the_connections_source_port() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let pod = SocketAddrV4::new(POD_VXLAN, tests::encap_fixture::TCP_PORT);
    let original = backend_reply(syn.clone(), pod);
    fx.from_nodes(&original.bytes()).unwrap();
    let sent = expect_reverse_natted(&original, TCP_VIP);

    let error = icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        CLIENT_ROUTER,
        VIP,
        64,
        frag_needed(1280),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
    // Inner frame: from the balancer's VTEP to the node's; the outer UDP
    // source port is the connection's (hash of client -> VIP as received).
    let inner = icmp_frame(
        (LB_VTEP_MAC, NODE_VTEP_MAC),
        CLIENT_ROUTER,
        POD_VXLAN,
        63,
        frag_needed(1280),
        &quote(&routed(&original), WHOLE),
    );
    let mut outer = vxlan::outer_header(TUNNEL_SOURCE, NODE_VXLAN, inner.len());
    outer.identification = 0x4321;
    outer.dont_fragment = true;
    let port = vxlan::linux_src_port(spread_hash(
        ip_be(*CLIENT.ip()),
        ip_be(VIP),
        CLIENT.port().to_be(),
        TCP_VIP.port().to_be(),
        lb_common::proto::TCP,
    ));
    let expected = vxlan::frame(
        BACKEND_IF_MAC,
        NODE_VXLAN_MAC,
        &outer,
        port,
        vxlan::FLANNEL_PORT,
        None,
        vxlan::header(0x08, VNI),
        &inner,
    );
    assert_eq!(run.action, XDP_REDIRECT, "XDP action");
    assert_eq!(run.output, expected, "output frame");
    assert_icmp_checksums_valid(&run.output[50..]);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);
}

/// The pod's port unreachable for the datagram `sent` (what the balancer
/// delivered to it), as the pod sends it (MACs: the node's inner ones).
fn pod_port_unreachable(pod: Ipv4Addr, sent: &Frame) -> Vec<u8> {
    icmp_frame(
        (NODE_VTEP_MAC, LB_VTEP_MAC),
        pod,
        *CLIENT.ip(),
        64,
        port_unreachable(),
        &quote(sent, WHOLE),
    )
}

/// What the client must get for it: from the VIP, quoting its own datagram.
fn client_port_unreachable(original: &Frame) -> Vec<u8> {
    icmp_frame(
        (CLIENT_IF_MAC, CLIENT_MAC),
        VIP,
        *CLIENT.ip(),
        63,
        port_unreachable(),
        &quote(&routed(original), WHOLE),
    )
}

#[test]
fn port_unreachable_from_a_pod_behind_ipip_is_decapsulated_and_reaches_the_client() {
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let pod = SocketAddrV4::new(POD_IPIP, tests::encap_fixture::UDP_PORT);
    let sent = routed(&original).addrs(CLIENT, pod);

    let error = pod_port_unreachable(POD_IPIP, &sent);
    let encapsulated = ipip::encapsulate(
        NODE_IPIP_MAC,
        BACKEND_IF_MAC,
        NODE_IPIP,
        TUNNEL_SOURCE,
        &error[14..],
    );
    let run = fx.from_nodes(&encapsulated).unwrap();
    assert_relayed(&run, XDP_REDIRECT, &client_port_unreachable(&original));
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 1);
}

#[test]
fn port_unreachable_from_a_pod_behind_vxlan_is_decapsulated_and_reaches_the_client() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let pod = SocketAddrV4::new(POD_VXLAN, tests::encap_fixture::UDP_PORT);
    let sent = routed(&original).addrs(CLIENT, pod);

    let encapsulated = vxlan::encapsulate(
        NODE_VXLAN_MAC,
        BACKEND_IF_MAC,
        NODE_VXLAN,
        TUNNEL_SOURCE,
        50123,
        vxlan::FLANNEL_PORT,
        VNI,
        &pod_port_unreachable(POD_VXLAN, &sent),
    );
    let run = fx.from_nodes(&encapsulated).unwrap();
    assert_relayed(&run, XDP_REDIRECT, &client_port_unreachable(&original));
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 1);
}

#[test]
fn encapsulated_icmp_that_is_not_ours_passes_untouched() {
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let pod = SocketAddrV4::new(POD_IPIP, tests::encap_fixture::UDP_PORT);
    let stranger = routed(&original).addrs(SocketAddrV4::new(*CLIENT.ip(), 40001), pod);
    let echo = icmp_frame(
        (NODE_VTEP_MAC, LB_VTEP_MAC),
        POD_IPIP,
        *CLIENT.ip(),
        64,
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 1, seq: 1 }),
        b"ping",
    );
    for inner in [pod_port_unreachable(POD_IPIP, &stranger), echo] {
        let encapsulated = ipip::encapsulate(
            NODE_IPIP_MAC,
            BACKEND_IF_MAC,
            NODE_IPIP,
            TUNNEL_SOURCE,
            &inner[14..],
        );
        let run = fx.from_nodes(&encapsulated).unwrap();
        assert_untouched(&run, &encapsulated);
    }
    assert_eq!(fx.lb.global(GlobalStat::PassEncapNotOurs).unwrap(), 2);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
}

#[test]
fn echo_requests_pass_untouched() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_udp(UDP_VIP)).unwrap();
    let echo = Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 7, seq: 1 });
    for dst in [VIP, *UDP_BACKEND1.ip()] {
        let ping = icmp_frame(
            (CLIENT_MAC, CLIENT_IF_MAC),
            *CLIENT.ip(),
            dst,
            64,
            echo.clone(),
            b"ping payload",
        );
        let run = fx.lb.run(&ping, fx.net.client_ifindex).unwrap();
        assert_untouched(&run, &ping);
    }
    assert_eq!(fx.lb.global(GlobalStat::PassNotOurs).unwrap(), 2);
}

#[test]
fn errors_about_unknown_flows_pass_untouched() {
    let fx = DnatFixture::new().unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, UDP_BACKEND1);

    let other_client = SocketAddrV4::new(*CLIENT.ip(), 40001);
    let stranger = sent.clone().addrs(other_client, UDP_BACKEND1);
    let cases = [
        // No connection for this quote.
        icmp_frame(
            (BACKEND1_MAC, BACKEND_IF_MAC),
            *UDP_BACKEND1.ip(),
            *CLIENT.ip(),
            64,
            port_unreachable(),
            &quote(&stranger, WHOLE),
        ),
        // A packet of the connection quoted, but the error is not addressed
        // to its source.
        icmp_frame(
            (BACKEND1_MAC, BACKEND_IF_MAC),
            *UDP_BACKEND1.ip(),
            Ipv4Addr::new(10, 0, 1, 3),
            64,
            port_unreachable(),
            &quote(&sent, WHOLE),
        ),
        // The client's own packet quoted (the balancer never sent it).
        icmp_frame(
            (BACKEND1_MAC, BACKEND_IF_MAC),
            *UDP_BACKEND1.ip(),
            *CLIENT.ip(),
            64,
            port_unreachable(),
            &quote(&original, WHOLE),
        ),
    ];
    for error in cases {
        let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
        assert_untouched(&run, &error);
    }
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 0);
}

#[test]
fn truncated_or_odd_quotes_are_never_forwarded() {
    let fx = DnatFixture::new().unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, UDP_BACKEND1);
    let error_with = |q: &[u8]| {
        icmp_frame(
            (BACKEND1_MAC, BACKEND_IF_MAC),
            *UDP_BACKEND1.ip(),
            *CLIENT.ip(),
            64,
            port_unreachable(),
            q,
        )
    };
    let full = quote(&sent, WHOLE);

    // Quote cut inside the UDP header (ports there, checksum not).
    let short = error_with(&full[..24]);
    // The same, padded (Ethernet padding) to look complete: the datagram's
    // length is what counts.
    let mut padded = short.clone();
    padded.extend_from_slice(&full[24..MINIMAL]);
    // Only the quoted IPv4 header, and nothing at all.
    let header_only = error_with(&full[..20]);
    let empty = error_with(&[]);
    // A quoted header with options (the balancer never sends one), and a
    // quoted non-first fragment.
    let mut options = full.clone();
    options[0] = 0x46;
    let mut fragment = full.clone();
    fragment[6..8].copy_from_slice(&[0, 0x10]);
    for error in [
        short,
        padded,
        header_only,
        empty,
        error_with(&options),
        error_with(&fragment),
    ] {
        let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
        assert_untouched(&run, &error);
    }
    assert_eq!(fx.lb.global(GlobalStat::IcmpToClient).unwrap(), 0);
}

#[test]
fn error_with_expiring_ttl_goes_to_the_stack_untouched() {
    let fx = DnatFixture::new().unwrap();
    let original = client_udp(UDP_VIP);
    fx.from_client(&original).unwrap();
    let sent = expect_forwarded(&original, UDP_BACKEND1);
    let error = icmp_frame(
        (BACKEND1_MAC, BACKEND_IF_MAC),
        *UDP_BACKEND1.ip(),
        *CLIENT.ip(),
        1,
        port_unreachable(),
        &quote(&sent, WHOLE),
    );
    let run = fx.lb.run(&error, fx.net.backend_ifindex).unwrap();
    assert_untouched(&run, &error);
    assert_eq!(fx.lb.global(GlobalStat::PassTtlExceeded).unwrap(), 1);
}
