//! An end-to-end fixture: the topology with test servers in every backend
//! and ferrolbd attached in the load balancer namespace.

use std::net::SocketAddrV4;

use anyhow::Result;
use serde_json::Value;

use crate::api::{Api, service_json};
use crate::daemon::{Daemon, DaemonConfig};
use crate::topology::{Topology, VIP};

/// Port the test servers listen on in every backend.
pub const BACKEND_PORT: u16 = 8080;
/// Port of the VIP the tests balance.
pub const VIP_PORT: u16 = 80;

/// Topology + servers + daemon. Drop order: daemon, then the topology.
pub struct Lab {
    pub daemon: Daemon,
    pub topo: Topology,
}

impl Lab {
    /// `backends` backends with servers on [`BACKEND_PORT`], ferrolbd
    /// attached to every lb interface, no service configured.
    pub fn start(backends: usize) -> Result<Lab> {
        let mut topo = Topology::new(backends)?;
        topo.start_servers(BACKEND_PORT)?;
        let daemon = Daemon::start(&topo.lb, DaemonConfig::new(topo.lb_ifaces()))?;
        Ok(Lab { daemon, topo })
    }

    pub fn api(&self) -> Api {
        self.daemon.api()
    }

    /// `VIP:VIP_PORT`.
    pub fn vip(&self) -> SocketAddrV4 {
        SocketAddrV4::new(VIP, VIP_PORT)
    }

    /// Every backend's server address.
    pub fn backends(&self) -> Vec<SocketAddrV4> {
        self.topo.backend_addrs(BACKEND_PORT)
    }

    /// A service body for the VIP over `backends`.
    pub fn service(&self, protocol: &str, select: &str, backends: &[SocketAddrV4]) -> Value {
        service_json(
            &format!("test/{protocol}"),
            protocol,
            self.vip(),
            select,
            backends,
        )
    }

    /// Configure the VIP for `protocol` over every backend (PUT).
    pub fn serve_all(&self, protocol: &str, select: &str) -> Result<()> {
        self.api()
            .put_service(&self.service(protocol, select, &self.backends()))?;
        Ok(())
    }
}
