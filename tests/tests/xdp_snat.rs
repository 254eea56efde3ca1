//! Packet fixtures: source-NATed connections (`onearm` and `fullnat`: the
//! backend has an SNAT address). The forward packet leaves from the SNAT
//! address and an allocated port, the reply to that address and port is
//! reverse-NATed to VIP -> client, and ports never collide toward one
//! backend.

use std::net::{Ipv4Addr, SocketAddrV4};

use lb_common::{GlobalStat, limits, proto};
use tests::{
    dnat_fixture::*,
    packets::{Frame, assert_checksums_valid},
    xdp::TestService,
};

/// The SNAT address of the fixtures' backends.
const SNAT: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 5);

fn assert_output(run: &tests::xdp::Run, action: u32, expected: &Frame) {
    assert_eq!(run.action, action, "XDP action");
    assert_eq!(run.output, expected.bytes(), "output frame");
    assert_checksums_valid(&run.output);
}

/// The DNAT fixture with every backend source-NATed to `SNAT`.
fn fixture() -> DnatFixture {
    let mut fx = DnatFixture::new().unwrap();
    for id in fx
        .tcp_backend_ids
        .clone()
        .iter()
        .chain(&fx.udp_backend_ids.clone())
    {
        fx.lb.set_backend_snat(*id, SNAT).unwrap();
    }
    fx
}

/// The source port the balancer gave the packet it sent (`output`, an
/// Ethernet/IPv4/TCP-or-UDP frame), checked to be in the SNAT range.
fn snat_port(output: &[u8]) -> u16 {
    let port = u16::from_be_bytes([output[34], output[35]]);
    assert!(
        (limits::SNAT_PORT_MIN..=limits::SNAT_PORT_MAX).contains(&port),
        "{port} outside the SNAT range"
    );
    port
}

/// What the balancer must send to `backend` for `input`: source rewritten to
/// the SNAT address and `port`, destination to the backend.
fn expect_snatted(input: &Frame, port: u16, backend: SocketAddrV4) -> Frame {
    expect_forwarded(input, backend).addrs(SocketAddrV4::new(SNAT, port), backend)
}

/// A reply from `backend` to the SNAT address and `port`.
fn reply_to_snat(template: Frame, backend: SocketAddrV4, port: u16) -> Frame {
    backend_reply(template, backend).addrs(backend, SocketAddrV4::new(SNAT, port))
}

#[test]
fn tcp_connection_leaves_from_the_snat_address_and_its_replies_return_to_the_client() {
    let fx = fixture();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    let port = snat_port(&run.output);
    assert_output(&run, XDP_REDIRECT, &expect_snatted(&syn, port, BACKEND1));

    // The backend's answer, to the SNAT address and port, goes to the client
    // from the VIP.
    let syn_ack = reply_to_snat(client_tcp(TCP_VIP).syn(), BACKEND1, port);
    let run = fx.from_backend(&syn_ack).unwrap();
    assert_output(
        &run,
        XDP_REDIRECT,
        &expect_reverse_natted(&syn_ack, TCP_VIP),
    );

    // The client's next packets keep the port.
    for _ in 0..2 {
        let ack = client_tcp(TCP_VIP);
        let run = fx.from_client(&ack).unwrap();
        assert_output(&run, XDP_REDIRECT, &expect_snatted(&ack, port, BACKEND1));
    }
    let svc = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!(
        (svc.packets, svc.reply_packets, svc.new_connections),
        (3, 1, 1)
    );
    assert_eq!(fx.lb.conntrack().unwrap().len(), 2);
}

#[test]
fn udp_flow_is_source_natted_both_ways_and_a_zero_checksum_stays_zero() {
    let fx = fixture();
    let dgram = client_udp(UDP_VIP);
    let run = fx.from_client(&dgram).unwrap();
    let port = snat_port(&run.output);
    assert_output(
        &run,
        XDP_REDIRECT,
        &expect_snatted(&dgram, port, UDP_BACKEND1),
    );
    let reply = reply_to_snat(client_udp(UDP_VIP), UDP_BACKEND1, port);
    let run = fx.from_backend(&reply).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_reverse_natted(&reply, UDP_VIP));

    let bare = client_udp(UDP_VIP).no_udp_checksum();
    let run = fx.from_client(&bare).unwrap();
    assert_output(
        &run,
        XDP_REDIRECT,
        &expect_snatted(&bare, port, UDP_BACKEND1),
    );
    assert_eq!(&run.output[40..42], &[0, 0]);
}

