//! The benchmark's end-to-end part: on one namespace topology, in one run,
//! ferrolb (XDP, through ferrolbd, attached in driver and in generic mode)
//! vs nftables DNAT (kube-proxy style) vs no load balancer (the lb namespace
//! as a plain router, client talking to one backend directly). Measures TCP
//! throughput (iperf3) and new TCP connections per second (see
//! [`crate::traffic::connect_rate`]) to backends that greet and close each
//! connection from their accepting thread (`server::start_greeter`): a
//! thread started per connection took half the machine's time, more than
//! anything the balancers do.

use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{Context, Result};
use lb_common::GlobalStat;

use crate::api::service_json;
use crate::daemon::{Daemon, DaemonConfig};
use crate::interrupt;
use crate::nft;
use crate::topology::{Topology, VIP};
use crate::traffic::{self, ConnRate};

/// Port of the test servers (connection-rate target).
pub const CONN_PORT: u16 = 8080;
/// Port of iperf3 (one backend only: iperf3's control and data connections
/// must reach the same server).
pub const IPERF_PORT: u16 = 5201;

#[derive(Debug, Clone)]
pub struct Options {
    pub backends: usize,
    /// Seconds of each iperf3 run.
    pub iperf_seconds: u32,
    /// Seconds of each connection-rate run.
    pub conn_seconds: u64,
    /// Client threads of the connection-rate run.
    pub conn_workers: usize,
    /// Rounds; each measures every setup once. Medians are reported.
    pub rounds: u32,
}

/// One setup's figures in each round (setups are compared round by round,
/// `median_ratio`; the table shows the medians).
#[derive(Debug, Clone)]
pub struct Row {
    pub setup: &'static str,
    /// Failed connections, all rounds.
    pub conn_errors: u64,
    /// Throughput in each round, in order.
    pub bps_rounds: Vec<f64>,
    /// Connections per second in each round, in order.
    pub cps_rounds: Vec<f64>,
}

/// Run all setups; rows in [`SETUPS`] order.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let mut topo = Topology::new(opts.backends)?;
    topo.start_greeters(CONN_PORT)?;
    let b0_ip = topo.backends[0].ip;
    let iperf_backend = SocketAddrV4::new(b0_ip, IPERF_PORT);
    let iperf = traffic::iperf3_server(&topo.backends[0].ns, iperf_backend)?;
    topo.keep(iperf);
    let conn_backends = topo.backend_addrs(CONN_PORT);
    let vip_conn = SocketAddrV4::new(VIP, CONN_PORT);
    let vip_iperf = SocketAddrV4::new(VIP, IPERF_PORT);

    // Setups alternate within every round (no LB, ferrolb in both XDP
    // modes, nftables, then again), so drift in the machine's load spreads
    // over all of them.
    let mut samples: [Vec<Sample>; 4] = Default::default();
    for round in 0..opts.rounds.max(1) {
        println!("[bench] round {}/{}", round + 1, opts.rounds.max(1));
        // Without a balancer the client spreads its connections over the
        // same backends itself, so all setups do the same work.
        samples[0].push(measure(&topo, opts, NO_LB, iperf_backend, &conn_backends)?);
        for (i, (setup, mode)) in [(FERROLB, "driver"), (FERROLB_GENERIC, "skb")]
            .into_iter()
            .enumerate()
        {
            let mut config = DaemonConfig::new(topo.lb_ifaces());
            config.xdp_mode = mode.to_string();
            let daemon = Daemon::start(&topo.lb, config)?;
            let api = daemon.api();
            api.put_service(&service_json(
                "bench/conn",
                "tcp",
                vip_conn,
                "rr",
                &conn_backends,
            ))?;
            api.put_service(&service_json(
                "bench/iperf",
                "tcp",
                vip_iperf,
                "rr",
                &[iperf_backend],
            ))?;
            samples[1 + i].push(measure(&topo, opts, setup, vip_iperf, &[vip_conn])?);
            // What the datapath dropped or evicted, to explain connection
            // errors (the daemon's counters start at zero with its run).
            let watched: Vec<GlobalStat> = GlobalStat::ALL
                .into_iter()
                .filter(|s| s.name().starts_with("drop_") || *s == GlobalStat::ConntrackEvicted)
                .collect();
            let lost = api.datapath_counts(&watched)?;
            if !lost.is_empty() {
                let lost: Vec<String> = lost
                    .iter()
                    .map(|(s, n)| format!("{} {n}", s.name()))
                    .collect();
                println!("  {:<22} datapath: {}", "", lost.join(", "));
            }
        }
        nft::add_dnat_many(
            &topo.lb,
            &[
                nft::DnatService::new("tcp", vip_conn, conn_backends.clone()),
                nft::DnatService::new("tcp", vip_iperf, vec![iperf_backend]),
            ],
        )?;
        let sample = measure(&topo, opts, NFT, vip_iperf, &[vip_conn]);
        nft::remove(&topo.lb);
        samples[3].push(sample?);
    }
    Ok(SETUPS
        .iter()
        .zip(samples)
        .map(|(setup, samples)| Row {
            setup,
            conn_errors: samples.iter().map(|s| s.conn.errors).sum(),
            bps_rounds: samples.iter().map(|s| s.bps).collect(),
            cps_rounds: samples.iter().map(|s| s.conn.per_second()).collect(),
        })
        .collect())
}

