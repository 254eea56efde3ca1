//! End to end: a TCP connection from a client to a VIP whose backend is a
//! pod behind a flannel-like VXLAN node (kernel VXLAN device, `nolearning`,
//! static fdb and neighbour entries for the load balancer's VTEP), on the
//! overlay topology (`tests::overlay_topology`) whose load balancer has no
//! plain route to the pod network. ferrolbd
//! discovers its tunnel source and VTEP MAC, sends the connection
//! VXLAN-encapsulated to the node, the pod sees the client's address (DNAT),
//! and the pod's replies come back encapsulated and are reverse-NATed.

use std::{net::SocketAddrV4, time::Duration};

use lb_userspace::config::Encap;
use tests::{
    client::TcpSession,
    daemon::{Daemon, DaemonConfig},
    nft_counters::Counters,
    overlay_topology::{ClientReturn, OverlayBuilder, OverlayTopology},
    topology::{CLIENT_IP, LB_CLIENT_DEV},
};

const VIP: SocketAddrV4 = SocketAddrV4::new(tests::topology::VIP, 80);
const POD_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(3);

/// One flannel-like VXLAN node with one pod (serving on [`POD_PORT`]), the
/// load balancer with no route to the pod network (only the tunnel reaches
/// it), and the node sending replies to the client into the tunnel.
fn vxlan_node() -> OverlayTopology {
    let mut t = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan])
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    t.start_servers(POD_PORT).unwrap();
    t
}

/// ferrolbd in `t.lb` without `--tunnel-source` or `--vtep-mac` (it
/// discovers both from its route to the node), the node's tunnel route and
/// a service on the VIP with the node's pod as its backend.
fn lb(t: &OverlayTopology) -> Daemon {
    // Until the node's neighbour is resolved the datapath hands the
    // encapsulated packet (from the load balancer's own address) to the
    // kernel, which forwards it only with accept_local.
    t.lb.sysctl(&format!("net/ipv4/conf/{LB_CLIENT_DEV}/accept_local"), "1")
        .unwrap();
    let daemon = Daemon::start(&t.lb, DaemonConfig::new(t.lb_ifaces())).unwrap();
    let api = daemon.api();
    let reply = api.put_tunnel(&t.nodes[0].tunnel_spec()).unwrap();
    assert_eq!(reply.status, 201, "{}", reply.body);
    let pod = &t.nodes[0].pods[0];
    api.put_service(&tests::api::service_json(
        "default/pod",
        "tcp",
        VIP,
        "rr",
        &[SocketAddrV4::new(pod.ip, POD_PORT)],
    ))
    .unwrap();
    daemon
}

