//! Packet fixtures: the path MTU toward a node, learned from ICMP
//! fragmentation-needed that a router between the load balancer and the
//! node sends about our own encapsulated (outer) packets. Once learned, the
//! tunnel path answers DF packets that fit the route MTU but not the
//! learned one with fragmentation-needed carrying the learned MTU minus the
//! overhead, and clamps SYNs and SYN-ACKs to it. Errors with implausible
//! MTUs, about packets we did not send, or too short to tell, change
//! nothing. See tests/src/encap_fixture.rs for the setup (the nodes' link
//! has MTU 1500).

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Icmpv4Type, TcpOptionElement, icmpv4::DestUnreachableHeader};
use lb_common::{
    GlobalStat, PathMtu,
    path_mtu::PATH_MTU_EXPIRES_NS,
    proto,
    tunnel::{IPIP_OVERHEAD, VXLAN_OVERHEAD},
};
use tests::{
    dnat_fixture::{CLIENT, TCP_VIP, XDP_PASS, XDP_REDIRECT, client_tcp},
    encap_expect::*,
    encap_fixture::*,
    fixture_net::{BACKEND_IF_MAC, CLIENT_IF_MAC, CLIENT_MAC},
    frag_needed_expect::{assert_answered, expect_frag_needed, oversized},
    packets::{Frame, L4, assert_checksums_valid, icmp_frame},
    xdp::START_CLOCK_NS,
};

/// The router between the load balancer and the nodes.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 254);
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 2, 0xfe];
/// The MTU of the router's narrower link toward the nodes.
const PATH_MTU: u16 = 1400;
/// What Linux quotes at most: 576 bytes of error.
const WHOLE: usize = 576 - 28;
/// One next-hop epoch (2^30 ns): cached next hops are resolved again.
const EPOCH_NS: u64 = 1 << 30;

fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
        next_hop_mtu: mtu,
    })
}

/// The router's error of type `kind` about the outer packet `sent` (a frame
/// the balancer transmitted), quoting `len` bytes of it, to `to`.
fn router_error(sent: &[u8], len: usize, kind: Icmpv4Type, to: Ipv4Addr) -> Vec<u8> {
    let ip = &sent[14..];
    icmp_frame(
        (ROUTER_MAC, BACKEND_IF_MAC),
        ROUTER,
        to,
        64,
        kind,
        &ip[..len.min(ip.len())],
    )
}

/// The router's fragmentation-needed (MTU `mtu`) about `sent`, to our
/// tunnel source, quoting as Linux does.
fn too_big(sent: &[u8], mtu: u16) -> Vec<u8> {
    router_error(sent, WHOLE, frag_needed(mtu), TUNNEL_SOURCE)
}

fn overhead(pod: Ipv4Addr) -> u16 {
    if pod == POD_VXLAN {
        VXLAN_OVERHEAD
    } else {
        IPIP_OVERHEAD
    }
}

fn node_of(pod: Ipv4Addr) -> Ipv4Addr {
    if pod == POD_VXLAN {
        NODE_VXLAN
    } else {
        NODE_IPIP
    }
}

fn syn_with_mss(client: SocketAddrV4, mss: u16) -> Frame {
    let mut f = client_tcp(TCP_VIP).syn().addrs(client, TCP_VIP);
    if let L4::Tcp(t) = &mut f.l4 {
        t.set_options(&[TcpOptionElement::MaximumSegmentSize(mss)])
            .expect("options fit");
    }
    f
}

/// What the pod behind `pod` must receive for `input` from `client`,
/// DNATed to the pod and encapsulated as its route says.
fn expect_delivered(pod: Ipv4Addr, input: &Frame, client: SocketAddrV4) -> Vec<u8> {
    let ttl = input.ip.time_to_live - 1;
    let inner = input.clone().addrs(client, tcp_backend(pod)).ttl(ttl);
    expect_tcp_to_pod(pod, input, &inner)
}

