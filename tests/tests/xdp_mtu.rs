//! Packet fixtures: the route MTU toward a pod's node with the
//! encapsulation overhead. SYNs to encapsulated pods and their SYN-ACKs get
//! their MSS clamped; an oversized packet with DF is answered with ICMP
//! fragmentation-needed built in XDP, sent back out of the client's
//! interface (a redirect through the device map). The same for direct
//! server return, whose SYN-ACKs the balancer never sees. See
//! tests/src/encap_fixture.rs for the setup: the nodes' link has MTU 1500,
//! node-small's route 70.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Ethernet2Header, TcpOptionElement};
use lb_common::{GlobalStat, proto};
use tests::{
    dnat_fixture::{
        CLIENT, TCP_VIP, UDP_VIP, XDP_PASS, XDP_REDIRECT, client_tcp, client_udp,
        expect_reverse_natted,
    },
    encap_expect::*,
    encap_fixture::*,
    fixture_net::{BACKEND_IF_MAC, BACKEND2_MAC, CLIENT_IF_MAC, CLIENT_MAC},
    frag_needed_expect::{assert_answered, oversized},
    packets::{Frame, L4, assert_checksums_valid},
};

/// The nodes' link MTU in the fixture namespace.
const LINK_MTU: u16 = 1500;

fn with_options(mut f: Frame, opts: &[TcpOptionElement]) -> Frame {
    if let L4::Tcp(t) = &mut f.l4 {
        t.set_options(opts).expect("options fit");
    }
    f
}

fn with_raw_options(mut f: Frame, opts: &[u8]) -> Frame {
    if let L4::Tcp(t) = &mut f.l4 {
        t.set_options_raw(opts).expect("options fit");
    }
    f
}

/// Linux's SYN options with MSS `mss`.
fn linux_options(mss: u16) -> Vec<TcpOptionElement> {
    use TcpOptionElement::*;
    vec![
        MaximumSegmentSize(mss),
        SelectiveAcknowledgementPermitted,
        Timestamp(1, 0),
        Noop,
        WindowScale(7),
    ]
}

fn syn_with_mss(mss: u16) -> Frame {
    with_options(client_tcp(TCP_VIP).syn(), &linux_options(mss))
}

/// `dnated` for a client port other than `CLIENT`'s.
fn dnated_from(input: &Frame, client: SocketAddrV4, backend: SocketAddrV4) -> Frame {
    let ttl = input.ip.time_to_live - 1;
    input.clone().addrs(client, backend).ttl(ttl)
}

#[test]
fn syn_to_an_encapsulated_pod_gets_its_mss_clamped_to_the_tunnel() {
    for (pod, mss) in [
        (POD_IPIP, LINK_MTU - 20 - 40),
        (POD_VXLAN, LINK_MTU - 50 - 40),
    ] {
        let fx = EncapFixture::new(pod).unwrap();
        let syn = syn_with_mss(1460);
        let run = fx.from_client(&syn).unwrap();
        let inner = dnated(&syn_with_mss(mss), tcp_backend(pod));
        let expected = expect_tcp_to_pod(pod, &syn, &inner);
        assert_encapsulated(&run, XDP_REDIRECT, &expected, inner_offset(pod));
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1, "{pod}");
    }
}

#[test]
fn mss_at_an_odd_offset_is_clamped_with_a_right_checksum() {
    use TcpOptionElement::*;
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    // NOP first: the MSS value straddles two checksum words.
    let syn = with_options(
        client_tcp(TCP_VIP).syn(),
        &[Noop, MaximumSegmentSize(8960), Noop, Noop, Noop],
    );
    let run = fx.from_client(&syn).unwrap();
    let clamped = with_options(
        client_tcp(TCP_VIP).syn(),
        &[Noop, MaximumSegmentSize(1440), Noop, Noop, Noop],
    );
    let expected = expect_tcp_to_pod(POD_IPIP, &syn, &dnated(&clamped, tcp_backend(POD_IPIP)));
    assert_encapsulated(&run, XDP_REDIRECT, &expected, IPIP_INNER);
    assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1);
}

