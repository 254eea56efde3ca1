//! Packet fixtures: DNAT connections to pods behind tunnel routes are
//! delivered IPIP- or VXLAN-encapsulated to the pod's node, and the nodes'
//! encapsulated replies are decapsulated and reverse-NATed to the client
//! (see tests/src/encap_fixture.rs for the setup).

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::Ipv4Header;
use lb_common::{
    BackendTunnel, EndpointSet, GlobalStat, NextHop, TunnelEndpoint, proto,
    tunnel::{INLINE_ENDPOINTS, encap},
};
use tests::{
    dnat_fixture::{
        CLIENT, TCP_VIP, UDP_VIP, XDP_DROP, XDP_PASS, XDP_REDIRECT, client_tcp, client_udp,
        expect_reverse_natted, syn_from,
    },
    encap_expect::*,
    encap_fixture::*,
    fixture_net::{BACKEND_IF_MAC, BACKEND2_MAC, CLIENT_IF_MAC, CLIENT_MAC},
    ipip,
    packets::assert_checksums_valid,
    vxlan,
    xdp::{START_CLOCK_NS, ip_be},
};

#[test]
fn new_tcp_flow_to_an_ipip_pod_is_encapsulated_to_its_node() {
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    let inner = dnated(&syn, tcp_backend(POD_IPIP));
    let expected = expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner);
    assert_encapsulated(&run, XDP_REDIRECT, &expected, IPIP_INNER);
    assert_eq!(run.output[14 + 9], proto::IPIP);
    assert_eq!(
        run.output[14 + 6] & 0x40,
        0x40,
        "DF copied from the inner header"
    );
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::Redirect).unwrap(), 1);
}

#[test]
fn established_ipip_flow_stays_encapsulated_and_follows_route_changes_within_an_epoch() {
    let mut fx = EncapFixture::new(POD_IPIP).unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    for df in [true, false] {
        let mut data = client_tcp(TCP_VIP);
        data.ip.dont_fragment = df;
        let run = fx.from_client(&data).unwrap();
        let inner = dnated(&data, tcp_backend(POD_IPIP));
        let expected = expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner);
        assert_encapsulated(&run, XDP_REDIRECT, &expected, IPIP_INNER);
    }
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 3);

    // The route is cached per backend: removing it changes nothing within
    // the epoch (no lookup per packet)...
    fx.lb
        .remove_tunnel(Ipv4Addr::new(10, 244, 1, 0), 24)
        .unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 4);
    // ...and is followed in the next one: now plain DNAT, and the namespace
    // has no route to the pod, so the rewritten packet goes to the stack.
    fx.lb.set_clock(START_CLOCK_NS + (2 << 30)).unwrap();
    let run = fx.from_client(&data).unwrap();
    assert_eq!(run.action, XDP_PASS);
    let plain = dnated(&data, tcp_backend(POD_IPIP)).ttl(data.ip.time_to_live);
    assert_eq!(run.output, plain.bytes());
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 4);
}

/// A connection to the pod behind the plain (`encap::NONE`) route, one data
/// packet sent: the fixture, that packet and how it leaves (plain DNAT,
/// asserted).
fn plain_connection() -> (EncapFixture, tests::packets::Frame, Vec<u8>) {
    let fx = EncapFixture::new(POD_PLAIN).unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let data = client_tcp(TCP_VIP);
    let plain = dnated(&data, tcp_backend(POD_PLAIN))
        .macs(BACKEND_IF_MAC, BACKEND2_MAC)
        .bytes();
    let run = fx.from_client(&data).unwrap();
    assert_eq!((run.action, &run.output), (XDP_REDIRECT, &plain));
    (fx, data, plain)
}