/// `error` (a router's fragmentation-needed at `PATH_MTU`) arriving from
/// the nodes goes to the stack untouched and teaches `PATH_MTU` toward
/// `toward`, the first MTU learned: returns the entry.
fn learn_from(fx: &EncapFixture, error: &[u8], toward: Ipv4Addr, label: &str) -> PathMtu {
    let learned = fx.from_nodes(error).unwrap();
    assert_eq!(learned.action, XDP_PASS, "{label}");
    assert_eq!(learned.output, error, "{label}: untouched");
    assert_eq!(fx.lb.global(GlobalStat::PathMtuLearned).unwrap(), 1);
    let entry = fx.lb.path_mtu(toward).unwrap().expect("learned");
    assert_eq!(entry.mtu, u32::from(PATH_MTU), "{label}");
    entry
}

/// From the next epoch on (cached next hops are resolved again), the
/// client's packet of `fits_route` bytes (it fits the route, not the path)
/// is answered with fragmentation-needed carrying `fits_path`.
fn assert_told_the_path_mtu(
    fx: &mut EncapFixture,
    fits_route: usize,
    fits_path: usize,
    label: &str,
) {
    fx.lb.set_clock(START_CLOCK_NS + EPOCH_NS).unwrap();
    let again = oversized(client_tcp(TCP_VIP), fits_route);
    let run = fx.from_client(&again).unwrap();
    assert_answered(&run, &again, fits_path as u16, label);
    assert_checksums_valid(&run.output);
}

#[test]
fn frag_needed_about_our_outer_packet_lowers_the_mtu_toward_the_node() {
    for pod in [POD_IPIP, POD_VXLAN] {
        let mut fx = EncapFixture::new(pod).unwrap();
        let oh = overhead(pod);
        let fits_route = (1500 - oh) as usize;
        let fits_path = (PATH_MTU - oh) as usize;
        // A full-sized packet goes through: the route MTU is 1500.
        let first = oversized(client_tcp(TCP_VIP), fits_route);
        let run = fx.from_client(&first).unwrap();
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_delivered(pod, &first, CLIENT),
            inner_offset(pod),
        );
        assert_eq!(run.output.len(), 14 + 1500, "{pod}");

        // A router on the way cannot carry it: its error goes to the stack
        // untouched, the MTU is recorded for the node.
        let label = pod.to_string();
        let entry = learn_from(&fx, &too_big(&run.output, PATH_MTU), node_of(pod), &label);
        assert_eq!(entry.expires_ns, START_CLOCK_NS + PATH_MTU_EXPIRES_NS);
        // A larger MTU later is not learned (the smaller one holds).
        let larger = fx.from_nodes(&too_big(&run.output, 1450)).unwrap();
        assert_eq!(larger.action, XDP_PASS);
        assert_eq!(fx.lb.global(GlobalStat::PathMtuLearned).unwrap(), 1);

        // From the next epoch on (cached next hops are resolved again), a
        // DF packet that fits the route but not the path is answered with
        // the path's MTU minus the overhead, on the established connection
        // and a new one alike.
        assert_told_the_path_mtu(&mut fx, fits_route, fits_path, &label);
        let other = SocketAddrV4::new(*CLIENT.ip(), 41001);
        let new_conn = oversized(client_tcp(TCP_VIP).addrs(other, TCP_VIP), fits_path + 1);
        let run = fx.from_client(&new_conn).unwrap();
        assert_eq!(
            run.output,
            expect_frag_needed(&new_conn, fits_path as u16),
            "{pod}"
        );
        // Larger than the route MTU itself: the FIB's verdict, lowered too.
        let huge = oversized(client_tcp(TCP_VIP), 1500);
        let run = fx.from_client(&huge).unwrap();
        assert_eq!(
            run.output,
            expect_frag_needed(&huge, fits_path as u16),
            "{pod}"
        );
        assert_eq!(fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(), 3);
        // What fits the path goes through.
        let fitting = oversized(client_tcp(TCP_VIP), fits_path);
        let run = fx.from_client(&fitting).unwrap();
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_delivered(pod, &fitting, CLIENT),
            inner_offset(pod),
        );

        // A SYN is clamped to the path: 1400 - overhead - 40.
        let client = SocketAddrV4::new(*CLIENT.ip(), 41002);
        let syn = syn_with_mss(client, 1460);
        let run = fx.from_client(&syn).unwrap();
        let clamped = syn_with_mss(client, PATH_MTU - oh - 40);
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_delivered(pod, &clamped, client),
            inner_offset(pod),
        );
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1, "{pod}");

        // The pod's SYN-ACK too (the client's segments cross the path).
        let reply = syn_with_mss(client, 1460)
            .syn_ack()
            .addrs(tcp_backend(pod), client);
        let run = fx.from_nodes(&node_reply(pod, &reply)).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        let clamped_ack = syn_with_mss(client, PATH_MTU - oh - 40).syn_ack();
        let ttl = clamped_ack.ip.time_to_live - 1;
        let expected = clamped_ack
            .addrs(TCP_VIP, client)
            .ttl(ttl)
            .macs(CLIENT_IF_MAC, CLIENT_MAC);
        assert_eq!(run.output, expected.bytes(), "{pod}");
        assert_checksums_valid(&run.output);
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 2, "{pod}");

        // Ten minutes later the route MTU holds again.
        fx.lb
            .set_clock(START_CLOCK_NS + PATH_MTU_EXPIRES_NS + EPOCH_NS)
            .unwrap();
        let later = oversized(client_tcp(TCP_VIP), fits_route);
        let run = fx.from_client(&later).unwrap();
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_delivered(pod, &later, CLIENT),
            inner_offset(pod),
        );
    }
}

