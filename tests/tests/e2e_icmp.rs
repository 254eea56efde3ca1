//! ICMP errors about balanced connections, end to end: the backend's port
//! unreachable reaches the client's socket as a refusal from the VIP, and a
//! client-side router's fragmentation-needed reaches the backend, whose
//! path-MTU discovery then lets a large transfer through.

use std::io::ErrorKind;
use std::net::{SocketAddrV4, UdpSocket};

use lb_userspace::config::Encap;
use tests::api::service_json;
use tests::client;
use tests::lab::Lab;
use tests::netns::{Netns, veth};
use tests::overlay_topology::{ClientReturn, OverlayBuilder};
use tests::topology::{CLIENT_IP, HOST_DEV, IO_TIMEOUT, prepare_host_dev};

fn datapath_metric(lab: &Lab, reason: &str) -> u64 {
    lab.api()
        .metric(&format!(
            "ferrolb_datapath_packets_total{{reason=\"{reason}\"}}"
        ))
        .unwrap()
}

fn vip() -> SocketAddrV4 {
    SocketAddrV4::new(tests::topology::VIP, 80)
}

/// From a UDP socket connected to `vip`: send a datagram, then receive.
/// The kernel reports an ICMP error about the socket's own datagrams
/// (client -> VIP) as the receive's error.
fn refused_udp(vip: SocketAddrV4) -> std::io::Result<usize> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(IO_TIMEOUT))?;
    socket.connect(vip)?;
    socket.send(b"anyone?")?;
    socket.recv(&mut [0u8; 64])
}

#[test]
fn udp_to_a_closed_backend_port_is_refused_at_the_client() {
    let lab = Lab::start(1).unwrap();
    // Nothing listens on port 9 of the backend: its kernel answers port
    // unreachable, about the DNATed datagram (client -> backend:9).
    let closed = SocketAddrV4::new(lab.topo.backends[0].ip, 9);
    lab.api()
        .put_service(&lab.service("udp", "rr", &[closed]))
        .unwrap();
    let vip = lab.vip();

    let result = lab.topo.client.run(|| refused_udp(vip)).unwrap();
    match result {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!(
            "expected ECONNREFUSED from {vip}, got {other:?}\ndaemon log:\n{}",
            lab.daemon.log()
        ),
    }
    assert_eq!(datapath_metric(&lab, "icmp_to_client"), 1);
}

#[test]
fn frag_needed_from_a_client_side_router_reaches_the_backend() {
    let lab = Lab::start(1).unwrap();
    lab.serve_all("tcp", "rr").unwrap();

    // A host behind the client namespace, which routes for it: the path
    // toward it has an MTU of 1000 (locked on the route: the forwarding path
    // honours it then), the hosts' links stay at 1500, so the backend
    // sends full-sized segments until the router's fragmentation-needed
    // (to the VIP, about the VIP's segment) reaches it.
    let far = Netns::create("far").unwrap();
    let router = &lab.topo.client;
    veth(router, "far0", &far, HOST_DEV).unwrap();
    router.addr("far0", "10.0.5.1/24").unwrap();
    far.addr(HOST_DEV, "10.0.5.2/24").unwrap();
    far.ip(&["route", "add", "default", "via", "10.0.5.1"])
        .unwrap();
    prepare_host_dev(&far, HOST_DEV).unwrap();
    router.sysctl("net/ipv4/ip_forward", "1").unwrap();
    router
        .ip(&[
            "route",
            "replace",
            "10.0.5.0/24",
            "dev",
            "far0",
            "mtu",
            "lock",
            "1000",
        ])
        .unwrap();
    lab.topo
        .lb
        .ip(&["route", "add", "10.0.5.0/24", "via", &CLIENT_IP.to_string()])
        .unwrap();

    let vip = lab.vip();
    let hello = far
        .run(|| client::echo_bulk(vip, 1 << 20, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| {
            panic!(
                "1 MiB echo from behind a 1000-byte path: {e:#}\ndaemon log:\n{}",
                lab.daemon.log()
            )
        });
    assert_eq!(hello.peer.to_string(), vip.to_string());
    assert_eq!(
        hello.seen_client.ip().to_string(),
        "10.0.5.2",
        "DNAT keeps the client address"
    );
    assert!(datapath_metric(&lab, "icmp_to_backend") >= 1);
}

#[test]
fn port_unreachable_from_a_pod_behind_vxlan_comes_back_encapsulated_and_refuses_the_client() {
    // One flannel-like VXLAN node, no plain route from the load balancer to
    // the pods, the node sending everything for the client back into the
    // tunnel: the pod's error arrives VXLAN-encapsulated.
    let t = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan])
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    let closed = SocketAddrV4::new(t.nodes[0].pods[0].ip, 9);
    daemon
        .api()
        .put_service(&service_json(
            "default/closed",
            "udp",
            vip(),
            "rr",
            &[closed],
        ))
        .unwrap();

    let result = t.client.run(|| refused_udp(vip())).unwrap();
    match result {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!(
            "expected ECONNREFUSED from {}, got {other:?}\ndaemon log:\n{}",
            vip(),
            daemon.log()
        ),
    }
    let metric = |reason: &str| {
        daemon
            .api()
            .metric(&format!(
                "ferrolb_datapath_packets_total{{reason=\"{reason}\"}}"
            ))
            .unwrap()
    };
    assert!(metric("encap_vxlan") >= 1);
    assert_eq!(metric("icmp_to_client"), 1);
    assert!(
        metric("decapsulated") >= 1,
        "the error came back encapsulated"
    );
}
