//! The REST API against the real daemon: status codes, errors that name the
//! bad field, and bad input changing nothing.

use serde_json::{Value, json};
use tests::api::service_path;
use tests::client;
use tests::daemon::{Daemon, DaemonConfig};
use tests::lab::Lab;
use tests::netns::{self, Netns};
use tests::topology::IO_TIMEOUT;

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[test]
fn invalid_services_get_400_naming_the_field_and_change_nothing() {
    let lab = Lab::start(2).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    let api = lab.api();
    let path = service_path("tcp", lab.vip());
    let good = lab.service("tcp", "rr", &lab.backends());
    let before = api.get("/v1/services").unwrap().json().unwrap();

    let backend = |ip: &str, port: Value| json!({"ip": ip, "port": port, "weight": 1});
    let too_many: Vec<Value> = (0..200)
        .map(|i| {
            backend(
                &format!("10.0.{}.{}", 100 + i / 200, 1 + i % 200),
                json!(8080),
            )
        })
        .collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "bad backend ip",
            with(
                good.clone(),
                "backends",
                json!([backend("10.0.10.300", json!(8080))]),
            ),
            "ip",
        ),
        (
            "backend port 0",
            with(
                good.clone(),
                "backends",
                json!([backend("10.0.10.2", json!(0))]),
            ),
            "port",
        ),
        (
            "backend port > 65535",
            with(
                good.clone(),
                "backends",
                json!([backend("10.0.10.2", json!(70000))]),
            ),
            "port",
        ),
        (
            "name that would break /metrics",
            with(good.clone(), "name", json!("web\"} 1\nfake_total 1")),
            "name",
        ),
        (
            "unknown mode",
            with(good.clone(), "mode", json!("dsr")),
            "mode",
        ),
        (
            "unknown select",
            with(good.clone(), "select", json!("lc")),
            "select",
        ),
        (
            "duplicate backend",
            with(
                good.clone(),
                "backends",
                json!([
                    backend("10.0.10.2", json!(8080)),
                    backend("10.0.10.2", json!(8080))
                ]),
            ),
            "backend",
        ),
        (
            "too many backends",
            with(good.clone(), "backends", json!(too_many)),
            "backend",
        ),
        (
            "weight 0",
            with(
                good.clone(),
                "backends",
                json!([{"ip": "10.0.10.2", "port": 8080, "weight": 0}]),
            ),
            "weight",
        ),
    ];
    for (what, body, field) in cases {
        let reply = api.put(&path, &body).unwrap();
        assert_eq!(reply.status, 400, "{what}: {reply:?}");
        let error = reply
            .error()
            .unwrap_or_else(|| panic!("{what}: no error field: {reply:?}"));
        assert!(
            error.to_lowercase().contains(field),
            "{what}: error {error:?} does not name {field}"
        );
    }

    // Malformed JSON, and bad keys in the path.
    let reply = api.request("PUT", &path, Some("{\"name\": ")).unwrap();
    assert_eq!(reply.status, 400, "malformed JSON: {reply:?}");
    assert!(reply.error().is_some(), "{reply:?}");
    for (bad_path, field) in [
        ("/v1/services/sctp/10.96.0.10/80", "protocol"),
        ("/v1/services/tcp/10.96.0.300/80", "vip"),
        ("/v1/services/tcp/10.96.0.10/0", "port"),
        ("/v1/services/tcp/10.96.0.10/65536", "port"),
    ] {
        let reply = api.put(bad_path, &good).unwrap();
        assert_eq!(reply.status, 400, "{bad_path}: {reply:?}");
        let error = reply.error().unwrap_or_default();
        assert!(
            error.to_lowercase().contains(field),
            "{bad_path}: {error:?} does not name {field}"
        );
    }

    // Nothing changed: same configuration, traffic still balanced, and the
    // refused name did not reach /metrics.
    assert_eq!(api.get("/v1/services").unwrap().json().unwrap(), before);
    let metrics = api.get("/metrics").unwrap().body;
    assert!(
        !metrics.contains("fake_total") && metrics.ends_with("# EOF\n"),
        "{metrics}"
    );
    let vip = lab.vip();
    let hellos = lab
        .topo
        .client
        .run(|| client::hellos(client::Proto::Tcp, vip, 8, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    assert_eq!(client::spread(&hellos).len(), 2);
}

#[test]
fn create_get_list_delete_status_codes() {
    let lab = Lab::start(1).unwrap();
    let api = lab.api();
    let body = lab.service("udp", "hash", &lab.backends());
    let path = service_path("udp", lab.vip());

    assert_eq!(api.get("/healthz").unwrap().status, 200);
    assert_eq!(api.get(&path).unwrap().status, 404);

    let created = api.post("/v1/services", &body).unwrap();
    assert_eq!(created.status, 201, "{created:?}");
    let again = api.post("/v1/services", &body).unwrap();
    assert_eq!(again.status, 409, "{again:?}");
    assert!(again.error().is_some());

    // PUT is idempotent: same body, 200, one service.
    let put = api.put(&path, &body).unwrap();
    assert_eq!(put.status, 200, "{put:?}");
    let list = api.get("/v1/services").unwrap().json().unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["select"], "hash");
    assert_eq!(list[0]["timeout_s"], 60, "UDP default idle timeout");

    // GET of one service adds counters per backend.
    let one = api.get(&path).unwrap().json().unwrap();
    assert_eq!(one["backends"][0]["stats"]["packets"], 0, "{one}");

    assert_eq!(api.delete(&path).unwrap().status, 204);
    assert_eq!(api.delete(&path).unwrap().status, 404);
    let list = api.get("/v1/services").unwrap().json().unwrap();
    assert_eq!(list, json!([]));
}

#[test]
fn metrics_count_traffic_per_service_and_backend() {
    let lab = Lab::start(2).unwrap();
    lab.serve_all("tcp", "rr").unwrap();
    let vip = lab.vip();
    lab.topo
        .client
        .run(|| client::hellos(client::Proto::Tcp, vip, 6, IO_TIMEOUT))
        .unwrap()
        .unwrap();
    let metrics = lab.api().get("/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    let new_conns: f64 = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("ferrolb_backend_new_connections_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(new_conns, 6.0, "metrics:\n{}", metrics.body);
}

/// ferrolbd attached in a namespace where IPv4 forwarding is off (the
/// default of a new namespace) says so at start, and not once it is on.
#[test]
fn daemon_warns_when_forwarding_is_off() {
    let lb = Netns::create("fwd-lb").unwrap();
    let peer = Netns::create("fwd-peer").unwrap();
    netns::veth(&lb, "fwd0", &peer, "fwd1").unwrap();
    let ifaces = vec!["fwd0".to_string()];

    let daemon = Daemon::start(&lb, DaemonConfig::new(ifaces.clone())).unwrap();
    let log = daemon.log();
    assert!(
        log.contains("WARN") && log.contains("net.ipv4.ip_forward is 0"),
        "{log}"
    );
    assert!(log.contains("net.ipv4.conf.fwd0.forwarding is 0"), "{log}");
    drop(daemon);

    lb.sysctl("net/ipv4/ip_forward", "1").unwrap();
    let daemon = Daemon::start(&lb, DaemonConfig::new(ifaces)).unwrap();
    let log = daemon.log();
    assert!(
        !log.contains("forwarding is 0") && !log.contains("ip_forward is 0"),
        "{log}"
    );
}