#[test]
fn small_mss_no_mss_and_plain_routes_are_left_alone() {
    let fx = EncapFixture::new(POD_VXLAN).unwrap();
    let (c1, c2) = (
        SocketAddrV4::new(*CLIENT.ip(), 40001),
        SocketAddrV4::new(*CLIENT.ip(), 40002),
    );
    let small = syn_with_mss(1400).addrs(c1, TCP_VIP);
    let none = client_tcp(TCP_VIP).syn().addrs(c2, TCP_VIP);
    for (syn, client) in [(&small, c1), (&none, c2)] {
        let run = fx.from_client(syn).unwrap();
        let inner = dnated_from(syn, client, tcp_backend(POD_VXLAN));
        assert_encapsulated(
            &run,
            XDP_REDIRECT,
            &expect_vxlan(syn, proto::TCP, &inner),
            VXLAN_INNER,
        );
    }
    // Not encapsulated: nothing to make room for.
    let fx_plain = EncapFixture::new(POD_PLAIN).unwrap();
    let syn = syn_with_mss(1460);
    let run = fx_plain.from_client(&syn).unwrap();
    let expected = dnated(&syn, tcp_backend(POD_PLAIN)).macs(BACKEND_IF_MAC, BACKEND2_MAC);
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(run.output, expected.bytes());
    for f in [&fx, &fx_plain] {
        assert_eq!(f.lb.global(GlobalStat::MssClamped).unwrap(), 0);
    }
}

#[test]
fn malformed_options_are_forwarded_unchanged() {
    let cases: [(&str, &[u8]); 5] = [
        ("MSS of length 3", &[2, 3, 0x23, 0x28]),
        (
            "option of length 0 before MSS",
            &[8, 0, 1, 1, 2, 4, 0x23, 0x28],
        ),
        (
            "option of length 1 before MSS",
            &[8, 1, 1, 1, 2, 4, 0x23, 0x28],
        ),
        ("MSS cut by the header's end", &[1, 1, 1, 2]),
        (
            "option running past the header",
            &[8, 40, 1, 1, 2, 4, 0x23, 0x28],
        ),
    ];
    let fx = EncapFixture::new(POD_IPIP).unwrap();
    for (i, (what, opts)) in cases.iter().enumerate() {
        let client = SocketAddrV4::new(*CLIENT.ip(), 41000 + i as u16);
        let syn = with_raw_options(client_tcp(TCP_VIP).syn(), opts).addrs(client, TCP_VIP);
        let run = fx.from_client(&syn).unwrap();
        let inner = dnated_from(&syn, client, tcp_backend(POD_IPIP));
        let expected = expect_ipip((BACKEND_IF_MAC, NODE_IPIP_MAC), NODE_IPIP, &inner);
        assert_eq!(run.action, XDP_REDIRECT, "{what}");
        assert_eq!(run.output, expected, "{what}: forwarded unchanged");
    }
    assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 0);
    assert_eq!(fx.lb.global(GlobalStat::EncapIpip).unwrap(), 5);
}

/// The pod's SYN-ACK to `syn` with MSS `mss`.
fn syn_ack(pod: Ipv4Addr, mss: u16) -> Frame {
    let f = with_options(client_tcp(TCP_VIP).syn(), &linux_options(mss)).syn_ack();
    pod_reply(&f, tcp_backend(pod))
}

#[test]
fn syn_ack_from_an_encapsulated_pod_gets_its_mss_clamped() {
    for (pod, mss) in [(POD_IPIP, 1440), (POD_VXLAN, 1410)] {
        let fx = EncapFixture::new(pod).unwrap();
        fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
        let run = fx
            .from_nodes(&node_reply(pod, &syn_ack(pod, 1460)))
            .unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        let expected = expect_reverse_natted(&syn_ack(pod, mss), TCP_VIP);
        assert_eq!(run.output, expected.bytes(), "{pod}");
        assert_checksums_valid(&run.output);
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1, "{pod}");
    }
}

