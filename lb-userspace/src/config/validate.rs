//! Checks a `ServiceInput` and fills in defaults.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
};

use lb_common::limits;

use super::{
    BackendInput, BackendSpec, FieldError, Mode, Protocol, Select, ServiceInput, ServiceKey,
    ServiceSpec, ValidationError,
};

/// Longest service name, bytes.
pub const MAX_NAME_LEN: usize = 253;

/// Checks `input`. With `path`, the service's key comes from the request
/// path: the body may omit vip, port and protocol, and must agree with the
/// path where it gives them. Every problem found is reported, each naming its
/// field.
pub fn validate(
    input: &ServiceInput,
    path: Option<&ServiceKey>,
) -> Result<ServiceSpec, ValidationError> {
    let mut errors = Vec::new();

    let name = input.name.clone().unwrap_or_default();
    if let Err(e) = check_name(&name) {
        errors.push(FieldError::new("name", e));
    }

    let vip = key_part(
        &mut errors,
        "vip",
        input.vip.as_deref().map(parse_ip),
        path.map(|p| p.vip),
    );
    let port = key_part(
        &mut errors,
        "port",
        input.port.map(check_port),
        path.map(|p| p.port),
    );
    let protocol = key_part(
        &mut errors,
        "protocol",
        input.protocol.as_deref().map(str::parse::<Protocol>),
        path.map(|p| p.protocol),
    );

    let mode = parse_named(&mut errors, "mode", input.mode.as_deref(), Mode::Dnat);
    let select = parse_named(
        &mut errors,
        "select",
        input.select.as_deref(),
        Select::RoundRobin,
    );

    let timeout_s = match input.timeout_s {
        None => protocol.map(Protocol::default_timeout_s),
        Some(t) if (1..=i64::from(u32::MAX)).contains(&t) => Some(t as u32),
        Some(_) => {
            errors.push(FieldError::new(
                "timeout_s",
                format!("must be 1..={}", u32::MAX),
            ));
            None
        }
    };

    let snat_ip = match (&input.snat_ip, mode) {
        (None, _) => None,
        (Some(_), Some(m)) if m != Mode::Fullnat => {
            errors.push(FieldError::new(
                "snat_ip",
                format!("only for mode fullnat (this service is {m})"),
            ));
            None
        }
        (Some(text), _) => match parse_ip(text) {
            Ok(ip) => Some(ip),
            Err(e) => {
                errors.push(FieldError::new("snat_ip", e));
                None
            }
        },
    };

    let backends = check_backends(&mut errors, input.backends.as_deref().unwrap_or(&[]));
    if let (Some(Mode::Dsr), Some(port)) = (mode, port) {
        check_dsr_ports(&mut errors, input.backends.as_deref().unwrap_or(&[]), port);
    }

    match (vip, port, protocol, mode, select, timeout_s) {
        (Some(vip), Some(port), Some(protocol), Some(mode), Some(select), Some(timeout_s))
            if errors.is_empty() =>
        {
            Ok(ServiceSpec {
                name,
                vip,
                port,
                protocol,
                mode,
                select,
                timeout_s,
                snat_ip,
                backends,
            })
        }
        _ => Err(ValidationError { errors }),
    }
}

/// One part of the service key (vip, port or protocol): as parsed from the
/// body (`given`), or from the request path when the body omits it; where
/// both are there they must agree.
fn key_part<T: PartialEq + std::fmt::Display>(
    errors: &mut Vec<FieldError>,
    field: &str,
    given: Option<Result<T, String>>,
    from_path: Option<T>,
) -> Option<T> {
    match (given, from_path) {
        (None, Some(p)) => Some(p),
        (None, None) => missing(errors, field),
        (Some(Err(e)), _) => {
            errors.push(FieldError::new(field, e));
            None
        }
        (Some(Ok(v)), Some(p)) if v != p => {
            errors.push(FieldError::new(
                field,
                format!("{v} does not match the path's {p}"),
            ));
            None
        }
        (Some(Ok(v)), _) => Some(v),
    }
}

fn missing<T>(errors: &mut Vec<FieldError>, field: &str) -> Option<T> {
    errors.push(FieldError::new(field, "required"));
    None
}

fn parse_named<T: std::str::FromStr<Err = String>>(
    errors: &mut Vec<FieldError>,
    field: &str,
    text: Option<&str>,
    default: T,
) -> Option<T> {
    match text.map(str::parse::<T>) {
        None => Some(default),
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            errors.push(FieldError::new(field, e));
            None
        }
    }
}

