//! Pods of the overlay topology ([`crate::overlay_topology`]), or any hosts
//! (the demo's backends), set up as direct-server-return backends, the way a real server behind Katran or
//! LVS-TUN is: the VIP on the pod's loopback (so the pod accepts packets to
//! it and answers from it), `ferrolbd --node-decap eth0` in the pod's
//! namespace (its `DECAP_ADDRS` = the pod's own address: the outer
//! destination of the load balancer's IPIP packets; the kernel has no ipip
//! module), and the test server bound to the VIP (it receives only packets
//! addressed to the VIP, and its replies leave from the VIP).
//!
//! Dropping a [`DsrBackends`] stops the servers and daemons: declare it
//! after the topology, so it goes first.

use std::net::SocketAddrV4;

use anyhow::{Context, Result};

use crate::{
    daemon::{Daemon, DaemonConfig},
    netns::Netns,
    overlay_topology::{OverlayTopology, POD_DEV},
    process::Proc,
    server,
};

/// What runs in the pods for DSR (field order: servers stop first).
pub struct DsrBackends {
    servers: Vec<Proc>,
    /// One `ferrolbd --node-decap` per pod.
    pub decap: Vec<Daemon>,
}

/// Makes every pod of `topo` a DSR backend of `vip` (TCP and UDP on the
/// VIP's port).
pub fn setup(topo: &OverlayTopology, vip: SocketAddrV4) -> Result<DsrBackends> {
    setup_hosts(topo.pods().map(|p| (&p.ns, p.name.as_str())), POD_DEV, vip)
}

/// Makes each host (its namespace, and the name its server answers with) a
/// DSR backend of `vip`, decapsulating on its interface `dev`.
pub fn setup_hosts<'a>(
    hosts: impl IntoIterator<Item = (&'a Netns, &'a str)>,
    dev: &str,
    vip: SocketAddrV4,
) -> Result<DsrBackends> {
    let mut backends = DsrBackends {
        servers: Vec::new(),
        decap: Vec::new(),
    };
    for (ns, name) in hosts {
        ns.addr("lo", &format!("{}/32", vip.ip()))
            .with_context(|| format!("the VIP on {name}'s loopback"))?;
        let mut config = DaemonConfig::new(Vec::new());
        config.node_decap = vec![dev.to_string()];
        backends.decap.push(
            Daemon::start(ns, config)
                .with_context(|| format!("ferrolbd --node-decap in {name}"))?,
        );
        backends.servers.push(server::start(ns, name, vip)?);
    }
    Ok(backends)
}
