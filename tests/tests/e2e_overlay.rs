//! End to end on the overlay topology (`tests::overlay_topology`): the
//! baseline without a load balancer (the lb namespace a kernel VXLAN VTEP)
//! carries TCP and UDP from the client to pods on every VXLAN node, and the
//! node network carries it encapsulated; pods on different nodes reach each
//! other through the flannel-style configuration; a transfer larger than the
//! MTU completes (PMTU discovery across `flannel.1`); ferrolb's plain DNAT
//! balances over pods on every node; nodes send replies to the load balancer's VTEP as
//! VXLAN with the encapsulated return path.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};

use lb_userspace::config::{DEFAULT_VXLAN_PORT, Encap};
use tests::api::service_json;
use tests::client::{self, Proto};
use tests::daemon::{Daemon, DaemonConfig};
use tests::flannel::{self, Vtep};
use tests::nft_counters::Counters;
use tests::overlay_topology::{
    ClientReturn, LB_NODE_DEV, LB_NODE_IP, LINK_MTU, Node, OverlayBuilder, OverlayTopology,
    UPLINK_DEV, VXLAN_MTU, client_net,
};
use tests::topology::{CLIENT_IP, IO_TIMEOUT, VIP};

const PORT: u16 = 8080;

/// Counters on a node's uplink and VXLAN device: `vxlan_in` (UDP 8472
/// arriving), `plain_in` (packets to its pods arriving unencapsulated),
/// `inner_in` (packets to its pods coming out of `flannel.1`).
fn node_counters(node: &Node) -> Counters {
    let cidr = node.pod_cidr;
    Counters::install(
        &node.ns,
        &[
            (
                "vxlan_in",
                format!("iifname \"{UPLINK_DEV}\" udp dport {DEFAULT_VXLAN_PORT}"),
            ),
            (
                "plain_in",
                format!("iifname \"{UPLINK_DEV}\" ip daddr {cidr}"),
            ),
            (
                "inner_in",
                format!("iifname \"{}\" ip daddr {cidr}", flannel::DEV),
            ),
        ],
    )
    .unwrap()
}

fn packets(counters: &Counters, name: &str) -> u64 {
    counters.packets(name).unwrap()
}

