//! A load balancer that delivers to a pod through a flannel-like VXLAN node,
//! each in its own network namespace (the encapsulation end-to-end test).
//!
//! ```text
//!  client ns              lb ns (ferrolbd on c0 and n0)          node ns (ip_forward=1)                pod ns
//!  eth0 10.0.1.2/24 ─ c0 10.0.1.1/24
//!  default via 10.0.1.1   n0 172.16.1.1/24 (LB_VTEP_MAC) ─ eth0 172.16.1.14/24
//!                                                            flannel.1 vxlan id 1 port 8472 nolearning,
//!                                                              10.244.1.0/32, NODE_VTEP_MAC
//!                                                              fdb LB_VTEP_MAC -> 172.16.1.1
//!                                                              neigh 10.244.0.0 -> LB_VTEP_MAC
//!                                                            route 10.0.1.0/24 via 10.244.0.0 onlink
//!                                                            p0 10.244.1.1/24 ─ eth0 10.244.1.2/24
//!                                                                               default via 10.244.1.1
//! ```
//!
//! As with flannel's VXLAN backend, the node reaches the load balancer's
//! "subnet" (here: the client network) through its VXLAN device, so the
//! pod's replies come back VXLAN-encapsulated to the load balancer. The
//! load balancer has no route to the pod network: only the tunnel reaches it.

use std::net::Ipv4Addr;

use anyhow::Result;

use crate::{
    fixture_net::mac_str,
    netns::{Netns, cleanup_stale, veth},
    packets::Mac,
};

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
pub const LB_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
pub const LB_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 14);
pub const POD_GW: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
/// The load balancer's overlay address as the node's neighbour table knows
/// it (flannel: the `.0` address of the peer's subnet).
pub const LB_OVERLAY_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 0);
/// The MAC of the load balancer's node-side interface, which ferrolbd takes
/// as its VTEP MAC by default.
pub const LB_VTEP_MAC: Mac = [2, 0, 0, 0xfe, 0, 1];
pub const NODE_VTEP_MAC: Mac = [0x0a, 0, 0, 0xfe, 0, 14];
pub const VNI: u32 = 1;
pub const VXLAN_PORT: u16 = 8472;
/// The load balancer's interfaces.
pub const LB_IFACES: [&str; 2] = ["c0", "n0"];

pub struct VxlanTopology {
    pub client: Netns,
    pub lb: Netns,
    pub node: Netns,
    pub pod: Netns,
}

/// GRO on (frames XDP redirects into a veth are received by the peer's
/// NAPI), TX checksum offload and GSO off (packets carry full checksums,
/// as frames from a wire do).
fn wire_like(ns: &Netns, dev: &str) -> Result<()> {
    ns.ethtool_feature(dev, "gro", true)?;
    ns.ethtool_feature(dev, "tx", false)?;
    ns.ethtool_feature(dev, "gso", false)
}

impl VxlanTopology {
    pub fn new() -> Result<VxlanTopology> {
        cleanup_stale();
        let t = VxlanTopology {
            client: Netns::create("vxc")?,
            lb: Netns::create("vxlb")?,
            node: Netns::create("vxnode")?,
            pod: Netns::create("vxpod")?,
        };
        t.lb.sysctl("net/ipv4/ip_forward", "1")?;
        t.node.sysctl("net/ipv4/ip_forward", "1")?;

        veth(&t.client, "eth0", &t.lb, "c0")?;
        t.client.addr("eth0", &format!("{CLIENT_IP}/24"))?;
        t.client.ip(&[
            "route",
            "add",
            "default",
            "via",
            &LB_CLIENT_SIDE.to_string(),
        ])?;
        t.lb.addr("c0", &format!("{LB_CLIENT_SIDE}/24"))?;
        // The datapath hands a packet whose node neighbour is not resolved
        // yet to the stack already encapsulated, from the load balancer's
        // own address: the stack forwards it only with accept_local.
        t.lb.sysctl("net/ipv4/conf/c0/accept_local", "1")?;

        veth(&t.lb, "n0", &t.node, "eth0")?;
        t.lb.ip(&["link", "set", "n0", "address", &mac_str(LB_VTEP_MAC)])?;
        t.lb.addr("n0", &format!("{LB_IP}/24"))?;
        t.node.addr("eth0", &format!("{NODE_IP}/24"))?;

        let n = &t.node;
        n.ip(&[
            "link",
            "add",
            "flannel.1",
            "address",
            &mac_str(NODE_VTEP_MAC),
            "type",
            "vxlan",
            "id",
            &VNI.to_string(),
            "local",
            &NODE_IP.to_string(),
            "dev",
            "eth0",
            "dstport",
            &VXLAN_PORT.to_string(),
            "nolearning",
        ])?;
        n.addr("flannel.1", "10.244.1.0/32")?;
        n.ip(&[
            "neigh",
            "replace",
            &LB_OVERLAY_IP.to_string(),
            "lladdr",
            &mac_str(LB_VTEP_MAC),
            "dev",
            "flannel.1",
            "nud",
            "permanent",
        ])?;
        n.exec(
            "bridge",
            &[
                "fdb",
                "append",
                &mac_str(LB_VTEP_MAC),
                "dev",
                "flannel.1",
                "dst",
                &LB_IP.to_string(),
            ],
        )?;
        n.ip(&[
            "route",
            "add",
            "10.0.1.0/24",
            "via",
            &LB_OVERLAY_IP.to_string(),
            "dev",
            "flannel.1",
            "onlink",
        ])?;

        veth(&t.node, "p0", &t.pod, "eth0")?;
        t.node.addr("p0", &format!("{POD_GW}/24"))?;
        t.pod.addr("eth0", &format!("{POD_IP}/24"))?;
        t.pod
            .ip(&["route", "add", "default", "via", &POD_GW.to_string()])?;

        wire_like(&t.client, "eth0")?;
        wire_like(&t.node, "eth0")?;
        wire_like(&t.pod, "eth0")?;
        Ok(t)
    }
}
