//! The real router over a real loaded datapath (root; no interface):
//! status codes, error bodies naming the field, and that refused requests
//! change neither the maps nor the configuration nor the state file.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::test_api::Api;
use crate::{config::ServiceKey, test_support::spec};

/// Configuration, SERVICES entries, BACKENDS 1..16 and the state file.
type Snapshot = (
    Vec<crate::config::ServiceSpec>,
    Vec<(lb_common::VipKey, lb_common::Service)>,
    Vec<lb_common::Backend>,
    Option<Vec<u8>>,
);

impl Api {
    /// Everything a refused request must leave alone.
    fn snapshot(&self) -> Snapshot {
        let services = self.controller.list();
        let (entries, backends) = self.controller.with_datapath(|dp| {
            let mut entries = dp.service_entries().unwrap();
            entries.sort_by_key(|(k, _)| (k.ip, k.port, k.proto));
            let backends = (1..16).map(|i| dp.backend_entry(i).unwrap()).collect();
            (entries, backends)
        });
        (
            services,
            entries,
            backends,
            std::fs::read(self.store.path()).ok(),
        )
    }
}

fn web() -> Value {
    json!({"name": "default/web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp",
           "backends": [{"ip": "10.0.2.2", "port": 8080, "weight": 2}, {"ip": "10.0.2.3", "port": 8080}]})
}

