//! Tunnel routes: a pod network (`pod_cidr`) reached through its node
//! (`node_ip`), plain, over IPIP or over VXLAN. What a user sends
//! (`TunnelInput`), how it is checked (`validate_tunnel`) and the checked
//! result (`TunnelSpec`), with its `TUNNELS` map key and value.

use std::{fmt, net::Ipv4Addr, str::FromStr};

use lb_common::{
    Tunnel,
    limits::{SNAT_PORT_MAX, SNAT_PORT_MIN},
    tunnel,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FieldError, ValidationError, check_name, check_port, names::named_enum, parse_ip};

/// flannel's VXLAN defaults.
pub const DEFAULT_VNI: u32 = 1;
pub const DEFAULT_VXLAN_PORT: u16 = 8472;

named_enum!(
    /// How packets to a pod network travel to its node.
    Encap, "encap" {
        /// Routed to the node, not encapsulated.
        None = "none",
        /// IPv4 in IPv4.
        Ipip = "ipip",
        /// VXLAN (flannel's overlay).
        Vxlan = "vxlan",
    }
);

impl Encap {
    /// `Tunnel::encap` in the datapath.
    pub const fn datapath_value(self) -> u8 {
        match self {
            Encap::None => tunnel::encap::NONE,
            Encap::Ipip => tunnel::encap::IPIP,
            Encap::Vxlan => tunnel::encap::VXLAN,
        }
    }
}

/// An IPv4 network: `192.168.140.64/26`, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

impl Ipv4Cidr {
    /// `addr/prefix_len`; `None` if the prefix length is beyond 32 or `addr`
    /// has host bits set.
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 32 && addr == Self::mask(addr, prefix_len))
            .then_some(Self { addr, prefix_len })
    }

    fn mask(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
        let bits = u32::from(addr);
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0);
        Ipv4Addr::from(bits & mask)
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Self::mask(ip, self.prefix_len) == self.addr
    }

    /// The `TUNNELS` key: prefix length and address in network byte order.
    pub fn lpm_key(&self) -> aya::maps::lpm_trie::Key<u32> {
        aya::maps::lpm_trie::Key::new(
            u32::from(self.prefix_len),
            u32::from_ne_bytes(self.addr.octets()),
        )
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || format!("{s:?} is not an IPv4 CIDR (e.g. 192.168.140.64/26)");
        let (addr, len) = s.split_once('/').ok_or_else(usage)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| usage())?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| (1..=32).contains(l))
            .ok_or_else(|| format!("{s:?}: prefix length must be 1..=32"))?;
        Self::new(addr, len).ok_or_else(|| {
            format!(
                "{s:?} has host bits set (the network is {}/{len})",
                Self::mask(addr, len)
            )
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A MAC address, `ab:12:cd:34:ef:56`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a MAC address (e.g. ab:12:cd:34:ef:56)");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out == [0; 6] {
            return Err(format!("{s}: the all-zero MAC cannot be a VTEP address"));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Serialises as its text, deserialises by parsing it.
macro_rules! as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
as_text!(Ipv4Cidr);
as_text!(MacAddr);

/// A tunnel route as sent to the API or written in a file. Every field is
/// optional here; `validate_tunnel` says which are required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<i64>,
}

impl TunnelInput {
    /// A tunnel from parsed JSON: an object, type errors naming the field.
    pub fn from_value(v: Value) -> Result<Self, FieldError> {
        super::input::deserialize_object(v)
    }
}

/// A checked tunnel route, defaults filled in. `vni`, `vtep_mac` and
/// `dst_port` are present exactly when `encap` is vxlan. Serialises to the
/// API's and the state file's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSpec {
    pub name: String,
    pub pod_cidr: Ipv4Cidr,
    pub node_ip: Ipv4Addr,
    pub encap: Encap,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep_mac: Option<MacAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
}

impl TunnelSpec {
    /// The `TUNNELS` map value, with the load balancer's end of the tunnel
    /// (`source`: outer source address, `vtep_mac`: inner source MAC for
    /// VXLAN); absent ones are written as zero.
    pub fn datapath_value(&self, source: Option<Ipv4Addr>, vtep_mac: Option<MacAddr>) -> Tunnel {
        Tunnel {
            node_ip: u32::from_ne_bytes(self.node_ip.octets()),
            vni: self.vni.unwrap_or(0),
            dst_port: self.dst_port.unwrap_or(0).to_be(),
            vtep_mac: self.vtep_mac.map_or([0; 6], |m| m.0),
            encap: self.encap.datapath_value(),
            _pad: [0; 3],
            src_ip: source.map_or(0, |s| u32::from_ne_bytes(s.octets())),
            src_mac: vtep_mac.map_or([0; 6], |m| m.0),
            _pad2: 0,
        }
    }
}

impl From<&TunnelSpec> for TunnelInput {
    fn from(t: &TunnelSpec) -> Self {
        TunnelInput {
            name: Some(t.name.clone()),
            pod_cidr: Some(t.pod_cidr.to_string()),
            node_ip: Some(t.node_ip.to_string()),
            encap: Some(t.encap.to_string()),
            vni: t.vni.map(i64::from),
            vtep_mac: t.vtep_mac.map(|m| m.to_string()),
            dst_port: t.dst_port.map(i64::from),
        }
    }
}

