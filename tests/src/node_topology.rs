//! A load balancer, a node that decapsulates IPIP with ferrolbd
//! (`--node-decap`, the kernel has no ipip module), and a pod behind the
//! node, each in its own network namespace.
//!
//! ```text
//!  lb ns                           node ns (ip_forward=1)              pod ns
//!  n0 172.16.1.1/24 ───veth─── eth0 172.16.1.14/24
//!  lo: client 10.0.1.2/32          route 10.0.1.2 via 172.16.1.1
//!                                  p0 10.244.1.1/24 ───veth─── eth0 10.244.1.2/24
//!                                  route VIP/32 via 10.244.1.2      default via 10.244.1.1
//!                                                                   lo: VIP 10.96.0.10/32
//! ```
//!
//! The load balancer sends IPIP to the node's address; the node routes the
//! inner packet to the pod, which answers the client directly (DSR when the
//! inner destination is the VIP on the pod's loopback).

use std::net::Ipv4Addr;

use anyhow::Result;

use crate::netns::{Netns, cleanup_stale, veth};

pub const LB_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 14);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
pub const POD_GW: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The node's interface towards the load balancer (decapsulates).
pub const NODE_DEV: &str = "eth0";

pub struct NodeTopology {
    pub lb: Netns,
    pub node: Netns,
    pub pod: Netns,
}

impl NodeTopology {
    pub fn new() -> Result<NodeTopology> {
        cleanup_stale();
        let t = NodeTopology {
            lb: Netns::create("lb")?,
            node: Netns::create("node")?,
            pod: Netns::create("pod")?,
        };
        t.node.sysctl("net/ipv4/ip_forward", "1")?;

        veth(&t.lb, "n0", &t.node, NODE_DEV)?;
        t.lb.addr("n0", &format!("{LB_IP}/24"))?;
        t.lb.addr("lo", &format!("{CLIENT_IP}/32"))?;
        t.node.addr(NODE_DEV, &format!("{NODE_IP}/24"))?;
        let lb_ip = LB_IP.to_string();
        t.node
            .ip(&["route", "add", &format!("{CLIENT_IP}/32"), "via", &lb_ip])?;

        veth(&t.node, "p0", &t.pod, "eth0")?;
        t.node.addr("p0", &format!("{POD_GW}/24"))?;
        t.pod.addr("eth0", &format!("{POD_IP}/24"))?;
        t.pod
            .ip(&["route", "add", "default", "via", &POD_GW.to_string()])?;
        t.pod.addr("lo", &format!("{VIP}/32"))?;
        t.node.ip(&[
            "route",
            "add",
            &format!("{VIP}/32"),
            "via",
            &POD_IP.to_string(),
        ])?;
        // The load balancer reaches the pod network through the node (its
        // replies' sources pass reverse-path checks).
        let node_ip = NODE_IP.to_string();
        for net in ["10.244.1.0/24".to_string(), format!("{VIP}/32")] {
            t.lb.ip(&["route", "add", &net, "via", &node_ip])?;
        }
        Ok(t)
    }
}
