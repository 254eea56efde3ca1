//! Packet fixtures: new flows, established flows and replies (DNAT).

use lb_common::{GlobalStat, conntrack::CT_CLOSING, hash::flow_hash, limits, service::select};
use tests::{
    dnat_fixture::*,
    packets::{Frame, assert_checksums_valid},
    xdp::ip_be,
};

fn assert_output(run: &tests::xdp::Run, action: u32, expected: &Frame) {
    assert_eq!(run.action, action, "XDP action");
    assert_eq!(run.output, expected.bytes(), "output frame");
    assert_checksums_valid(&run.output);
}

#[test]
fn new_tcp_flow_is_dnated_to_a_backend() {
    let fx = DnatFixture::new().unwrap();
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&syn, BACKEND1));

    let svc = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!((svc.packets, svc.new_connections), (1, 1));
    assert_eq!(svc.bytes, syn.bytes().len() as u64);
    let b = fx.lb.backend_counters(fx.tcp_backend_ids[0]).unwrap();
    assert_eq!((b.packets, b.new_connections), (1, 1));
    assert_eq!(fx.lb.global(GlobalStat::Redirect).unwrap(), 1);
    // One entry per direction.
    assert_eq!(fx.lb.conntrack().unwrap().len(), 2);
}

#[test]
fn new_udp_flow_is_dnated_to_a_backend() {
    let fx = DnatFixture::new().unwrap();
    let dgram = client_udp(UDP_VIP);
    let run = fx.from_client(&dgram).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&dgram, UDP_BACKEND1));
    let svc = fx.lb.service_counters(UDP_SERVICE_ID).unwrap();
    assert_eq!((svc.packets, svc.new_connections), (1, 1));
}

#[test]
fn udp_without_checksum_keeps_zero_checksum() {
    let fx = DnatFixture::new().unwrap();
    let dgram = client_udp(UDP_VIP).no_udp_checksum();
    let run = fx.from_client(&dgram).unwrap();
    let expected = expect_forwarded(&dgram, UDP_BACKEND1);
    assert_output(&run, XDP_REDIRECT, &expected);
    // UDP checksum bytes (14 + 20 + 6) are still zero.
    assert_eq!(&run.output[40..42], &[0, 0]);
}

#[test]
fn established_flow_stays_on_its_backend() {
    let fx = DnatFixture::new().unwrap();
    // Round robin would send a second *new* flow to backend 2; packets of
    // the same connection must stay on backend 1.
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    for _ in 0..3 {
        let data = client_tcp(TCP_VIP);
        let run = fx.from_client(&data).unwrap();
        assert_output(&run, XDP_REDIRECT, &expect_forwarded(&data, BACKEND1));
    }
    let svc = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!((svc.packets, svc.new_connections), (4, 1));
}

#[test]
fn round_robin_spreads_new_flows() {
    let fx = DnatFixture::new().unwrap();
    let mut seen = Vec::new();
    for port in 40000..40004u16 {
        let client = std::net::SocketAddrV4::new(*CLIENT.ip(), port);
        let syn = syn_from(client);
        let run = fx.from_client(&syn).unwrap();
        assert_eq!(run.action, XDP_REDIRECT);
        seen.push(run.output[30..34].to_vec()); // IPv4 destination
    }
    let b1 = BACKEND1.ip().octets().to_vec();
    let b2 = BACKEND2.ip().octets().to_vec();
    assert_eq!(seen, vec![b1.clone(), b2.clone(), b1, b2]);
}

#[test]
fn hash_selection_picks_the_slot_of_the_flow_hash() {
    let fx = DnatFixture::with_select(select::HASH).unwrap();
    for port in 41000..41016u16 {
        let client = std::net::SocketAddrV4::new(*CLIENT.ip(), port);
        let h = flow_hash(
            ip_be(*client.ip()),
            ip_be(VIP),
            port.to_be(),
            80u16.to_be(),
            lb_common::proto::TCP,
        );
        let backend = [BACKEND1, BACKEND2][(h % 2) as usize];
        let syn = syn_from(client);
        let run = fx.from_client(&syn).unwrap();
        let expected = expect_forwarded(&syn, backend).addrs(client, backend);
        assert_output(&run, XDP_REDIRECT, &expected);
    }
}

#[test]
fn reply_from_backend_is_reverse_natted_to_the_vip() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let syn_ack = backend_reply(client_tcp(TCP_VIP).syn(), BACKEND1);
    let run = fx.from_backend(&syn_ack).unwrap();
    assert_output(
        &run,
        XDP_REDIRECT,
        &expect_reverse_natted(&syn_ack, TCP_VIP),
    );
    let svc = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!(svc.reply_packets, 1);
    assert_eq!(svc.new_connections, 1);
}

#[test]
fn udp_reply_is_reverse_natted() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_udp(UDP_VIP)).unwrap();
    let reply = backend_reply(client_udp(UDP_VIP), UDP_BACKEND1);
    let run = fx.from_backend(&reply).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_reverse_natted(&reply, UDP_VIP));
}

