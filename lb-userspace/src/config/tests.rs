//! Tests of the service model: defaults, round trip, and one case per
//! validation error, each checking the field it names.

use super::*;

fn parse(json: &str) -> Result<ServiceSpec, String> {
    let input: ServiceInput = parse_json(json.as_bytes()).map_err(|e| e.to_string())?;
    validate(&input, None).map_err(|e| e.to_string())
}

const FULL: &str = r#"{"name": "default/web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp",
    "mode": "dnat", "select": "hash", "timeout_s": 120,
    "backends": [{"ip": "10.0.2.2", "port": 8080, "weight": 3}, {"ip": "10.0.2.3", "port": 8080}]}"#;

#[test]
fn full_definition() {
    let s = parse(FULL).unwrap();
    assert_eq!(s.name, "default/web");
    assert_eq!(s.vip, "10.96.0.10".parse::<std::net::Ipv4Addr>().unwrap());
    assert_eq!(s.port, 80);
    assert_eq!(s.protocol, Protocol::Tcp);
    assert_eq!(s.mode, Mode::Dnat);
    assert_eq!(s.select, Select::Hash);
    assert_eq!(s.timeout_s, 120);
    assert_eq!(
        s.backends,
        vec![
            BackendSpec {
                ip: "10.0.2.2".parse().unwrap(),
                port: 8080,
                weight: 3
            },
            BackendSpec {
                ip: "10.0.2.3".parse().unwrap(),
                port: 8080,
                weight: 1
            },
        ]
    );
}

#[test]
fn source_nat_modes() {
    let full = parse(
        r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "mode": "fullnat",
        "snat_ip": "10.244.0.5"}"#,
    )
    .unwrap();
    assert_eq!(full.mode, Mode::Fullnat);
    assert_eq!(full.snat_ip, Some("10.244.0.5".parse().unwrap()));
    let no_ip = parse(r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "mode": "fullnat"}"#)
        .unwrap();
    assert_eq!(no_ip.snat_ip, None, "the daemon's --overlay-ip then");
    let one =
        parse(r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "mode": "onearm"}"#).unwrap();
    assert_eq!(one.mode, Mode::Onearm);
    assert_eq!(one.snat_ip, None);
    // The stored form keeps snat_ip, and omits it when absent (state files
    // of earlier versions read the same).
    let json = serde_json::to_value(&full).unwrap();
    assert_eq!(json["snat_ip"], "10.244.0.5");
    assert!(serde_json::to_value(&one).unwrap().get("snat_ip").is_none());
}

#[test]
fn defaults() {
    let tcp = parse(r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp"}"#).unwrap();
    assert_eq!(tcp.name, "");
    assert_eq!(tcp.mode, Mode::Dnat);
    assert_eq!(tcp.select, Select::RoundRobin);
    assert_eq!(tcp.timeout_s, 3600);
    assert!(tcp.backends.is_empty());
    let udp = parse(
        r#"{"vip": "10.96.0.10", "port": 53, "protocol": "udp",
        "backends": [{"ip": "10.0.2.2", "port": 53}]}"#,
    )
    .unwrap();
    assert_eq!(udp.timeout_s, 60);
    assert_eq!(udp.backends[0].weight, 1);
}

#[test]
fn serde_round_trip() {
    let s = parse(FULL).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    // The serialised form is complete and parses back to the same service.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["select"], "hash");
    assert_eq!(v["mode"], "dnat");
    assert_eq!(v["backends"][1]["weight"], 1);
    assert_eq!(parse(&json).unwrap(), s);
    // Through ServiceInput too (what the CLI sends).
    let input = ServiceInput::from(&s);
    assert_eq!(validate(&input, None).unwrap(), s);
    // And straight into ServiceSpec (what the CLI reads back).
    assert_eq!(serde_json::from_str::<ServiceSpec>(&json).unwrap(), s);
}