#[test]
fn oversized_df_packet_is_answered_with_icmp_frag_needed() {
    // (pod, largest packet that fits, the MTU the client is told)
    for (pod, fits) in [(POD_IPIP, 1480), (POD_VXLAN, 1450)] {
        let fx = EncapFixture::new(pod).unwrap();
        // First packet of a connection: the FIB reports the MTU.
        let first = oversized(client_tcp(TCP_VIP), fits + 1);
        let run = fx.from_client(&first).unwrap();
        assert_answered(&run, &first, fits as u16, pod);
        // Then from the cached next hop; UDP alike.
        let ok = oversized(client_tcp(TCP_VIP), fits);
        assert_eq!(fx.from_client(&ok).unwrap().action, XDP_REDIRECT, "{pod}");
        let again = oversized(client_tcp(TCP_VIP), fits + 100);
        let run = fx.from_client(&again).unwrap();
        assert_answered(&run, &again, fits as u16, pod);
        let dgram = oversized(client_udp(UDP_VIP), LINK_MTU as usize);
        let run = fx.from_client(&dgram).unwrap();
        assert_answered(&run, &dgram, fits as u16, pod);
        assert_eq!(
            fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(),
            3,
            "{pod}"
        );
        assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 0);
    }
}

#[test]
fn small_route_mtu_gets_the_mtu_left_after_the_overhead() {
    let fx = EncapFixture::new(POD_SMALL).unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    assert_answered(&run, &data, SMALL_MTU - 20, "");
    // The client's MACs were swapped, not invented.
    assert_eq!(&run.output[..12], &[CLIENT_MAC, CLIENT_IF_MAC].concat()[..]);
    // Without DF the old behaviour stays (the stack fragments).
    let mut no_df = client_tcp(TCP_VIP);
    no_df.ip.dont_fragment = false;
    assert_eq!(fx.from_client(&no_df).unwrap().action, XDP_PASS);
    assert_eq!(fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(), 1);
    assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 1);
}

/// Offsets of the client's packet in a DSR output: after one IPIP header;
/// behind a VXLAN route, after VXLAN, the inner Ethernet and IPIP headers.
const DSR_INNER: usize = 14 + 20;
const DSR_VXLAN_INNER: usize = 14 + 20 + 8 + 8 + 14 + 20;

#[test]
fn dsr_syn_gets_its_mss_clamped_by_the_dsr_overhead() {
    // One IPIP header (20 bytes; behind an IPIP route too, and without a
    // route), VXLAN around it behind a VXLAN route (70).
    for (pod, mss, inner_off) in [
        (POD_IPIP, LINK_MTU - 20 - 40, DSR_INNER),
        (POD_PLAIN, LINK_MTU - 20 - 40, DSR_INNER),
        (POD_VXLAN, LINK_MTU - 70 - 40, DSR_VXLAN_INNER),
    ] {
        let fx = EncapFixture::dsr(pod).unwrap();
        let syn = syn_with_mss(1460);
        let run = fx.from_client(&syn).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        // The client's SYN, not rewritten but for its TTL and its MSS.
        let clamped = syn_with_mss(mss);
        let expected = clamped.clone().ttl(clamped.ip.time_to_live - 1);
        assert_eq!(
            run.output[inner_off..],
            expected.bytes()[Ethernet2Header::LEN..],
            "{pod}"
        );
        let mut inner = run.output[..Ethernet2Header::LEN].to_vec();
        inner.extend_from_slice(&run.output[inner_off..]);
        assert_checksums_valid(&inner);
        assert_eq!(fx.lb.global(GlobalStat::MssClamped).unwrap(), 1, "{pod}");
    }
}

#[test]
fn dsr_oversized_df_packet_is_answered_quoting_the_clients_packet() {
    // (pod, largest packet that fits: the MTU the client is told)
    for (pod, fits) in [(POD_IPIP, 1480), (POD_VXLAN, 1430)] {
        let fx = EncapFixture::dsr(pod).unwrap();
        let first = oversized(client_tcp(TCP_VIP), fits + 1);
        let run = fx.from_client(&first).unwrap();
        assert_answered(&run, &first, fits as u16, pod);
        let ok = oversized(client_tcp(TCP_VIP), fits);
        let run = fx.from_client(&ok).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "{pod}");
        assert_eq!(fx.lb.global(GlobalStat::IcmpFragNeeded).unwrap(), 1);
        assert_eq!(fx.lb.global(GlobalStat::PassEncapTooBig).unwrap(), 0);
    }
    let fx = EncapFixture::dsr(POD_SMALL).unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    assert_answered(&run, &data, SMALL_MTU - 20, "");
}
