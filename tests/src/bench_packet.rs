//! Cost per packet through `BPF_PROG_TEST_RUN`, beside a program that only
//! drops (the baseline), all measured in one run.
//!
//! With `repeat > 1` the kernel runs the program again on its own previous
//! output (after the first DNAT the packet is no longer addressed to the
//! VIP), so every measurement is a separate call with `repeat = 1`, as
//! Katran's tester does. Cases are interleaved in rounds so machine noise
//! hits them alike. Figures are the kernel's own timing of each run.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use lb_common::maps as names;

use crate::{dnat_fixture::*, packets::Frame};

/// One measured case.
pub struct Case {
    pub name: &'static str,
    pub samples_ns: Vec<u64>,
}

impl Case {
    pub fn median_ns(&self) -> f64 {
        let mut s = self.samples_ns.clone();
        s.sort_unstable();
        s.get(s.len() / 2).copied().unwrap_or(0) as f64
    }

    pub fn mean_ns(&self) -> f64 {
        if self.samples_ns.is_empty() {
            return 0.0;
        }
        self.samples_ns.iter().sum::<u64>() as f64 / self.samples_ns.len() as f64
    }
}

const ROUNDS: usize = 40;
const CALLS_PER_ROUND: usize = 250;

/// A client address unique to call `n` (so every call is a new flow).
fn client_n(n: usize) -> SocketAddrV4 {
    let n = n as u32;
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, 1, 2 + (n >> 16) as u8 % 200),
        1024 + (n & 0xffff) as u16 % 60000,
    )
}

/// Measures the DNAT datapath cases and the drop baseline.
pub fn measure() -> Result<Vec<Case>> {
    let fx = DnatFixture::new()?;
    let total = ROUNDS * CALLS_PER_ROUND;
    let new_flows: Vec<Vec<u8>> = (0..total)
        .map(|n| {
            client_tcp(TCP_VIP)
                .syn()
                .addrs(client_n(n), TCP_VIP)
                .bytes()
        })
        .collect();
    let established = client_tcp(TCP_VIP);
    fx.from_client(&established.clone().syn())?;
    let established = established.bytes();
    let reply = backend_reply(client_tcp(TCP_VIP), BACKEND1).bytes();
    let other = Frame::tcp(
        [2, 0, 0, 0, 1, 2],
        [2, 0, 0, 0, 1, 1],
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 2), 40000),
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 2), 22),
    )
    .bytes();

    let mut cases = [
        ("XDP_DROP program (baseline)", Vec::new()),
        ("established flow", Vec::new()),
        ("reply (reverse NAT)", Vec::new()),
        ("new TCP flow", Vec::new()),
        ("non-VIP traffic (pass)", Vec::new()),
    ];
    let client_if = fx.net.client_ifindex;
    let backend_if = fx.net.backend_ifindex;
    for round in 0..ROUNDS {
        for (i, (_, samples)) in cases.iter_mut().enumerate() {
            for call in 0..CALLS_PER_ROUND {
                let run = match i {
                    0 => fx.lb.run_prog(names::PROG_DROP, &established, client_if)?,
                    1 => fx.lb.run(&established, client_if)?,
                    2 => fx.lb.run(&reply, backend_if)?,
                    3 => fx
                        .lb
                        .run(&new_flows[round * CALLS_PER_ROUND + call], client_if)?,
                    _ => fx.lb.run(&other, client_if)?,
                };
                samples.push(run.duration.as_nanos() as u64);
            }
        }
    }
    Ok(cases
        .into_iter()
        .map(|(name, samples_ns)| Case { name, samples_ns })
        .collect())
}

/// Measures and prints the table.
pub fn run() -> Result<()> {
    let cases = measure()?;
    let base = &cases[0];
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "case",
        "median ns/packet",
        "mean ns/packet",
        "median vs XDP_DROP",
        "mean vs XDP_DROP",
    ]);
    for c in &cases {
        table.add_row(vec![
            c.name.to_string(),
            format!("{:.0}", c.median_ns()),
            format!("{:.1}", c.mean_ns()),
            format!("{:.2}x", c.median_ns() / base.median_ns().max(1.0)),
            format!("{:.2}x", c.mean_ns() / base.mean_ns().max(1.0)),
        ]);
    }
    println!(
        "\nPer packet through BPF_PROG_TEST_RUN ({} separate repeat=1 calls per case, \
         interleaved in {ROUNDS} rounds; kernel-measured run time):",
        ROUNDS * CALLS_PER_ROUND
    );
    println!("{table}");
    println!("targets: established <= 2.2x and new flow <= 5x the XDP_DROP program");
    Ok(())
}