/// Each bad input and the `field: message` its error must contain.
#[test]
fn each_error_names_its_field() {
    let base =
        |patch: &str| format!(r#"{{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", {patch}}}"#);
    let b = |backends: &str| base(&format!(r#""backends": [{backends}]"#));
    let cases: Vec<(String, &str)> = vec![
        (
            base(r#""name": "x""#).replace(r#""vip": "10.96.0.10""#, r#""vip": "10.96.0.300""#),
            "vip: \"10.96.0.300\" is not an IPv4 address",
        ),
        (
            base(r#""name": "x""#).replace(r#""vip": "10.96.0.10""#, r#""vip": "::1""#),
            "vip: \"::1\": IPv6 is not supported",
        ),
        (
            base(r#""name": "x""#).replace(r#""vip": "10.96.0.10""#, r#""vip": "0.0.0.0""#),
            "vip: 0.0.0.0 is not a unicast address",
        ),
        (
            base(r#""name": "x""#).replace(r#""port": 80"#, r#""port": 0"#),
            "port: must be 1..=65535",
        ),
        (
            base(r#""name": "x""#).replace(r#""port": 80"#, r#""port": 65536"#),
            "port: must be 1..=65535",
        ),
        (
            base(r#""name": "x""#).replace(r#""port": 80"#, r#""port": -1"#),
            "port: must be 1..=65535",
        ),
        (
            base(r#""name": "x""#).replace(r#""port": 80"#, r#""port": "80""#),
            "port: invalid type: string \"80\"",
        ),
        (
            base(r#""name": "x""#).replace(r#""protocol": "tcp""#, r#""protocol": "sctp""#),
            "protocol: unknown protocol \"sctp\" (expected tcp or udp)",
        ),
        (
            base(r#""mode": "dnat", "snat_ip": "10.244.0.5""#),
            "snat_ip: only for mode fullnat (this service is dnat)",
        ),
        (
            base(r#""snat_ip": "10.244.0.5""#),
            "snat_ip: only for mode fullnat (this service is dnat)",
        ),
        (
            base(r#""mode": "onearm", "snat_ip": "10.244.0.5""#),
            "snat_ip: only for mode fullnat (this service is onearm)",
        ),
        (
            base(r#""mode": "fullnat", "snat_ip": "10.244.0""#),
            "snat_ip: \"10.244.0\" is not an IPv4 address",
        ),
        (
            base(r#""mode": "fullnat", "snat_ip": "224.0.0.1""#),
            "snat_ip: 224.0.0.1 is not a unicast address",
        ),
        (
            base(r#""mode": "tun""#),
            "mode: unknown mode \"tun\" (expected dnat, onearm, fullnat or dsr)",
        ),
        (
            base(
                r#""mode": "dsr", "backends": [{"ip": "10.0.2.2", "port": 80}, {"ip": "10.0.2.3", "port": 8080}]"#,
            ),
            "backends[1].port: 8080 is not the service port 80: mode dsr does not rewrite the port",
        ),
        (
            base(r#""select": "lc""#),
            "select: unknown select \"lc\" (expected rr or hash)",
        ),
        (
            base(r#""timeout_s": 0"#),
            "timeout_s: must be 1..=4294967295",
        ),
        (
            base(r#""name": "a\u0007b""#),
            "name: '\\u{7}' not allowed (use A-Z, a-z, 0-9, '.', '_', '/' or '-')",
        ),
        (
            base(r#""name": "x\"} 1\nfake_metric{a=\"b""#),
            "name: '\"' not allowed",
        ),
        (base(r#""name": "a b""#), "name: ' ' not allowed"),
        (base(r#""name": "a\\b""#), "name: '\\\\' not allowed"),
        (base(r#""name": "café""#), "name: 'é' not allowed"),
        (
            base(&format!(r#""name": "{}""#, "n".repeat(254))),
            "name: longer than 253 bytes",
        ),
        (base(r#""colour": "red""#), "colour: unknown field `colour`"),
        (
            b(r#"{"ip": "10.0.2.2", "port": 8080}, {"ip": "10.0.2.3", "port": 0}"#),
            "backends[1].port: must be 1..=65535",
        ),
        (
            b(r#"{"ip": "10.0.2.2", "port": 70000}"#),
            "backends[0].port: must be 1..=65535",
        ),
        (
            b(r#"{"ip": "10.0.2", "port": 80}"#),
            "backends[0].ip: \"10.0.2\" is not an IPv4 address",
        ),
        (b(r#"{"port": 80}"#), "backends[0].ip: required"),
        (b(r#"{"ip": "10.0.2.2"}"#), "backends[0].port: required"),
        (
            b(r#"{"ip": "10.0.2.2", "port": 80, "weight": 0}"#),
            "backends[0].weight: must be 1..=100",
        ),
        (
            b(r#"{"ip": "10.0.2.2", "port": 80, "weight": 101}"#),
            "backends[0].weight: must be 1..=100",
        ),
        (
            b(r#"{"ip": "10.0.2.2", "port": 80, "wieght": 1}"#),
            "backends[0].wieght: unknown field `wieght`",
        ),
        (
            b(r#"{"ip": "10.0.2.2", "port": 80}, {"ip": "10.0.2.2", "port": 80, "weight": 2}"#),
            "backends[1]: duplicate of backends[0] (10.0.2.2:80)",
        ),
        (
            r#"{"port": 80, "protocol": "tcp"}"#.to_string(),
            "vip: required",
        ),
        (
            r#"{"vip": "10.96.0.10", "protocol": "tcp"}"#.to_string(),
            "port: required",
        ),
        (
            r#"{"vip": "10.96.0.10", "port": 80}"#.to_string(),
            "protocol: required",
        ),
        (
            r#"{"vip": "10.96.0.10", "port": 80,"#.to_string(),
            "body: malformed JSON",
        ),
        (
            r#"[1, 2]"#.to_string(),
            "body: expected a JSON object, got an array",
        ),
        (
            r#"["n", "10.96.0.10", 80, "tcp"]"#.to_string(),
            "body: expected a JSON object, got an array",
        ),
        (
            b(r#"["10.0.2.2", 80]"#),
            "backends[0]: expected an object, got an array",
        ),
        (
            base(r#""backends": {"ip": "10.0.2.2"}"#),
            "backends: invalid type: map, expected a sequence",
        ),
        (
            r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp"} trailing"#.to_string(),
            "body: malformed JSON",
        ),
    ];
    for (json, want) in cases {
        let err = parse(&json).expect_err(&json);
        assert!(
            err.contains(want),
            "input {json}\n  got: {err}\n want: {want}"
        );
    }
}

#[test]
fn too_many_backends() {
    let max = lb_common::limits::MAX_BACKENDS_PER_SERVICE as usize;
    let backends = |n: usize| {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"ip": "10.0.{}.{}", "port": 80}}"#,
                    i / 200,
                    i % 200 + 1
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let json = |n| {
        format!(
            r#"{{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "backends": [{}]}}"#,
            backends(n)
        )
    };
    assert_eq!(parse(&json(max)).unwrap().backends.len(), max);
    let err = parse(&json(max + 1)).unwrap_err();
    assert!(
        err.contains("backends: 129 backends, at most 128 per service"),
        "{err}"
    );
}

#[test]
fn all_errors_reported_together() {
    let err = parse(r#"{"vip": "x", "port": 0, "protocol": "tcp", "backends": [{"ip": "10.0.0.1", "port": 0}]}"#)
        .unwrap_err();
    for want in ["vip:", "port: must", "backends[0].port:"] {
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn path_key_fills_and_must_match() {
    let key = ServiceKey::parse_parts("udp", "10.96.0.10", "53").unwrap();
    let input: ServiceInput =
        parse_json(br#"{"backends": [{"ip": "10.0.2.2", "port": 53}]}"#).unwrap();
    let s = validate(&input, Some(&key)).unwrap();
    assert_eq!(s.key(), key);
    assert_eq!(s.timeout_s, 60, "default follows the path's protocol");

    for (json, field) in [
        (r#"{"vip": "10.96.0.11"}"#, "vip"),
        (r#"{"port": 54}"#, "port"),
        (r#"{"protocol": "tcp"}"#, "protocol"),
    ] {
        let input: ServiceInput = parse_json(json.as_bytes()).unwrap();
        let err = validate(&input, Some(&key)).unwrap_err();
        assert!(err.names(field), "{json}: {err}");
        assert!(err.to_string().contains("does not match the path"), "{err}");
    }
    // Agreeing fields are fine.
    let input: ServiceInput =
        parse_json(br#"{"vip": "10.96.0.10", "port": 53, "protocol": "udp"}"#).unwrap();
    assert_eq!(validate(&input, Some(&key)).unwrap().key(), key);
}

#[test]
fn key_parts_and_map_key() {
    let key = ServiceKey::parse_parts("tcp", "10.96.0.10", "80").unwrap();
    assert_eq!(key.to_string(), "tcp/10.96.0.10/80");
    assert_eq!(key.display_addr(), "10.96.0.10:80/tcp");
    let vk = key.vip_key();
    assert_eq!(vk.ip.to_ne_bytes(), [10, 96, 0, 10], "network byte order");
    assert_eq!(vk.port.to_ne_bytes(), [0, 80], "network byte order");
    assert_eq!(vk.proto, 6);
    assert_eq!(ServiceKey::from_vip_key(&vk), Some(key));
    let err = ServiceKey::parse_parts("tcp", "10.96.0.10", "abc").unwrap_err();
    assert!(err.names("port"), "{err}");
    let err = ServiceKey::parse_parts("gre", "nope", "1").unwrap_err();
    assert!(err.names("protocol") && err.names("vip"), "{err}");
}

#[test]
fn kubernetes_names_are_accepted() {
    for name in [
        "",
        "web",
        "default/web",
        "kube-system/kube-dns.v1_2",
        "A-Z.0_9",
    ] {
        assert_eq!(super::check_name(name), Ok(()), "{name:?}");
    }
    assert!(super::check_name(&"n".repeat(super::MAX_NAME_LEN)).is_ok());
}

#[test]
fn dsr_service_on_the_service_port() {
    let s = parse(
        r#"{"vip": "10.96.0.10", "port": 80, "protocol": "udp", "mode": "dsr",
            "backends": [{"ip": "10.244.1.2", "port": 80}, {"ip": "10.244.2.2", "port": 80}]}"#,
    )
    .unwrap();
    assert_eq!(s.mode, Mode::Dsr);
    assert_eq!(s.mode.datapath_value(), lb_common::service::mode::DSR);
    assert_eq!(s.backends.len(), 2);
    // Every backend on another port is named, not just the first.
    let err = parse(
        r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "mode": "dsr",
            "backends": [{"ip": "10.244.1.2", "port": 81}, {"ip": "10.244.2.2", "port": 80},
                         {"ip": "10.244.3.2", "port": 8080}]}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("backends[0].port: 81 is not the service port 80"),
        "{err}"
    );
    assert!(
        err.contains("backends[2].port: 8080 is not the service port 80"),
        "{err}"
    );
    assert!(!err.contains("backends[1]"), "{err}");
}