#[test]
fn reply_without_connection_passes_untouched() {
    let fx = DnatFixture::new().unwrap();
    let stray = backend_reply(client_tcp(TCP_VIP), BACKEND1);
    let run = fx.from_backend(&stray).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, stray.bytes());
}

#[test]
fn removed_backend_ends_its_flows_and_others_are_undisturbed() {
    let mut fx = DnatFixture::new().unwrap();
    let a = std::net::SocketAddrV4::new(*CLIENT.ip(), 40000);
    let b = std::net::SocketAddrV4::new(*CLIENT.ip(), 40001);
    fx.from_client(&syn_from(a)).unwrap(); // -> backend 1
    fx.from_client(&syn_from(b)).unwrap(); // -> backend 2
    // What userspace does on removal: ring without it, then deactivate.
    let remaining = fx.tcp_backend_ids[1];
    fx.lb
        .set_ring(TCP_VIP, lb_common::proto::TCP, &[remaining])
        .unwrap();
    fx.lb
        .set_backend_active(fx.tcp_backend_ids[0], false)
        .unwrap();

    // The flow on backend 2 continues there.
    let data_b = client_tcp(TCP_VIP).addrs(b, TCP_VIP);
    let run = fx.from_client(&data_b).unwrap();
    let expected = expect_forwarded(&data_b, BACKEND2).addrs(b, BACKEND2);
    assert_output(&run, XDP_REDIRECT, &expected);
    assert_eq!(fx.lb.global(GlobalStat::BackendGone).unwrap(), 0);

    // The flow on backend 1 ends: rescheduled onto the remaining backend
    // (which resets it), never sent to the removed one.
    let data_a = client_tcp(TCP_VIP).addrs(a, TCP_VIP);
    let run = fx.from_client(&data_a).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    assert_eq!(&run.output[30..34], &BACKEND2.ip().octets());
    assert_eq!(fx.lb.global(GlobalStat::BackendGone).unwrap(), 1);
}

#[test]
fn fin_and_rst_switch_the_connection_to_the_close_timeout() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let run = fx.from_client(&client_tcp(TCP_VIP).fin()).unwrap();
    assert_eq!(run.action, XDP_REDIRECT);
    let entries = fx.lb.conntrack().unwrap();
    assert_eq!(entries.len(), 2);
    for (_, flow) in entries {
        assert_ne!(flow.tcp_flags & CT_CLOSING, 0, "{flow:?}");
        assert_eq!(flow.timeout_s, limits::TCP_CLOSE_TIMEOUT_S);
    }
}

#[test]
fn syn_after_close_opens_a_new_connection() {
    let fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap(); // backend 1
    fx.from_client(&client_tcp(TCP_VIP).rst()).unwrap();
    // Same 5-tuple reused after RST: scheduled afresh (round robin: backend 2).
    let syn = client_tcp(TCP_VIP).syn();
    let run = fx.from_client(&syn).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&syn, BACKEND2));
    let svc = fx.lb.service_counters(TCP_SERVICE_ID).unwrap();
    assert_eq!(svc.new_connections, 2);
}

#[test]
fn ttl_is_decremented_and_expiring_ttl_goes_to_the_stack() {
    let fx = DnatFixture::new().unwrap();
    let syn = client_tcp(TCP_VIP).syn().ttl(2);
    let run = fx.from_client(&syn).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&syn, BACKEND1));
    assert_eq!(run.output[22], 1, "TTL on the wire");

    let expiring = client_tcp(TCP_VIP).syn().ttl(1);
    let expiring = expiring.addrs(std::net::SocketAddrV4::new(*CLIENT.ip(), 40123), TCP_VIP);
    let run = fx.from_client(&expiring).unwrap();
    assert_eq!(run.action, XDP_PASS);
    assert_eq!(run.output, expiring.bytes(), "passed unmodified");
    assert_eq!(fx.lb.global(GlobalStat::PassTtlExceeded).unwrap(), 1);
    // No connection was recorded for it.
    assert_eq!(fx.lb.conntrack().unwrap().len(), 2);
}

#[test]
fn same_interface_uses_xdp_tx() {
    let fx = DnatFixture::new().unwrap();
    // A client on the backend link: the backend is reached through the
    // interface the packet came in on.
    let local_client = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 0, 2, 50), 40000);
    let syn = Frame::tcp(
        [2, 0, 0, 0, 2, 50],
        tests::fixture_net::BACKEND_IF_MAC,
        local_client,
        TCP_VIP,
    )
    .syn();
    let run = fx.from_backend(&syn).unwrap();
    let expected = syn
        .clone()
        .addrs(local_client, BACKEND1)
        .ttl(63)
        .macs(tests::fixture_net::BACKEND_IF_MAC, backend_mac(BACKEND1));
    assert_output(&run, XDP_TX, &expected);
    assert_eq!(fx.lb.global(GlobalStat::Tx).unwrap(), 1);
}