#[test]
fn a_reply_to_an_snat_port_of_no_connection_passes_untouched() {
    let fx = fixture();
    let stray = reply_to_snat(client_tcp(TCP_VIP), BACKEND1, 2000);
    let run = fx.from_backend(&stray).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, stray.bytes());
}

/// Services on VIP ports 81, 82, ... sharing `BACKEND1` (own backend ids,
/// same address and port), source-NATed: connections to them from one
/// client port want the same SNAT ports toward the same backend.
fn shared_backend_services(fx: &mut DnatFixture, count: u16) -> Vec<SocketAddrV4> {
    (0..count)
        .map(|i| {
            let vip = SocketAddrV4::new(VIP, 81 + i);
            let ids = fx
                .lb
                .add_service(&TestService {
                    id: 20 + u32::from(i),
                    vip,
                    proto: proto::TCP,
                    select: lb_common::service::select::ROUND_ROBIN,
                    timeout_s: limits::DEFAULT_TCP_TIMEOUT_S,
                    backends: vec![BACKEND1],
                })
                .unwrap();
            fx.lb.set_backend_snat(ids[0], SNAT).unwrap();
            vip
        })
        .collect()
}

#[test]
fn connections_to_one_backend_never_share_an_snat_port() {
    let mut fx = fixture();
    let vips = shared_backend_services(&mut fx, 2);
    // One client port to two VIPs on the same backend: the second
    // connection's first-choice port is the first one's, so it takes
    // another; each reply goes back from its own VIP.
    let mut ports = Vec::new();
    for vip in [TCP_VIP, vips[0], vips[1]] {
        let syn = client_tcp(vip).syn();
        let run = fx.from_client(&syn).unwrap();
        let port = snat_port(&run.output);
        assert_output(&run, XDP_REDIRECT, &expect_snatted(&syn, port, BACKEND1));
        ports.push(port);
    }
    let mut distinct = ports.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "ports {ports:?}");
    for (vip, port) in [TCP_VIP, vips[0], vips[1]].into_iter().zip(&ports) {
        let reply = reply_to_snat(client_tcp(vip), BACKEND1, *port);
        let run = fx.from_backend(&reply).unwrap();
        assert_output(&run, XDP_REDIRECT, &expect_reverse_natted(&reply, vip));
    }
    assert_eq!(fx.lb.global(GlobalStat::DropSnatPortsBusy).unwrap(), 0);
}

#[test]
fn a_reopened_connection_gets_its_port_again_and_exhausted_tries_drop() {
    let mut fx = fixture();
    let syn = client_tcp(TCP_VIP).syn();
    let first = snat_port(&fx.from_client(&syn).unwrap().output);
    fx.from_client(&client_tcp(TCP_VIP).rst()).unwrap();
    // Same client port after RST: a new connection (round robin: backend 2),
    // from the same SNAT port (its own old entry does not hold the port).
    let run = fx.from_client(&syn).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_snatted(&syn, first, BACKEND2));

    // `SNAT_PORT_TRIES` live connections from one client port (another one:
    // the closed connection above holds its port for the close timeout) to
    // VIPs sharing one backend take every port that client port may try:
    // the next is dropped, counted, and nothing else changes.
    let client = SocketAddrV4::new(*CLIENT.ip(), 40001);
    let vips = shared_backend_services(&mut fx, limits::SNAT_PORT_TRIES as u16 + 1);
    let (last, taking) = vips.split_last().unwrap();
    for vip in taking {
        let run = fx
            .from_client(&client_tcp(*vip).syn().addrs(client, *vip))
            .unwrap();
        assert_eq!(run.action, XDP_REDIRECT);
    }
    let entries = fx.lb.conntrack().unwrap().len();
    let refused = client_tcp(*last).syn().addrs(client, *last);
    let run = fx.from_client(&refused).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(run.output, refused.bytes());
    assert_eq!(fx.lb.global(GlobalStat::DropSnatPortsBusy).unwrap(), 1);
    assert_eq!(fx.lb.conntrack().unwrap().len(), entries);
}