/// Mutates the quoted outer IPv4 header (and fixes its checksum).
fn with_quoted(sent: &[u8], change: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut out = sent.to_vec();
    change(&mut out[14..]);
    out[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let (h, _) = etherparse::Ipv4Header::from_slice(&out[14..]).unwrap();
    out[14 + 10..14 + 12].copy_from_slice(&h.calc_header_checksum().to_be_bytes());
    out
}

/// Each error of `cases` (what it is, its frame) arriving from the nodes
/// passes untouched and teaches nothing.
fn assert_not_learned_from(fx: &EncapFixture, cases: &[(&str, Vec<u8>)], label: &str) {
    for (what, error) in cases {
        let run = fx.from_nodes(error).unwrap();
        assert_eq!(run.action, XDP_PASS, "{label}: {what}");
        assert_eq!(&run.output, error, "{label}: {what}: untouched");
        assert_eq!(
            fx.lb.global(GlobalStat::PathMtuLearned).unwrap(),
            0,
            "{label}: {what}"
        );
    }
}

#[test]
fn implausible_or_foreign_frag_needed_changes_nothing() {
    for pod in [POD_IPIP, POD_VXLAN] {
        let mut fx = EncapFixture::new(pod).unwrap();
        let fits_route = (1500 - overhead(pod)) as usize;
        let first = oversized(client_tcp(TCP_VIP), fits_route);
        let sent = fx.from_client(&first).unwrap().output;
        let stranger = Ipv4Addr::new(10, 0, 2, 77);
        let from_stranger = with_quoted(&sent, |ip| ip[12..16].copy_from_slice(&stranger.octets()));
        let with_options = with_quoted(&sent, |ip| ip[0] = 0x46);
        // 10.0.2.3: a route's next hop, but no tunnel's node.
        let to_no_node = with_quoted(&sent, |ip| ip[16..20].copy_from_slice(&PLAIN_VIA.octets()));
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("MTU below 552", too_big(&sent, 551)),
            ("MTU 0 (RFC 792 router)", too_big(&sent, 0)),
            ("MTU not below the packet's length", too_big(&sent, 1500)),
            (
                "host unreachable, not frag-needed",
                router_error(
                    &sent,
                    WHOLE,
                    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Host),
                    TUNNEL_SOURCE,
                ),
            ),
            (
                "about a packet from another address, to it",
                router_error(&from_stranger, WHOLE, frag_needed(PATH_MTU), stranger),
            ),
            (
                "to us, about a packet from another address",
                router_error(&from_stranger, WHOLE, frag_needed(PATH_MTU), TUNNEL_SOURCE),
            ),
            (
                "about a packet to no tunnel node",
                too_big(&to_no_node, PATH_MTU),
            ),
            (
                "quoted header with options",
                too_big(&with_options, PATH_MTU),
            ),
            (
                "quoted packet of another protocol",
                too_big(&with_quoted(&sent, |ip| ip[9] = proto::TCP), PATH_MTU),
            ),
            (
                "quote shorter than the IPv4 header and 8 bytes",
                router_error(&sent, 27, frag_needed(PATH_MTU), TUNNEL_SOURCE),
            ),
        ];
        // A datagram that says its quote is 20 bytes, the rest of the
        // quote in Ethernet padding.
        let mut padded = router_error(&sent, 20, frag_needed(PATH_MTU), TUNNEL_SOURCE);
        padded.extend_from_slice(&sent[14 + 20..14 + 40]);
        cases.push(("quote in the Ethernet padding", padded));
        if pod == POD_VXLAN {
            // UDP offsets in the quoted packet: dport 22..24; VNI 32..35.
            let mut other_port = sent.clone();
            other_port[14 + 22..14 + 24].copy_from_slice(&4789u16.to_be_bytes());
            cases.push(("another UDP port", too_big(&other_port, PATH_MTU)));
            let mut other_vni = sent.clone();
            other_vni[14 + 32] ^= 0xff;
            cases.push(("another VNI", too_big(&other_vni, PATH_MTU)));
            cases.push((
                "VXLAN header not quoted",
                router_error(&sent, 28, frag_needed(PATH_MTU), TUNNEL_SOURCE),
            ));
        }
        assert_not_learned_from(&fx, &cases, &pod.to_string());
        assert_eq!(fx.lb.path_mtu(node_of(pod)).unwrap(), None::<PathMtu>);
        assert_eq!(fx.lb.path_mtu(stranger).unwrap(), None::<PathMtu>);
        assert_eq!(fx.lb.path_mtu(PLAIN_VIA).unwrap(), None::<PathMtu>);
        // Next epoch: full-sized packets still go through.
        fx.lb.set_clock(START_CLOCK_NS + EPOCH_NS).unwrap();
        let run = fx.from_client(&first).unwrap();
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_delivered(pod, &first, CLIENT),
            inner_offset(pod),
        );
    }
}

