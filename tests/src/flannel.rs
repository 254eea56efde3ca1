//! A VXLAN tunnel endpoint configured the way flannel's `vxlan` backend
//! configures a node, with `ip` and `bridge` inside a namespace:
//!
//! - one device `flannel.1`: `vxlan id 1 dstport 8472 nolearning local
//!   NODE_IP dev UPLINK`, MTU = uplink MTU − 50 (1450), the address of the
//!   node's overlay subnet as a /32 (`10.244.N.0/32`);
//! - for every other VTEP (a node, or a load balancer that joined the overlay
//!   as one more "node", as F5 BIG-IP does): its subnet routed through the
//!   device to its gateway address on-link
//!   (`10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink`), a permanent
//!   neighbour entry gateway → VTEP MAC, and a permanent fdb entry VTEP MAC →
//!   its public (tunnel) IP, so the kernel never floods or learns.
//!
//! The MAC is set explicitly (flannel lets the kernel choose one and
//! publishes it in the node's `backend-data` annotation; a fixed one lets
//! tests name it).

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use lb_userspace::config::{DEFAULT_VNI, DEFAULT_VXLAN_PORT, Ipv4Cidr, MacAddr};

use crate::netns::Netns;

/// flannel's device name (`flannel.<VNI>`).
pub const DEV: &str = "flannel.1";
/// VXLAN header overhead on IPv4: outer IPv4 20 + UDP 8 + VXLAN 8 + inner
/// Ethernet 14.
pub const OVERHEAD: u32 = 50;

/// One VTEP as its peers see it (what flannel publishes per node: the
/// subnet lease, `public-ip` and `backend-data` `VtepMAC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vtep {
    /// The overlay subnet behind it (`10.244.M.0/24`).
    pub subnet: Ipv4Cidr,
    /// Its tunnel endpoint: the outer IPv4 address (flannel's `public-ip`).
    pub public_ip: Ipv4Addr,
    /// Its VXLAN device's MAC (flannel's `VtepMAC`).
    pub mac: MacAddr,
}

impl Vtep {
    /// The on-link gateway of its subnet: the subnet's network address,
    /// which is also the address on its own `flannel.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.addr()
    }
}

/// Create `flannel.1` in `ns` for `local` (the VTEP itself), over `uplink`
/// (MTU `uplink_mtu`), with `address` on it as a /32, and bring it up.
pub fn create(
    ns: &Netns,
    local: &Vtep,
    uplink: &str,
    uplink_mtu: u32,
    address: Ipv4Addr,
) -> Result<()> {
    ns.ip(&[
        "link",
        "add",
        DEV,
        "address",
        &local.mac.to_string(),
        "mtu",
        &(uplink_mtu - OVERHEAD).to_string(),
        "type",
        "vxlan",
        "id",
        &DEFAULT_VNI.to_string(),
        "local",
        &local.public_ip.to_string(),
        "dev",
        uplink,
        "dstport",
        &DEFAULT_VXLAN_PORT.to_string(),
        "nolearning",
    ])
    .with_context(|| format!("creating {DEV} in {}", ns.name()))?;
    ns.addr(DEV, &format!("{address}/32"))
}

/// Make `peer` reachable through `flannel.1` in `ns`: route, neighbour and
/// fdb entry, as flannel adds them when a node lease appears.
pub fn add_peer(ns: &Netns, peer: &Vtep) -> Result<()> {
    let gateway = peer.gateway().to_string();
    let mac = peer.mac.to_string();
    ns.ip(&[
        "neigh",
        "replace",
        &gateway,
        "lladdr",
        &mac,
        "dev",
        DEV,
        "nud",
        "permanent",
    ])?;
    ns.exec(
        "bridge",
        &[
            "fdb",
            "append",
            &mac,
            "dev",
            DEV,
            "dst",
            &peer.public_ip.to_string(),
            "self",
            "permanent",
        ],
    )?;
    route_via_peer(ns, &peer.subnet.to_string(), peer)
}

/// Route `net` into the tunnel towards `peer` (`net via GATEWAY dev
/// flannel.1 onlink`): how flannel routes a peer's subnet, and how a node
/// sends other traffic (e.g. replies to clients) to a load balancer's VTEP.
pub fn route_via_peer(ns: &Netns, net: &str, peer: &Vtep) -> Result<()> {
    ns.ip(&[
        "route",
        "replace",
        net,
        "via",
        &peer.gateway().to_string(),
        "dev",
        DEV,
        "onlink",
    ])
    .map(drop)
}
