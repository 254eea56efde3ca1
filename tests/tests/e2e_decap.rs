//! End to end: a node without the kernel's ipip module decapsulates IPIP
//! with `ferrolbd --node-decap` and routes the inner packet to a pod, which
//! answers the client directly: plain IPIP delivery to a pod IP, and DSR
//! (inner destination the VIP, bound on the pod's loopback).

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use tests::daemon::{Daemon, DaemonConfig};
use tests::ipip::inner_packet;
use tests::ipip_socket::{IpipSocket, udp_exchange};
use tests::node_topology::{CLIENT_IP, NODE_DEV, NODE_IP, NodeTopology, POD_IP, VIP};
use tests::packets::Frame;
use tests::server;

const PORT: u16 = 8080;
const TRIES: u64 = 3;
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

fn node_daemon(t: &NodeTopology) -> Daemon {
    let mut config = DaemonConfig::new(Vec::new());
    config.node_decap = vec![NODE_DEV.to_string()];
    Daemon::start(&t.node, config).unwrap()
}

/// `ferrolb_decap_packets_total{result="decapsulated"}` on the node.
fn decapsulated(daemon: &Daemon) -> u64 {
    daemon
        .api()
        .metric("ferrolb_decap_packets_total{result=\"decapsulated\"}")
        .unwrap()
}

/// A UDP socket of the client (in the lb namespace) on `CLIENT_IP`.
fn client_socket(t: &NodeTopology) -> UdpSocket {
    let sock =
        t.lb.run(|| UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, 0)))
            .unwrap()
            .unwrap();
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
    sock
}

/// Sends a UDP datagram from the client to `dst` through the IPIP tunnel to
/// the node (retrying a few times, bounded) and returns the reply with its
/// source, and how many datagrams were sent.
fn exchange(t: &NodeTopology, dst: SocketAddrV4) -> (String, SocketAddr, u64) {
    let tunnel = IpipSocket::open(&t.lb).unwrap();
    let reply = udp_exchange(&tunnel, NODE_IP, &client_socket(t), dst, TRIES).unwrap();
    (reply.text, reply.from, reply.sent)
}

#[test]
fn ipip_to_a_pod_is_decapsulated_and_the_pod_answers_the_client() {
    let t = NodeTopology::new().unwrap();
    let mut daemon = node_daemon(&t);
    let _pod = server::start(&t.pod, "pod", SocketAddrV4::new(POD_IP, PORT)).unwrap();
    assert_eq!(decapsulated(&daemon), 0);

    let (reply, from, sent) = exchange(&t, SocketAddrV4::new(POD_IP, PORT));
    // The pod saw the client's own address: the inner packet, untouched.
    let client = reply.rsplit(' ').next().unwrap().to_string();
    assert!(
        reply.starts_with("pod ") && client.starts_with(&format!("{CLIENT_IP}:")),
        "{reply}"
    );
    assert_eq!(from, SocketAddr::from(SocketAddrV4::new(POD_IP, PORT)));
    assert_eq!(decapsulated(&daemon), sent, "{}", daemon.log());

    // SIGTERM detaches the program.
    assert!(
        t.node
            .ip(&["link", "show", "dev", NODE_DEV])
            .unwrap()
            .contains("xdp"),
        "attached while running"
    );
    daemon.stop().unwrap();
    assert!(
        !t.node
            .ip(&["link", "show", "dev", NODE_DEV])
            .unwrap()
            .contains("xdp"),
        "detached on SIGTERM"
    );
}

#[test]
fn dsr_the_pod_answers_from_the_vip() {
    let t = NodeTopology::new().unwrap();
    let daemon = node_daemon(&t);
    let _vip = server::start(&t.pod, "pod-vip", SocketAddrV4::new(VIP, PORT)).unwrap();

    let (reply, from, sent) = exchange(&t, SocketAddrV4::new(VIP, PORT));
    assert!(reply.starts_with("pod-vip 10.0.1.2:"), "{reply}");
    assert_eq!(from, SocketAddr::from(SocketAddrV4::new(VIP, PORT)));
    assert_eq!(decapsulated(&daemon), sent, "{}", daemon.log());
}

/// Without the decapsulation program the node drops IPIP (no ipip module):
/// what makes the tests above depend on it.
#[test]
fn without_node_decap_nothing_arrives() {
    let t = NodeTopology::new().unwrap();
    let _pod = server::start(&t.pod, "pod", SocketAddrV4::new(POD_IP, PORT)).unwrap();
    let client = client_socket(&t);
    let SocketAddr::V4(src) = client.local_addr().unwrap() else {
        unreachable!("bound to an IPv4 address")
    };
    let inner = inner_packet(&Frame::udp(
        [0; 6],
        [0; 6],
        src,
        SocketAddrV4::new(POD_IP, PORT),
    ));
    IpipSocket::open(&t.lb)
        .unwrap()
        .send(NODE_IP, &inner)
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(client.recv_from(&mut buf).is_err(), "no reply expected");
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
