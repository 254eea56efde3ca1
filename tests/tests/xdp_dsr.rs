//! Packet fixtures: direct server return (`mode::DSR`). The packet is not
//! rewritten: one IPIP header from the load balancer to the backend (pod)
//! goes in front of it, the inner packet keeps the client's source and the
//! VIP as destination (TTL decremented: the load balancer routes it). The
//! outer packet goes to the pod's node behind an IPIP route, is wrapped in
//! VXLAN to the node's VTEP behind a VXLAN route, and is routed to the pod
//! without a route. Only a forward connection entry is kept; the backend's
//! replies (VIP -> client) are none of the balancer's business. Setup:
//! tests/src/encap_fixture.rs and tests/src/dnat_fixture.rs.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Ethernet2Header, Ipv4Header};
use lb_common::{GlobalStat, conntrack::DIR_FORWARD, proto, service::mode};
use tests::{
    dnat_fixture::{
        BACKEND1, BACKEND2, CLIENT, DnatFixture, TCP_SERVICE_ID, TCP_VIP, UDP_VIP, XDP_DROP,
        XDP_PASS, XDP_REDIRECT, client_tcp, client_udp, expect_forwarded, syn_from,
    },
    encap_fixture::*,
    fixture_net::{BACKEND_IF_MAC, BACKEND1_MAC, BACKEND2_MAC},
    ipip,
    packets::{Frame, Mac, assert_checksums_valid, assert_icmp_checksums_valid},
    vxlan,
};

/// Offsets of the client's packet in the output: after Ethernet and one
/// IPIP header; after the VXLAN headers, the inner Ethernet header and the
/// IPIP header.
const DSR_INNER: usize = 14 + 20;
const DSR_VXLAN_INNER: usize = 14 + 20 + 8 + 8 + 14 + 20;

/// `input` as the backend must receive it inside the tunnel: unchanged but
/// for the TTL (and so the IPv4 checksum).
fn routed(input: &Frame) -> Frame {
    input.clone().ttl(input.ip.time_to_live - 1)
}

/// The IPIP header (from the load balancer's tunnel source to `backend`)
/// in front of the routed `input`.
fn ipip_header(input: &Frame, backend: Ipv4Addr) -> (Ipv4Header, Vec<u8>) {
    let inner = ipip::inner_packet(&routed(input));
    let mut outer = ipip::outer_header(TUNNEL_SOURCE, backend, inner.len());
    copy_inner_fields(&mut outer, input);
    (outer, inner)
}

/// The IPIP frame (`macs`: source, destination) to `backend` carrying the
/// routed `input`.
fn expect_dsr(macs: (Mac, Mac), backend: Ipv4Addr, input: &Frame) -> Vec<u8> {
    let (outer, inner) = ipip_header(input, backend);
    ipip::frame(macs.0, macs.1, &outer, &inner)
}

/// The VXLAN frame to the VXLAN node whose inner frame (the load balancer's
/// VTEP to the node's) is the IPIP packet to `backend` carrying `input`.
fn expect_dsr_vxlan(input: &Frame, proto: u8, backend: Ipv4Addr) -> Vec<u8> {
    let (ipip_outer, inner) = ipip_header(input, backend);
    let inner_frame = ipip::frame(LB_VTEP_MAC, NODE_VTEP_MAC, &ipip_outer, &inner);
    let mut outer = vxlan::outer_header(TUNNEL_SOURCE, NODE_VXLAN, inner_frame.len());
    copy_inner_fields(&mut outer, input);
    vxlan::frame(
        BACKEND_IF_MAC,
        NODE_VXLAN_MAC,
        &outer,
        expected_src_port(input, proto),
        vxlan::FLANNEL_PORT,
        None,
        vxlan::header(0x08, VNI),
        &inner_frame,
    )
}

