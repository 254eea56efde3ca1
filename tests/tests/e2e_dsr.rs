//! End to end: direct server return on the overlay topology
//! (`tests::overlay_topology`). A TCP and a UDP service in mode `dsr` over
//! pods on a VXLAN node, an IPIP node and a plainly routed node; every pod
//! holds the VIP on its loopback and decapsulates with `ferrolbd
//! --node-decap` in its own namespace (`tests::dsr_backends`). The pods see
//! the client's own address, are reached at the VIP, and answer the client
//! directly from the VIP: the replies are routed by the nodes (their
//! default gateway happens to be the load balancer's node-network address,
//! where the datapath passes them on untouched; or sent into the VXLAN
//! tunnel to the load balancer, which decapsulates them and passes them
//! on), never reverse-NATed. The pods run at MTU 1500 behind the tunnels:
//! the client's SYN has its MSS clamped by the load balancer, so the pods'
//! accepted sockets send segments that fit (`TCP_MAXSEG`, reported in the
//! test server's greeting).

use std::net::{IpAddr, SocketAddrV4};

use lb_common::tunnel::{IPIP_OVERHEAD, VXLAN_OVERHEAD, tunnel_mss};
use lb_userspace::config::Encap;
use tests::{
    api::{service_json, service_path},
    client::{self, Proto},
    daemon::Daemon,
    dsr_backends,
    nft_counters::Counters,
    overlay_topology::{ClientReturn, LB_NODE_DEV, LINK_MTU, OverlayBuilder, OverlayTopology},
    topology::{CLIENT_IP, IO_TIMEOUT, VIP},
};

const PORT: u16 = 80;

