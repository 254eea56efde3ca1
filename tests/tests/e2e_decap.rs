//! End to end: a node without the kernel's ipip module decapsulates IPIP
//! with `ferrolbd --node-decap` and routes the inner packet to a pod, which
//! answers the client directly: plain IPIP delivery to a pod IP, and DSR
//! (inner destination the VIP, bound on the pod's loopback). On the overlay
//! topology (`tests::overlay_topology`) with one IPIP node, whose ferrolbd
//! the tests start themselves; the load balancer's namespace (a plain router
//! here) sends the client's datagrams IPIP-encapsulated to the node.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use anyhow::Result;
use lb_userspace::config::Encap;
use tests::daemon::{Daemon, DaemonConfig};
use tests::ipip_socket::{IpipSocket, UdpReply, udp_exchange};
use tests::overlay_topology::{OverlayBuilder, OverlayTopology, UPLINK_DEV};
use tests::server;
use tests::topology::{CLIENT_IP, VIP};

const PORT: u16 = 8080;
const TRIES: u64 = 3;
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// One IPIP node with one pod, no ferrolbd on the node yet.
fn ipip_node() -> OverlayTopology {
    OverlayBuilder::new()
        .nodes(&[Encap::Ipip])
        .node_decap(false)
        .build()
        .unwrap()
}

/// `ferrolbd --node-decap` on the node's uplink.
fn node_daemon(t: &OverlayTopology) -> Daemon {
    let mut config = DaemonConfig::new(Vec::new());
    config.node_decap = vec![UPLINK_DEV.to_string()];
    Daemon::start(&t.nodes[0].ns, config).unwrap()
}

/// `ferrolb_decap_packets_total{result="decapsulated"}` on the node.
fn decapsulated(daemon: &Daemon) -> u64 {
    daemon
        .api()
        .metric("ferrolb_decap_packets_total{result=\"decapsulated\"}")
        .unwrap()
}

/// Sends a UDP datagram from the client (a socket in the client namespace
/// on `CLIENT_IP`) to `dst`, IPIP-encapsulated by the load balancer's
/// namespace to the node, up to `tries` times until the reply comes.
fn exchange(t: &OverlayTopology, dst: SocketAddrV4, tries: u64) -> Result<UdpReply> {
    let client = t
        .client
        .run(|| UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, 0)))??;
    client.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let tunnel = IpipSocket::open(&t.lb)?;
    udp_exchange(&tunnel, t.nodes[0].ip, &client, dst, tries)
}

#[test]
fn ipip_to_a_pod_is_decapsulated_and_the_pod_answers_the_client() {
    let mut t = ipip_node();
    t.start_servers(PORT).unwrap();
    let node = &t.nodes[0];
    assert_eq!(node.encap, Encap::Ipip);
    assert!(node.vtep.is_none());
    let pod = &node.pods[0];
    let addr = SocketAddrV4::new(pod.ip, PORT);
    let mut daemon = node_daemon(&t);
    assert_eq!(decapsulated(&daemon), 0);

    let reply = exchange(&t, addr, TRIES).unwrap();
    // The pod saw the client's own address: the inner packet, untouched.
    assert!(
        reply
            .text
            .starts_with(&format!("{} {CLIENT_IP}:", pod.name)),
        "{reply:?}"
    );
    assert_eq!(reply.from, SocketAddr::V4(addr));
    assert_eq!(decapsulated(&daemon), reply.sent, "{}", daemon.log());

    // SIGTERM detaches the program.
    let link = || node.ns.ip(&["link", "show", "dev", UPLINK_DEV]).unwrap();
    assert!(link().contains("xdp"), "attached while running");
    daemon.stop().unwrap();
    assert!(!link().contains("xdp"), "detached on SIGTERM");
}

#[test]
fn dsr_the_pod_answers_from_the_vip() {
    let t = ipip_node();
    let node = &t.nodes[0];
    let pod = &node.pods[0];
    // The VIP on the pod's loopback, routed to the pod by its node; the load
    // balancer's namespace routes it to the node too (the replies' source
    // passes reverse-path checks).
    pod.ns.addr("lo", &format!("{VIP}/32")).unwrap();
    let vip_net = format!("{VIP}/32");
    node.ns
        .ip(&["route", "add", &vip_net, "via", &pod.ip.to_string()])
        .unwrap();
    t.lb.ip(&["route", "add", &vip_net, "via", &node.ip.to_string()])
        .unwrap();
    let daemon = node_daemon(&t);
    let vip = SocketAddrV4::new(VIP, PORT);
    let _vip = server::start(&pod.ns, "pod-vip", vip).unwrap();

    let reply = exchange(&t, vip, TRIES).unwrap();
    assert!(
        reply.text.starts_with(&format!("pod-vip {CLIENT_IP}:")),
        "{reply:?}"
    );
    assert_eq!(reply.from, SocketAddr::V4(vip));
    assert_eq!(decapsulated(&daemon), reply.sent, "{}", daemon.log());
}

/// Without the decapsulation program the node drops IPIP (no ipip module):
/// what makes the tests above depend on it.
#[test]
fn without_node_decap_nothing_arrives() {
    let mut t = ipip_node();
    t.start_servers(PORT).unwrap();
    let pod = &t.nodes[0].pods[0];
    let err = exchange(&t, SocketAddrV4::new(pod.ip, PORT), 1).expect_err("no reply expected");
    assert!(format!("{err:#}").contains("no reply"), "{err:#}");
}

/// An interface with no IPv4 address has nothing to decapsulate for: the
/// daemon refuses to start, naming it.
#[test]
fn node_decap_on_an_interface_without_ipv4_fails_clearly() {
    let ns = tests::netns::Netns::create("noaddr").unwrap();
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        .unwrap();
    ns.ip(&["link", "set", "v0", "up"]).unwrap();
    let mut config = DaemonConfig::new(Vec::new());
    config.node_decap = vec!["v0".to_string()];
    let err = Daemon::start(&ns, config)
        .err()
        .expect("ferrolbd must refuse an interface without IPv4");
    let msg = format!("{err:#}");
    assert!(msg.contains("\"v0\" has no IPv4 address"), "{msg}");
    assert!(
        !ns.ip(&["link", "show", "dev", "v0"])
            .unwrap()
            .contains("xdp"),
        "nothing attached"
    );
}