const WEB_PATH: &str = "/v1/services/tcp/10.96.0.10/80";

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_list_delete() {
    let api = Api::new();
    let (s, body) = api.call("PUT", WEB_PATH, Some(web())).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "dnat", "defaults filled in");
    assert_eq!(body["select"], "rr");
    assert_eq!(body["timeout_s"], 3600);
    assert_eq!(body["backends"][1]["weight"], 1);

    let key = ServiceKey::parse_parts("tcp", "10.96.0.10", "80").unwrap();
    let entry = api
        .controller
        .with_datapath(|dp| dp.service_entry(&key).unwrap())
        .expect("in SERVICES");
    assert_eq!(entry.slot_count, 3);

    // Idempotent: same body again is 200 and changes nothing.
    let before = api.snapshot();
    let (s, _) = api.call("PUT", WEB_PATH, Some(web())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.snapshot(), before);

    // The body may omit what the path says.
    let (s, body) = api
        .call(
            "PUT",
            "/v1/services/udp/10.96.0.10/53",
            Some(json!({"backends": [{"ip": "10.0.2.2", "port": 53}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["timeout_s"], 60);

    let (s, list) = api.call("GET", "/v1/services", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);

    let (s, one) = api.call("GET", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["name"], "default/web");
    for field in [
        "packets",
        "bytes",
        "new_connections",
        "reply_packets",
        "reply_bytes",
    ] {
        assert_eq!(one["stats"][field], 0, "{one}");
        assert_eq!(one["backends"][0]["stats"][field], 0, "{one}");
    }

    // Replace: different backends.
    let mut changed = web();
    changed["backends"] = json!([{"ip": "10.0.2.4", "port": 8080}]);
    let (s, _) = api.call("PUT", WEB_PATH, Some(changed)).await;
    assert_eq!(s, StatusCode::OK);
    let (_, one) = api.call("GET", WEB_PATH, None).await;
    assert_eq!(one["backends"].as_array().unwrap().len(), 1);
    assert_eq!(one["backends"][0]["ip"], "10.0.2.4");

    // Persisted after each change.
    let saved = api.store.load().unwrap();
    assert_eq!(saved, api.controller.list());
    assert_eq!(saved.len(), 2);

    let (s, _) = api.call("DELETE", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        api.controller
            .with_datapath(|dp| dp.service_entry(&key).unwrap()),
        None
    );
    assert_eq!(api.store.load().unwrap().len(), 1);
    let (s, body) = api.call("GET", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), "service tcp/10.96.0.10/80 not found");
    let (s, body) = api.call("DELETE", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_creates_once() {
    let api = Api::new();
    let (s, body) = api.call("POST", "/v1/services", Some(web())).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let before = api.snapshot();
    let mut other = web();
    other["backends"] = json!([]);
    let (s, body) = api.call("POST", "/v1/services", Some(other)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_of(&body), "service tcp/10.96.0.10/80 already exists");
    assert_eq!(api.snapshot(), before, "409 changes nothing");
    let (s, body) = api
        .call(
            "POST",
            "/v1/services",
            Some(json!({"port": 80, "protocol": "tcp"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body), "vip: required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_400_naming_the_field_and_changes_nothing() {
    let api = Api::new();
    let (s, _) = api.call("PUT", WEB_PATH, Some(web())).await;
    assert_eq!(s, StatusCode::CREATED);
    let before = api.snapshot();
    assert!(before.3.is_some(), "state file written");

    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = web();
        f(&mut v);
        v.to_string()
    };
    let many: Vec<Value> = (0..129)
        .map(|i| json!({"ip": format!("10.1.{}.{}", i / 100, i % 100 + 1), "port": 80}))
        .collect();
    let json_ct = Some("application/json");
    let cases: Vec<(&str, &str, Option<&str>, String, &str)> = vec![
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"][1]["ip"] = json!("10.0.2")),
            "backends[1].ip: \"10.0.2\" is not an IPv4 address",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"][1]["port"] = json!(0)),
            "backends[1].port: must be 1..=65535",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"][0]["port"] = json!(65536)),
            "backends[0].port: must be 1..=65535",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"][0]["weight"] = json!(0)),
            "backends[0].weight: must be 1..=100",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"][1] = v["backends"][0].clone()),
            "backends[1]: duplicate of backends[0]",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["backends"] = Value::Array(many.clone())),
            "backends: 129 backends, at most 128",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["mode"] = json!("tun")),
            "mode: unknown mode \"tun\"",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["mode"] = json!("dsr")),
            "backends[0].port: 8080 is not the service port 80: mode dsr does not rewrite the port",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["select"] = json!("random")),
            "select: unknown select \"random\"",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["timeout_s"] = json!(0)),
            "timeout_s: must be",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["vip"] = json!("10.96.0.11")),
            "vip: 10.96.0.11 does not match the path's 10.96.0.10",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["port"] = json!(81)),
            "port: 81 does not match the path's 80",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["protocol"] = json!("udp")),
            "protocol: udp does not match the path's tcp",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            with(&|v| v["extra"] = json!(1)),
            "extra: unknown field `extra`",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            r#"{"backends": ["#.to_string(),
            "body: malformed JSON",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            "".to_string(),
            "body: malformed JSON",
        ),
        (
            "PUT",
            WEB_PATH,
            json_ct,
            "[]".to_string(),
            "body: expected a JSON object",
        ),
        (
            "PUT",
            WEB_PATH,
            Some("text/plain"),
            web().to_string(),
            "Content-Type: expected application/json, got \"text/plain\"",
        ),
        (
            "PUT",
            WEB_PATH,
            None,
            web().to_string(),
            "Content-Type: expected application/json, got none",
        ),
        (
            "PUT",
            "/v1/services/sctp/10.96.0.10/80",
            json_ct,
            web().to_string(),
            "protocol: unknown protocol \"sctp\"",
        ),
        (
            "PUT",
            "/v1/services/tcp/10.96.0.300/80",
            json_ct,
            web().to_string(),
            "vip: \"10.96.0.300\" is not an IPv4 address",
        ),
        (
            "PUT",
            "/v1/services/tcp/10.96.0.10/0",
            json_ct,
            web().to_string(),
            "port: must be 1..=65535",
        ),
        (
            "PUT",
            "/v1/services/tcp/10.96.0.10/x",
            json_ct,
            web().to_string(),
            "port: \"x\" is not a number",
        ),
        (
            "GET",
            "/v1/services/tcp/10.96.0.10/99999",
            None,
            String::new(),
            "port: must be 1..=65535",
        ),
        (
            "DELETE",
            "/v1/services/icmp/10.96.0.10/80",
            None,
            String::new(),
            "protocol: unknown protocol \"icmp\"",
        ),
        (
            "POST",
            "/v1/services",
            json_ct,
            with(&|v| v["port"] = json!("80")),
            "port: invalid type: string \"80\"",
        ),
        (
            "POST",
            "/v1/services",
            json_ct,
            with(&|v| v["backends"][0] = json!(["10.0.2.2", 80])),
            "backends[0]: expected an object",
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let (s, got) = api.raw(method, path, ct, &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path} {body}: {got}");
        let msg = error_of(&got);
        assert!(
            msg.contains(want),
            "{method} {path} {body}\n  got: {msg}\n want: {want}"
        );
        assert_eq!(
            api.snapshot(),
            before,
            "{method} {path} {body} changed something"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json() {
    let api = Api::new();
    let (s, body) = api.call("GET", "/v2/nothing", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), "no route for GET /v2/nothing");
    let (s, body) = api.call("PATCH", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&body).contains("PATCH"));
    let (s, body) = api.call("GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_save_rolls_back() {
    let api = Api::new();
    let (s, _) = api.call("PUT", WEB_PATH, Some(web())).await;
    assert_eq!(s, StatusCode::CREATED);
    let before = api.snapshot();
    // A directory where the temporary file goes makes every save fail.
    let tmp = api.store.path().with_file_name(".services.json.tmp");
    std::fs::create_dir(&tmp).unwrap();

    let mut changed = web();
    changed["backends"] = json!([{"ip": "10.0.2.9", "port": 1}]);
    let (s, body) = api.call("PUT", WEB_PATH, Some(changed)).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error_of(&body).starts_with("saving the configuration"),
        "{body}"
    );
    let after = api.snapshot();
    assert_eq!(after.0, before.0, "configuration");
    assert_eq!(after.1, before.1, "SERVICES");
    // The original backends are active again (same ids, generations).
    assert_eq!(after.3, before.3, "state file");
    let key = ServiceKey::parse_parts("tcp", "10.96.0.10", "80").unwrap();
    let active = api.controller.with_datapath(|dp| {
        dp.installed(&key)
            .unwrap()
            .backends
            .values()
            .map(|h| dp.backend_entry(h.id).unwrap().flags & lb_common::service::BACKEND_ACTIVE)
            .collect::<Vec<_>>()
    });
    assert_eq!(active, vec![1, 1]);

    let (s, _) = api.call("DELETE", WEB_PATH, None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.snapshot().0, before.0, "delete rolled back");
    assert!(
        api.controller
            .with_datapath(|dp| dp.service_entry(&key).unwrap())
            .is_some()
    );
    let (s, _) = api
        .call("PUT", "/v1/services/udp/10.96.0.10/53", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(api.snapshot().0, before.0, "create rolled back");
    assert_eq!(
        api.controller
            .with_datapath(|dp| dp.vip_entry("10.96.0.10".parse().unwrap()).unwrap()),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_services_backends_and_reasons() {
    let api = Api::new();
    api.controller.put(spec(&web().to_string())).unwrap();
    let resp = api
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text =
        String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    for want in [
        "ferrolb_services 1",
        r#"ferrolb_service_packets_total{service="default/web",protocol="tcp",vip="10.96.0.10",port="80"} 0"#,
        r#"ferrolb_backend_new_connections_total{service="default/web",protocol="tcp",vip="10.96.0.10",port="80",backend="10.0.2.3:8080"} 0"#,
        r#"ferrolb_datapath_packets_total{reason="drop_fragment"} 0"#,
        r#"ferrolb_datapath_packets_total{reason="pass_not_ours"} 0"#,
        "ferrolb_conntrack_entries 0",
        "# EOF",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

/// A name that would break the label syntax is refused naming `name`; a
/// Kubernetes `namespace/name` is taken; `/metrics` stays parseable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_safe_label_values() {
    let api = Api::new();
    let before = api.snapshot();
    for bad in ["x\"} 1\nfake_total 1", "a\\b", "a b", "tab\t"] {
        let (s, v) = api
            .call("POST", "/v1/services", Some(with_name(web(), bad)))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
        assert!(error_of(&v).starts_with("name: "), "{bad:?}: {v}");
    }
    assert_eq!(api.snapshot(), before);

    let name = "kube-system/kube-dns.v1_2";
    let (s, v) = api
        .call("POST", "/v1/services", Some(with_name(web(), name)))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let resp = api
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    crate::test_support::check_openmetrics(&text).unwrap();
    assert!(text.contains(&format!("service=\"{name}\"")), "{text}");
}

fn with_name(mut body: Value, name: &str) -> Value {
    body["name"] = json!(name);
    body
}

#[test]
fn openapi_describes_every_route() {
    let doc: Value = serde_norway::from_str(include_str!("../../openapi.yaml")).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for (path, methods) in [
        ("/v1/services", &["get", "post"][..]),
        (
            "/v1/services/{protocol}/{vip}/{port}",
            &["get", "put", "delete"],
        ),
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for m in methods {
            assert!(doc["paths"][path][m].is_object(), "{m} {path} undocumented");
        }
    }
    let select = &doc["components"]["schemas"]["Select"]["enum"];
    let names: Vec<&str> = crate::config::Select::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(select, &json!(names), "Select values");
    let modes: Vec<&str> = crate::config::Mode::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        doc["components"]["schemas"]["Mode"]["enum"],
        json!(modes),
        "Mode values"
    );
}
