//! A small client for ferrolbd's REST API, making each request from inside
//! the daemon's network namespace (the API listens on that namespace's
//! loopback).

use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{Context, Result};
use lb_common::GlobalStat;
use lb_userspace::config::TunnelSpec;
use serde_json::{Value, json};

use crate::netns::Netns;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Status and body of one API response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response body is not JSON: {:?}", self.body))
    }

    /// The `error` field of a JSON error body (`{"error": "..."}`).
    pub fn error(&self) -> Option<String> {
        self.json().ok()?.get("error")?.as_str().map(str::to_string)
    }
}

/// ferrolbd's API at `base` (e.g. `http://127.0.0.1:7701`), reached from `ns`.
#[derive(Debug)]
pub struct Api {
    ns: Netns,
    base: String,
}

impl Api {
    pub fn new(ns: &Netns, base: &str) -> Api {
        Api {
            ns: ns.handle(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Any request; `body` is sent verbatim as JSON (so malformed JSON can be
    /// tested). Non-2xx statuses are returned, not errors.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        self.ns.run(|| -> Result<Reply> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(TIMEOUT))
                .build()
                .into();
            let builder = ureq::http::Request::builder().method(method).uri(&url);
            let mut response = match body {
                Some(body) => agent.run(
                    builder
                        .header("content-type", "application/json")
                        .body(body.to_string())?,
                ),
                None => agent.run(builder.body(())?),
            }
            .with_context(|| format!("{method} {url}"))?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            Ok(Reply { status, body })
        })?
    }

    pub fn get(&self, path: &str) -> Result<Reply> {
        self.request("GET", path, None)
    }

    pub fn delete(&self, path: &str) -> Result<Reply> {
        self.request("DELETE", path, None)
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Reply> {
        self.request("PUT", path, Some(&body.to_string()))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.request("POST", path, Some(&body.to_string()))
    }

    /// PUT a service body to its own path; error unless 2xx.
    pub fn put_service(&self, service: &Value) -> Result<Reply> {
        self.put_ok(&service_path_of(service)?, service)
    }

    /// PUT a tunnel route to `/v1/tunnels/{name}`; error unless 2xx.
    pub fn put_tunnel(&self, tunnel: &TunnelSpec) -> Result<Reply> {
        let path = format!("/v1/tunnels/{}", tunnel.name);
        self.put_ok(&path, &serde_json::to_value(tunnel)?)
    }

    /// PUT; error unless 2xx.
    fn put_ok(&self, path: &str, body: &Value) -> Result<Reply> {
        let reply = self.put(path, body)?;
        anyhow::ensure!(
            (200..300).contains(&reply.status),
            "PUT {path} answered {}: {}",
            reply.status,
            reply.body
        );
        Ok(reply)
    }

    /// The value of one series of `/metrics`, named with its labels as the
    /// text shows it (e.g.
    /// `ferrolb_decap_packets_total{result="decapsulated"}`).
    pub fn metric(&self, series: &str) -> Result<u64> {
        series_value(&self.get("/metrics")?.body, series)
    }

    /// `ferrolb_datapath_packets_total{reason="..."}`: a datapath counter
    /// (`lb_common::GlobalStat::name`).
    pub fn datapath_packets(&self, reason: &str) -> Result<u64> {
        self.metric(&datapath_series(reason))
    }

    /// The non-zero datapath counters among `stats`, from one scrape.
    pub fn datapath_counts(&self, stats: &[GlobalStat]) -> Result<Vec<(GlobalStat, u64)>> {
        let metrics = self.get("/metrics")?.body;
        let mut out = Vec::new();
        for &stat in stats {
            let n = series_value(&metrics, &datapath_series(stat.name()))?;
            if n > 0 {
                out.push((stat, n));
            }
        }
        Ok(out)
    }

    /// Whether GET /healthz answers 200.
    pub fn healthy(&self) -> bool {
        self.get("/healthz").is_ok_and(|r| r.status == 200)
    }
}

/// The series of datapath counter `reason` in `/metrics`.
fn datapath_series(reason: &str) -> String {
    format!("ferrolb_datapath_packets_total{{reason=\"{reason}\"}}")
}

/// The value of `series` (named with its labels) in the `/metrics` text.
fn series_value(metrics: &str, series: &str) -> Result<u64> {
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .with_context(|| format!("no {series} in /metrics:\n{metrics}"))?
        .trim()
        .parse()
        .with_context(|| format!("{series}: not an integer"))
}

/// `/v1/services/{protocol}/{vip}/{port}`.
pub fn service_path(protocol: &str, vip: SocketAddrV4) -> String {
    format!("/v1/services/{protocol}/{}/{}", vip.ip(), vip.port())
}

fn service_path_of(service: &Value) -> Result<String> {
    let protocol = service["protocol"]
        .as_str()
        .context("service has no protocol")?;
    let vip = service["vip"].as_str().context("service has no vip")?;
    let port = service["port"].as_u64().context("service has no port")?;
    Ok(format!("/v1/services/{protocol}/{vip}/{port}"))
}

/// A service body as the API takes it (mode dnat, weight 1 each).
pub fn service_json(
    name: &str,
    protocol: &str,
    vip: SocketAddrV4,
    select: &str,
    backends: &[SocketAddrV4],
) -> Value {
    json!({
        "name": name,
        "vip": vip.ip().to_string(),
        "port": vip.port(),
        "protocol": protocol,
        "mode": "dnat",
        "select": select,
        "backends": backends
            .iter()
            .map(|b| json!({"ip": b.ip().to_string(), "port": b.port(), "weight": 1}))
            .collect::<Vec<_>>(),
    })
}