#[test]
fn minimal_quote_of_an_ipip_packet_is_enough() {
    // RFC 792 routers quote the IPv4 header and 8 bytes: an IPIP packet is
    // named by its header alone (a VXLAN one needs its VXLAN header).
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    let sent = fx
        .from_client(&oversized(client_tcp(TCP_VIP), 1480))
        .unwrap()
        .output;
    let error = router_error(&sent, 28, frag_needed(PATH_MTU), TUNNEL_SOURCE);
    let run = fx.from_nodes(&error).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, error, "untouched");
    assert_eq!(fx.lb.global(GlobalStat::PathMtuLearned).unwrap(), 1);
    let entry = fx.lb.path_mtu(NODE_IPIP).unwrap().expect("learned");
    assert_eq!(entry.mtu, u32::from(PATH_MTU));
}

/// The source of the outer packet in `sent` (a frame the balancer sent):
/// where a router's error about it goes.
fn outer_source(sent: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(sent[26], sent[27], sent[28], sent[29])
}

/// The MSS option of the TCP segment at `ip_off` in `frame`.
fn mss_at(frame: &[u8], ip_off: usize) -> Option<u16> {
    let (_, rest) = etherparse::Ipv4Header::from_slice(&frame[ip_off..]).unwrap();
    let (tcp, _) = etherparse::TcpHeader::from_slice(rest).unwrap();
    tcp.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
        _ => None,
    })
}