/// Asserts the action and the exact output, every IPv4 header checksum
/// valid (the outer ones at 14 and, for VXLAN, at 64) and the client's
/// packet at `inner_off` intact: checksums valid, the VIP its destination.
fn assert_dsr(
    run: &tests::xdp::Run,
    action: u32,
    expected: &[u8],
    inner_off: usize,
    vip: SocketAddrV4,
) {
    assert_eq!(run.action, action, "XDP action");
    assert_eq!(run.output, expected, "output frame");
    for off in [Ethernet2Header::LEN, inner_off - 20] {
        let (h, _) = Ipv4Header::from_slice(&run.output[off..]).unwrap();
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "header at {off}"
        );
    }
    let mut inner = run.output[..Ethernet2Header::LEN].to_vec();
    inner.extend_from_slice(&run.output[inner_off..]);
    assert_checksums_valid(&inner);
    let (h, _) = Ipv4Header::from_slice(&run.output[inner_off..]).unwrap();
    assert_eq!(h.source, CLIENT.ip().octets());
    assert_eq!(h.destination, vip.ip().octets(), "the VIP kept");
}

#[test]
fn dsr_behind_an_ipip_route_goes_to_the_node_addressed_to_the_pod() {
    let fx = EncapFixture::dsr(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let data = client_tcp(TCP_VIP);
    for input in [&syn, &data, &data] {
        let run = fx.from_client(input).unwrap();
        // Outer destination the pod, link-layer next hop its node.
        let expected = expect_dsr((BACKEND_IF_MAC, NODE_IPIP_MAC), POD_IPIP, input);
        assert_dsr(&run, XDP_REDIRECT, &expected, DSR_INNER, TCP_VIP);
        assert_eq!(run.output[14 + 9], proto::IPIP);
    }
    let dgram = client_udp(UDP_VIP);
    let run = fx.from_client(&dgram).unwrap();
    let expected = expect_dsr((BACKEND_IF_MAC, NODE_IPIP_MAC), POD_IPIP, &dgram);
    assert_dsr(&run, XDP_REDIRECT, &expected, DSR_INNER, UDP_VIP);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 4);
    assert_eq!(fx.lb.global(GlobalStat::EncapVxlan).unwrap(), 0);
}

#[test]
fn dsr_behind_a_vxlan_route_is_ipip_inside_vxlan_to_the_node_vtep() {
    let fx = EncapFixture::dsr(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let data = client_tcp(TCP_VIP);
    for input in [&syn, &data] {
        let run = fx.from_client(input).unwrap();
        let expected = expect_dsr_vxlan(input, proto::TCP, POD_VXLAN);
        assert_dsr(&run, XDP_REDIRECT, &expected, DSR_VXLAN_INNER, TCP_VIP);
    }
    let dgram = client_udp(UDP_VIP).no_udp_checksum();
    let run = fx.from_client(&dgram).unwrap();
    let expected = expect_dsr_vxlan(&dgram, proto::UDP, POD_VXLAN);
    assert_dsr(&run, XDP_REDIRECT, &expected, DSR_VXLAN_INNER, UDP_VIP);
    // Other connections get other VXLAN source ports (the node's RSS).
    let ports: std::collections::BTreeSet<u16> = (41000..41008u16)
        .map(|port| {
            let syn = syn_from(SocketAddrV4::new(*CLIENT.ip(), port));
            let run = fx.from_client(&syn).unwrap();
            assert_eq!(run.output, expect_dsr_vxlan(&syn, proto::TCP, POD_VXLAN));
            u16::from_be_bytes([run.output[34], run.output[35]])
        })
        .collect();
    assert!(ports.len() > 4, "{ports:?}");
    assert_eq!(fx.lb.global(GlobalStat::EncapVxlan).unwrap(), 11);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 11);
}

