//! `GET /metrics`: Prometheus (OpenMetrics) text.

use std::sync::Arc;

use axum::{
    extract::State,
    http::header::CONTENT_TYPE,
    response::{IntoResponse, Response},
};
use lb_common::Counters;
use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{ApiError, blocking::blocking};
use crate::controller::{Controller, MetricsSnapshot};

type Labels = Vec<(String, String)>;

/// The five counter families of one level (service or backend).
struct CounterFamilies {
    packets: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    new_connections: Family<Labels, Counter>,
    reply_packets: Family<Labels, Counter>,
    reply_bytes: Family<Labels, Counter>,
}

impl CounterFamilies {
    fn register(registry: &mut Registry, level: &str) -> Self {
        let f = Self {
            packets: Family::default(),
            bytes: Family::default(),
            new_connections: Family::default(),
            reply_packets: Family::default(),
            reply_bytes: Family::default(),
        };
        let families = [
            ("packets", "Packets client to backend", &f.packets),
            ("bytes", "Bytes (whole frames) client to backend", &f.bytes),
            (
                "new_connections",
                "Connections scheduled",
                &f.new_connections,
            ),
            (
                "reply_packets",
                "Packets backend to client",
                &f.reply_packets,
            ),
            ("reply_bytes", "Bytes backend to client", &f.reply_bytes),
        ];
        for (name, help, family) in families {
            registry.register(
                format!("ferrolb_{level}_{name}"),
                format!("{help}, per {level}"),
                family.clone(),
            );
        }
        f
    }

    fn set(&self, labels: &Labels, c: &Counters) {
        self.packets.get_or_create(labels).inc_by(c.packets);
        self.bytes.get_or_create(labels).inc_by(c.bytes);
        self.new_connections
            .get_or_create(labels)
            .inc_by(c.new_connections);
        self.reply_packets
            .get_or_create(labels)
            .inc_by(c.reply_packets);
        self.reply_bytes.get_or_create(labels).inc_by(c.reply_bytes);
    }
}

/// `value` escaped for the text format (`\\`, `\"`, `\n`):
/// prometheus-client writes label values as they are. Names are validated to
/// need no escaping and the other values are addresses, numbers and fixed
/// names; this keeps the output parseable whatever they hold.
fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Renders a snapshot. Counters are read fresh from the maps on every
/// scrape, so a new registry is built each time.
pub fn render_metrics(s: &MetricsSnapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let services = CounterFamilies::register(&mut registry, "service");
    let backends = CounterFamilies::register(&mut registry, "backend");
    let datapath: Family<Labels, Counter> = Family::default();
    registry.register(
        "ferrolb_datapath_packets",
        "Packets not simply balanced, by what the datapath did (drop/pass reasons, tx, redirect)",
        datapath.clone(),
    );
    let decap: Family<Labels, Counter> = Family::default();
    registry.register(
        "ferrolb_decap_packets",
        "Packets seen by the node-side IPIP decapsulation program (--node-decap), by result",
        decap.clone(),
    );
    let service_count: Gauge = Gauge::default();
    registry.register(
        "ferrolb_services",
        "Services configured",
        service_count.clone(),
    );
    let conntrack: Gauge = Gauge::default();
    registry.register(
        "ferrolb_conntrack_entries",
        "Live connection-table entries (two per connection) at the last scan",
        conntrack.clone(),
    );

    for status in &s.services {
        let spec = &status.spec;
        let labels: Labels = vec![
            ("service".into(), label_value(&spec.name)),
            ("protocol".into(), label_value(spec.protocol.as_str())),
            ("vip".into(), label_value(&spec.vip.to_string())),
            ("port".into(), label_value(&spec.port.to_string())),
        ];
        services.set(&labels, &status.counters.service);
        for b in &status.counters.backends {
            let mut l = labels.clone();
            l.push((
                "backend".into(),
                label_value(&format!("{}:{}", b.ip, b.port)),
            ));
            backends.set(&l, &b.counters);
        }
    }
    for (stat, value) in &s.global {
        datapath
            .get_or_create(&vec![("reason".into(), label_value(stat.name()))])
            .inc_by(*value);
    }
    for (stat, value) in &s.decap {
        decap
            .get_or_create(&vec![("result".into(), label_value(stat.name()))])
            .inc_by(*value);
    }
    service_count.set(s.services.len() as i64);
    conntrack.set(i64::try_from(s.conntrack_entries).unwrap_or(i64::MAX));

    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

pub async fn metrics(State(c): State<Arc<Controller>>) -> Result<Response, ApiError> {
    let snapshot = blocking(&c, |c| c.metrics()).await??;
    let text = render_metrics(&snapshot)
        .map_err(|e| ApiError::internal(format!("encoding metrics: {e}")))?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{controller::ServiceStatus, datapath::ServiceCounters, test_support};

    /// A name that bypassed validation (an old state file, say) still gives
    /// parseable output, its quote, backslash and newline escaped.
    #[test]
    fn label_values_are_escaped() {
        let mut spec =
            test_support::spec(r#"{"vip": "10.96.0.10", "port": 80, "protocol": "tcp"}"#);
        spec.name = "a\"b\\c\nd} 1".to_string();
        let snapshot = MetricsSnapshot {
            services: vec![ServiceStatus {
                spec,
                counters: ServiceCounters {
                    service: Counters::default(),
                    backends: Vec::new(),
                },
            }],
            ..Default::default()
        };
        let text = render_metrics(&snapshot).unwrap();
        assert!(
            text.contains(
                r#"ferrolb_service_packets_total{service="a\"b\\c\nd} 1",protocol="tcp""#
            ),
            "{text}"
        );
        test_support::check_openmetrics(&text).unwrap();
    }

    #[test]
    fn decap_counters_are_labelled_by_result() {
        let snapshot = MetricsSnapshot {
            decap: vec![
                (lb_common::DecapStat::Decapsulated, 3),
                (lb_common::DecapStat::DropFragment, 1),
            ],
            ..Default::default()
        };
        let text = render_metrics(&snapshot).unwrap();
        for line in [
            r#"ferrolb_decap_packets_total{result="decapsulated"} 3"#,
            r#"ferrolb_decap_packets_total{result="drop_fragment"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        test_support::check_openmetrics(&text).unwrap();
    }
}