#[test]
fn established_plain_flow_is_encapsulated_from_the_epoch_after_a_route_to_its_pod_appears() {
    // A plain connection skips the route cache while its next hop, resolved
    // toward the backend itself, is of this epoch (tunnel::route):
    // a route that appears is followed in the next epoch, as a route that
    // goes (the test above).
    let (mut fx, data, plain) = plain_connection();

    fx.lb
        .add_tunnel(
            Ipv4Addr::new(10, 244, 3, 0),
            24,
            tunnel(NODE_IPIP, encap::IPIP, TUNNEL_SOURCE),
        )
        .unwrap();
    let run = fx.from_client(&data).unwrap();
    assert_eq!((run.action, &run.output), (XDP_REDIRECT, &plain));
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 0);

    fx.lb.set_clock(START_CLOCK_NS + (2 << 30)).unwrap();
    let run = fx.from_client(&data).unwrap();
    let inner = dnated(&data, tcp_backend(POD_PLAIN));
    let expected = expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner);
    assert_encapsulated(&run, XDP_REDIRECT, &expected, IPIP_INNER);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 1);
}

#[test]
fn a_plain_connection_does_not_read_the_route_cache_while_its_next_hop_is_current() {
    // The connection's next hop, resolved toward the backend itself in this
    // epoch, says it is not encapsulated: the per-CPU route slot is not
    // read (tunnel::route). Filled here with an IPIP route, the slot
    // would have the packet encapsulated if it were.
    let (mut fx, data, plain) = plain_connection();

    let tcp_backend_id = 1;
    fx.lb
        .set_backend_tunnel(
            tcp_backend_id,
            BackendTunnel {
                tunnel: tunnel(NODE_IPIP, encap::IPIP, TUNNEL_SOURCE),
                backend_ip: ip_be(POD_PLAIN),
                epoch: NextHop::epoch_of(START_CLOCK_NS),
                valid: 1,
                _pad: 0,
            },
        )
        .unwrap();
    let run = fx.from_client(&data).unwrap();
    assert_eq!((run.action, &run.output), (XDP_REDIRECT, &plain));
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 0);
}

#[test]
fn new_and_established_tcp_flow_to_a_vxlan_pod_is_encapsulated_to_its_node() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let data = client_tcp(TCP_VIP);
    for input in [&syn, &data, &data] {
        let run = fx.from_client(input).unwrap();
        let inner = dnated(input, tcp_backend(POD_VXLAN));
        let expected = expect_vxlan(input, proto::TCP, &inner);
        assert_encapsulated(&run, XDP_REDIRECT, &expected, VXLAN_INNER);
        assert_eq!(
            &run.output[42..50],
            &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0],
            "VXLAN header"
        );
        assert_eq!(&run.output[40..42], &[0, 0], "no UDP checksum");
    }
    // Other connections get other source ports (the node's RSS spreads them).
    let mut ports = std::collections::BTreeSet::new();
    for port in 41000..41008u16 {
        let syn = syn_from(SocketAddrV4::new(*CLIENT.ip(), port));
        let run = fx.from_client(&syn).unwrap();
        assert_eq!(run.action, XDP_REDIRECT);
        let src_port = u16::from_be_bytes([run.output[34], run.output[35]]);
        assert_eq!(src_port, expected_src_port(&syn, proto::TCP));
        ports.insert(src_port);
    }
    assert!(ports.len() > 4, "{ports:?}");
    assert_eq!(fx.lb.global(GlobalStat::EncapVxlan).unwrap(), 11);
}

#[test]
fn udp_flows_are_encapsulated_too() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let dgram = client_udp(UDP_VIP);
    for _ in 0..2 {
        let run = fx.from_client(&dgram).unwrap();
        let inner = dnated(&dgram, udp_backend(POD_VXLAN));
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_vxlan(&dgram, proto::UDP, &inner),
            VXLAN_INNER,
        );
    }
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let dgram = client_udp(UDP_VIP).no_udp_checksum();
    let run = fx.from_client(&dgram).unwrap();
    let inner = dnated(&dgram, udp_backend(POD_IPIP));
    let expected = expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner);
    assert_encapsulated(&run, XDP_REDIRECT, &expected, IPIP_INNER);
}

#[test]
fn encap_none_route_is_plain_routed_dnat() {
    let fx = EncapFixture::new(POD_PLAIN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    let expected = dnated(&syn, tcp_backend(POD_PLAIN)).macs(BACKEND_IF_MAC, BACKEND2_MAC);
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expected.bytes());
    assert_checksums_valid(&run.output);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 0);
    assert_eq!(fx.lb.global(GlobalStat::EncapVxlan).unwrap(), 0);
}

