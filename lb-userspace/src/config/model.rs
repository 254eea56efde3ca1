//! Checked service definitions and their keys.

use std::{fmt, net::Ipv4Addr};

use lb_common::{VipKey, limits, service};
use serde::{Deserialize, Serialize};

use super::names::named_enum;

named_enum!(
    /// Transport protocol of a service.
    Protocol, "protocol" {
        Tcp = "tcp",
        Udp = "udp",
    }
);

impl Protocol {
    /// IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => lb_common::proto::TCP,
            Protocol::Udp => lb_common::proto::UDP,
        }
    }

    /// Idle timeout when the service does not set `timeout_s`.
    pub const fn default_timeout_s(self) -> u32 {
        match self {
            Protocol::Tcp => limits::DEFAULT_TCP_TIMEOUT_S,
            Protocol::Udp => limits::DEFAULT_UDP_TIMEOUT_S,
        }
    }
}

named_enum!(
    /// How packets are rewritten.
    Mode, "mode" {
        /// Destination rewritten to the backend, client source kept.
        Dnat = "dnat",
        /// DNAT, and the source rewritten to the load balancer's address
        /// toward the backend, with an allocated port.
        Onearm = "onearm",
        /// DNAT, and the source rewritten to the service's `snat_ip` (default
        /// the load balancer's overlay address), with an allocated port.
        Fullnat = "fullnat",
        /// Direct server return: not rewritten, IPIP-encapsulated to the
        /// backend, which holds the VIP and answers the client directly.
        /// Backends must use the service's port.
        Dsr = "dsr",
    }
);

impl Mode {
    /// `Service::mode` in the datapath.
    pub const fn datapath_value(self) -> u8 {
        match self {
            Mode::Dnat => service::mode::DNAT,
            Mode::Onearm => service::mode::ONEARM,
            Mode::Fullnat => service::mode::FULLNAT,
            Mode::Dsr => service::mode::DSR,
        }
    }
}

named_enum!(
    /// How a new flow picks its backend.
    Select, "select" {
        /// Round robin over the weighted ring.
        RoundRobin = "rr",
        /// Hash of the 5-tuple over the weighted ring.
        Hash = "hash",
    }
);

impl Select {
    /// `Service::select` in the datapath.
    pub const fn datapath_value(self) -> u8 {
        match self {
            Select::RoundRobin => service::select::ROUND_ROBIN,
            Select::Hash => service::select::HASH,
        }
    }
}

/// Identity of a service: (protocol, VIP, port). Shown as `tcp/10.96.0.10/80`,
/// the REST path below `/v1/services/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub protocol: Protocol,
    pub vip: Ipv4Addr,
    pub port: u16,
}

impl ServiceKey {
    /// The `SERVICES` map key.
    pub fn vip_key(&self) -> VipKey {
        VipKey {
            ip: u32::from_ne_bytes(self.vip.octets()),
            port: self.port.to_be(),
            proto: self.protocol.number(),
            _pad: 0,
        }
    }

    /// The key of a `SERVICES` entry, if its protocol is one we know.
    pub fn from_vip_key(key: &VipKey) -> Option<Self> {
        let protocol = Protocol::ALL
            .iter()
            .copied()
            .find(|p| p.number() == key.proto)?;
        Some(Self {
            protocol,
            vip: Ipv4Addr::from(key.ip.to_ne_bytes()),
            port: u16::from_be(key.port),
        })
    }

    /// `VIP:PORT/PROTO`, as the CLI spells it.
    pub fn display_addr(&self) -> String {
        format!("{}:{}/{}", self.vip, self.port, self.protocol)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.protocol, self.vip, self.port)
    }
}

/// A checked backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSpec {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
}

/// A checked service, every default filled in. Serialises to the API's and
/// the state file's JSON. Deserialising it does not validate: read user
/// input as `ServiceInput` and `validate` it. `B` is the backend type: the
/// API's view of a service reuses these fields with backends that carry
/// their counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec<B = BackendSpec> {
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub select: Select,
    pub timeout_s: u32,
    /// `fullnat` only: the source address of connections to the backends
    /// (default: the load balancer's `--overlay-ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snat_ip: Option<Ipv4Addr>,
    pub backends: Vec<B>,
}

impl<B> ServiceSpec<B> {
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            protocol: self.protocol,
            vip: self.vip,
            port: self.port,
        }
    }
}
