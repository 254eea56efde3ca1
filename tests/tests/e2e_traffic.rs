//! Real traffic from the client namespace to the VIP through ferrolb.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use tests::api::service_path;
use tests::client::{self, Proto, TcpSession};
use tests::lab::Lab;
use tests::topology::IO_TIMEOUT;

/// Every exchange answered from the VIP, by a backend that saw the client's
/// own address; every backend reached.
fn assert_balanced(lab: &Lab, proto: Proto, count: usize) {
    let vip = lab.vip();
    let hellos = lab
        .topo
        .client
        .run(|| client::hellos(proto, vip, count, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "{proto:?} to {vip}: {e:#}\ndaemon log:\n{}",
                lab.daemon.log()
            )
        });
    client::check_nat(&hellos, vip).unwrap();
    let spread = client::spread(&hellos);
    for backend in &lab.topo.backends {
        assert!(
            spread.get(&backend.name).copied().unwrap_or(0) > 0,
            "{proto:?}: backend {} got nothing: {spread:?}",
            backend.name
        );
    }
    assert_eq!(spread.values().sum::<usize>(), count);
}

#[test]
fn tcp_connections_reach_every_backend_from_the_vip() {
    let lab = Lab::start(3).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    assert_balanced(&lab, Proto::Tcp, 24);

    // The datapath counted them: 24 new connections over the backends.
    let view = lab
        .api()
        .get(&service_path("tcp", lab.vip()))
        .unwrap()
        .json()
        .unwrap();
    let new_conns: u64 = view["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["stats"]["new_connections"].as_u64().unwrap())
        .sum();
    assert_eq!(new_conns, 24, "per-backend new connections: {view}");
}

#[test]
fn udp_exchanges_reach_every_backend_from_the_vip() {
    let lab = Lab::start(3).unwrap();
    lab.serve_all("udp", "rr").unwrap();
    assert_balanced(&lab, Proto::Udp, 24);
}

#[test]
fn hash_selection_reaches_every_backend() {
    let lab = Lab::start(3).unwrap();
    lab.serve_all("tcp", "hash").unwrap();
    // 30 connections from random source ports: P(a backend gets none) ~ 1e-5.
    assert_balanced(&lab, Proto::Tcp, 30);
}

#[test]
fn established_connection_survives_a_backend_list_change() {
    let lab = Lab::start(3).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    let vip = lab.vip();

    // Open connections until two land on different backends.
    let mut sessions: Vec<TcpSession> = Vec::new();
    for _ in 0..12 {
        let s = lab
            .topo
            .client
            .run(|| TcpSession::connect(vip, IO_TIMEOUT))
            .unwrap()
            .unwrap();
        if sessions.iter().all(|k| k.hello.backend != s.hello.backend) {
            sessions.push(s);
        }
        if sessions.len() == 2 {
            break;
        }
    }
    assert_eq!(sessions.len(), 2, "rr spreads connections");
    let mut removed = sessions.pop().unwrap();
    let mut kept = sessions.pop().unwrap();
    assert_eq!(kept.echo("before\n").unwrap(), "before\n");

    // New list: drop `removed`'s backend, keep `kept`'s, add nothing else.
    let keep_backends: Vec<SocketAddrV4> = lab
        .backends()
        .into_iter()
        .zip(&lab.topo.backends)
        .filter(|(_, b)| b.name != removed.hello.backend)
        .map(|(addr, _)| addr)
        .collect();
    assert_eq!(keep_backends.len(), 2);
    lab.api()
        .put_service(&lab.service("tcp", "rr", &keep_backends))
        .unwrap();

    // The kept connection goes on, on its backend.
    for i in 0..5 {
        let msg = format!("after {i}\n");
        assert_eq!(
            kept.echo(&msg).unwrap(),
            msg,
            "connection on {} broke",
            kept.hello.backend
        );
    }
    // The removed backend's connection ended: its packets are scheduled as a
    // new flow to another backend, which does not know the connection.
    assert!(
        removed.echo("hello?\n").is_err(),
        "connection to removed backend {} still answered",
        removed.hello.backend
    );
    // New connections avoid the removed backend.
    let hellos = lab
        .topo
        .client
        .run(|| client::hellos(Proto::Tcp, vip, 10, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert!(
        hellos.iter().all(|h| h.backend != removed.hello.backend),
        "{hellos:?}"
    );
}

#[test]
fn deleted_service_stops_forwarding() {
    let lab = Lab::start(2).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    lab.serve_all("udp", "rr").unwrap();
    let vip = lab.vip();
    let client = &lab.topo.client;
    client
        .run(|| client::tcp_hello(vip, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    client
        .run(|| client::udp_hello(vip, IO_TIMEOUT))
        .unwrap()
        .unwrap();

    let reply = lab.api().delete(&service_path("tcp", vip)).unwrap();
    assert!((200..300).contains(&reply.status), "{reply:?}");
    let reply = lab.api().delete(&service_path("udp", vip)).unwrap();
    assert!((200..300).contains(&reply.status), "{reply:?}");
    assert_eq!(
        lab.api().get(&service_path("tcp", vip)).unwrap().status,
        404
    );

    let short = Duration::from_millis(700);
    let tcp = client.run(|| client::tcp_hello(vip, short)).unwrap();
    assert!(tcp.is_err(), "TCP still forwarded after delete: {tcp:?}");
    let udp = client.run(|| client::udp_hello(vip, short)).unwrap();
    assert!(udp.is_err(), "UDP still forwarded after delete: {udp:?}");

    // Backends themselves stay reachable (non-VIP traffic passes).
    let direct = lab.backends()[0];
    let hello = client
        .run(|| client::tcp_hello(direct, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(hello.peer, SocketAddr::V4(direct));
}