#[test]
fn ipip_reply_from_the_pod_is_decapsulated_and_reverse_natted() {
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let reply = pod_reply(&syn, tcp_backend(POD_IPIP));
    let run = fx.from_nodes(&ipip_reply(&reply)).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expect_reverse_natted(&reply, TCP_VIP).bytes());
    assert_checksums_valid(&run.output);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
    assert_eq!(fx.lb.service_counters(1).unwrap().reply_packets, 1);
}

#[test]
fn vxlan_replies_from_the_pod_are_decapsulated_and_reverse_natted() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let dgram = client_udp(UDP_VIP);
    fx.from_client(&dgram).unwrap();
    for (reply, vip) in [
        (pod_reply(&syn, tcp_backend(POD_VXLAN)), TCP_VIP),
        (pod_reply(&dgram, udp_backend(POD_VXLAN)), UDP_VIP),
    ] {
        let run = fx
            .from_nodes(&vxlan_reply(&reply, vxlan::FLANNEL_PORT))
            .unwrap();
        assert_eq!(run.action, XDP_REDIRECT);
        assert_eq!(run.output, expect_reverse_natted(&reply, vip).bytes());
        assert_checksums_valid(&run.output);
    }
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 2);
}

#[test]
fn encapsulated_packets_that_are_not_ours_pass_untouched() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    // No connection: a pod talking to the client on its own.
    let stray = pod_reply(&client_tcp(TCP_VIP), tcp_backend(POD_VXLAN));
    let mut arp_inner =
        tests::packets::arp_request(NODE_VTEP_MAC, [10, 244, 2, 5], [10, 244, 2, 1]);
    arp_inner[..6].copy_from_slice(&LB_VTEP_MAC);
    let arp_in_vxlan = vxlan::encapsulate(
        NODE_VXLAN_MAC,
        BACKEND_IF_MAC,
        NODE_VXLAN,
        TUNNEL_SOURCE,
        50123,
        vxlan::FLANNEL_PORT,
        VNI,
        &arp_inner,
    );
    for frame in [
        ipip_reply(&stray),
        vxlan_reply(&stray, vxlan::FLANNEL_PORT),
        arp_in_vxlan,
    ] {
        let run = fx.from_nodes(&frame).unwrap();
        assert_eq!(run.action, XDP_PASS);
        assert_eq!(run.output, frame, "untouched");
    }
    assert_eq!(fx.lb.global(GlobalStat::PassEncapNotOurs).unwrap(), 3);

    // VXLAN to a port that is no tunnel's, IPIP to another address: not
    // tunnel endpoints at all, even when the inner packet is a reply.
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let reply = pod_reply(&client_tcp(TCP_VIP), tcp_backend(POD_VXLAN));
    let other_addr = ipip::encapsulate(
        NODE_IPIP_MAC,
        BACKEND_IF_MAC,
        NODE_IPIP,
        Ipv4Addr::new(10, 0, 2, 99),
        &ipip::inner_packet(&reply),
    );
    for frame in [vxlan_reply(&reply, 4789), other_addr] {
        let run = fx.from_nodes(&frame).unwrap();
        assert_eq!(run.action, XDP_PASS);
        assert_eq!(run.output, frame, "untouched");
    }
    assert_eq!(fx.lb.global(GlobalStat::PassEncapNotOurs).unwrap(), 3);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
}

#[test]
fn vxlan_reply_with_another_vni_is_not_ours() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let reply = pod_reply(&syn, tcp_backend(POD_VXLAN));
    // The reply of a live connection, to our VXLAN port, but in another
    // VXLAN network (the reserved byte after the VNI is ignored).
    for vni in [VNI + 1, 0x65_4321, 0] {
        let frame = vxlan_reply_vni(&reply, vxlan::FLANNEL_PORT, vni);
        let run = fx.from_nodes(&frame).unwrap();
        assert_eq!(run.action, XDP_PASS, "VNI {vni:#x}");
        assert_eq!(run.output, frame, "untouched");
    }
    assert_eq!(fx.lb.global(GlobalStat::PassNotOurs).unwrap(), 3);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    let mut frame = vxlan_reply(&reply, vxlan::FLANNEL_PORT);
    frame[14 + 20 + 8 + 7] = 0xaa;
    let run = fx.from_nodes(&frame).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expect_reverse_natted(&reply, TCP_VIP).bytes());
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
}