#[test]
fn dsr_without_an_encapsulating_route_is_routed_to_the_backend() {
    // encap none route (10.244.3.0/24 routed via 10.0.2.3): the outer
    // packet is addressed to the pod and routed by the FIB; its source is
    // the kernel's preferred source toward the pod.
    let fx = EncapFixture::dsr(POD_PLAIN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    let expected = expect_dsr((BACKEND_IF_MAC, BACKEND2_MAC), POD_PLAIN, &syn);
    assert_dsr(&run, XDP_REDIRECT, &expected, DSR_INNER, TCP_VIP);

    // No route at all: a backend on the load balancer's own link.
    let backend = *BACKEND1.ip();
    let mut fx = EncapFixture::dsr(POD_PLAIN).unwrap();
    fx.lb
        .add_service(&tests::xdp::TestService {
            id: 9,
            vip: SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 11), 80),
            proto: proto::TCP,
            select: 0,
            timeout_s: 60,
            backends: vec![SocketAddrV4::new(backend, 80)],
        })
        .unwrap();
    let vip = SocketAddrV4::new(Ipv4Addr::new(10, 96, 0, 11), 80);
    fx.lb.set_service_mode(vip, proto::TCP, mode::DSR).unwrap();
    let syn = client_tcp(vip).syn();
    let run = fx.from_client(&syn).unwrap();
    let expected = expect_dsr((BACKEND_IF_MAC, BACKEND1_MAC), backend, &syn);
    assert_dsr(&run, XDP_REDIRECT, &expected, DSR_INNER, vip);
}

#[test]
fn dsr_keeps_an_established_connection_on_its_backend_with_one_entry() {
    // Two backends, round robin: each new connection goes to the next one,
    // each connection's packets stay with its own. (The datapath ignores a
    // DSR backend's port: the packet is not rewritten.)
    let mut fx = DnatFixture::new().unwrap();
    fx.lb
        .set_service_mode(TCP_VIP, proto::TCP, mode::DSR)
        .unwrap();
    let a = SocketAddrV4::new(*CLIENT.ip(), 41001);
    let b = SocketAddrV4::new(*CLIENT.ip(), 41002);
    let backend_of = |run: &tests::xdp::Run| {
        assert_eq!(run.action, XDP_REDIRECT);
        Ipv4Addr::from(<[u8; 4]>::try_from(&run.output[30..34]).unwrap())
    };
    let first_a = backend_of(&fx.from_client(&syn_from(a)).unwrap());
    let first_b = backend_of(&fx.from_client(&syn_from(b)).unwrap());
    assert_ne!(first_a, first_b, "round robin");
    for _ in 0..3 {
        for (client, backend) in [(a, first_a), (b, first_b)] {
            let data = client_tcp(TCP_VIP).addrs(client, TCP_VIP);
            let run = fx.from_client(&data).unwrap();
            let mac = if backend == *BACKEND1.ip() {
                BACKEND1_MAC
            } else {
                BACKEND2_MAC
            };
            assert_dsr(
                &run,
                XDP_REDIRECT,
                &expect_dsr((BACKEND_IF_MAC, mac), backend, &data),
                DSR_INNER,
                TCP_VIP,
            );
        }
    }
    // One entry per connection: forward, not rewriting (DSR), no reply
    // entry.
    let entries = fx.lb.conntrack().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (key, flow) in &entries {
        assert_eq!(flow.direction, DIR_FORWARD);
        assert_eq!(flow.mode, mode::DSR);
        assert_eq!(key.dst_ip, u32::from_ne_bytes(TCP_VIP.ip().octets()));
    }
    let counters = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!(counters.new_connections, 2);
    assert_eq!(counters.packets, 8);
    assert_eq!(counters.reply_packets, 0);
}

#[test]
fn dsr_replies_passing_the_load_balancer_are_not_rewritten() {
    let fx = EncapFixture::dsr(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    // The pod answers from the VIP; routed through the load balancer (as
    // the nodes' default gateway) the reply is passed on untouched...
    let reply = client_tcp(TCP_VIP)
        .addrs(TCP_VIP, CLIENT)
        .macs(NODE_IPIP_MAC, BACKEND_IF_MAC);
    let run = fx.from_nodes(&reply.bytes()).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, reply.bytes(), "untouched");
    assert_eq!(fx.lb.global(GlobalStat::PassNotOurs).unwrap(), 1);
    // ...and one its node sends back encapsulated to the load balancer's
    // tunnel endpoint (VXLAN or IPIP) is decapsulated and handed to the
    // stack as it is (the outer Ethernet header in front), which routes it
    // to the client.
    let in_vxlan = vxlan::encapsulate(
        NODE_VXLAN_MAC,
        BACKEND_IF_MAC,
        NODE_VXLAN,
        TUNNEL_SOURCE,
        50123,
        vxlan::FLANNEL_PORT,
        VNI,
        &reply.clone().macs(NODE_VTEP_MAC, LB_VTEP_MAC).bytes(),
    );
    let in_ipip = ipip::encapsulate(
        NODE_IPIP_MAC,
        BACKEND_IF_MAC,
        NODE_IPIP,
        TUNNEL_SOURCE,
        &ipip::inner_packet(&reply),
    );
    for (frame, node_mac) in [(in_vxlan, NODE_VXLAN_MAC), (in_ipip, NODE_IPIP_MAC)] {
        let run = fx.from_nodes(&frame).unwrap();
        assert_eq!(run.action, XDP_PASS);
        assert_eq!(
            run.output,
            reply.clone().macs(node_mac, BACKEND_IF_MAC).bytes()
        );
    }
    assert_eq!(fx.lb.global(GlobalStat::PassDsrReply).unwrap(), 2);
    assert_eq!(fx.lb.global(GlobalStat::PassEncapNotOurs).unwrap(), 0);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    assert_eq!(fx.lb.service_counters(1).unwrap().reply_packets, 0);
}

