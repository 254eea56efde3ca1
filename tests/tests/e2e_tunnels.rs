//! `ferrolbctl tunnel ...` against the real daemon: tunnel routes added,
//! listed, shown, kept over a restart and deleted; bad arguments refused
//! with a clear error and a non-zero exit.

use tests::daemon::{Daemon, DaemonConfig};
use tests::netns::Netns;

fn ok(d: &Daemon, args: &[&str]) -> String {
    d.ctl_ok(args)
}

fn fails(d: &Daemon, args: &[&str], says: &str) {
    let e = d.ctl_err(args);
    assert!(
        e.contains(says),
        "ferrolbctl {args:?}: {e:?} does not say {says:?}"
    );
}

/// A daemon whose tunnel end is given (the namespace has no route to the
/// nodes to discover it from).
fn daemon_with_tunnel_end(ns: &Netns) -> Daemon {
    let mut config = DaemonConfig::new(Vec::new());
    config.extra_args = [
        "--tunnel-source",
        "192.0.2.1",
        "--vtep-mac",
        "02:00:00:00:00:01",
    ]
    .map(String::from)
    .to_vec();
    Daemon::start(ns, config).unwrap()
}

#[test]
fn tunnel_add_list_get_delete() {
    let ns = Netns::create("tun").unwrap();
    let mut d = daemon_with_tunnel_end(&ns);

    ok(
        &d,
        &[
            "tunnel",
            "add",
            "node-1",
            "--pod-cidr",
            "192.168.140.64/26",
            "--node-ip",
            "172.16.1.14",
            "--encap",
            "vxlan",
            "--vtep-mac",
            "ab:12:cd:34:ef:56",
        ],
    );
    ok(
        &d,
        &[
            "tunnel",
            "add",
            "kube-system/node-2",
            "--pod-cidr",
            "192.168.140.128/26",
            "--node-ip",
            "172.16.1.15",
            "--encap",
            "ipip",
        ],
    );

    let list = ok(&d, &["tunnel", "list"]);
    for want in [
        "node-1",
        "192.168.140.64/26",
        "vxlan",
        "8472",
        "ab:12:cd:34:ef:56",
        "kube-system/node-2",
        "172.16.1.15",
        "ipip",
    ] {
        assert!(list.contains(want), "{want} not in\n{list}");
    }
    let one: serde_json::Value =
        serde_json::from_str(&ok(&d, &["tunnel", "get", "node-1", "-o", "json"])).unwrap();
    assert_eq!(
        one,
        serde_json::json!({"name": "node-1", "pod_cidr": "192.168.140.64/26",
            "node_ip": "172.16.1.14", "encap": "vxlan", "vni": 1,
            "vtep_mac": "ab:12:cd:34:ef:56", "dst_port": 8472})
    );

    // Bad arguments: refused before or by the API, nothing changes.
    fails(
        &d,
        &[
            "tunnel",
            "add",
            "n3",
            "--pod-cidr",
            "10.1.0.1/16",
            "--node-ip",
            "172.16.1.16",
            "--encap",
            "ipip",
        ],
        "host bits set",
    );
    fails(
        &d,
        &[
            "tunnel",
            "add",
            "n3",
            "--pod-cidr",
            "10.1.0.0/16",
            "--node-ip",
            "172.16.1.16",
            "--encap",
            "ipip",
            "--vni",
            "5",
        ],
        "vni: only for encap vxlan",
    );
    fails(
        &d,
        &[
            "tunnel",
            "add",
            "n3",
            "--pod-cidr",
            "10.1.0.0/16",
            "--node-ip",
            "172.16.1.16",
            "--encap",
            "gre",
        ],
        "unknown encap \"gre\"",
    );
    fails(
        &d,
        &[
            "tunnel",
            "add",
            "n3",
            "--pod-cidr",
            "192.168.140.64/26",
            "--node-ip",
            "172.16.1.16",
            "--encap",
            "ipip",
        ],
        "already tunnel node-1's",
    );
    fails(&d, &["tunnel", "get", "nope"], "tunnel nope not found");

    // Kept over a restart.
    d.restart().unwrap();
    let after = ok(&d, &["tunnel", "list", "-o", "json"]);
    let after: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(after.as_array().map(Vec::len), Some(2), "{after}");

    assert!(ok(&d, &["tunnel", "delete", "node-1"]).contains("deleted tunnel node-1"));
    fails(&d, &["tunnel", "delete", "node-1"], "not found");
    let list = ok(&d, &["tunnel", "list"]);
    assert!(
        !list.contains("node-1 ") && list.contains("kube-system/node-2"),
        "{list}"
    );
}

/// Without --tunnel-source the tunnel source comes from the route to the
/// node: with none, an encapsulating route is refused, naming the tunnel and
/// the flag; a plain (encap none) route needs no tunnel end.
#[test]
fn tunnel_without_a_route_to_its_node_is_refused_clearly() {
    let ns = Netns::create("tunnr").unwrap();
    let d = Daemon::start(&ns, DaemonConfig::new(Vec::new())).unwrap();
    for encap in ["ipip", "vxlan"] {
        let mut args = vec![
            "tunnel",
            "add",
            "node-9",
            "--pod-cidr",
            "10.9.0.0/16",
            "--node-ip",
            "172.16.1.19",
            "--encap",
            encap,
        ];
        if encap == "vxlan" {
            args.extend(["--vtep-mac", "ab:12:cd:34:ef:56"]);
        }
        fails(&d, &args, "tunnel node-9: no route to node_ip 172.16.1.19");
        fails(&d, &args, "--tunnel-source");
    }
    assert!(!ok(&d, &["tunnel", "list"]).contains("node-9"));
    ok(
        &d,
        &[
            "tunnel",
            "add",
            "node-9",
            "--pod-cidr",
            "10.9.0.0/16",
            "--node-ip",
            "172.16.1.19",
            "--encap",
            "none",
        ],
    );
}
