//! `/v1/tunnels` over a real loaded datapath (root; no interface): status
//! codes, errors naming the field, the `TUNNELS` LPM map as the datapath
//! will read it, persistence, and refused requests changing nothing.

use std::net::Ipv4Addr;

use axum::http::StatusCode;
use lb_common::{Tunnel, tunnel::encap};
use serde_json::{Value, json};

use super::test_api::Api;
use crate::config::{Ipv4Cidr, TunnelSpec};

type Snapshot = (Vec<TunnelSpec>, Vec<(Ipv4Cidr, Tunnel)>, Option<Vec<u8>>);

impl Api {
    fn lookup(&self, ip: &str) -> Option<Tunnel> {
        let ip: Ipv4Addr = ip.parse().unwrap();
        self.controller
            .with_datapath(|dp| dp.tunnel_lookup(ip).unwrap())
    }

    fn entries(&self) -> Vec<(Ipv4Cidr, Tunnel)> {
        self.controller
            .with_datapath(|dp| dp.tunnel_entries().unwrap())
    }

    fn tunnel_snapshot(&self) -> Snapshot {
        (
            self.controller.list_tunnels(),
            self.entries(),
            std::fs::read(self.store.path()).ok(),
        )
    }
}

fn node_ip(t: &Tunnel) -> Ipv4Addr {
    Ipv4Addr::from(t.node_ip.to_ne_bytes())
}

fn vxlan_node1() -> Value {
    json!({"pod_cidr": "192.168.140.64/26", "node_ip": "172.16.1.14", "encap": "vxlan",
           "vni": 1, "vtep_mac": "ab:12:cd:34:ef:56", "dst_port": 8472})
}