/// Direct server return: the outer packet is IPIP addressed to the backend
/// (the pod), not to a node. A router's fragmentation-needed about it is
/// learned from when the client's packet it carries belongs to a live DSR
/// connection to that backend, toward the address DSR resolves its next
/// hop for: the backend itself without a tunnel route, the node of its
/// IPIP route. The client is then told the MTU left inside the IPIP
/// header, and SYNs are clamped to it.
#[test]
fn frag_needed_about_a_dsr_packet_lowers_the_mtu_toward_its_backend() {
    for (pod, toward) in [(POD_PLAIN, POD_PLAIN), (POD_IPIP, NODE_IPIP)] {
        let mut fx = EncapFixture::dsr(pod).unwrap();
        let fits_route = (1500 - IPIP_OVERHEAD) as usize;
        let fits_path = (PATH_MTU - IPIP_OVERHEAD) as usize;
        let syn = client_tcp(TCP_VIP).syn();
        assert_eq!(fx.from_client(&syn).unwrap().action, XDP_REDIRECT);
        let first = oversized(client_tcp(TCP_VIP), fits_route);
        let run = fx.from_client(&first).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(run.output.len(), 14 + 1500, "{pod}");
        assert_eq!(&run.output[14 + 16..14 + 20], &pod.octets(), "to the pod");

        let error = router_error(
            &run.output,
            WHOLE,
            frag_needed(PATH_MTU),
            outer_source(&run.output),
        );
        let label = pod.to_string();
        learn_from(&fx, &error, toward, &label);

        // From the next epoch on: the client is told the MTU inside IPIP.
        assert_told_the_path_mtu(&mut fx, fits_route, fits_path, &label);
        assert_eq!(fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(), 1);
        // What fits the path goes on, encapsulated.
        let fitting = oversized(client_tcp(TCP_VIP), fits_path);
        let run = fx.from_client(&fitting).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(run.output.len(), 14 + PATH_MTU as usize, "{pod}");
        // A new connection's SYN is clamped to the path: 1400 - 20 - 40.
        let client = SocketAddrV4::new(*CLIENT.ip(), 41002);
        let run = fx.from_client(&syn_with_mss(client, 1460)).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(mss_at(&run.output, 14 + 20), Some(PATH_MTU - 60), "{pod}");
        assert_checksums_valid(&[&run.output[..14], &run.output[14 + 20..]].concat());
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1, "{pod}");
    }
}

/// Errors that look like they are about a DSR packet but name no live DSR
/// connection to the quoted backend change nothing.
#[test]
fn frag_needed_about_a_packet_of_no_dsr_connection_changes_nothing() {
    for (pod, other) in [(POD_PLAIN, POD_IPIP), (POD_IPIP, POD_PLAIN)] {
        let fx = EncapFixture::dsr(pod).unwrap();
        fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
        let sent = fx
            .from_client(&oversized(client_tcp(TCP_VIP), 1480))
            .unwrap()
            .output;
        let us = outer_source(&sent);
        let vip = *TCP_VIP.ip();
        // Offsets in the quoted packet: the outer source 12..16 and
        // destination 16..20, the client's IPv4 version and length 20, its
        // source port 40..42.
        let other_port = with_quoted(&sent, |ip| ip[40] ^= 0x55);
        let other_backend = with_quoted(&sent, |ip| ip[16..20].copy_from_slice(&other.octets()));
        let inner_options = with_quoted(&sent, |ip| ip[20] = 0x46);
        let from_vip = with_quoted(&sent, |ip| ip[12..16].copy_from_slice(&vip.octets()));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "another client port (no connection)",
                router_error(&other_port, WHOLE, frag_needed(PATH_MTU), us),
            ),
            (
                "the connection, but to another backend",
                router_error(&other_backend, WHOLE, frag_needed(PATH_MTU), us),
            ),
            (
                "client's header with options",
                router_error(&inner_options, WHOLE, frag_needed(PATH_MTU), us),
            ),
            (
                "client's ports not quoted",
                router_error(&sent, 20 + 20 + 7, frag_needed(PATH_MTU), us),
            ),
            (
                "only RFC 792's minimum quoted",
                router_error(&sent, 28, frag_needed(PATH_MTU), us),
            ),
            (
                // Anyone can send to the VIP: a made-up outer header from
                // it around one's own live connection teaches nothing.
                "to the VIP, quoting a packet from the VIP",
                router_error(&from_vip, WHOLE, frag_needed(PATH_MTU), vip),
            ),
        ];
        assert_not_learned_from(&fx, &cases, &pod.to_string());
        for addr in [POD_PLAIN, POD_IPIP, NODE_IPIP] {
            assert_eq!(fx.lb.path_mtu(addr).unwrap(), None::<PathMtu>, "{addr}");
        }
        // The same error quoting the real packet is learned from: the cases
        // above failed for what they changed.
        let run = fx
            .from_nodes(&router_error(&sent, WHOLE, frag_needed(PATH_MTU), us))
            .unwrap();
        assert_eq!(run.action, XDP_PASS);
        assert_eq!(
            fx.lb.global(GlobalStat::PathMtuLearned).unwrap(),
            1,
            "{pod}"
        );
    }
}
