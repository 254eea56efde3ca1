//! End to end: path MTU toward a node behind a narrower routed hop. The
//! overlay topology with a router between the load balancer and the nodes
//! (`OverlayBuilder::node_hop`): the load balancer's link has MTU 1500, the
//! nodes' network behind the router 1400. The load balancer clamps the
//! client's SYN to its own link's MTU, so the client's full-sized segments,
//! once encapsulated, are too big for the router, which answers the load
//! balancer (the outer source) with ICMP fragmentation-needed. Nothing in
//! the load balancer's kernel listens for errors about packets its XDP
//! datapath built: only the datapath learning the node's path MTU from that
//! error, and answering the client's next oversized segment with
//! fragmentation-needed at the MTU left inside the tunnel, lets the
//! transfer complete. Without it the connection stalls (a black hole).
//! Likewise for direct server return to a pod routed (not tunnelled)
//! behind the router: the IPIP packets are addressed to the pod itself.

use std::{net::SocketAddrV4, time::Duration};

use lb_common::tunnel::{IPIP_OVERHEAD, VXLAN_OVERHEAD};
use lb_userspace::config::Encap;
use tests::{
    api::service_json,
    client, dsr_backends,
    overlay_topology::{HOP_LB_SIDE_IP, LB_NODE_IP, OverlayBuilder},
    topology::VIP,
};

const PORT: u16 = 8080;
/// The MTU of the nodes' network behind the router.
const HOP_MTU: u32 = 1400;
/// Per read and write of the transfer. Longer than the usual test timeout:
/// after the router's first error the client retransmits with backoff, and
/// established packets take the learned MTU when their cached next hop is
/// next refreshed (about a second later).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(10);

/// A megabyte echoed from the client through the VIP to the pod of one
/// `encap` node behind the router; returns the MTU the client then has
/// toward the VIP.
fn megabyte_through_the_hop(encap: Encap) -> Option<u32> {
    let mut t = OverlayBuilder::new()
        .nodes(&[encap])
        .node_hop(HOP_MTU)
        .lb_pod_routes(false)
        .build()
        .unwrap();
    t.start_servers(PORT).unwrap();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    let pod = &t.nodes[0].pods[0];
    let vip = SocketAddrV4::new(VIP, 80);
    let reply = daemon
        .api()
        .put_service(&service_json(
            "default/pod",
            "tcp",
            vip,
            "rr",
            &[SocketAddrV4::new(pod.ip, PORT)],
        ))
        .unwrap();
    assert!(reply.status < 300, "{}", reply.body);
    // The node is reached through the router, not on the load balancer's
    // link.
    let route = t.lb.ip(&["route", "get", &t.nodes[0].ip.to_string()]);
    assert!(
        route.unwrap().contains(&format!("via {HOP_LB_SIDE_IP}")),
        "the load balancer's route to the node"
    );
    assert_eq!(
        daemon.api().datapath_packets("path_mtu_learned").unwrap(),
        0
    );

    let hello = t
        .client
        .run(|| client::echo_bulk(vip, 1 << 20, TRANSFER_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("1 MB echo over {encap:?}: {e:#}\n{}", daemon.log()));
    assert_eq!(hello.backend, pod.name);
    assert!(
        daemon.api().datapath_packets("path_mtu_learned").unwrap() >= 1,
        "the router's error was learned from"
    );
    assert!(daemon.api().datapath_packets("icmp_frag_needed").unwrap() >= 1);
    t.client.learned_mtu(VIP).unwrap()
}

#[test]
fn a_megabyte_to_a_pod_behind_a_narrower_hop_over_ipip() {
    let mtu = megabyte_through_the_hop(Encap::Ipip);
    assert_eq!(mtu, Some(HOP_MTU - IPIP_OVERHEAD as u32));
}

#[test]
fn a_megabyte_to_a_pod_behind_a_narrower_hop_over_vxlan() {
    let mtu = megabyte_through_the_hop(Encap::Vxlan);
    assert_eq!(mtu, Some(HOP_MTU - VXLAN_OVERHEAD as u32));
}

#[test]
fn a_megabyte_by_direct_server_return_to_a_pod_behind_a_narrower_hop() {
    // A plainly routed node behind the router (the load balancer and the
    // router route its pod subnet); the pod holds the VIP, decapsulates,
    // and answers the client directly, through the router. Both directions
    // cross the 1400-byte link at 1500:
    // - the client's segments, encapsulated by the load balancer: the
    //   router's error goes to the load balancer (the outer source), which
    //   learns the MTU toward the pod and tells the client;
    // - the pod's replies: the node's error about them goes to their source,
    //   the VIP, so to the load balancer (the router routes the VIP there,
    //   as the network in front of a load balancer does), which sends it on
    //   to the pod inside the tunnel, whose kernel then sends smaller
    //   segments.
    let t = OverlayBuilder::new()
        .nodes(&[Encap::None])
        .node_hop(HOP_MTU)
        .build()
        .unwrap();
    t.fabric
        .ip(&[
            "route",
            "add",
            &format!("{VIP}/32"),
            "via",
            &LB_NODE_IP.to_string(),
        ])
        .unwrap();
    let vip = SocketAddrV4::new(VIP, 80);
    let _pods = dsr_backends::setup(&t, vip).unwrap();
    let daemon = tests::overlay_lb::start(&t).unwrap();
    let pod = &t.nodes[0].pods[0];
    let mut service = service_json(
        "default/dsr",
        "tcp",
        vip,
        "rr",
        &[SocketAddrV4::new(pod.ip, 80)],
    );
    service["mode"] = "dsr".into();
    let reply = daemon.api().put_service(&service).unwrap();
    assert!(reply.status < 300, "{}", reply.body);
    let route = t.lb.ip(&["route", "get", &pod.ip.to_string()]);
    assert!(
        route.unwrap().contains(&format!("via {HOP_LB_SIDE_IP}")),
        "the load balancer's route to the pod"
    );

    let hello = t
        .client
        .run(|| client::echo_bulk(vip, 1 << 20, TRANSFER_TIMEOUT))
        .unwrap()
        .unwrap_or_else(|e| panic!("1 MB echo by DSR: {e:#}\n{}", daemon.log()));
    assert_eq!(hello.backend, pod.name);
    let api = daemon.api();
    assert!(
        api.datapath_packets("path_mtu_learned").unwrap() >= 1,
        "the router's error was learned from"
    );
    assert!(api.datapath_packets("icmp_frag_needed").unwrap() >= 1);
    assert!(
        api.datapath_packets("icmp_to_backend").unwrap() >= 1,
        "the node's error went on to the pod"
    );
    assert_eq!(
        t.client.learned_mtu(VIP).unwrap(),
        Some(HOP_MTU - IPIP_OVERHEAD as u32)
    );
    assert_eq!(
        pod.ns.learned_mtu(tests::topology::CLIENT_IP).unwrap(),
        Some(HOP_MTU),
        "the pod's path MTU toward the client"
    );
}