const SECOND: u64 = 1_000_000_000;

#[test]
fn idle_connection_expires_after_the_service_timeout() {
    let mut fx = DnatFixture::new().unwrap();
    let start = tests::xdp::START_CLOCK_NS;
    fx.from_client(&client_udp(UDP_VIP)).unwrap(); // backend 1
    // Within the UDP timeout (60 s): still the same connection.
    fx.lb.set_clock(start + 59 * SECOND).unwrap();
    let run = fx.from_client(&client_udp(UDP_VIP)).unwrap();
    assert_eq!(&run.output[30..34], &UDP_BACKEND1.ip().octets());
    // Idle for longer than the timeout after the last packet: a new
    // connection (round robin moves it to backend 2).
    fx.lb.set_clock(start + 59 * SECOND + 61 * SECOND).unwrap();
    let dgram = client_udp(UDP_VIP);
    let run = fx.from_client(&dgram).unwrap();
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&dgram, UDP_BACKEND2));
    let svc = fx.lb.service_counters(UDP_SERVICE_ID).unwrap();
    assert_eq!(svc.new_connections, 2);
}

#[test]
fn replies_keep_a_one_way_busy_connection_alive() {
    let mut fx = DnatFixture::new().unwrap();
    let start = tests::xdp::START_CLOCK_NS;
    fx.from_client(&client_udp(UDP_VIP)).unwrap();
    let reply = backend_reply(client_udp(UDP_VIP), UDP_BACKEND1);
    // The backend keeps sending; the client is silent for 100 s.
    for t in (10..=100).step_by(10) {
        fx.lb.set_clock(start + t * SECOND).unwrap();
        let run = fx.from_backend(&reply).unwrap();
        assert_eq!(run.action, XDP_REDIRECT, "reply at {t} s");
    }
    let run = fx.from_client(&client_udp(UDP_VIP)).unwrap();
    assert_eq!(&run.output[30..34], &UDP_BACKEND1.ip().octets());
    assert_eq!(
        fx.lb
            .service_counters(UDP_SERVICE_ID)
            .unwrap()
            .new_connections,
        1
    );
}

#[test]
fn closed_tcp_connection_expires_after_the_close_timeout() {
    let mut fx = DnatFixture::new().unwrap();
    let start = tests::xdp::START_CLOCK_NS;
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    fx.from_client(&client_tcp(TCP_VIP).fin()).unwrap();
    fx.lb
        .set_clock(start + (limits::TCP_CLOSE_TIMEOUT_S as u64 + 1) * SECOND)
        .unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    // Forgotten: scheduled as a new connection (round robin: backend 2).
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&data, BACKEND2));
}

#[test]
fn a_backend_id_given_to_a_new_backend_ends_the_old_connections() {
    let mut fx = DnatFixture::new().unwrap();
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap(); // backend 1
    // Userspace reused backend 1's id for another backend: new generation.
    fx.lb
        .update_backend(fx.tcp_backend_ids[0], |b| b.generation += 1)
        .unwrap();
    let data = client_tcp(TCP_VIP);
    let run = fx.from_client(&data).unwrap();
    // Rescheduled (round robin: backend 2), never sent on as before.
    assert_output(&run, XDP_REDIRECT, &expect_forwarded(&data, BACKEND2));
    assert_eq!(fx.lb.global(GlobalStat::BackendGone).unwrap(), 1);
}

#[test]
fn a_reply_tuple_owned_by_another_live_connection_is_not_taken_over() {
    let mut fx = DnatFixture::new().unwrap();
    // A second VIP whose only backend is backend 1 of the first service.
    let other_vip = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(10, 96, 0, 11), 80);
    fx.lb
        .add_service(&tests::xdp::TestService {
            id: 20,
            vip: other_vip,
            proto: lb_common::proto::TCP,
            select: select::ROUND_ROBIN,
            timeout_s: 60,
            backends: vec![BACKEND1],
        })
        .unwrap();
    // The client reaches both VIPs from the same port: both connections
    // would have the reply tuple backend1:8080 -> client:40000.
    fx.from_client(&client_tcp(TCP_VIP).syn()).unwrap();
    let clash = client_tcp(other_vip).syn();
    let run = fx.from_client(&clash).unwrap();
    assert_eq!(run.action, XDP_DROP);
    assert_eq!(fx.lb.global(GlobalStat::DropTupleClash).unwrap(), 1);
    // The first connection's replies still come from its own VIP.
    let syn_ack = backend_reply(client_tcp(TCP_VIP).syn(), BACKEND1);
    let run = fx.from_backend(&syn_ack).unwrap();
    assert_output(
        &run,
        XDP_REDIRECT,
        &expect_reverse_natted(&syn_ack, TCP_VIP),
    );
}