fn ipip_node2() -> Value {
    json!({"pod_cidr": "192.168.140.0/24", "node_ip": "172.16.1.15", "encap": "ipip"})
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_lookup_replace_delete() {
    let api = Api::new();
    assert_eq!(api.lookup("192.168.140.70"), None);

    let (s, body) = api
        .call("PUT", "/v1/tunnels/node-1", Some(vxlan_node1()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "node-1");
    let t = api
        .lookup("192.168.140.70")
        .expect("pod IP in node-1's network");
    assert_eq!(node_ip(&t), Ipv4Addr::new(172, 16, 1, 14));
    assert_eq!(t.encap, encap::VXLAN);
    assert_eq!(t.vni, 1);
    assert_eq!(u16::from_be(t.dst_port), 8472);
    assert_eq!(t.vtep_mac, [0xab, 0x12, 0xcd, 0x34, 0xef, 0x56]);
    assert_eq!(api.lookup("192.168.140.130"), None);

    // A shorter prefix around it: longest prefix wins.
    let (s, _) = api
        .call("PUT", "/v1/tunnels/kube-system/node-2", Some(ipip_node2()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        node_ip(&api.lookup("192.168.140.70").unwrap()),
        Ipv4Addr::new(172, 16, 1, 14)
    );
    let t2 = api.lookup("192.168.140.10").unwrap();
    assert_eq!(
        (node_ip(&t2), t2.encap),
        (Ipv4Addr::new(172, 16, 1, 15), encap::IPIP)
    );
    assert_eq!((t2.vni, t2.dst_port, t2.vtep_mac), (0, 0, [0; 6]));

    // Idempotent.
    let before = api.tunnel_snapshot();
    let (s, _) = api
        .call("PUT", "/v1/tunnels/node-1", Some(vxlan_node1()))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.tunnel_snapshot(), before);

    let (s, list) = api.call("GET", "/v1/tunnels", None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kube-system/node-2", "node-1"]);
    let (s, one) = api
        .call("GET", "/v1/tunnels/kube-system/node-2", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        one,
        json!({"name": "kube-system/node-2", "pod_cidr": "192.168.140.0/24",
                           "node_ip": "172.16.1.15", "encap": "ipip"})
    );

    // Replace node-1 with another network: the old prefix goes.
    let mut moved = vxlan_node1();
    moved["pod_cidr"] = json!("10.244.5.0/24");
    moved["vni"] = json!(42);
    let (s, body) = api.call("PUT", "/v1/tunnels/node-1", Some(moved)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let cidrs: Vec<String> = api.entries().iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(cidrs, ["10.244.5.0/24", "192.168.140.0/24"]);
    assert_eq!(api.lookup("10.244.5.9").unwrap().vni, 42);
    assert_eq!(
        node_ip(&api.lookup("192.168.140.70").unwrap()),
        Ipv4Addr::new(172, 16, 1, 15)
    );

    let (s, _) = api.call("DELETE", "/v1/tunnels/node-1", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(api.lookup("10.244.5.9"), None);
    let (s, body) = api.call("DELETE", "/v1/tunnels/node-1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), "tunnel node-1 not found");
    let (s, _) = api.call("GET", "/v1/tunnels/node-1", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Saved, and restored by a restarted controller on the pinned map.
    let saved = api.store.load_all().unwrap();
    assert_eq!(saved.tunnels.len(), 1);
    let api = api.restart();
    assert_eq!(api.controller.list_tunnels(), saved.tunnels);
    assert_eq!(
        node_ip(&api.lookup("192.168.140.70").unwrap()),
        Ipv4Addr::new(172, 16, 1, 15)
    );
    assert_eq!(api.entries().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_change_nothing() {
    let api = Api::new();
    let (s, _) = api
        .call("PUT", "/v1/tunnels/node-1", Some(vxlan_node1()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let before = api.tunnel_snapshot();

    let with = |k: &str, v: Value| {
        let mut b = vxlan_node1();
        b[k] = v;
        b
    };
    let mut ipip_with_vni = ipip_node2();
    ipip_with_vni["vni"] = json!(3);
    let mut no_mac = vxlan_node1();
    no_mac.as_object_mut().unwrap().remove("vtep_mac");
    for (path, body, status, says) in [
        (
            "/v1/tunnels/node-1",
            with("pod_cidr", json!("192.168.140.65/26")),
            400,
            "pod_cidr: \"192.168.140.65/26\" has host bits set (the network is 192.168.140.64/26)",
        ),
        (
            "/v1/tunnels/node-1",
            with("vni", json!(16_777_216)),
            400,
            "vni: must be 1..=16777215",
        ),
        (
            "/v1/tunnels/node-1",
            with("mtu", json!(1400)),
            400,
            "unknown field `mtu`",
        ),
        (
            "/v1/tunnels/node-1",
            with("encap", json!("gre")),
            400,
            "encap: unknown encap \"gre\"",
        ),
        (
            "/v1/tunnels/node-1",
            with("name", json!("node-9")),
            400,
            "name: \"node-9\" does not match",
        ),
        (
            "/v1/tunnels/node-1",
            no_mac,
            400,
            "vtep_mac: required with encap vxlan",
        ),
        (
            "/v1/tunnels/node-2",
            ipip_with_vni,
            400,
            "vni: only for encap vxlan, not ipip",
        ),
        (
            "/v1/tunnels/bad%20name",
            ipip_node2(),
            400,
            "name: ' ' not allowed",
        ),
        // Another tunnel's network.
        (
            "/v1/tunnels/node-3",
            with("node_ip", json!("172.16.1.16")),
            409,
            "pod_cidr 192.168.140.64/26 is already tunnel node-1's",
        ),
    ] {
        let (s, body) = api.call("PUT", path, Some(body)).await;
        assert_eq!(s.as_u16(), status, "{path}: {body}");
        assert!(error_of(&body).contains(says), "{path}: {body}");
        assert_eq!(api.tunnel_snapshot(), before, "{path} changed something");
    }
    let (s, body) = api
        .raw("PUT", "/v1/tunnels/node-1", Some("text/plain"), "{}")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("Content-Type"), "{body}");
    let (s, body) = api
        .raw(
            "PUT",
            "/v1/tunnels/node-1",
            Some("application/json"),
            "{oops",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("body: malformed JSON"), "{body}");
    assert_eq!(api.tunnel_snapshot(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_without_saved_tunnels_clears_pinned_ones() {
    let api = Api::new();
    let (s, _) = api
        .call("PUT", "/v1/tunnels/node-2", Some(ipip_node2()))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // The state file loses its tunnels (e.g. an older file put back): the
    // pinned entry left by the previous run is removed at start.
    std::fs::write(api.store.path(), r#"{"version":1,"services":[]}"#).unwrap();
    let api = api.restart();
    assert!(api.controller.list_tunnels().is_empty());
    assert!(api.entries().is_empty());
    assert_eq!(api.lookup("192.168.140.10"), None);
}