#[test]
fn dsr_route_without_tunnel_source_drops() {
    let fx = EncapFixture::dsr(POD_NO_SOURCE).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropNoTunnelSource).unwrap(), 1);
}

#[test]
fn dsr_packet_over_the_route_mtu_is_answered_or_goes_to_the_stack() {
    let fx = EncapFixture::dsr(POD_SMALL).unwrap();
    // 40 + 20 bytes fit the 70-byte MTU toward the node, 58 + 20 do not.
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    // With DF: ICMP fragmentation-needed back to the client (its bytes are
    // checked in xdp_mtu.rs).
    let run = fx.from_client(&client_tcp(TCP_VIP)).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output[14 + 9], proto::ICMP);
    assert_eq!(fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(), 1);
    // Without DF: encapsulated and handed to the stack, which fragments it.
    let mut no_df = client_tcp(TCP_VIP);
    no_df.ip.dont_fragment = false;
    let run = fx.from_client(&no_df).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 1);
}

#[test]
fn a_mode_change_keeps_existing_connections_as_they_were_made() {
    let mut fx = DnatFixture::new().unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    fx.lb
        .set_service_mode(TCP_VIP, proto::TCP, mode::DSR)
        .unwrap();
    // The DNAT connection goes on DNATed (to BACKEND1, round robin's first)...
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expect_forwarded(&data, BACKEND1).bytes());
    // ...a new one is DSR (to the next backend, unrewritten).
    let syn = syn_from(SocketAddrV4::new(*CLIENT.ip(), 41002));
    let run = fx.from_client(&syn).unwrap();
    let expected = expect_dsr((BACKEND_IF_MAC, BACKEND2_MAC), *BACKEND2.ip(), &syn);
    assert_dsr(&run, XDP_REDIRECT, &expected, DSR_INNER, TCP_VIP);
}

/// The ICMP error frame `error` as a backend must receive it inside the
/// tunnel: the IPv4 packet routed (TTL decremented), unchanged otherwise,
/// and the IPIP header (from the tunnel source to `backend`) for it.
fn routed_error(error: &[u8], backend: Ipv4Addr) -> (Ipv4Header, Vec<u8>) {
    let (mut h, rest) = Ipv4Header::from_slice(&error[14..]).unwrap();
    h.time_to_live -= 1;
    h.header_checksum = h.calc_header_checksum();
    let mut inner = Vec::new();
    h.write(&mut inner).unwrap();
    inner.extend_from_slice(rest);
    let mut outer = ipip::outer_header(TUNNEL_SOURCE, backend, inner.len());
    outer.identification = h.identification;
    outer.dont_fragment = h.dont_fragment;
    outer.dscp = h.dscp;
    outer.ecn = h.ecn;
    (outer, inner)
}

