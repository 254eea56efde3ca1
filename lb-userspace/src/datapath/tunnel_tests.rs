//! Tunnel routes against a real loaded datapath (root; no interface): the
//! load balancer's end written into `TUNNELS` (fixed or discovered), and
//! `TUNNEL_ENDPOINTS` and `TUNNEL_NODES` kept in step with the routes.

use std::net::Ipv4Addr;

use lb_common::{TunnelEndpoint, proto, tunnel::vni_wire};

use super::*;
use crate::{
    config::{TunnelInput, TunnelSpec, validate_tunnel},
    controller::{Controller, ControllerError},
    test_support::{Dirs, TEST_TUNNEL_SOURCE, TEST_VTEP_MAC},
};

fn tunnel(name: &str, cidr: &str, node: &str, encap: &str, port: Option<i64>) -> TunnelSpec {
    let vxlan = encap == "vxlan";
    validate_tunnel(
        &TunnelInput {
            name: Some(name.into()),
            pod_cidr: Some(cidr.into()),
            node_ip: Some(node.into()),
            encap: Some(encap.into()),
            vtep_mac: vxlan.then(|| "0a:00:00:00:00:01".into()),
            dst_port: port,
            ..Default::default()
        },
        None,
    )
    .unwrap()
}

fn be(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The endpoint of a route with the default VNI (1) if VXLAN.
fn endpoint(addr: Ipv4Addr, port: u16, proto: u8) -> TunnelEndpoint {
    TunnelEndpoint {
        addr: be(addr),
        port: port.to_be(),
        proto,
        _pad: 0,
        vni: if proto == proto::UDP { vni_wire(1) } else { 0 },
    }
}

/// `TUNNEL_ENDPOINTS` and `TUNNEL_ENDPOINT_SET` hold `want` (the set
/// inline, up to `INLINE_ENDPOINTS` of them).
fn assert_endpoints(dp: &Datapath, want: &[(TunnelEndpoint, u32)]) {
    assert_eq!(dp.tunnel_endpoints().unwrap(), want);
    let set = dp.tunnel_endpoint_set().unwrap();
    assert_eq!(set.len(), want.len());
    let inline = want.len().min(lb_common::tunnel::INLINE_ENDPOINTS);
    assert_eq!(set.inline_endpoints().count(), inline);
    assert!(
        set.inline_endpoints()
            .all(|ep| want.iter().any(|(w, _)| w == ep))
    );
}

#[test]
fn fixed_end_is_written_and_endpoints_follow_the_routes() {
    let dirs = Dirs::new();
    let mut dp = dirs.load();
    let vx1 = tunnel("vx1", "10.244.1.0/24", "172.16.1.11", "vxlan", None);
    let vx2 = tunnel("vx2", "10.244.2.0/24", "172.16.1.12", "vxlan", None);
    let ipip = tunnel("ip", "10.244.3.0/24", "172.16.1.13", "ipip", None);
    let plain = tunnel("plain", "10.244.4.0/24", "172.16.1.14", "none", None);
    for t in [&vx1, &vx2, &ipip, &plain] {
        dp.put_tunnel(None, t).unwrap();
    }
    let v = dp
        .tunnel_lookup(Ipv4Addr::new(10, 244, 1, 9))
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.src_ip, v.src_mac),
        (be(TEST_TUNNEL_SOURCE), TEST_VTEP_MAC)
    );
    let v = dp
        .tunnel_lookup(Ipv4Addr::new(10, 244, 3, 9))
        .unwrap()
        .unwrap();
    assert_eq!((v.src_ip, v.src_mac), (be(TEST_TUNNEL_SOURCE), [0; 6]));
    let v = dp
        .tunnel_lookup(Ipv4Addr::new(10, 244, 4, 9))
        .unwrap()
        .unwrap();
    assert_eq!((v.src_ip, v.src_mac), (0, [0; 6]));

    let vxlan_ep = endpoint(TEST_TUNNEL_SOURCE, 8472, proto::UDP);
    let ipip_ep = endpoint(TEST_TUNNEL_SOURCE, 0, proto::IPIP);
    let mut want = vec![(vxlan_ep, 2), (ipip_ep, 1)];
    want.sort();
    assert_endpoints(&dp, &want);

    // vx2 moves to another port: two VXLAN endpoints.
    let vx2_4789 = tunnel("vx2", "10.244.2.0/24", "172.16.1.12", "vxlan", Some(4789));
    dp.put_tunnel(Some(&vx2), &vx2_4789).unwrap();
    let mut want = vec![
        (vxlan_ep, 1),
        (endpoint(TEST_TUNNEL_SOURCE, 4789, proto::UDP), 1),
        (ipip_ep, 1),
    ];
    want.sort();
    assert_endpoints(&dp, &want);

    // Another VNI on the same port: another endpoint (replies are matched
    // by VNI too).
    let mut vx3 = tunnel("vx3", "10.244.5.0/24", "172.16.1.15", "vxlan", None);
    vx3.vni = Some(7);
    dp.put_tunnel(None, &vx3).unwrap();
    let mut vni7 = endpoint(TEST_TUNNEL_SOURCE, 8472, proto::UDP);
    vni7.vni = vni_wire(7);
    let mut with_vni7 = want.clone();
    with_vni7.push((vni7, 1));
    with_vni7.sort();
    assert_endpoints(&dp, &with_vni7);
    dp.remove_tunnel(&vx3).unwrap();
    assert_endpoints(&dp, &want);

    // `TUNNEL_NODES`: the nodes of the encapsulating routes (not the plain
    // one's).
    let node = |last| Ipv4Addr::new(172, 16, 1, last);
    assert_eq!(
        dp.tunnel_nodes().unwrap(),
        vec![(node(11), 1), (node(12), 1), (node(13), 1)]
    );
    for t in [&vx1, &vx2_4789, &plain] {
        dp.remove_tunnel(t).unwrap();
    }
    assert_endpoints(&dp, &[(ipip_ep, 1)]);
    assert_eq!(dp.tunnel_nodes().unwrap(), vec![(node(13), 1)]);
    // A restart with no routes configured empties both maps.
    drop(dp);
    let mut dp = dirs.load();
    dp.restore_tunnels(&[]).unwrap();
    assert!(dp.tunnel_entries().unwrap().is_empty());
    assert_endpoints(&dp, &[]);
    assert!(dp.tunnel_nodes().unwrap().is_empty());
}