impl Row {
    /// Median throughput over the rounds.
    pub fn throughput_bps(&self) -> f64 {
        median(self.bps_rounds.clone())
    }

    /// Median connections per second over the rounds.
    pub fn conns_per_second(&self) -> f64 {
        median(self.cps_rounds.clone())
    }
}

/// The lb namespace as a plain router, the client connecting to the
/// backends itself.
pub const NO_LB: &str = "no load balancer";
/// ferrolb with its program attached in driver (native) mode, as `auto`
/// attaches it on a veth and on any NIC with XDP support.
pub const FERROLB: &str = "ferrolb (XDP driver)";
/// ferrolb attached in generic (skb) mode. On a veth, native XDP costs a
/// copy of every locally sent TCP packet (the sender keeps a clone for
/// retransmission, and a cloned skb cannot be handed to XDP as it is), a
/// NAPI pass and a new skb built on the far side; generic mode costs the
/// copy only. A real NIC runs driver mode without any of them.
pub const FERROLB_GENERIC: &str = "ferrolb (XDP generic)";
/// nftables DNAT, the kube-proxy way.
pub const NFT: &str = "nftables DNAT";
/// The setups, in table order.
pub const SETUPS: [&str; 4] = [NO_LB, FERROLB, FERROLB_GENERIC, NFT];

struct Sample {
    bps: f64,
    conn: ConnRate,
}

/// The median over rounds of `a[i] / b[i]`, the two setups' figures of
/// round `i`, measured minutes apart at most: this shared machine's load
/// drifts between rounds by more than the difference being measured, and
/// a ratio of the medians would compare figures of different rounds. Rounds
/// where `b` measured nothing are left out; `None` without any.
pub fn median_ratio(a: &[f64], b: &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|&(_, &b)| b > 0.0)
        .map(|(a, b)| a / b)
        .collect();
    (!ratios.is_empty()).then(|| median(ratios))
}

/// The median (0 for no values).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn measure(
    topo: &Topology,
    opts: &Options,
    setup: &str,
    iperf: SocketAddrV4,
    conn: &[SocketAddrV4],
) -> Result<Sample> {
    interrupt::check()?;
    let bps = traffic::iperf3_client(&topo.client, iperf, opts.iperf_seconds)
        .with_context(|| format!("{setup}: iperf3 to {iperf}"))?;
    interrupt::check()?;
    let conn = traffic::connect_rate(
        &topo.client,
        conn,
        Duration::from_secs(opts.conn_seconds),
        opts.conn_workers,
    )
    .with_context(|| format!("{setup}: connections to {conn:?}"))?;
    println!(
        "  {setup:<22} {:.2} Gbit/s, {:.0} conn/s ({} errors)",
        bps / 1e9,
        conn.per_second(),
        conn.errors
    );
    Ok(Sample { bps, conn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_taken_round_by_round() {
        // Medians 10 and 5 (2.0x), but ahead in one round of three only.
        let (a, b) = ([10.0, 2.0, 10.0], [5.0, 4.0, 20.0]);
        assert_eq!(median_ratio(&a, &b), Some(0.5));
        assert_eq!(median_ratio(&[3.0, 1.0], &[0.0, 2.0]), Some(0.5));
        assert_eq!(median_ratio(&[1.0], &[0.0]), None);
    }
}
