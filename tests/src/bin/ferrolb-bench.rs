//! `cargo xtask bench`: ferrolb's benchmark.
//!
//! Parts:
//! - `e2e` (here): ferrolb vs nftables DNAT vs no load balancer through one
//!   namespace topology, in one run ([`tests::bench_e2e`]).
//! - `per-packet`: cost per packet through `BPF_PROG_TEST_RUN` beside a
//!   trivial XDP_DROP program ([`tests::bench_packet`]).

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tests::bench_e2e::{self, Options, Row};
use tests::interrupt;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    E2e,
    PerPacket,
}

#[derive(Parser)]
#[command(
    name = "ferrolb-bench",
    about = "ferrolb benchmark (ratios measured side by side)"
)]
struct Args {
    /// Which part to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Backends behind the VIP for the connection-rate test.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    backends: u16,
    /// Seconds of each iperf3 run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    iperf_seconds: u32,
    /// Seconds of each connection-rate run.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=60))]
    conn_seconds: u64,
    /// Client threads of the connection-rate run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    conn_workers: u16,
    /// Rounds; each measures every setup once, in turn. Medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
}

fn main() {
    if let Err(err) = run() {
        eprintln!("bench failed: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    interrupt::install()?;
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmark creates network namespaces and loads XDP programs: run it as root");
    }
    if matches!(args.part, Part::All | Part::PerPacket) {
        run_per_packet()?;
    }
    if matches!(args.part, Part::All | Part::E2e) {
        let opts = Options {
            backends: usize::from(args.backends),
            iperf_seconds: args.iperf_seconds,
            conn_seconds: args.conn_seconds,
            conn_workers: usize::from(args.conn_workers),
            rounds: args.rounds,
        };
        let rows = bench_e2e::run(&opts)?;
        print_e2e(&rows, &opts);
    }
    Ok(())
}

/// The BPF_PROG_TEST_RUN per-packet part ([`tests::bench_packet`]).
fn run_per_packet() -> Result<()> {
    tests::bench_packet::run()
}

fn print_e2e(rows: &[Row], opts: &Options) {
    let Some(base) = rows.first() else { return };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "setup",
        "TCP throughput (iperf3)",
        "vs no LB",
        "new TCP conn/s",
        "vs no LB",
        "conn errors",
    ]);
    for row in rows {
        table.add_row(vec![
            row.setup.to_string(),
            format!("{:.2} Gbit/s", row.throughput_bps / 1e9),
            format!("{:.2}x", row.throughput_bps / base.throughput_bps.max(1.0)),
            format!("{:.0}", row.conns_per_second),
            format!(
                "{:.2}x",
                row.conns_per_second / base.conns_per_second.max(1e-9)
            ),
            row.conn_errors.to_string(),
        ]);
    }
    println!(
        "\nEnd to end, same topology, same run; medians of {} interleaved round(s) (iperf3 {} s, connections {} s \
         on {} threads; ferrolb/nftables balance connections over {} backends, iperf3 goes to one):",
        opts.rounds, opts.iperf_seconds, opts.conn_seconds, opts.conn_workers, opts.backends
    );
    println!("{table}");
}
