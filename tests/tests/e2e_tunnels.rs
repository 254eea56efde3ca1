//! `ferrolbctl tunnel ...` against the real daemon: tunnel routes added,
//! listed, shown, kept over a restart and deleted; bad arguments refused
//! with a clear error and a non-zero exit.

use std::process::Output;

use tests::daemon::{Daemon, DaemonConfig};
use tests::netns::Netns;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args).unwrap();
    let (o, e) = text(&out);
    assert!(out.status.success(), "ferrolbctl {args:?} failed: {o}{e}");
    o
}

fn fails(d: &Daemon, args: &[&str], says: &str) {
    let out = d.ctl(args).unwrap();
    let (o, e) = text(&out);
    assert!(
        !out.status.success(),
        "ferrolbctl {args:?} should fail: {o}"
    );
    assert!(
        e.contains(says),
        "ferrolbctl {args:?}: {e:?} does not say {says:?}"
    );
}

#[test]
fn tunnel_add_list_get_delete() {
    let ns = Netns::create("tun").unwrap();
    let mut d = Daemon::start(&ns, DaemonConfig::new(Vec::new())).unwrap();

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
