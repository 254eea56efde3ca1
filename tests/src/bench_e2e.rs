//! The benchmark's end-to-end part: on one namespace topology, in one run,
//! ferrolb (XDP, through ferrolbd) vs nftables DNAT (kube-proxy style) vs no
//! load balancer (the lb namespace as a plain router, client talking to one
//! backend directly). Measures TCP throughput (iperf3) and new TCP
//! connections per second (see [`crate::traffic::connect_rate`]).

use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::{Context, Result};

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
    /// Measurements per setup (averaged).
    pub rounds: u32,
}

/// One setup's figures.
#[derive(Debug, Clone)]
pub struct Row {
    pub setup: &'static str,
    pub throughput_bps: f64,
    pub conn: ConnRate,
}

impl Row {
    pub fn conns_per_second(&self) -> f64 {
        self.conn.per_second()
    }
}

/// Run all three setups; rows in the order: no LB, ferrolb, nftables.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let mut topo = Topology::new(opts.backends)?;
    topo.start_servers(CONN_PORT)?;
    let b0_ip = topo.backends[0].ip;
    let iperf_backend = SocketAddrV4::new(b0_ip, IPERF_PORT);
    let iperf = traffic::iperf3_server(&topo.backends[0].ns, iperf_backend)?;
    topo.keep(iperf);
    let conn_backends = topo.backend_addrs(CONN_PORT);
    let vip_conn = SocketAddrV4::new(VIP, CONN_PORT);
    let vip_iperf = SocketAddrV4::new(VIP, IPERF_PORT);

    let mut rows = Vec::new();

    println!("[bench] no load balancer: client -> {b0_ip} directly (lb namespace routes)");
    rows.push(measure(
        &topo,
        opts,
        "no load balancer",
        iperf_backend,
        conn_backends[0],
    )?);

    println!(
        "[bench] ferrolb: ferrolbd attached to {:?}",
        topo.lb_ifaces()
    );
    {
        let daemon = Daemon::start(&topo.lb, DaemonConfig::new(topo.lb_ifaces()))?;
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
        rows.push(measure(&topo, opts, "ferrolb (XDP)", vip_iperf, vip_conn)?);
    }

    println!("[bench] nftables DNAT (kube-proxy style numgen random vmap) in the lb namespace");
    nft::add_dnat_many(
        &topo.lb,
        &[
            nft::DnatService::new("tcp", vip_conn, conn_backends.clone()),
            nft::DnatService::new("tcp", vip_iperf, vec![iperf_backend]),
        ],
    )?;
    let row = measure(&topo, opts, "nftables DNAT", vip_iperf, vip_conn);
    nft::remove(&topo.lb);
    rows.push(row?);
    Ok(rows)
}

fn measure(
    topo: &Topology,
    opts: &Options,
    setup: &'static str,
    iperf: SocketAddrV4,
    conn: SocketAddrV4,
) -> Result<Row> {
    let mut bps = 0.0;
    let mut total = ConnRate::default();
    for round in 0..opts.rounds.max(1) {
        interrupt::check()?;
        let rate = traffic::iperf3_client(&topo.client, iperf, opts.iperf_seconds)
            .with_context(|| format!("{setup}: iperf3 to {iperf}"))?;
        interrupt::check()?;
        let c = traffic::connect_rate(
            &topo.client,
            conn,
            Duration::from_secs(opts.conn_seconds),
            opts.conn_workers,
        )
        .with_context(|| format!("{setup}: connections to {conn}"))?;
        println!(
            "  round {}: {:.2} Gbit/s, {:.0} conn/s ({} errors)",
            round + 1,
            rate / 1e9,
            c.per_second(),
            c.errors
        );
        bps += rate;
        total.connections += c.connections;
        total.errors += c.errors;
        total.elapsed += c.elapsed;
    }
    Ok(Row {
        setup,
        throughput_bps: bps / f64::from(opts.rounds.max(1)),
        conn: total,
    })
}
