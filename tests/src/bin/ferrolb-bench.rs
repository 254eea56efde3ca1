//! `cargo xtask bench`: ferrolb's benchmark.
//!
//! Parts:
//! - `e2e` (here): ferrolb vs nftables DNAT vs no load balancer through one
//!   namespace topology, in one run ([`tests::bench_e2e`]).
//! - `per-packet`: cost per packet through `BPF_PROG_TEST_RUN` beside a
//!   trivial XDP_DROP program ([`tests::bench_packet`]).
//! - `overlay`: TCP throughput to a pod behind a node of the overlay
//!   topology: kernel VXLAN without a load balancer, plain routes, and
//!   ferrolb over VXLAN and IPIP
//!   ([`tests::bench_overlay`]).

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tests::bench_e2e::{self, FERROLB, FERROLB_GENERIC, NFT, Options, Row};
use tests::bench_overlay::{self, Setup};
use tests::interrupt;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    All,
    E2e,
    PerPacket,
    Overlay,
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
    /// Client threads of the connection-rate run. Enough to keep the
    /// machine busy: with fewer, the CPUs idle between a connection's steps
    /// and the figure measures how fast this (virtual) machine wakes
    /// threads rather than what each connection costs.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    conn_workers: u16,
    /// Rounds of the end-to-end and overlay parts; each measures every
    /// setup once, in turn. Medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    rounds: u32,
    /// Runs of the per-packet part (each measures every case, about four
    /// seconds); the ratios' medians over the runs are reported. More than
    /// the rounds: one run's ratio moves by whole steps of the kernel's
    /// clock (10 ns on some hosts, 7% of an established DNAT packet), so
    /// its median over few runs jumps between them. While other tenants
    /// load the host (a run whose baseline is unsteady, see `bench_host`),
    /// runs go on until this many were quiet, up to `--packet-max-runs`.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=30))]
    packet_runs: u32,
    /// The most runs of the per-packet part.
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u32).range(1..=60))]
    packet_max_runs: u32,
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
        tests::bench_packet::run(args.packet_runs, args.packet_max_runs)?;
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
    if matches!(args.part, Part::All | Part::Overlay) {
        let opts = bench_overlay::Options {
            iperf_seconds: args.iperf_seconds,
            rounds: args.rounds,
        };
        let rows = bench_overlay::run(&opts)?;
        println!(
            "\nOverlay: TCP throughput (iperf3 {} s) from the client to one pod behind a node; \
             medians of {} interleaved round(s); flannel.1 at 1450, pods at 1500 (kernel \
             rows: PMTU discovery; ferrolb rows: MSS clamped by the balancer):",
            opts.iperf_seconds, opts.rounds
        );
        println!("{}", overlay_table(&rows));
    }
    Ok(())
}

/// Each overlay setup's throughput and its ratio to the kernel VXLAN
/// baseline.
fn overlay_table(rows: &[bench_overlay::Row]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["setup", "TCP throughput (iperf3)", "vs kernel VXLAN"]);
    let base = rows
        .iter()
        .find(|r| r.setup == Setup::KernelVxlan)
        .map(|r| r.throughput_bps);
    for r in rows {
        let bps = r.throughput_bps;
        let vs = base.map_or_else(|| "-".to_string(), |b| ratio(bps, b));
        table.add_row(vec![
            r.setup.label().to_string(),
            format!("{:.2} Gbit/s", bps / 1e9),
            vs,
        ]);
    }
    table
}

fn print_e2e(rows: &[Row], opts: &Options) {
    println!(
        "\nEnd to end, same topology, same run; medians of {} interleaved round(s), ratios taken within each round \
         (iperf3 {} s, connections {} s on {} threads; ferrolb/nftables balance connections over {} backends, \
         iperf3 goes to one):",
        opts.rounds, opts.iperf_seconds, opts.conn_seconds, opts.conn_workers, opts.backends
    );
    println!("{}", e2e_table(rows));
    let Some(nft) = row(rows, NFT) else {
        return;
    };
    for lb in [FERROLB, FERROLB_GENERIC]
        .iter()
        .filter_map(|s| row(rows, s))
    {
        println!(
            "{} / nftables DNAT: throughput {}, new connections/s {} (above 1.00x: ferrolb ahead)",
            lb.setup,
            round_ratio(&lb.bps_rounds, &nft.bps_rounds),
            round_ratio(&lb.cps_rounds, &nft.cps_rounds)
        );
    }
}

