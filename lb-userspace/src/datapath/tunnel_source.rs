//! The load balancer's end of its tunnels: the outer source address
//! (`--tunnel-source`, or the preferred source of the kernel's route to the
//! node) and the VTEP MAC VXLAN frames carry as inner source (`--vtep-mac`,
//! or the MAC of the interface holding the tunnel source).

use std::{
    io,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
};

use super::{DatapathError, ifaddrs::mac_holding};
use crate::config::{Encap, MacAddr, TunnelSpec};

/// How the load balancer's tunnel end is chosen (daemon flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunnelEndConfig {
    /// `--tunnel-source`: the outer source of every tunnel; `None`: the
    /// preferred source of the route to each node.
    pub source: Option<Ipv4Addr>,
    /// `--vtep-mac`; `None`: the MAC of the interface holding the source.
    pub vtep_mac: Option<MacAddr>,
}

/// The load balancer's end of one tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalEnd {
    pub source: Ipv4Addr,
    /// For VXLAN only.
    pub vtep_mac: Option<MacAddr>,
}

impl TunnelEndConfig {
    /// The local end of `spec`'s tunnel; `None` for `encap: none`. Errors
    /// name the tunnel, its node and what could not be found.
    pub fn resolve(&self, spec: &TunnelSpec) -> Result<Option<LocalEnd>, DatapathError> {
        if spec.encap == Encap::None {
            return Ok(None);
        }
        let fail = |reason: String| DatapathError::TunnelSource {
            tunnel: spec.name.clone(),
            reason,
        };
        let source = match self.source {
            Some(s) => s,
            None => route_source(spec.node_ip).map_err(|e| {
                fail(format!(
                    "no route to node_ip {} to take the tunnel source from ({e}); \
                     give ferrolbd --tunnel-source",
                    spec.node_ip
                ))
            })?,
        };
        let vtep_mac = match (spec.encap, self.vtep_mac) {
            (Encap::Vxlan, Some(m)) => Some(m),
            (Encap::Vxlan, None) => Some(MacAddr(mac_holding(source)?.ok_or_else(|| {
                fail(format!(
                    "no interface here holds the tunnel source {source}, so it has no MAC \
                     for the VXLAN VTEP; give ferrolbd --vtep-mac"
                ))
            })?)),
            _ => None,
        };
        Ok(Some(LocalEnd { source, vtep_mac }))
    }
}

/// The source address the kernel picks for packets to `dst`: the local
/// address of a UDP socket connected to it (connecting sends nothing; it
/// runs the route lookup, preferred source included).
pub fn route_source(dst: Ipv4Addr) -> io::Result<Ipv4Addr> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    // The port is irrelevant (nothing is sent); the discard port.
    sock.connect(SocketAddrV4::new(dst, 9))?;
    match sock.local_addr()? {
        std::net::SocketAddr::V4(a) if !a.ip().is_unspecified() => Ok(*a.ip()),
        other => Err(io::Error::other(format!(
            "unexpected local address {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TunnelInput, validate_tunnel};

    fn spec(encap: &str, node_ip: &str) -> TunnelSpec {
        let vxlan = encap == "vxlan";
        validate_tunnel(
            &TunnelInput {
                name: Some("node-1".into()),
                pod_cidr: Some("192.168.140.64/26".into()),
                node_ip: Some(node_ip.into()),
                encap: Some(encap.into()),
                vtep_mac: vxlan.then(|| "02:00:00:00:00:01".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap()
    }

    #[test]
    fn route_source_of_loopback_is_loopback() {
        assert_eq!(
            route_source(Ipv4Addr::new(127, 0, 0, 9)).unwrap(),
            Ipv4Addr::LOCALHOST
        );
    }

    #[test]
    fn fixed_source_and_mac_are_used_as_given() {
        let cfg = TunnelEndConfig {
            source: Some(Ipv4Addr::new(192, 0, 2, 1)),
            vtep_mac: Some(MacAddr([2, 0, 0, 0, 0, 9])),
        };
        let end = cfg
            .resolve(&spec("vxlan", "198.51.100.7"))
            .unwrap()
            .unwrap();
        assert_eq!(end.source, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(end.vtep_mac, Some(MacAddr([2, 0, 0, 0, 0, 9])));
        let end = cfg.resolve(&spec("ipip", "198.51.100.7")).unwrap().unwrap();
        assert_eq!(end.vtep_mac, None);
        assert_eq!(cfg.resolve(&spec("none", "198.51.100.7")).unwrap(), None);
    }

    #[test]
    fn vxlan_without_a_mac_for_the_source_is_an_error_naming_the_flag() {
        let cfg = TunnelEndConfig {
            source: Some(Ipv4Addr::new(192, 0, 2, 1)),
            vtep_mac: None,
        };
        let err = cfg
            .resolve(&spec("vxlan", "198.51.100.7"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node-1") && err.contains("--vtep-mac"),
            "{err}"
        );
        // IPIP needs no MAC.
        assert!(cfg.resolve(&spec("ipip", "198.51.100.7")).is_ok());
    }
}