#[test]
fn endpoint_check_is_skipped_while_the_endpoint_set_is_empty() {
    let mut fx = EncapFixture::new(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let frame = ipip_reply(&pod_reply(&syn, tcp_backend(POD_IPIP)));
    // The endpoints are in TUNNEL_ENDPOINTS, but the set says there are
    // none: the balancer does not look (the packet is not IPv4 TCP/UDP to
    // it: passed untouched).
    let saved = fx.lb.tunnel_endpoint_set().unwrap();
    assert_eq!(saved.len(), 2);
    fx.lb
        .set_tunnel_endpoint_set(EndpointSet::default())
        .unwrap();
    let run = fx.from_nodes(&frame).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, frame, "untouched");
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    fx.lb.set_tunnel_endpoint_set(saved).unwrap();
    let run = fx.from_nodes(&frame).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
}

#[test]
fn endpoints_beyond_the_inline_ones_are_looked_up_in_the_hash() {
    let mut fx = EncapFixture::new(POD_IPIP).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let frame = ipip_reply(&pod_reply(&syn, tcp_backend(POD_IPIP)));
    let expected = expect_reverse_natted(&pod_reply(&syn, tcp_backend(POD_IPIP)), TCP_VIP);
    // Other endpoints fill the inline slots: the fixture's own IPIP
    // endpoint is then only in TUNNEL_ENDPOINTS.
    let others: Vec<TunnelEndpoint> = (0..INLINE_ENDPOINTS as u8)
        .map(|i| TunnelEndpoint {
            addr: ip_be(Ipv4Addr::new(192, 0, 2, 1 + i)),
            port: 0,
            proto: proto::IPIP,
            _pad: 0,
            vni: 0,
        })
        .collect();
    let mut set = EndpointSet::default().with_endpoints(&others);
    assert_eq!(set.spilled, 0);
    // Nothing spilled: the hash is not consulted, the packet is not ours.
    fx.lb.set_tunnel_endpoint_set(set).unwrap();
    let run = fx.from_nodes(&frame).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, frame, "untouched");
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    // Some spilled: found in the hash, decapsulated and reverse-NATed.
    set.spilled = 2;
    fx.lb.set_tunnel_endpoint_set(set).unwrap();
    let run = fx.from_nodes(&frame).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expected.bytes());
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
}

/// Sets the outer IPv4 checksum of `frame` right for its (changed) header.
fn fix_outer_checksum(frame: &mut [u8]) {
    let (mut h, _) = Ipv4Header::from_slice(&frame[14..]).unwrap();
    h.header_checksum = h.calc_header_checksum();
    frame[24..26].copy_from_slice(&h.header_checksum.to_be_bytes());
}