/// TCP (greeting) and UDP from `from` to the server of `pod_name` at `addr`;
/// the server saw the sender's own address (routed, not NATed).
fn hello_both(from: &tests::netns::Netns, addr: SocketAddrV4, pod_name: &str) {
    let tcp = from
        .run(|| client::tcp_hello(addr, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("TCP to {addr}: {e:#}"));
    assert_eq!(tcp.backend, pod_name);
    assert_eq!(tcp.seen_client, tcp.local, "routed, not NATed");
    let udp = from
        .run(|| client::udp_hello(addr, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("UDP to {addr}: {e:#}"));
    assert_eq!(udp.backend, pod_name);
    assert_eq!(udp.peer, SocketAddr::V4(addr));
}

#[test]
fn baseline_client_reaches_every_pod_on_every_vxlan_node_through_vxlan() {
    let mut t = OverlayBuilder::baseline().pods_per_node(2).build().unwrap();
    assert_eq!(t.pods().count(), 4);
    t.start_servers(PORT).unwrap();
    // The lb namespace (the router's VTEP) sees replies arrive as VXLAN
    // from each node, none plainly from a pod.
    let mut lb_rules = Vec::new();
    for node in &t.nodes {
        lb_rules.push((
            format!("vxlan_from_{}", node.name),
            format!(
                "iifname \"{LB_NODE_DEV}\" ip saddr {} udp dport {DEFAULT_VXLAN_PORT}",
                node.ip
            ),
        ));
        lb_rules.push((
            format!("plain_from_{}", node.name),
            format!("iifname \"{LB_NODE_DEV}\" ip saddr {}", node.pod_cidr),
        ));
    }
    let lb_counters = Counters::install(&t.lb, &lb_rules).unwrap();

    for node in &t.nodes {
        let counters = node_counters(node);
        for pod in &node.pods {
            hello_both(&t.client, SocketAddrV4::new(pod.ip, PORT), &pod.name);
        }
        // At least SYN, ACK, ACK of the greeting and the UDP datagram came
        // out of flannel.1; each arrived as UDP 8472 on the uplink; none
        // arrived plainly.
        let inner = packets(&counters, "inner_in");
        assert!(
            inner >= 4,
            "{}: {inner} packets out of flannel.1",
            node.name
        );
        assert!(
            packets(&counters, "vxlan_in") >= inner,
            "{}: fewer VXLAN packets on the uplink than decapsulated",
            node.name
        );
        assert_eq!(packets(&counters, "plain_in"), 0, "{}", node.name);
        // The greeting and the UDP reply at least went back through the
        // tunnel.
        let back = packets(&lb_counters, &format!("vxlan_from_{}", node.name));
        assert!(back >= 2, "{}: {back} VXLAN packets back", node.name);
        assert_eq!(
            packets(&lb_counters, &format!("plain_from_{}", node.name)),
            0
        );
    }
}

/// The kernel holds flannel's configuration for `node`, with the values
/// the topology reports.
fn assert_flannel_config(t: &OverlayTopology, node: &Node) {
    let vtep = node.vtep.expect("a VXLAN node");
    let link = node
        .ns
        .ip(&["-d", "link", "show", "dev", flannel::DEV])
        .unwrap();
    for part in [
        format!("mtu {VXLAN_MTU} "),
        format!("link/ether {} ", vtep.mac),
        format!("vxlan id 1 local {} dev {UPLINK_DEV} ", node.ip),
        format!("dstport {DEFAULT_VXLAN_PORT} nolearning "),
    ] {
        assert!(
            link.contains(&part),
            "{}: {part:?} not in {link}",
            node.name
        );
    }
    let addr = node
        .ns
        .ip(&["-4", "addr", "show", "dev", flannel::DEV])
        .unwrap();
    assert!(
        addr.contains(&format!("inet {}/32 ", vtep.gateway())),
        "{addr}"
    );
    let peers: Vec<Vtep> = t
        .nodes
        .iter()
        .filter(|o| o.index != node.index)
        .filter_map(|o| o.vtep)
        .chain([t.lb_vtep])
        .collect();
    let neigh = node.ns.ip(&["neigh", "show", "dev", flannel::DEV]).unwrap();
    let fdb = node
        .ns
        .exec("bridge", &["fdb", "show", "dev", flannel::DEV])
        .unwrap();
    let routes = node.ns.ip(&["route", "show"]).unwrap();
    for peer in peers {
        let gw = peer.gateway();
        assert!(
            neigh.contains(&format!("{gw} lladdr {} PERMANENT", peer.mac)),
            "{}: {neigh}",
            node.name
        );
        assert!(
            fdb.contains(&format!(
                "{} dst {} self permanent",
                peer.mac, peer.public_ip
            )),
            "{}: {fdb}",
            node.name
        );
        assert!(
            routes.contains(&format!(
                "{} via {gw} dev {} onlink",
                peer.subnet,
                flannel::DEV
            )),
            "{}: {routes}",
            node.name
        );
    }
}

#[test]
fn pods_on_different_vxlan_nodes_reach_each_other_through_flannel() {
    let mut t = OverlayTopology::builder().build().unwrap();
    t.start_servers(PORT).unwrap();
    for node in &t.nodes {
        assert_flannel_config(&t, node);
    }
    let (n1, n2) = (&t.nodes[0], &t.nodes[1]);
    let (a, b) = (&n1.pods[0], &n2.pods[0]);
    let (c1, c2) = (node_counters(n1), node_counters(n2));
    hello_both(&a.ns, SocketAddrV4::new(b.ip, PORT), &b.name);
    hello_both(&b.ns, SocketAddrV4::new(a.ip, PORT), &a.name);
    for (node, counters) in [(n1, &c1), (n2, &c2)] {
        let inner = packets(counters, "inner_in");
        // Each node received both exchanges' packets to its pod (one as
        // requests, one as replies) through flannel.1, none plainly.
        assert!(
            inner >= 6,
            "{}: {inner} packets out of flannel.1",
            node.name
        );
        assert!(packets(counters, "vxlan_in") >= inner, "{}", node.name);
        assert_eq!(packets(counters, "plain_in"), 0, "{}", node.name);
    }
}

/// 1 MB echoed over one TCP connection from the client to a pod through the
/// baseline; returns the PMTU the pod and the client learned towards each
/// other (None: none below the link's).
fn megabyte_through_baseline(pod_mtu: u32) -> (Option<u32>, Option<u32>) {
    let mut t = OverlayBuilder::baseline()
        .nodes(&[Encap::Vxlan])
        .pod_mtu(pod_mtu)
        .build()
        .unwrap();
    t.start_servers(PORT).unwrap();
    let pod = &t.nodes[0].pods[0];
    assert_eq!(pod.mtu, pod_mtu);
    let addr = SocketAddrV4::new(pod.ip, PORT);
    let hello = t
        .client
        .run(|| client::echo_bulk(addr, 1 << 20, IO_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("1 MB echo to {addr} (pod MTU {pod_mtu}): {e:#}"));
    assert_eq!(hello.backend, pod.name);
    (
        pod.ns.learned_mtu(CLIENT_IP).unwrap(),
        t.client.learned_mtu(pod.ip).unwrap(),
    )
}

#[test]
fn a_megabyte_over_tcp_through_the_baseline_with_pods_at_mtu_1500() {
    // Full-size segments from both ends do not fit flannel.1: the node (for
    // the pod) and the router (for the client) answered "fragmentation
    // needed", and both ends now send at the tunnel's MTU.
    let (pod, client) = megabyte_through_baseline(LINK_MTU);
    assert_eq!(pod, Some(VXLAN_MTU), "the pod's PMTU towards the client");
    assert_eq!(client, Some(VXLAN_MTU), "the client's PMTU towards the pod");
}

#[test]
fn a_megabyte_over_tcp_through_the_baseline_with_pods_at_mtu_1450() {
    // Pods at flannel's MTU announce an MSS that fits the tunnel: nothing
    // needed PMTU discovery.
    assert_eq!(megabyte_through_baseline(VXLAN_MTU), (None, None));
}

#[test]
fn ferrolb_plain_dnat_balances_over_pods_on_every_node() {
    let mut t = OverlayTopology::builder()
        .nodes(&[Encap::Vxlan, Encap::Ipip, Encap::None])
        .build()
        .unwrap();
    t.start_servers(PORT).unwrap();
    let daemon = Daemon::start(&t.lb, DaemonConfig::new(t.lb_ifaces())).unwrap();
    let vip = SocketAddrV4::new(VIP, PORT);
    for protocol in [Proto::Tcp, Proto::Udp] {
        let name = if protocol == Proto::Tcp { "tcp" } else { "udp" };
        daemon
            .api()
            .put_service(&service_json(
                "overlay/pods",
                name,
                vip,
                "rr",
                &t.pod_addrs(PORT),
            ))
            .unwrap();
        let hellos = t
            .client
            .run(|| client::hellos(protocol, vip, 12, IO_TIMEOUT))
            .unwrap()
            .unwrap_or_else(|e| panic!("{name} to the VIP: {e:#}\n{}", daemon.log()));
        client::check_nat(&hellos, vip).unwrap();
        let spread = client::spread(&hellos);
        let pods: Vec<&str> = t.pods().map(|p| p.name.as_str()).collect();
        assert_eq!(
            spread.keys().map(String::as_str).collect::<Vec<_>>(),
            pods,
            "{name}: every pod answered"
        );
    }
}

#[test]
fn with_the_vxlan_return_nodes_send_replies_to_the_lb_vtep() {
    let t = OverlayTopology::builder()
        .nodes(&[Encap::Vxlan])
        .client_return(ClientReturn::Vxlan)
        .build()
        .unwrap();
    let node = &t.nodes[0];
    let pod = &node.pods[0];
    // Outer: node -> LB, UDP 8472. VXLAN header (8 bytes after UDP's 8): VNI
    // 1 at bits 32..56. Inner Ethernet destination: the LB's VTEP MAC;
    // inner IPv4 destination (46 bytes after the UDP header): the client.
    let mac = t
        .lb_vtep
        .mac
        .0
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let client = u32::from(CLIENT_IP);
    let vxlan = format!(
        "iifname \"{LB_NODE_DEV}\" ip saddr {} ip daddr {LB_NODE_IP} udp dport {DEFAULT_VXLAN_PORT} \
         @th,96,24 1 @th,128,48 0x{mac} @th,368,32 {client}",
        node.ip
    );
    let plain = format!("iifname \"{LB_NODE_DEV}\" ip daddr {}", client_net());
    let counters = Counters::install(&t.lb, &[("vxlan", vxlan), ("plain", plain)]).unwrap();

    let sent = pod
        .ns
        .run(|| {
            let socket = UdpSocket::bind("0.0.0.0:0")?;
            socket.send_to(b"reply", SocketAddrV4::new(CLIENT_IP, 9))
        })
        .unwrap()
        .unwrap();
    assert_eq!(sent, 5);
    // Counted as the packet arrives; allow the veths a moment.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while counters.packets("vxlan").unwrap() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(counters.packets("vxlan").unwrap(), 1);
    assert_eq!(counters.packets("plain").unwrap(), 0);
}

#[test]
fn bad_builder_settings_are_refused_before_anything_is_created() {
    let refused = |builder: OverlayBuilder, says: &str| {
        let err = builder.build().err().expect("refused");
        assert!(format!("{err:#}").contains(says), "{err:#}");
    };
    refused(
        OverlayBuilder::new().nodes(&[]),
        "nodes must be 1..=20, got 0",
    );
    refused(OverlayBuilder::new().pods_per_node(0), "pods per node");
    refused(
        OverlayBuilder::new().pod_mtu(9000),
        "pod MTU must be 576..=1500",
    );
    refused(
        OverlayBuilder::new().node_hop(1600),
        "the nodes' MTU behind the router must be 576..=1500, got 1600",
    );
    refused(
        OverlayBuilder::new().lb_overlay_ip(std::net::Ipv4Addr::new(10, 244, 1, 5)),
        "10.244.1.5 is not in 10.244.0.0/24",
    );
}