fn check_backends(errors: &mut Vec<FieldError>, inputs: &[BackendInput]) -> Vec<BackendSpec> {
    if inputs.len() > limits::MAX_BACKENDS_PER_SERVICE as usize {
        errors.push(FieldError::new(
            "backends",
            format!(
                "{} backends, at most {} per service",
                inputs.len(),
                limits::MAX_BACKENDS_PER_SERVICE
            ),
        ));
    }
    let mut seen: HashMap<(Ipv4Addr, u16), usize> = HashMap::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, b) in inputs.iter().enumerate() {
        let field = |f: &str| format!("backends[{i}].{f}");
        let ip = match &b.ip {
            None => missing(errors, &field("ip")),
            Some(text) => parse_ip(text)
                .map_err(|e| errors.push(FieldError::new(field("ip"), e)))
                .ok(),
        };
        let port = match b.port {
            None => missing(errors, &field("port")),
            Some(n) => check_port(n)
                .map_err(|e| errors.push(FieldError::new(field("port"), e)))
                .ok(),
        };
        let weight = match b.weight {
            None => Some(1),
            Some(w) if (1..=i64::from(limits::MAX_WEIGHT)).contains(&w) => Some(w as u32),
            Some(_) => {
                errors.push(FieldError::new(
                    field("weight"),
                    format!("must be 1..={}", limits::MAX_WEIGHT),
                ));
                None
            }
        };
        if let (Some(ip), Some(port)) = (ip, port) {
            if let Some(first) = seen.insert((ip, port), i) {
                errors.push(FieldError::new(
                    format!("backends[{i}]"),
                    format!("duplicate of backends[{first}] ({ip}:{port})"),
                ));
            }
            if let Some(weight) = weight {
                out.push(BackendSpec { ip, port, weight });
            }
        }
    }
    out
}

/// DSR does not rewrite the packet: a backend receives it on the service's
/// port, so a backend on another port is refused (naming it) rather than
/// silently ignored.
fn check_dsr_ports(errors: &mut Vec<FieldError>, inputs: &[BackendInput], port: u16) {
    for (i, b) in inputs.iter().enumerate() {
        // Missing or out-of-range ports are reported by `check_backends`.
        match b.port.map(check_port) {
            Some(Ok(p)) if p != port => errors.push(FieldError::new(
                format!("backends[{i}].port"),
                format!("{p} is not the service port {port}: mode dsr does not rewrite the port"),
            )),
            _ => {}
        }
    }
}

/// A service name: at most `MAX_NAME_LEN` bytes of `A-Z a-z 0-9 . _ / -`,
/// which covers Kubernetes `namespace/name` and is safe as a Prometheus label
/// value (no quote, backslash or newline to escape).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!("longer than {MAX_NAME_LEN} bytes"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        Some(c) => Err(format!(
            "{c:?} not allowed (use A-Z, a-z, 0-9, '.', '_', '/' or '-')"
        )),
        None => Ok(()),
    }
}

/// A port number: 1..=65535.
pub fn check_port(n: i64) -> Result<u16, String> {
    match u16::try_from(n) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err("must be 1..=65535".to_string()),
    }
}

/// An IPv4 unicast address.
pub fn parse_ip(text: &str) -> Result<Ipv4Addr, String> {
    let ip = match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip,
        Ok(IpAddr::V6(_)) => return Err(format!("{text:?}: IPv6 is not supported")),
        Err(_) => return Err(format!("{text:?} is not an IPv4 address")),
    };
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(format!("{ip} is not a unicast address"));
    }
    Ok(ip)
}

impl ServiceKey {
    /// A key from the three parts of a REST path; errors name `protocol`,
    /// `vip` or `port`.
    pub fn parse_parts(protocol: &str, vip: &str, port: &str) -> Result<Self, ValidationError> {
        let mut errors = Vec::new();
        let protocol = protocol
            .parse::<Protocol>()
            .map_err(|e| errors.push(FieldError::new("protocol", e)))
            .ok();
        let vip = parse_ip(vip)
            .map_err(|e| errors.push(FieldError::new("vip", e)))
            .ok();
        let port = port
            .parse::<i64>()
            .map_err(|_| format!("{port:?} is not a number"))
            .and_then(check_port)
            .map_err(|e| errors.push(FieldError::new("port", e)))
            .ok();
        match (protocol, vip, port) {
            (Some(protocol), Some(vip), Some(port)) => Ok(ServiceKey {
                protocol,
                vip,
                port,
            }),
            _ => Err(ValidationError { errors }),
        }
    }
}
