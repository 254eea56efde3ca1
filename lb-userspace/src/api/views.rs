//! Response bodies beyond `ServiceSpec`: a service with its counters.

use std::net::Ipv4Addr;

use lb_common::Counters;
use serde::{Deserialize, Serialize};

use crate::{
    config::{Mode, Protocol, Select},
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendView {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub stats: CountersView,
}

/// `GET /v1/services/{protocol}/{vip}/{port}`: the service, its totals and
/// its backends' counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub select: Select,
    pub timeout_s: u32,
    pub backends: Vec<BackendView>,
    pub stats: CountersView,
}

impl From<&ServiceStatus> for ServiceView {
    fn from(s: &ServiceStatus) -> Self {
        let spec = &s.spec;
        let backends = spec
            .backends
            .iter()
            .map(|b| BackendView {
                ip: b.ip,
                port: b.port,
                weight: b.weight,
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
            name: spec.name.clone(),
            vip: spec.vip,
            port: spec.port,
            protocol: spec.protocol,
            mode: spec.mode,
            select: spec.select,
            timeout_s: spec.timeout_s,
            backends,
            stats: s.counters.service.into(),
        }
    }
}
