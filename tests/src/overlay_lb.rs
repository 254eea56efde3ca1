//! ferrolbd as the encapsulating load balancer of the overlay topology
//! ([`crate::overlay_topology`], built with [`crate::overlay_topology::LbMode::Balancer`]):
//! attached to the lb namespace's interfaces with its tunnel end given
//! (`--tunnel-source` the node-network address, `--vtep-mac` the MAC the
//! nodes know its VTEP by, `--overlay-ip`), every node's tunnel route put.

use anyhow::{Context, Result};

use crate::{
    daemon::{Daemon, DaemonConfig},
    overlay_topology::{LB_NODE_IP, OverlayTopology},
    topology::LB_CLIENT_DEV,
};

/// Starts ferrolbd in `topo.lb` and puts every node's tunnel route.
pub fn start(topo: &OverlayTopology) -> Result<Daemon> {
    let daemon = start_without_tunnels(topo)?;
    let api = daemon.api();
    for spec in topo.tunnel_specs() {
        api.put_tunnel(&spec)
            .with_context(|| format!("tunnel route of {}", spec.name))?;
    }
    Ok(daemon)
}

/// Starts ferrolbd in `topo.lb` with its tunnel end given, no tunnel route
/// yet.
///
/// `accept_local` is set on the client-side interface: until a node's
/// neighbour is resolved the datapath hands the encapsulated packet (whose
/// source is the load balancer's own address) to the kernel, which forwards
/// it only then.
pub fn start_without_tunnels(topo: &OverlayTopology) -> Result<Daemon> {
    topo.lb
        .sysctl(&format!("net/ipv4/conf/{LB_CLIENT_DEV}/accept_local"), "1")?;
    let mut config = DaemonConfig::new(topo.lb_ifaces());
    config.extra_args = vec![
        "--tunnel-source".into(),
        LB_NODE_IP.to_string(),
        "--vtep-mac".into(),
        topo.lb_vtep.mac.to_string(),
        "--overlay-ip".into(),
        topo.lb_overlay_ip.to_string(),
    ];
    Daemon::start(&topo.lb, config)
}
