//! The benchmark's overlay part: TCP throughput (iperf3) from the client to
//! one pod through the overlay topology ([`crate::overlay_topology`]), for
//! - the kernel VXLAN baseline without a load balancer (the lb namespace a
//!   router and flannel-style VTEP; client → pod IP through VXLAN both ways);
//! - the same nodes routed plainly (flannel host-gw, no encapsulation), what
//!   the VXLAN figures are to be read against;
//! - ferrolb delivering over VXLAN and over IPIP to the pod's node
//!   ([`prepare_ferrolb_encap`]).
//!
//! Each setup gets its own topology (same addresses, separate namespaces),
//! built once; rounds interleave the setups so drift in the machine's load
//! spreads over all of them.

use std::net::SocketAddrV4;

use anyhow::{Context, Result};
use lb_userspace::config::Encap;

use crate::bench_e2e::median;
use crate::interrupt;
use crate::overlay_topology::{ClientReturn, OverlayBuilder, OverlayTopology};
use crate::traffic;

/// Port of iperf3 in the pod.
pub const IPERF_PORT: u16 = 5201;

/// The VIP of the ferrolb rows (iperf3's port).
pub const VIP: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(10, 96, 0, 10), IPERF_PORT);

#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds of each iperf3 run.
    pub iperf_seconds: u32,
    /// Rounds; each measures every available setup once. Medians reported.
    pub rounds: u32,
}

/// The setups, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Kernel VXLAN, no load balancer (the baseline).
    KernelVxlan,
    /// Plain routes to the node, no encapsulation, no load balancer.
    Routed,
    /// ferrolb (XDP) encapsulating in VXLAN to the node.
    FerrolbVxlan,
    /// ferrolb (XDP) encapsulating in IPIP to the node.
    FerrolbIpip,
}

impl Setup {
    pub const ALL: [Setup; 4] = [
        Setup::KernelVxlan,
        Setup::Routed,
        Setup::FerrolbVxlan,
        Setup::FerrolbIpip,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Setup::KernelVxlan => "kernel VXLAN, no load balancer",
            Setup::Routed => "routed to the node, no encapsulation",
            Setup::FerrolbVxlan => "ferrolb (XDP), VXLAN to the node",
            Setup::FerrolbIpip => "ferrolb (XDP), IPIP to the node",
        }
    }
}

/// One setup's result.
#[derive(Debug, Clone)]
pub struct Row {
    pub setup: Setup,
    /// Median over the rounds, bits per second.
    pub throughput_bps: f64,
}

/// A setup ready to measure: its topology (with iperf3 in the pod) and
/// whatever else must live as long (e.g. ferrolbd), and where the client
/// sends.
pub struct Prepared {
    /// Dropped before the topology (field order).
    pub keep: Vec<Box<dyn std::any::Any>>,
    pub topo: OverlayTopology,
    pub target: SocketAddrV4,
}

/// Run every setup in interleaved rounds; rows in [`Setup::ALL`] order.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let mut prepared = Vec::new();
    for setup in Setup::ALL {
        interrupt::check()?;
        let ready = match setup {
            Setup::KernelVxlan => prepare_kernel(OverlayBuilder::baseline())?,
            Setup::Routed => prepare_kernel(OverlayBuilder::new().nodes(&[Encap::None]))?,
            Setup::FerrolbVxlan => prepare_ferrolb_encap(Encap::Vxlan)?,
            Setup::FerrolbIpip => prepare_ferrolb_encap(Encap::Ipip)?,
        };
        prepared.push((setup, ready));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); prepared.len()];
    for round in 0..opts.rounds.max(1) {
        println!("[bench overlay] round {}/{}", round + 1, opts.rounds.max(1));
        for ((setup, ready), samples) in prepared.iter().zip(&mut samples) {
            interrupt::check()?;
            let bps = traffic::iperf3_client(&ready.topo.client, ready.target, opts.iperf_seconds)
                .with_context(|| format!("{}: iperf3 to {}", setup.label(), ready.target))?;
            println!("  {:<38} {:.2} Gbit/s", setup.label(), bps / 1e9);
            samples.push(bps);
        }
    }
    Ok(prepared
        .iter()
        .zip(samples)
        .map(|((setup, _), samples)| Row {
            setup: *setup,
            throughput_bps: median(samples),
        })
        .collect())
}

/// A setup without a load balancer: the topology of `builder` (its first
/// node's first pod runs iperf3), the client sends to the pod's IP.
fn prepare_kernel(builder: OverlayBuilder) -> Result<Prepared> {
    let mut topo = builder.pods_per_node(1).build()?;
    let target = with_iperf(&mut topo)?;
    Ok(Prepared {
        keep: Vec::new(),
        topo,
        target,
    })
}

/// iperf3 in the first pod of the first node; returns its address.
fn with_iperf(topo: &mut OverlayTopology) -> Result<SocketAddrV4> {
    let pod = &topo.nodes[0].pods[0];
    let target = SocketAddrV4::new(pod.ip, IPERF_PORT);
    let iperf = traffic::iperf3_server(&pod.ns, target)?;
    topo.keep(iperf);
    Ok(target)
}

/// The ferrolb rows: the overlay with one `encap` node and no plain route
/// from the load balancer to the pods (only encapsulation reaches them),
/// ferrolbd with its tunnel end and every tunnel route
/// ([`crate::overlay_lb::start`]), a service `VIP:IPERF_PORT` → the pod. VXLAN
/// nodes send the replies back through VXLAN (flannel's way), the IPIP node
/// routes them. Pods at 1500, like the kernel rows': the balancer clamps
/// the MSS to what fits the tunnel (the kernel baseline gets there through
/// PMTU discovery).
pub fn prepare_ferrolb_encap(encap: Encap) -> Result<Prepared> {
    let client_return = if encap == Encap::Vxlan {
        ClientReturn::Vxlan
    } else {
        ClientReturn::Routed
    };
    let mut topo = OverlayBuilder::new()
        .nodes(&[encap])
        .pods_per_node(1)
        .lb_pod_routes(false)
        .client_return(client_return)
        .build()?;
    let pod = with_iperf(&mut topo)?;
    let daemon = crate::overlay_lb::start(&topo)?;
    daemon.api().put_service(&crate::api::service_json(
        "bench/overlay",
        "tcp",
        VIP,
        "rr",
        &[pod],
    ))?;
    Ok(Prepared {
        keep: vec![Box::new(daemon)],
        topo,
        target: VIP,
    })
}