/// Checks `input`. With `path_name` (the REST path's name) the body may omit
/// `name`, and must agree where it gives it. Every problem is reported, each
/// naming its field.
pub fn validate_tunnel(
    input: &TunnelInput,
    path_name: Option<&str>,
) -> Result<TunnelSpec, ValidationError> {
    let mut errors = Vec::new();
    let mut err = |field: &str, msg: String| errors.push(FieldError::new(field, msg));

    let name = match (input.name.as_deref(), path_name) {
        (Some(b), Some(p)) if b != p => {
            err("name", format!("{b:?} does not match the path's {p:?}"));
            None
        }
        (Some(n), _) | (None, Some(n)) => match check_tunnel_name(n) {
            Ok(()) => Some(n.to_string()),
            Err(e) => {
                err("name", e);
                None
            }
        },
        (None, None) => {
            err("name", "required".into());
            None
        }
    };

    let pod_cidr = match input.pod_cidr.as_deref().map(str::parse::<Ipv4Cidr>) {
        None => {
            err("pod_cidr", "required".into());
            None
        }
        Some(Err(e)) => {
            err("pod_cidr", e);
            None
        }
        Some(Ok(c)) => Some(c),
    };

    let node_ip = match input.node_ip.as_deref().map(parse_ip) {
        None => {
            err("node_ip", "required".into());
            None
        }
        Some(Err(e)) => {
            err("node_ip", e);
            None
        }
        Some(Ok(ip)) => Some(ip),
    };

    let encap = match input.encap.as_deref().map(str::parse::<Encap>) {
        None => {
            err("encap", format!("required ({})", Encap::expected()));
            None
        }
        Some(Err(e)) => {
            err("encap", e);
            None
        }
        Some(Ok(e)) => Some(e),
    };

    let (mut vni, mut vtep_mac, mut dst_port) = (None, None, None);
    match encap {
        Some(Encap::Vxlan) => {
            vni = match input.vni {
                None => Some(DEFAULT_VNI),
                Some(v) if (1..=i64::from(tunnel::MAX_VNI)).contains(&v) => Some(v as u32),
                Some(_) => {
                    err("vni", format!("must be 1..={}", tunnel::MAX_VNI));
                    None
                }
            };
            dst_port = match input.dst_port.map(check_port) {
                None => Some(DEFAULT_VXLAN_PORT),
                // Replies of source-NATed connections arrive on those ports
                // of the tunnel source (onearm): one of them must never be
                // taken for VXLAN.
                Some(Ok(p)) if (SNAT_PORT_MIN..=SNAT_PORT_MAX).contains(&p) => {
                    err(
                        "dst_port",
                        format!(
                            "{p} is inside {SNAT_PORT_MIN}..={SNAT_PORT_MAX}, the ports onearm and \
                             fullnat connections use; use a port outside it (flannel's {DEFAULT_VXLAN_PORT}, \
                             IANA's 4789)"
                        ),
                    );
                    None
                }
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    err("dst_port", e);
                    None
                }
            };
            vtep_mac = match input.vtep_mac.as_deref().map(str::parse::<MacAddr>) {
                None => {
                    err("vtep_mac", "required with encap vxlan".into());
                    None
                }
                Some(Err(e)) => {
                    err("vtep_mac", e);
                    None
                }
                Some(Ok(m)) => Some(m),
            };
        }
        Some(other) => {
            let only = format!("only for encap vxlan, not {other}");
            if input.vni.is_some() {
                err("vni", only.clone());
            }
            if input.vtep_mac.is_some() {
                err("vtep_mac", only.clone());
            }
            if input.dst_port.is_some() {
                err("dst_port", only);
            }
        }
        None => {}
    }

    // The node's address on the node network cannot be one of the pod
    // addresses it is the way to: encapsulated to itself, a packet would
    // never arrive. (The datapath relies on it: a connection whose next hop
    // was resolved toward its backend itself is not encapsulated,
    // `tunnel::route`.)
    if let (Some(c), Some(ip), Some(Encap::Ipip | Encap::Vxlan)) = (&pod_cidr, node_ip, encap)
        && c.contains(ip)
    {
        err(
            "node_ip",
            format!(
                "{ip} is inside pod_cidr {c}: it must be the node's address on the node network"
            ),
        );
    }

    match (name, pod_cidr, node_ip, encap) {
        (Some(name), Some(pod_cidr), Some(node_ip), Some(encap)) if errors.is_empty() => {
            Ok(TunnelSpec {
                name,
                pod_cidr,
                node_ip,
                encap,
                vni,
                vtep_mac,
                dst_port,
            })
        }
        _ => Err(ValidationError { errors }),
    }
}

/// A tunnel name: not empty, and the service names' rule (`check_name`).
pub fn check_tunnel_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    check_name(name)
}
