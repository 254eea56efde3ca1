//! Tunnel validation: defaults, and every refusal naming its field.

use serde_json::json;

use super::{Encap, MacAddr, TunnelInput, validate_tunnel};

fn input(v: serde_json::Value) -> TunnelInput {
    TunnelInput::from_value(v).expect("shape")
}

#[test]
fn vxlan_defaults_are_flannels() {
    let t = validate_tunnel(
        &input(
            json!({"pod_cidr": "192.168.140.64/26", "node_ip": "172.16.1.14",
                      "encap": "vxlan", "vtep_mac": "AB:12:cd:34:ef:56"}),
        ),
        Some("node-1"),
    )
    .unwrap();
    assert_eq!(t.name, "node-1");
    assert_eq!(t.encap, Encap::Vxlan);
    assert_eq!(t.vni, Some(1));
    assert_eq!(t.dst_port, Some(8472));
    assert_eq!(t.vtep_mac.unwrap().to_string(), "ab:12:cd:34:ef:56");
    let v = t.datapath_value(
        Some("172.16.1.1".parse().unwrap()),
        Some(MacAddr([2, 0, 0, 0, 0, 7])),
    );
    assert_eq!(v.src_ip.to_ne_bytes(), [172, 16, 1, 1]);
    assert_eq!(v.src_mac, [2, 0, 0, 0, 0, 7]);
    assert_eq!(v.node_ip.to_ne_bytes(), [172, 16, 1, 14]);
    assert_eq!(v.dst_port, 8472u16.to_be());
    assert_eq!(v.vni, 1);
    assert_eq!(v.vtep_mac, [0xab, 0x12, 0xcd, 0x34, 0xef, 0x56]);
    assert_eq!(v.encap, lb_common::tunnel::encap::VXLAN);
    let key = t.pod_cidr.lpm_key();
    assert_eq!(key.prefix_len(), 26);
    assert_eq!(key.data().to_ne_bytes(), [192, 168, 140, 64]);
}

#[test]
fn ipip_and_none_carry_no_vxlan_fields() {
    for encap in ["ipip", "none"] {
        let t = validate_tunnel(
            &input(json!({"name": "n", "pod_cidr": "10.244.1.0/24", "node_ip": "172.16.1.15", "encap": encap})),
            None,
        )
        .unwrap();
        assert_eq!((t.vni, t.vtep_mac, t.dst_port), (None, None, None));
        let v = t.datapath_value(None, None);
        assert_eq!((v.vtep_mac, v.src_ip, v.src_mac), ([0; 6], 0, [0; 6]));
    }
}

#[test]
fn each_error_names_its_field() {
    let base = json!({"pod_cidr": "10.244.1.0/24", "node_ip": "172.16.1.15", "encap": "vxlan",
                      "vtep_mac": "ab:12:cd:34:ef:56"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, path, field, says) in [
        (
            with("pod_cidr", json!("10.244.1.1/24")),
            Some("n"),
            "pod_cidr",
            "host bits set (the network is 10.244.1.0/24)",
        ),
        (
            with("pod_cidr", json!("10.244.1.0/33")),
            Some("n"),
            "pod_cidr",
            "prefix length must be 1..=32",
        ),
        (
            with("pod_cidr", json!("10.244.1.0")),
            Some("n"),
            "pod_cidr",
            "not an IPv4 CIDR",
        ),
        (
            with("pod_cidr", json!("fd00::/64")),
            Some("n"),
            "pod_cidr",
            "not an IPv4 CIDR",
        ),
        (without("pod_cidr"), Some("n"), "pod_cidr", "required"),
        (
            with("node_ip", json!("172.16.1.300")),
            Some("n"),
            "node_ip",
            "not an IPv4 address",
        ),
        (without("node_ip"), Some("n"), "node_ip", "required"),
        (
            with("node_ip", json!("10.244.1.7")),
            Some("n"),
            "node_ip",
            "10.244.1.7 is inside pod_cidr 10.244.1.0/24: it must be the node's address",
        ),
        (
            with("encap", json!("gre")),
            Some("n"),
            "encap",
            "unknown encap \"gre\" (expected none, ipip or vxlan)",
        ),
        (without("encap"), Some("n"), "encap", "required"),
        (
            with("vni", json!(0)),
            Some("n"),
            "vni",
            "must be 1..=16777215",
        ),
        (
            with("vni", json!(16_777_216)),
            Some("n"),
            "vni",
            "must be 1..=16777215",
        ),
        (
            with("dst_port", json!(0)),
            Some("n"),
            "dst_port",
            "must be 1..=65535",
        ),
        (
            with("dst_port", json!(20000)),
            Some("n"),
            "dst_port",
            "20000 is inside 10000..=32767, the ports onearm and fullnat connections use",
        ),
        (
            without("vtep_mac"),
            Some("n"),
            "vtep_mac",
            "required with encap vxlan",
        ),
        (
            with("vtep_mac", json!("ab:12:cd:34:ef")),
            Some("n"),
            "vtep_mac",
            "not a MAC address",
        ),
        (
            with("vtep_mac", json!("00:00:00:00:00:00")),
            Some("n"),
            "vtep_mac",
            "all-zero MAC",
        ),
        (
            with("vtep_mac", json!("ab:12:cd:34:ef:5")),
            Some("n"),
            "vtep_mac",
            "not a MAC address",
        ),
        (
            with("encap", json!("ipip")),
            Some("n"),
            "vtep_mac",
            "only for encap vxlan, not ipip",
        ),
        (
            with("vni", json!(5)).tap_encap("none"),
            Some("n"),
            "vni",
            "only for encap vxlan, not none",
        ),
        (
            with("dst_port", json!(4789)).tap_encap("ipip"),
            Some("n"),
            "dst_port",
            "only for encap vxlan",
        ),
        (
            with("name", json!("other")),
            Some("n"),
            "name",
            "does not match the path's \"n\"",
        ),
        (base.clone(), None, "name", "required"),
        (base.clone(), Some("a b"), "name", "' ' not allowed"),
    ] {
        let err = validate_tunnel(&input(body.clone()), path).unwrap_err();
        assert!(err.names(field), "{body}: {err}");
        assert!(err.to_string().contains(says), "{body}: {err}");
    }
}

trait TapEncap {
    fn tap_encap(self, encap: &str) -> Self;
}

impl TapEncap for serde_json::Value {
    fn tap_encap(mut self, encap: &str) -> Self {
        self["encap"] = json!(encap);
        self.as_object_mut().unwrap().remove("vtep_mac");
        self
    }
}

#[test]
fn unknown_fields_and_wrong_types_are_refused() {
    let e = TunnelInput::from_value(json!({"pod_cidr": "10.0.0.0/8", "mtu": 1400})).unwrap_err();
    assert!(e.message.contains("unknown field `mtu`"), "{e}");
    let e = TunnelInput::from_value(json!({"vni": "1"})).unwrap_err();
    assert_eq!(e.field, "vni", "{e}");
    let e = TunnelInput::from_value(json!([1])).unwrap_err();
    assert_eq!(e.field, "body");
}