#[test]
fn dsr_reaches_pods_over_vxlan_ipip_and_plain_routes_and_they_answer_directly() {
    let t = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan, Encap::Ipip, Encap::None])
        .build()
        .unwrap();
    let vip = SocketAddrV4::new(VIP, PORT);
    let pods = dsr_backends::setup(&t, vip).unwrap();
    let daemon = tests::overlay_lb::start(&t).unwrap();

    // What reaches the nodes: IPIP addressed to the pod (through the VXLAN
    // node's flannel.1, or plainly), carrying client -> VIP.
    let mut rules = Vec::new();
    for node in &t.nodes {
        for pod in &node.pods {
            // The inner header's destination, 16 bytes into the inner IPv4
            // header (20 bytes after the outer one's start).
            rules.push((
                format!("ipip_to_{}", pod.name),
                format!(
                    "ip daddr {} ip protocol 4 @nh,288,32 {}",
                    pod.ip,
                    u32::from(VIP)
                ),
            ));
        }
    }
    let node_counters: Vec<Counters> = t
        .nodes
        .iter()
        .map(|n| {
            Counters::install(
                &n.ns,
                &rules
                    .iter()
                    .filter(|(name, _)| n.pods.iter().any(|p| name.ends_with(&p.name)))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        })
        .collect();
    // The replies cross the load balancer as plain packets from the VIP.
    let lb_counters = Counters::install(
        &t.lb,
        &[(
            "replies_from_vip",
            format!("iifname \"{LB_NODE_DEV}\" ip saddr {VIP} ip daddr {CLIENT_IP}"),
        )],
    )
    .unwrap();

    for protocol in [Proto::Tcp, Proto::Udp] {
        dsr_exchanges(&t, &daemon, protocol, vip);
    }

    for (node, counters) in t.nodes.iter().zip(&node_counters) {
        for pod in &node.pods {
            let n = counters.packets(&format!("ipip_to_{}", pod.name)).unwrap();
            assert!(n >= 3, "{}: {n} IPIP packets toward the pod", pod.name);
        }
    }
    for d in &pods.decap {
        let n = d
            .api()
            .metric("ferrolb_decap_packets_total{result=\"decapsulated\"}")
            .unwrap();
        assert!(n >= 3, "a pod decapsulated {n} packets");
    }
    assert!(lb_counters.packets("replies_from_vip").unwrap() >= 6);

    // Megabytes to every pod (at MTU 1500) complete: the pod's SYN-ACK does
    // not pass the load balancer, so the client's full-size segments do not
    // fit the tunnel; the load balancer answers them with ICMP
    // fragmentation-needed and the client's path MTU follows.
    for round in 0..t.pods().count() {
        let hello = t
            .client
            .run(|| client::echo_bulk(vip, 2 << 20, IO_TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("bulk {round} to the VIP: {e:#}\n{}", daemon.log()));
        assert_eq!(hello.seen_client.ip(), IpAddr::V4(CLIENT_IP));
    }
    assert!(daemon.api().datapath_packets("icmp_frag_needed").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_vxlan").unwrap() > 0);
    assert!(daemon.api().datapath_packets("encap_ipip").unwrap() > 0);
    assert_eq!(daemon.api().datapath_packets("decapsulated").unwrap(), 0);
}

/// Puts a dsr service (`protocol` on `vip`) over every pod, makes 9
/// exchanges from the client and checks what DSR promises: every pod
/// answered, from the VIP, having seen the client's own address; the
/// service counted the requests and no reverse-NATed reply.
fn dsr_exchanges(t: &OverlayTopology, daemon: &Daemon, protocol: Proto, vip: SocketAddrV4) {
    let name = if protocol == Proto::Tcp { "tcp" } else { "udp" };
    let mut service = service_json("overlay/dsr", name, vip, "rr", &t.pod_addrs(vip.port()));
    service["mode"] = "dsr".into();
    let reply = daemon.api().put_service(&service).unwrap();
    assert!(reply.status < 300, "{}", reply.body);
    let hellos = t
        .client
        .run(|| client::hellos(protocol, vip, 9, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("{name} to the VIP: {e:#}\n{}", daemon.log()));
    // The client's peer is the VIP; the pod saw the client's address and
    // port.
    client::check_nat(&hellos, vip).unwrap();
    for h in &hellos {
        assert_eq!(h.seen_client.ip(), IpAddr::V4(CLIENT_IP), "{h:?}");
    }
    let spread = client::spread(&hellos);
    let names: Vec<&str> = t.pods().map(|p| p.name.as_str()).collect();
    assert_eq!(
        spread.keys().map(String::as_str).collect::<Vec<_>>(),
        names,
        "{name}: every pod answered"
    );
    if protocol == Proto::Tcp {
        check_mss_clamped(t, &hellos);
        assert!(daemon.api().datapath_packets("mss_clamped").unwrap() >= 9);
    }
    // Nothing was reverse-NATed: the service has no reply packets.
    let view = daemon
        .api()
        .get(&service_path(name, vip))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(view["stats"]["reply_packets"], 0, "{name}: {view}");
    assert!(view["stats"]["packets"].as_u64().unwrap() >= 9, "{view}");
}

/// TCP options a Linux connection carries in every segment (timestamps),
/// which `TCP_MAXSEG` leaves out.
const TIMESTAMPS_LEN: u32 = 12;

/// Every pod's accepted socket sends segments that fit the tunnel the load
/// balancer reaches it through (DSR: one IPIP header, VXLAN's around it
/// behind a VXLAN route; the node network's MTU): the client's SYN had its
/// MSS clamped on the way. The pods run at MTU 1500 and the client's SYN
/// carried 1460, so without the clamp the pods would send larger segments.
fn check_mss_clamped(t: &OverlayTopology, hellos: &[client::Hello]) {
    for h in hellos {
        let pod = t
            .pods()
            .find(|p| p.name == h.backend)
            .unwrap_or_else(|| panic!("{h:?}: no such pod"));
        let node = &t.nodes[usize::from(pod.node) - 1];
        let overhead = if node.encap == Encap::Vxlan {
            IPIP_OVERHEAD + VXLAN_OVERHEAD
        } else {
            IPIP_OVERHEAD
        };
        let fits = u32::from(tunnel_mss(LINK_MTU as u16, overhead));
        let unclamped = pod.mtu - 40 - TIMESTAMPS_LEN;
        assert!(
            fits < unclamped,
            "{}: the test needs pods at MTU 1500",
            pod.name
        );
        let mss = h
            .mss
            .unwrap_or_else(|| panic!("{h:?}: no MSS in the greeting"));
        assert!(
            mss <= fits,
            "{}: the pod's socket sends {mss}-byte segments, more than the {fits} that fit the tunnel",
            pod.name
        );
    }
}

#[test]
fn dsr_replies_a_vxlan_node_sends_into_the_tunnel_are_passed_on_decapsulated() {
    // The VXLAN node routes the client network into flannel.1, toward the
    // load balancer's VTEP (what DNAT's encapsulated return path needs):
    // the pods' DSR replies arrive VXLAN-encapsulated from a VIP.
    let t = OverlayBuilder::new()
        .nodes(&[Encap::Vxlan])
        .pods_per_node(2)
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    let vip = SocketAddrV4::new(VIP, PORT);
    let _pods = dsr_backends::setup(&t, vip).unwrap();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    for protocol in [Proto::Tcp, Proto::Udp] {
        dsr_exchanges(&t, &daemon, protocol, vip);
    }
    assert!(daemon.api().datapath_packets("pass_dsr_reply").unwrap() >= 6);
    assert_eq!(daemon.api().datapath_packets("decapsulated").unwrap(), 0);
    assert_eq!(
        daemon
            .api()
            .datapath_packets("pass_encap_not_ours")
            .unwrap(),
        0
    );
}