#[test]
fn malformed_encapsulated_replies_are_dropped_never_forwarded() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    fx.from_client(&syn).unwrap();
    let reply = pod_reply(&syn, tcp_backend(POD_VXLAN));
    let good_vxlan = vxlan_reply(&reply, vxlan::FLANNEL_PORT);
    let good_ipip = ipip_reply(&reply);
    let redirects = fx.lb.global(GlobalStat::Redirect).unwrap();

    let mut cases: Vec<(&str, Vec<u8>, GlobalStat)> = Vec::new();
    let mut f = good_vxlan.clone();
    f.truncate(f.len() - 10);
    cases.push(("vxlan cut short", f, GlobalStat::DropEncapMalformed));
    let mut f = good_ipip.clone();
    f.truncate(f.len() - 1);
    cases.push(("ipip cut short", f, GlobalStat::DropEncapMalformed));
    let mut f = good_vxlan.clone();
    f[24] ^= 0xff;
    cases.push(("bad outer checksum", f, GlobalStat::DropEncapMalformed));
    let mut f = good_vxlan.clone();
    f[42] = 0;
    cases.push(("no VXLAN I flag", f, GlobalStat::DropEncapMalformed));
    let mut f = good_vxlan.clone();
    let wrong = (f.len() - 34 - 2) as u16;
    f[38..40].copy_from_slice(&wrong.to_be_bytes());
    cases.push(("UDP length", f, GlobalStat::DropEncapMalformed));
    let mut f = good_ipip.clone();
    f[34 + 3] = f[34 + 3].wrapping_sub(4); // inner total length
    cases.push(("inner length", f, GlobalStat::DropEncapMalformed));
    let mut f = good_ipip.clone();
    f[34] = 0x65; // inner version 6
    cases.push(("inner not IPv4", f, GlobalStat::DropEncapMalformed));
    // Outer header claims more than the frame but the UDP header is cut:
    // not recognisable as VXLAN, and the IPv4 length is wrong: the balancer
    // drops it as malformed.
    let mut f = good_vxlan.clone();
    f.truncate(14 + 20 + 3);
    cases.push(("cut in the UDP header", f, GlobalStat::DropMalformed));
    let mut f = good_ipip.clone();
    f.truncate(14 + 12);
    cases.push(("cut in the outer header", f, GlobalStat::DropMalformed));
    // An outer length that is consistent with the frame but too short for
    // the inner header.
    let mut f = good_ipip.clone();
    f.truncate(14 + 20 + 10);
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    fix_outer_checksum(&mut f);
    cases.push(("inner header cut", f, GlobalStat::DropEncapMalformed));

    for (what, frame, stat) in cases {
        let before = fx.lb.global(stat).unwrap();
        let run = fx.from_nodes(&frame).unwrap();
        assert_eq!(run.action, XDP_DROP, "{what}");
        assert_eq!(fx.lb.global(stat).unwrap(), before + 1, "{what}: {stat:?}");
    }
    assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    assert_eq!(fx.lb.global(GlobalStat::Redirect).unwrap(), redirects);
}

#[test]
fn encapsulated_packet_over_the_route_mtu_without_df_goes_to_the_stack() {
    let fx = EncapFixture::new(POD_SMALL).unwrap();
    // 40 + 20 bytes fit the 70-byte MTU: sent (and the next hop cached).
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    // 58 bytes would fit unencapsulated, 78 do not. Without DF the stack
    // fragments the outer packet (with DF: ICMP, see xdp_mtu.rs).
    let mut data = client_tcp(TCP_VIP);
    data.ip.dont_fragment = false;
    assert_eq!(data.bytes().len() - 14, 58);
    let run = fx.from_client(&data).unwrap();
    assert_eq!(run.action, XDP_PASS);
    // Handed over encapsulated, addressed (L2) as it arrived.
    let inner = dnated(&data, tcp_backend(POD_SMALL));
    let expected = expect_ipip((CLIENT_MAC, CLIENT_IF_MAC), NODE_SMALL, &inner);
    assert_encapsulated(&run, XDP_PASS, &expected, IPIP_INNER);
    assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 1);

    // The same on a connection's first packet (the FIB reports the MTU).
    let mut other = client_tcp(TCP_VIP).addrs(SocketAddrV4::new(*CLIENT.ip(), 40100), TCP_VIP);
    other.ip.dont_fragment = false;
    let run = fx.from_client(&other).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 2);
    // Encapsulated all the same (and the SYN): counted as such with how
    // they left.
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 3);
    assert_eq!(fx.lb.global(GlobalStat::Redirect).unwrap(), 1);
}

#[test]
fn node_without_neighbour_gets_the_encapsulated_packet_through_the_stack() {
    let fx = EncapFixture::new(POD_NO_NEIGH).unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    let inner = dnated(&syn, tcp_backend(POD_NO_NEIGH));
    let expected = expect_ipip((CLIENT_MAC, CLIENT_IF_MAC), NODE_NO_NEIGH, &inner);
    assert_encapsulated(&run, XDP_PASS, &expected, IPIP_INNER);
    assert_eq!(fx.lb.global(GlobalStat::PassFibMiss).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 1);
}

