//! End to end: the NAT modes on the overlay topology
//! (`tests::overlay_topology`), pods behind a flannel-like VXLAN node and
//! an IPIP node (decapsulated by `ferrolbd --node-decap`), the load balancer
//! with no plain route to any pod network. For `dnat` the pods see the
//! client (the VXLAN node sends replies into the tunnel, the IPIP node
//! routes them to the load balancer); for `onearm` the pods see the
//! load balancer's node-network address (its tunnel source) and answer it
//! plainly; for `fullnat` they see its overlay address (`--overlay-ip`),
//! and the VXLAN node sends their answers into the tunnel. TCP and UDP reach
//! every pod, the client always talks to the VIP, and with pods at MTU 1500
//! a transfer of many segments completes (the load balancer clamps the MSS
//! to what fits the tunnels).

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddrV4},
    time::Duration,
};

use lb_userspace::config::Encap;
use serde_json::json;
use tests::{
    client,
    daemon::Daemon,
    overlay_topology::{ClientReturn, LB_NODE_IP, OverlayBuilder, OverlayTopology},
};

const POD_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(3);

fn vip(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(tests::topology::VIP, port)
}

fn topology() -> OverlayTopology {
    let mut t = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan, Encap::Ipip])
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    t.start_servers(POD_PORT).unwrap();
    t
}

/// A TCP and a UDP service on VIP port `port` in `mode` over every pod.
fn put_services(daemon: &Daemon, t: &OverlayTopology, mode: &str, port: u16) {
    for protocol in ["tcp", "udp"] {
        let backends: Vec<_> = t
            .pod_addrs(POD_PORT)
            .iter()
            .map(|b| json!({"ip": b.ip().to_string(), "port": b.port()}))
            .collect();
        let body = json!({
            "name": format!("default/{mode}"),
            "protocol": protocol,
            "mode": mode,
            "backends": backends,
        });
        let reply = daemon
            .api()
            .put(
                &format!("/v1/services/{protocol}/{}/{port}", vip(port).ip()),
                &body,
            )
            .unwrap();
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

/// Connections to `vip` reach every pod (TCP and UDP), each pod sees
/// `source` as the client's address, and the client sees the VIP; a
/// transfer of several MTUs completes.
fn check_mode(daemon: &Daemon, t: &OverlayTopology, vip: SocketAddrV4, source: Ipv4Addr) {
    let mut tcp_pods = std::collections::BTreeSet::new();
    let mut udp_pods = std::collections::BTreeSet::new();
    for round in 0..4 {
        let tcp = t
            .client
            .run(|| client::tcp_hello(vip, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("TCP {round} to {vip}: {e:#}\n{}", daemon.log()));
        assert_eq!(tcp.seen_client.ip(), IpAddr::V4(source), "{tcp:?}");
        assert_eq!(tcp.peer, vip.into());
        tcp_pods.insert(tcp.backend);
        let udp = t
            .client
            .run(|| client::udp_hello(vip, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("UDP {round} to {vip}: {e:#}\n{}", daemon.log()));
        assert_eq!(udp.seen_client.ip(), IpAddr::V4(source), "{udp:?}");
        assert_eq!(udp.peer, vip.into(), "the reply came from the VIP");
        udp_pods.insert(udp.backend);
    }
    let pods = t.pods().count();
    assert_eq!(tcp_pods.len(), pods, "TCP reached every pod: {tcp_pods:?}");
    assert_eq!(udp_pods.len(), pods, "UDP reached every pod: {udp_pods:?}");
    for _ in 0..pods {
        let bulk = t
            .client
            .run(|| client::echo_bulk(vip, 300_000, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("bulk to {vip}: {e:#}\n{}", daemon.log()));
        assert_eq!(bulk.seen_client.ip(), IpAddr::V4(source));
    }
}

#[test]
fn dnat_pods_see_the_client_and_answer_through_the_tunnel_or_the_route() {
    let t = topology();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    put_services(&daemon, &t, "dnat", 80);
    check_mode(&daemon, &t, vip(80), tests::topology::CLIENT_IP);
    assert!(daemon.api().datapath_packets("mss_clamped").unwrap() > 0);
    // The VXLAN node routes the client network into the tunnel.
    assert!(daemon.api().datapath_packets("decapsulated").unwrap() > 0);
}

#[test]
fn onearm_pods_see_the_load_balancers_node_address_and_answer_it_plainly() {
    let t = topology();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    put_services(&daemon, &t, "onearm", 80);
    check_mode(&daemon, &t, vip(80), LB_NODE_IP);
    assert!(daemon.api().datapath_packets("mss_clamped").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_vxlan").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_ipip").unwrap() > 0);
    // Pods answered the node-network address: no reply came encapsulated.
    assert_eq!(daemon.api().datapath_packets("decapsulated").unwrap(), 0);
    assert_eq!(
        daemon
            .api()
            .datapath_packets("drop_snat_ports_busy")
            .unwrap(),
        0
    );
}

#[test]
fn fullnat_pods_see_the_overlay_address_and_answer_through_the_tunnel() {
    let t = topology();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    put_services(&daemon, &t, "fullnat", 80);
    check_mode(&daemon, &t, vip(80), t.lb_overlay_ip);
    assert!(daemon.api().datapath_packets("mss_clamped").unwrap() > 0);
    // The VXLAN node sent its pod's answers to the overlay address into the
    // tunnel; the load balancer decapsulated them.
    assert!(daemon.api().datapath_packets("decapsulated").unwrap() > 0);
    assert_eq!(
        daemon
            .api()
            .datapath_packets("drop_encap_malformed")
            .unwrap(),
        0
    );

    // An explicit snat_ip of the overlay network works the same.
    let other = Ipv4Addr::new(10, 244, 0, 9);
    let backends: Vec<_> = t
        .pod_addrs(POD_PORT)
        .iter()
        .map(|b| json!({"ip": b.ip().to_string(), "port": b.port()}))
        .collect();
    let reply = daemon
        .api()
        .put(
            &format!("/v1/services/tcp/{}/81", vip(81).ip()),
            &json!({"mode": "fullnat", "snat_ip": other.to_string(), "backends": backends}),
        )
        .unwrap();
    assert_eq!(reply.status, 201, "{}", reply.body);
    for _ in 0..2 {
        let tcp = t
            .client
            .run(|| client::tcp_hello(vip(81), TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("TCP to {}: {e:#}\n{}", vip(81), daemon.log()));
        assert_eq!(tcp.seen_client.ip(), IpAddr::V4(other));
    }
}