/// A client-side router's fragmentation-needed (MTU 1280) about `reply`
/// (a packet from the VIP), to the VIP, quoting as Linux does.
fn client_side_frag_needed(reply: &Frame) -> Vec<u8> {
    use etherparse::{Icmpv4Type, icmpv4::DestUnreachableHeader};
    use tests::{
        fixture_net::{CLIENT_IF_MAC, CLIENT_MAC},
        packets::{icmp_frame, quote},
    };
    icmp_frame(
        (CLIENT_MAC, CLIENT_IF_MAC),
        Ipv4Addr::new(10, 0, 1, 254),
        *TCP_VIP.ip(),
        64,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1280,
        }),
        &quote(reply, 548),
    )
}

#[test]
fn icmp_errors_about_a_dsr_reply_go_to_the_backend_in_the_tunnel() {
    for pod in [POD_IPIP, POD_PLAIN, POD_VXLAN] {
        let fx = EncapFixture::dsr(pod).unwrap();
        fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
        // A router on the client side cannot carry the pod's reply (sent
        // from the VIP, not through the load balancer): its error goes to
        // the VIP, so here. It names the DSR connection's forward entry;
        // the pod's packet was never rewritten, so nothing is translated:
        // the error goes to the pod as the connection's packets do (the pod
        // holds the VIP; its kernel lowers the path MTU toward the client).
        let error = client_side_frag_needed(&client_tcp(TCP_VIP).addrs(TCP_VIP, CLIENT));
        let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        let (outer, inner) = routed_error(&error, pod);
        let expected = if pod == POD_VXLAN {
            let inner_frame = ipip::frame(LB_VTEP_MAC, NODE_VTEP_MAC, &outer, &inner);
            let mut vx = vxlan::outer_header(TUNNEL_SOURCE, NODE_VXLAN, inner_frame.len());
            vx.identification = outer.identification;
            vx.dont_fragment = outer.dont_fragment;
            vx.dscp = outer.dscp;
            vx.ecn = outer.ecn;
            vxlan::frame(
                BACKEND_IF_MAC,
                NODE_VXLAN_MAC,
                &vx,
                // The connection's own source port (its tuple hashed).
                expected_src_port(&client_tcp(TCP_VIP), proto::TCP),
                vxlan::FLANNEL_PORT,
                None,
                vxlan::header(0x08, VNI),
                &inner_frame,
            )
        } else {
            let next_hop = if pod == POD_IPIP {
                NODE_IPIP_MAC
            } else {
                BACKEND2_MAC
            };
            ipip::frame(BACKEND_IF_MAC, next_hop, &outer, &inner)
        };
        assert_eq!(run.output, expected, "{pod}");
        let inner_at = run.output.len() - inner.len();
        assert_icmp_checksums_valid(&[&run.output[..14], &run.output[inner_at..]].concat());
        assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);

        // An error about a packet of no connection passes untouched.
        let other = client_tcp(TCP_VIP).addrs(TCP_VIP, SocketAddrV4::new(*CLIENT.ip(), 9));
        let stray = client_side_frag_needed(&other);
        let run = fx.lb.run(&stray, fx.net.client_ifindex).unwrap();
        assert_eq!(run.action, XDP_PASS, "{pod}");
        assert_eq!(run.output, stray, "untouched");
        assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 1);
    }
}

#[test]
fn icmp_errors_about_a_dsr_reply_without_a_way_to_the_backend_change_nothing() {
    // The route of the pod has no tunnel source: the error is dropped as
    // the connection's packets are, counted, not relayed.
    let fx = EncapFixture::dsr(POD_NO_SOURCE).unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let reply = client_tcp(TCP_VIP).addrs(TCP_VIP, CLIENT);
    let run = fx
        .lb
        .run(&client_side_frag_needed(&reply), fx.net.client_ifindex)
        .unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropNoTunnelSource).unwrap(), 2);
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 0);

    // An error whose TTL would run out here goes to the stack unchanged.
    let fx = EncapFixture::dsr(POD_IPIP).unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let mut error = client_side_frag_needed(&reply);
    error[14 + 8] = 1;
    error[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let (h, _) = Ipv4Header::from_slice(&error[14..]).unwrap();
    error[14 + 10..14 + 12].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
    let run = fx.lb.run(&error, fx.net.client_ifindex).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, error, "untouched");
    assert_eq!(fx.lb.global(GlobalStat::IcmpToBackend).unwrap(), 0);
}