#[test]
fn discovered_source_is_the_route_source_and_a_missing_mac_changes_nothing() {
    let dirs = Dirs::new();
    let mut opts = dirs.options();
    opts.tunnel_end = TunnelEndConfig::default();
    let dp = Datapath::load(&opts).unwrap();
    let controller = Controller::new(dp, None).unwrap();

    // The route to a loopback "node" has source 127.0.0.1.
    let ipip = tunnel("ip", "10.244.3.0/24", "127.0.0.9", "ipip", None);
    controller.put_tunnel(ipip).unwrap();
    let v = controller
        .with_datapath(|dp| dp.tunnel_lookup(Ipv4Addr::new(10, 244, 3, 1)))
        .unwrap()
        .unwrap();
    assert_eq!(v.src_ip, be(Ipv4Addr::LOCALHOST));

    // lo has no MAC: VXLAN from there has no VTEP MAC; refused, naming the
    // flag, and nothing changes.
    let before = controller.with_datapath(|dp| dp.tunnel_entries()).unwrap();
    let vx = tunnel("vx", "10.244.1.0/24", "127.0.0.9", "vxlan", None);
    let err = controller.put_tunnel(vx).unwrap_err();
    assert!(matches!(err, ControllerError::TunnelSource(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("tunnel vx") && text.contains("--vtep-mac"),
        "{text}"
    );
    assert_eq!(
        crate::api::ApiError::from(err).status,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        controller.with_datapath(|dp| dp.tunnel_entries()).unwrap(),
        before
    );
    assert_eq!(controller.list_tunnels().len(), 1);
    assert_eq!(
        controller
            .with_datapath(|dp| dp.tunnel_endpoints())
            .unwrap(),
        vec![(endpoint(Ipv4Addr::LOCALHOST, 0, proto::IPIP), 1)]
    );
}