#[test]
fn route_without_tunnel_source_drops_new_connections() {
    let fx = EncapFixture::new(POD_NO_SOURCE).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropNoTunnelSource).unwrap(), 1);
}

/// The load balancer's overlay address, the fullnat source in these
/// fixtures.
const OVERLAY_SNAT: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 5);

/// The fixture for `pod` with both services' backends source-NATed to
/// `snat` (ids 1 and 2: the TCP and the UDP service).
fn snat_fixture(pod: Ipv4Addr, snat: Ipv4Addr) -> EncapFixture {
    let mut fx = EncapFixture::new(pod).unwrap();
    for id in [1, 2] {
        fx.lb.set_backend_snat(id, snat).unwrap();
    }
    fx
}

/// The source port of the inner TCP/UDP header at `inner_off`.
fn inner_src_port(output: &[u8], inner_off: usize) -> u16 {
    u16::from_be_bytes([output[inner_off + 20], output[inner_off + 21]])
}

#[test]
fn fullnat_connections_to_pods_go_encapsulated_from_the_overlay_address_and_come_back() {
    for (pod, inner_off) in [(POD_IPIP, IPIP_INNER), (POD_VXLAN, VXLAN_INNER)] {
        let fx = snat_fixture(pod, OVERLAY_SNAT);
        let backend = tcp_backend(pod);
        let syn = client_tcp(TCP_VIP).syn();
        let run = fx.from_client(&syn).unwrap();
        let port = inner_src_port(&run.output, inner_off);
        let inner = dnated(&syn, backend).addrs(SocketAddrV4::new(OVERLAY_SNAT, port), backend);
        let expected = if pod == POD_IPIP {
            expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner)
        } else {
            expect_vxlan(&syn, proto::TCP, &inner)
        };
        assert_encapsulated(&run, XDP_REDIRECT, &expected, inner_off);

        // The pod answers the overlay address; its node sends that into the
        // tunnel to the load balancer, which decapsulates and reverse-NATs.
        let reply = pod_reply(&syn, backend).addrs(backend, SocketAddrV4::new(OVERLAY_SNAT, port));
        let run = fx.from_nodes(&node_reply(pod, &reply)).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(run.output, expect_reverse_natted(&reply, TCP_VIP).bytes());
        assert_checksums_valid(&run.output);
        assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 1);
    }
}

#[test]
fn onearm_connections_to_pods_come_from_the_tunnel_source_and_replies_return_plainly() {
    for (pod, inner_off, node_mac) in [
        (POD_IPIP, IPIP_INNER, NODE_IPIP_MAC),
        (POD_VXLAN, VXLAN_INNER, NODE_VXLAN_MAC),
    ] {
        let fx = snat_fixture(pod, TUNNEL_SOURCE);
        let backend = udp_backend(pod);
        let dgram = client_udp(UDP_VIP);
        let run = fx.from_client(&dgram).unwrap();
        let port = inner_src_port(&run.output, inner_off);
        let inner = dnated(&dgram, backend).addrs(SocketAddrV4::new(TUNNEL_SOURCE, port), backend);
        let expected = if pod == POD_IPIP {
            expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner)
        } else {
            expect_vxlan(&dgram, proto::UDP, &inner)
        };
        assert_encapsulated(&run, XDP_REDIRECT, &expected, inner_off);

        // The pod answers the load balancer's node-network address: its node
        // routes that plainly, no tunnel.
        let reply = pod_reply(&dgram, backend)
            .addrs(backend, SocketAddrV4::new(TUNNEL_SOURCE, port))
            .macs(node_mac, BACKEND_IF_MAC);
        let run = fx.from_nodes(&reply.bytes()).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(run.output, expect_reverse_natted(&reply, UDP_VIP).bytes());
        assert_checksums_valid(&run.output);
        assert_eq!(fx.lb.global(GlobalStat::Decapsulated).unwrap(), 0);
    }
}