#[test]
fn tcp_to_a_pod_behind_a_vxlan_node_and_back() {
    let t = vxlan_node();
    let daemon = lb(&t);
    let node = &t.nodes[0];
    // Frames out of the node's flannel.1 whose inner source is the VTEP MAC
    // the node trusts: ferrolbd discovered it (the MAC of the interface
    // holding its tunnel source).
    let from_lb_vtep = format!(
        "iifname \"{}\" ether saddr {}",
        tests::flannel::DEV,
        t.lb_vtep.mac
    );
    let counters = Counters::install(&node.ns, &[("from_lb_vtep", from_lb_vtep)]).unwrap();

    for round in 0..3 {
        let mut session = t
            .client
            .run(|| TcpSession::connect(VIP, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e:#}\n{}", daemon.log()));
        assert_eq!(session.hello.backend, node.pods[0].name);
        // DNAT: the pod saw the client's own address.
        assert_eq!(
            session.hello.seen_client.ip(),
            std::net::IpAddr::V4(CLIENT_IP)
        );
        assert_eq!(
            session.hello.peer,
            VIP.into(),
            "the reply came from the VIP"
        );
        let echo = t.client.run(|| session.echo("through the tunnel")).unwrap();
        assert_eq!(echo.unwrap(), "through the tunnel");
    }
    assert!(counters.packets("from_lb_vtep").unwrap() > 0);
    // Delivered encapsulated (no route to the pod network exists in the lb
    // namespace), and the replies came back encapsulated.
    assert!(daemon.api().datapath_packets("encap_vxlan").unwrap() > 0);
    assert!(
        daemon.api().datapath_packets("decapsulated").unwrap() > 0,
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon
            .api()
            .datapath_packets("drop_encap_malformed")
            .unwrap(),
        0
    );
}

/// Without the tunnel route the load balancer cannot reach the pod at all:
/// what makes the test above depend on the encapsulation.
#[test]
fn without_the_tunnel_route_the_pod_is_unreachable() {
    let t = vxlan_node();
    let daemon = lb(&t);
    let path = format!("/v1/tunnels/{}", t.nodes[0].name);
    assert_eq!(daemon.api().delete(&path).unwrap().status, 204);
    let result = t
        .client
        .run(|| TcpSession::connect(VIP, Duration::from_secs(1)))
        .unwrap();
    assert!(result.is_err(), "connected without a tunnel: {result:?}");
}

/// The overlay topology (fabric bridge, flannel-style VXLAN nodes and an
/// IPIP node decapsulating with `ferrolbd --node-decap`, two pods each), the
/// load balancer with no route to any pod network: TCP connections spread
/// over every pod, each pod sees the client, replies come back (VXLAN nodes
/// encapsulated to the load balancer's VTEP, the IPIP node routed).
#[test]
fn overlay_with_vxlan_and_ipip_nodes_reaches_every_pod() {
    use tests::overlay_topology::VXLAN_MTU;

    let mut topo = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan, Encap::Vxlan, Encap::Ipip])
        .pods_per_node(2)
        .pod_mtu(VXLAN_MTU)
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    topo.start_servers(POD_PORT).unwrap();
    let daemon = tests::overlay_lb::start(&topo).unwrap();
    let pods = topo.pod_addrs(POD_PORT);
    daemon
        .api()
        .put_service(&tests::api::service_json(
            "default/overlay",
            "tcp",
            VIP,
            "rr",
            &pods,
        ))
        .unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for round in 0..pods.len() * 2 {
        let mut session = topo
            .client
            .run(|| TcpSession::connect(VIP, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("connection {round}: {e:#}\n{}", daemon.log()));
        assert_eq!(
            session.hello.seen_client.ip(),
            std::net::IpAddr::V4(topo.client_ip())
        );
        assert_eq!(session.hello.peer, VIP.into());
        let echo = topo.client.run(|| session.echo("overlay")).unwrap();
        assert_eq!(echo.unwrap(), "overlay");
        seen.insert(session.hello.backend);
    }
    assert_eq!(seen.len(), pods.len(), "every pod answered: {seen:?}");
    assert!(daemon.api().datapath_packets("encap_vxlan").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_ipip").unwrap() > 0);
    assert!(daemon.api().datapath_packets("decapsulated").unwrap() > 0);
}

/// Pods at MTU 1500 behind a flannel-like VXLAN node (whose `flannel.1` has
/// 1450) and behind an IPIP node: data echoed over one TCP connection to
/// each arrives intact. Full-size segments would not fit the tunnels; the
/// load balancer clamps the MSS of the SYN and of the pod's SYN-ACK to what
/// does (1410 for VXLAN, 1440 for IPIP), so neither end sends anything too
/// large (and no ICMP was needed). Without clamping nor ICMP the transfers
/// stall at the first full-size segment.
#[test]
fn megabytes_to_pods_at_mtu_1500_behind_vxlan_and_ipip_nodes_arrive_intact() {
    use tests::overlay_topology::LINK_MTU;

    const LEN: usize = 4 << 20;
    let mut topo = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan, Encap::Ipip])
        .pod_mtu(LINK_MTU)
        .lb_pod_routes(false)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    topo.start_servers(POD_PORT).unwrap();
    let daemon = tests::overlay_lb::start(&topo).unwrap();
    for (i, node) in topo.nodes.iter().enumerate() {
        let len = LEN;
        let pod = &node.pods[0];
        assert_eq!(pod.mtu, LINK_MTU);
        let vip = SocketAddrV4::new(tests::topology::VIP, 80 + i as u16);
        let reply = daemon
            .api()
            .put_service(&tests::api::service_json(
                &format!("default/mtu-{i}"),
                "tcp",
                vip,
                "rr",
                &[SocketAddrV4::new(pod.ip, POD_PORT)],
            ))
            .unwrap();
        assert!(reply.status < 300, "{}", reply.body);
        let hello = topo
            .client
            .run(|| tests::client::echo_bulk(vip, len, TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| {
                let counters: Vec<(&str, u64)> = lb_common::GlobalStat::ALL
                    .iter()
                    .map(|s| (s.name(), daemon.api().datapath_packets(s.name()).unwrap()))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                panic!(
                    "{len} bytes through {vip} to {} behind {}: {e:#}\ncounters {counters:?}\n{}",
                    pod.name,
                    node.name,
                    daemon.log()
                )
            });
        assert_eq!(hello.backend, pod.name);
    }
    assert!(daemon.api().datapath_packets("encap_vxlan").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_ipip").unwrap() > 0);
    // The SYN and the SYN-ACK of both connections.
    assert_eq!(daemon.api().datapath_packets("mss_clamped").unwrap(), 4);
    assert_eq!(
        daemon.api().datapath_packets("icmp_frag_needed").unwrap(),
        0
    );
}

/// A UDP datagram with DF (Linux's default for UDP) that fits the client's
/// link but not the VXLAN tunnel to the pod's node: the load balancer
/// answers ICMP fragmentation-needed from the VIP with the MTU left after
/// the overhead, and the client's kernel records that path MTU.
#[test]
fn oversized_df_datagram_teaches_the_client_the_tunnel_mtu() {
    let t = vxlan_node();
    let daemon = lb(&t);
    let vip = SocketAddrV4::new(tests::topology::VIP, 53);
    let pod = &t.nodes[0].pods[0];
    let reply = daemon
        .api()
        .put_service(&tests::api::service_json(
            "default/udp",
            "udp",
            vip,
            "rr",
            &[SocketAddrV4::new(pod.ip, POD_PORT)],
        ))
        .unwrap();
    assert!(reply.status < 300, "{}", reply.body);
    t.client
        .run(|| -> std::io::Result<()> {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
            // 1472 bytes of payload: a 1500-byte datagram, 1550 in VXLAN.
            socket.send_to(&[7u8; 1472], vip)?;
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .unwrap()
        .unwrap();
    let route = t
        .client
        .ip(&["route", "get", &vip.ip().to_string()])
        .unwrap();
    assert!(
        route.contains("mtu 1450"),
        "the client's route to the VIP: {route}"
    );
    assert_eq!(
        daemon.api().datapath_packets("icmp_frag_needed").unwrap(),
        1
    );
}
