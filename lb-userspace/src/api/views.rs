//! Response bodies beyond `ServiceSpec`: a service with its counters.

use lb_common::Counters;
use serde::{Deserialize, Serialize};

use crate::{
    config::{BackendSpec, ServiceSpec},
    controller::ServiceStatus,
};

/// Counters summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersView {
    /// Packets client -> backend.
    pub packets: u64,
    pub bytes: u64,
    pub new_connections: u64,
    /// Packets backend -> client.
    pub reply_packets: u64,
    pub reply_bytes: u64,
}

impl From<Counters> for CountersView {
    fn from(c: Counters) -> Self {
        Self {
            packets: c.packets,
            bytes: c.bytes,
            new_connections: c.new_connections,
            reply_packets: c.reply_packets,
            reply_bytes: c.reply_bytes,
        }
    }
}

/// A backend with its counters: `BackendSpec`'s fields and `stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendView {
    #[serde(flatten)]
    pub backend: BackendSpec,
    pub stats: CountersView,
}

/// `GET /v1/services/{protocol}/{vip}/{port}`: the service (`ServiceSpec`'s
/// fields, its backends with their counters) and its totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    #[serde(flatten)]
    pub spec: ServiceSpec<BackendView>,
    pub stats: CountersView,
}

impl From<&ServiceStatus> for ServiceView {
    fn from(s: &ServiceStatus) -> Self {
        let spec = &s.spec;
        let backends = spec
            .backends
            .iter()
            .map(|b| BackendView {
                backend: *b,
                stats: s
                    .counters
                    .backends
                    .iter()
                    .find(|c| c.ip == b.ip && c.port == b.port)
                    .map(|c| c.counters.into())
                    .unwrap_or_default(),
            })
            .collect();
        Self {
            spec: ServiceSpec {
                name: spec.name.clone(),
                vip: spec.vip,
                port: spec.port,
                protocol: spec.protocol,
                mode: spec.mode,
                select: spec.select,
                timeout_s: spec.timeout_s,
                snat_ip: spec.snat_ip,
                backends,
            },
            stats: s.counters.service.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::{
        datapath::{BackendCounters, ServiceCounters},
        test_support::spec,
    };

    /// The JSON of `GET` one service, byte for byte.
    #[test]
    fn service_view_json() {
        let counters = |n: u64| Counters {
            packets: n,
            bytes: 2 * n,
            new_connections: 3 * n,
            reply_packets: 4 * n,
            reply_bytes: 5 * n,
        };
        let status = ServiceStatus {
            spec: spec(
                r#"{"name": "default/web", "vip": "10.96.0.10", "port": 80, "protocol": "tcp",
                    "backends": [{"ip": "10.0.2.2", "port": 8080, "weight": 2}]}"#,
            ),
            counters: ServiceCounters {
                service: counters(1),
                backends: vec![BackendCounters {
                    ip: Ipv4Addr::new(10, 0, 2, 2),
                    port: 8080,
                    counters: counters(10),
                }],
            },
        };
        let view = ServiceView::from(&status);
        let json = serde_json::to_string(&view).unwrap();
        assert_eq!(
            json,
            r#"{"name":"default/web","vip":"10.96.0.10","port":80,"protocol":"tcp","mode":"dnat","select":"rr","timeout_s":3600,"backends":[{"ip":"10.0.2.2","port":8080,"weight":2,"stats":{"packets":10,"bytes":20,"new_connections":30,"reply_packets":40,"reply_bytes":50}}],"stats":{"packets":1,"bytes":2,"new_connections":3,"reply_packets":4,"reply_bytes":5}}"#
        );
        let back: ServiceView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, view);
    }
}