/// Each setup's figures with their ratios to no load balancer (the first
/// row) and to nftables DNAT.
fn e2e_table(rows: &[Row]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "setup",
        "TCP throughput (iperf3)",
        "vs no LB",
        "vs nftables",
        "new TCP conn/s",
        "vs no LB",
        "vs nftables",
        "conn errors",
    ]);
    let base = rows.first();
    let nft = row(rows, NFT);
    let vs = |other: Option<&Row>, f: fn(&Row) -> &[f64], r: &Row| {
        other.map_or_else(|| "-".to_string(), |o| round_ratio(f(r), f(o)))
    };
    fn tput(r: &Row) -> &[f64] {
        &r.bps_rounds
    }
    fn conns(r: &Row) -> &[f64] {
        &r.cps_rounds
    }
    for r in rows {
        table.add_row(vec![
            r.setup.to_string(),
            format!("{:.2} Gbit/s", r.throughput_bps() / 1e9),
            vs(base, tput, r),
            vs(nft, tput, r),
            format!("{:.0}", r.conns_per_second()),
            vs(base, conns, r),
            vs(nft, conns, r),
            r.conn_errors.to_string(),
        ]);
    }
    table
}

fn row<'a>(rows: &'a [Row], setup: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.setup == setup)
}

/// The median over rounds of `a / b` (`bench_e2e::median_ratio`) as
/// `1.23x`; `-` when nothing was measured.
fn round_ratio(a: &[f64], b: &[f64]) -> String {
    bench_e2e::median_ratio(a, b).map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
}

/// `a / b` as `1.23x`; `-` when `b` is not positive (nothing measured).
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".to_string()
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use tests::bench_e2e::NO_LB;

    #[test]
    fn e2e_table_compares_with_nftables() {
        let r = |setup, gbps: f64, conns| Row {
            setup,
            conn_errors: 0,
            bps_rounds: vec![gbps * 1e9],
            cps_rounds: vec![conns],
        };
        let rows = [
            r(NO_LB, 10.0, 4000.0),
            r(FERROLB, 9.0, 3000.0),
            r(FERROLB_GENERIC, 12.0, 2500.0),
            r(NFT, 6.0, 2000.0),
        ];
        let text = e2e_table(&rows).to_string();
        let ferrolb = text.lines().find(|l| l.contains(FERROLB)).unwrap();
        let cells: Vec<&str> = ferrolb
            .split(['│', '┆'])
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            cells,
            [
                FERROLB,
                "9.00 Gbit/s",
                "0.90x",
                "1.50x",
                "3000",
                "0.75x",
                "1.50x",
                "0"
            ],
            "{text}"
        );
        let generic = text.lines().find(|l| l.contains(FERROLB_GENERIC)).unwrap();
        assert!(
            generic.contains("2.00x") && generic.contains("1.25x"),
            "{text}"
        );
        assert!(text.contains("vs nftables"), "{text}");
        assert_eq!(ratio(1.0, 0.0), "-");
    }

    #[test]
    fn e2e_ratios_are_medians_of_each_rounds_ratio() {
        let r = |setup, cps: [f64; 3]| Row {
            setup,
            conn_errors: 0,
            bps_rounds: vec![1e9; 3],
            cps_rounds: cps.to_vec(),
        };
        // Medians 6000 vs 6300 (0.95x), but ferrolb ahead in two rounds of
        // three, 1.10x in the middle one.
        let rows = [
            r(NO_LB, [6000.0; 3]),
            r(FERROLB, [7000.0, 5500.0, 6000.0]),
            r(NFT, [6300.0, 5000.0, 6800.0]),
        ];
        let text = e2e_table(&rows).to_string();
        let ferrolb = text.lines().find(|l| l.contains(FERROLB)).unwrap();
        assert!(ferrolb.contains("1.10x"), "{text}");
    }

    #[test]
    fn overlay_table_compares_with_kernel_vxlan() {
        let rows = [
            bench_overlay::Row {
                setup: Setup::KernelVxlan,
                throughput_bps: 8e9,
            },
            bench_overlay::Row {
                setup: Setup::Routed,
                throughput_bps: 10e9,
            },
            bench_overlay::Row {
                setup: Setup::FerrolbVxlan,
                throughput_bps: 12e9,
            },
        ];
        let text = overlay_table(&rows).to_string();
        let line = |setup: Setup| text.lines().find(|l| l.contains(setup.label())).unwrap();
        assert!(line(Setup::Routed).contains("10.00 Gbit/s"), "{text}");
        assert!(line(Setup::Routed).contains("1.25x"), "{text}");
        assert!(line(Setup::KernelVxlan).contains("1.00x"), "{text}");
        assert!(line(Setup::FerrolbVxlan).contains("1.50x"), "{text}");
    }
}
