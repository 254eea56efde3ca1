//! ferrolbctl against the real daemon.

use tests::api::service_path;
use tests::client::{self, Proto};
use tests::lab::Lab;
use tests::tempdir::TempDir;
use tests::topology::IO_TIMEOUT;

fn ok(lab: &Lab, args: &[&str]) -> String {
    lab.daemon.ctl_ok(args)
}

fn fails(lab: &Lab, args: &[&str], names: &str) {
    let err = lab.daemon.ctl_err(args);
    assert!(
        err.to_lowercase().contains(&names.to_lowercase()),
        "ferrolbctl {args:?}: error {err:?} does not mention {names:?}"
    );
}

#[test]
fn add_list_get_delete_against_the_daemon() {
    let lab = Lab::start(2).unwrap();
    let backends = lab.backends();
    let vip = lab.vip();
    let service = format!("{vip}/tcp");
    let b0 = backends[0].to_string();
    let b1 = format!("{},3", backends[1]);
    ok(
        &lab,
        &[
            "service",
            "add",
            &service,
            "--backend",
            &b0,
            "--backend",
            &b1,
            "--name",
            "cli/web",
        ],
    );

    // It is live: traffic goes to both backends.
    let hellos = lab
        .topo
        .client
        .run(|| client::hellos(Proto::Tcp, vip, 12, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(client::spread(&hellos).len(), 2);

    let list = ok(&lab, &["service", "list"]);
    assert!(
        list.contains(&service) && list.contains("cli/web"),
        "{list}"
    );

    let get: serde_json::Value =
        serde_json::from_str(&ok(&lab, &["service", "get", &service, "-o", "json"])).unwrap();
    assert_eq!(get["name"], "cli/web");
    assert_eq!(get["backends"][1]["weight"], 3);
    let new_conns: u64 = get["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["stats"]["new_connections"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(new_conns, 12, "{get}");
    let table = ok(&lab, &["service", "get", &service]);
    assert!(table.contains(&b0), "{table}");

    // Adding it again is refused.
    fails(
        &lab,
        &["service", "add", &service, "--backend", &b0],
        "exist",
    );

    ok(&lab, &["service", "delete", &service]);
    assert_eq!(
        lab.api().get(&service_path("tcp", vip)).unwrap().status,
        404
    );
    let list = ok(&lab, &["service", "list"]);
    assert!(!list.contains(&service), "{list}");
    fails(&lab, &["service", "get", &service], "");
}

#[test]
fn apply_yaml_file_configures_services() {
    let lab = Lab::start(2).unwrap();
    let dir = TempDir::new("cli").unwrap();
    let backends = lab.backends();
    let yaml = format!(
        "- name: cli/dns\n  vip: {vip}\n  port: {port}\n  protocol: udp\n  select: hash\n  backends:\n    - ip: {b0}\n      port: {p}\n    - ip: {b1}\n      port: {p}\n\
         - name: cli/web\n  vip: {vip}\n  port: {port}\n  protocol: tcp\n  backends:\n    - ip: {b0}\n      port: {p}\n",
        vip = lab.vip().ip(),
        port = lab.vip().port(),
        b0 = backends[0].ip(),
        b1 = backends[1].ip(),
        p = backends[0].port()
    );
    let file = dir.path().join("services.yaml");
    std::fs::write(&file, yaml).unwrap();
    ok(&lab, &["service", "apply", "-f", file.to_str().unwrap()]);

    let list = lab.api().get("/v1/services").unwrap().json().unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let vip = lab.vip();
    let udp = lab
        .topo
        .client
        .run(|| client::hellos(Proto::Udp, vip, 16, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(client::spread(&udp).len(), 2, "{:?}", client::spread(&udp));
    let tcp = lab
        .topo
        .client
        .run(|| client::tcp_hello(vip, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(tcp.backend, "b0");

    // A bad file is refused with a message naming the problem, and changes nothing.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: x\nvip: 10.96.0.10\nport: 0\nprotocol: tcp\nbackends: []\n",
    )
    .unwrap();
    fails(
        &lab,
        &["service", "apply", "-f", bad.to_str().unwrap()],
        "port",
    );
    assert_eq!(lab.api().get("/v1/services").unwrap().json().unwrap(), list);

    // A file whose second entry is bad applies nothing, not even the first.
    let half = dir.path().join("half.yaml");
    let other = std::net::SocketAddrV4::new(*vip.ip(), vip.port() + 1);
    std::fs::write(
        &half,
        format!(
            "- name: cli/first\n  vip: {ip}\n  port: {port}\n  protocol: tcp\n  backends:\n    - ip: {b0}\n      port: {p}\n\
             - name: cli/second\n  vip: {ip}\n  port: {port}\n  protocol: udp\n  backends:\n    - ip: {b0}\n      port: 0\n",
            ip = other.ip(),
            port = other.port(),
            b0 = backends[0].ip(),
            p = backends[0].port()
        ),
    )
    .unwrap();
    fails(
        &lab,
        &["service", "apply", "-f", half.to_str().unwrap()],
        "services[1].backends[0].port",
    );
    assert_eq!(
        lab.api().get(&service_path("tcp", other)).unwrap().status,
        404
    );
    assert_eq!(lab.api().get("/v1/services").unwrap().json().unwrap(), list);
}

#[test]
fn bad_arguments_give_clear_errors() {
    let lab = Lab::start(1).unwrap();
    fails(
        &lab,
        &[
            "service",
            "add",
            "10.96.0.10:80/sctp",
            "--backend",
            "10.0.10.2:8080",
        ],
        "sctp",
    );
    fails(
        &lab,
        &[
            "service",
            "add",
            "10.96.0.10:80/tcp",
            "--backend",
            "10.0.10.2:0",
        ],
        "port",
    );
    fails(
        &lab,
        &[
            "service",
            "add",
            "10.96.0.10:80/tcp",
            "--backend",
            "10.0.10.2:8080",
            "--select",
            "lc",
        ],
        "lc",
    );
    // DSR does not rewrite the port: a backend on another port is refused.
    fails(
        &lab,
        &[
            "service",
            "add",
            "10.96.0.10:80/tcp",
            "--mode",
            "dsr",
            "--backend",
            "10.0.10.2:80",
            "--backend",
            "10.0.10.3:8080",
        ],
        "backends[1].port: 8080 is not the service port 80",
    );
    fails(&lab, &["service", "get", "not-a-service"], "VIP:PORT/PROTO");
    fails(
        &lab,
        &["service", "apply", "-f", "/nonexistent/file.yaml"],
        "/nonexistent/file.yaml",
    );
    // None of that created anything.
    assert_eq!(
        lab.api().get("/v1/services").unwrap().json().unwrap(),
        serde_json::json!([])
    );
}
