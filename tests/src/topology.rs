//! The end-to-end topology: a client, a load balancer and N backends, each
//! in its own network namespace, routed through the load balancer.
//!
//! ```text
//!  client ns                 lb ns (ip_forward=1)              backend ns i
//!  eth0 10.0.1.2/24 ─veth─ c0 10.0.1.1/24
//!  default via 10.0.1.1      bI 10.0.(10+i).1/24 ─veth─ eth0 10.0.(10+i).2/24
//!                                                      default via 10.0.(10+i).1
//! ```
//!
//! The client reaches the VIP and every backend through the load balancer
//! (its default route); backends answer through it too. Without a load
//! balancer configured, the lb namespace is a plain router, which is the
//! benchmark's baseline.
//!
//! The client's and backends' veth ends are prepared like hosts behind a
//! real NIC:
//! - GRO on: a frame that XDP redirects into a veth is received by its
//!   peer's NAPI, which the kernel only runs when the peer has GRO (or an
//!   XDP program);
//! - TX checksum offload off: locally sent packets then carry complete
//!   checksums, as frames from a wire do. With offload on, a veth hands over
//!   CHECKSUM_PARTIAL packets whose L4 checksum field holds only the
//!   pseudo-header sum; XDP cannot see that state, and once the frame is
//!   redirected the receiver validates the (incomplete) checksum and drops
//!   the packet;
//! - GSO off: hosts send wire-sized frames (at most the MTU), as a balancer
//!   receives them from a NIC. A veth otherwise passes 64 KB super-packets
//!   to the stack, which only the kernel path (plain routing, nftables) could
//!   use; the kernel turns GSO off on an XDP veth's peer anyway, so this keeps
//!   the benchmark's setups comparable.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::netns::{Netns, cleanup_stale, veth};
use crate::process::Proc;
use crate::server;

/// The service address the tests and the demo balance.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The client's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
/// The load balancer's address on the client side.
pub const LB_CLIENT_SIDE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
/// Name of the client's and each backend's interface.
pub const HOST_DEV: &str = "eth0";
/// The load balancer's interface towards the client.
pub const LB_CLIENT_DEV: &str = "c0";

/// One backend namespace.
#[derive(Debug)]
pub struct Backend {
    /// `b0`, `b1`, ...: also the name its test server answers with.
    pub name: String,
    pub ip: Ipv4Addr,
    /// The load balancer's interface towards this backend.
    pub lb_dev: String,
    pub ns: Netns,
}

/// Client, load balancer and backends. Dropping it stops the servers it
/// started and deletes every namespace (their veths go with them).
pub struct Topology {
    // Field order is drop order: processes first, then namespaces.
    servers: Vec<Proc>,
    pub client: Netns,
    pub lb: Netns,
    pub backends: Vec<Backend>,
}

impl Topology {
    /// Build the topology with `backends` backends (at most 200).
    pub fn new(backends: usize) -> Result<Topology> {
        anyhow::ensure!(
            (1..=200).contains(&backends),
            "backends must be 1..=200, got {backends}"
        );
        cleanup_stale();
        let client = Netns::create("client")?;
        let lb = Netns::create("lb")?;
        let mut topo = Topology {
            servers: Vec::new(),
            client,
            lb,
            backends: Vec::new(),
        };
        topo.lb.sysctl("net/ipv4/ip_forward", "1")?;
        connect_client(&topo.client, &topo.lb)?;

        for i in 0..backends {
            let ns = Netns::create(&format!("b{i}"))?;
            let name = format!("b{i}");
            let subnet = u8::try_from(10 + i).context("backend subnet")?;
            let ip = Ipv4Addr::new(10, 0, subnet, 2);
            let gw = Ipv4Addr::new(10, 0, subnet, 1);
            let lb_dev = format!("b{i}");
            veth(&topo.lb, &lb_dev, &ns, HOST_DEV)?;
            topo.lb.addr(&lb_dev, &format!("{gw}/24"))?;
            ns.addr(HOST_DEV, &format!("{ip}/24"))?;
            ns.ip(&["route", "add", "default", "via", &gw.to_string()])?;
            prepare_host_dev(&ns, HOST_DEV)?;
            topo.backends.push(Backend {
                name,
                ip,
                lb_dev,
                ns,
            });
        }
        Ok(topo)
    }

    /// The load balancer's interfaces (what ferrolbd attaches to).
    pub fn lb_ifaces(&self) -> Vec<String> {
        std::iter::once(LB_CLIENT_DEV.to_string())
            .chain(self.backends.iter().map(|b| b.lb_dev.clone()))
            .collect()
    }

    /// `ip:port` of every backend.
    pub fn backend_addrs(&self, port: u16) -> Vec<SocketAddrV4> {
        self.backends
            .iter()
            .map(|b| SocketAddrV4::new(b.ip, port))
            .collect()
    }

    /// Start the test server (TCP and UDP on `port`) in every backend, each
    /// answering with its backend's name; returns once all listen.
    pub fn start_servers(&mut self, port: u16) -> Result<()> {
        self.start_each(port, server::start)
    }

    /// Starts a greet-and-close test server on every backend
    /// (`server::start_greeter`: TCP only, for connection-rate runs).
    pub fn start_greeters(&mut self, port: u16) -> Result<()> {
        self.start_each(port, server::start_greeter)
    }

    fn start_each(
        &mut self,
        port: u16,
        start: fn(&Netns, &str, SocketAddrV4) -> Result<Proc>,
    ) -> Result<()> {
        for backend in &self.backends {
            let proc = start(
                &backend.ns,
                &backend.name,
                SocketAddrV4::new(backend.ip, port),
            )?;
            self.servers.push(proc);
        }
        Ok(())
    }

    /// Keeps a process (e.g. `iperf3 -s` in a backend namespace) alive as
    /// long as the topology: stopped before the namespaces go.
    pub fn keep(&mut self, proc: Proc) {
        self.servers.push(proc);
    }
}

/// The client side every topology shares: a veth from the client's
/// [`HOST_DEV`] ([`CLIENT_IP`]/24, prepared like a host, default route via
/// the load balancer) to the load balancer's [`LB_CLIENT_DEV`]
/// ([`LB_CLIENT_SIDE_IP`]/24).
pub fn connect_client(client: &Netns, lb: &Netns) -> Result<()> {
    veth(client, HOST_DEV, lb, LB_CLIENT_DEV)?;
    client.addr(HOST_DEV, &format!("{CLIENT_IP}/24"))?;
    lb.addr(LB_CLIENT_DEV, &format!("{LB_CLIENT_SIDE_IP}/24"))?;
    client.ip(&[
        "route",
        "add",
        "default",
        "via",
        &LB_CLIENT_SIDE_IP.to_string(),
    ])?;
    prepare_host_dev(client, HOST_DEV)
}

/// GRO on, TX checksum offload and GSO off (see the module doc): how every
/// host's interface is prepared (client, backends, pods, nodes' uplinks).
pub fn prepare_host_dev(ns: &Netns, dev: &str) -> Result<()> {
    ns.ethtool_feature(dev, "gro", true)
        .with_context(|| format!("enabling GRO on {dev} in {}", ns.name()))?;
    ns.ethtool_feature(dev, "tx", false)
        .with_context(|| format!("disabling TX checksum offload on {dev} in {}", ns.name()))?;
    ns.ethtool_feature(dev, "gso", false)
        .with_context(|| format!("disabling GSO on {dev} in {}", ns.name()))
}

/// How long helpers wait for a reply before giving up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);
