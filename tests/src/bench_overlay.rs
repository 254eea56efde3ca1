//! The benchmark's overlay part: TCP throughput (iperf3) from the client to
//! one pod through the overlay topology ([`crate::overlay_topology`]), for
//! - the kernel VXLAN baseline without a load balancer (the lb namespace a
//!   router and flannel-style VTEP; client → pod IP through VXLAN both ways);
//! - the same nodes routed plainly (flannel host-gw, no encapsulation), what
//!   the VXLAN figures are to be read against;
//! - ferrolb delivering over VXLAN and over IPIP: not measured until the
//!   balancer encapsulates (see [`prepare_ferrolb_encap`]).
//!
//! Each setup gets its own topology (same addresses, separate namespaces),
//! built once; rounds interleave the setups so drift in the machine's load
//! spreads over all of them.

use std::net::SocketAddrV4;

use anyhow::{Context, Result};
use lb_userspace::config::Encap;

use crate::bench_e2e::median;
use crate::interrupt;
use crate::overlay_topology::{OverlayBuilder, OverlayTopology};
use crate::traffic;

/// Port of iperf3 in the pod.
pub const IPERF_PORT: u16 = 5201;

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

/// One setup's result: `None` when the setup cannot run yet.
#[derive(Debug, Clone)]
pub struct Row {
    pub setup: Setup,
    /// Median over the rounds, bits per second.
    pub throughput_bps: Option<f64>,
    /// Why it was not measured.
    pub note: Option<&'static str>,
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

/// What [`prepare_ferrolb_encap`] says while the balancer cannot
/// encapsulate.
pub const NOT_YET: &str = "not measured: the balancer does not encapsulate yet";

/// Run every setup in interleaved rounds; rows in [`Setup::ALL`] order.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let mut prepared = Vec::new();
    for setup in Setup::ALL {
        interrupt::check()?;
        let ready = match setup {
            Setup::KernelVxlan => Some(prepare_kernel(OverlayBuilder::baseline())?),
            Setup::Routed => Some(prepare_kernel(OverlayBuilder::new().nodes(&[Encap::None]))?),
            Setup::FerrolbVxlan => prepare_ferrolb_encap(Encap::Vxlan)?,
            Setup::FerrolbIpip => prepare_ferrolb_encap(Encap::Ipip)?,
        };
        prepared.push((setup, ready));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); prepared.len()];
    for round in 0..opts.rounds.max(1) {
        println!("[bench overlay] round {}/{}", round + 1, opts.rounds.max(1));
        for ((setup, ready), samples) in prepared.iter().zip(&mut samples) {
            let Some(ready) = ready else { continue };
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
        .map(|((setup, ready), samples)| Row {
            setup: *setup,
            throughput_bps: ready.as_ref().map(|_| median(samples)),
            note: ready.is_none().then_some(NOT_YET),
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

/// FERROLB-ENCAP — the ferrolb rows. Returns `Ok(None)` (the row reads
/// [`NOT_YET`]) until the balancer encapsulates; no figure is made up.
///
/// When `ferrolbd --tunnel-source/--overlay-ip` and the encapsulating
/// datapath land, this becomes:
/// 1. `let mut topo = OverlayBuilder::new().nodes(&[encap]).lb_pod_routes(false)`
///    `.client_return(ClientReturn::Vxlan or Routed, whichever return path the
///    datapath handles).build()?` (no plain route: only encapsulation reaches
///    the pod);
/// 2. `let target_pod = with_iperf(&mut topo)?;`
/// 3. start ferrolbd in `topo.lb` on `topo.lb_ifaces()` with
///    `--tunnel-source LB_NODE_IP --overlay-ip topo.lb_overlay_ip` (and the
///    VTEP MAC `topo.lb_vtep.mac` if it takes one), keep the `Daemon` in
///    `Prepared::keep`;
/// 4. `api.put_tunnel(&spec)` for each of `topo.tunnel_specs()`;
/// 5. a service `VIP:IPERF_PORT` → `target_pod` (`api::service_json`), and
///    return `target = VIP:IPERF_PORT`.
pub fn prepare_ferrolb_encap(encap: Encap) -> Result<Option<Prepared>> {
    let _ = encap;
    Ok(None)
}
