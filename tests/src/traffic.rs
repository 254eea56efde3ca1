//! Load generators for the benchmark: a new-connections-per-second loop and
//! iperf3 runs. Speed is reported, never asserted.

use std::io::Read;
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns::Netns;
use crate::process::{Proc, run_checked};

/// Result of a connection-rate run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnRate {
    pub connections: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl ConnRate {
    pub fn per_second(&self) -> f64 {
        self.connections as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// From the namespace `ns`, for `duration`, on `workers` threads: connect to
/// `addr`, read the server's first bytes (so the reply path is part of every
/// connection), close with RST (SO_LINGER 0, so the client keeps no
/// TIME_WAIT and does not run out of ports).
pub fn connect_rate(
    ns: &Netns,
    targets: &[SocketAddrV4],
    duration: Duration,
    workers: usize,
) -> Result<ConnRate> {
    anyhow::ensure!(!targets.is_empty(), "no connection target");
    let timeout = Duration::from_secs(2);
    let results: Vec<Result<ConnRate>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|w| scope.spawn(move || ns.run(|| connect_loop(targets, w, duration, timeout))))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("connection worker panicked")),
            })
            .collect()
    });
    let mut total = ConnRate::default();
    for result in results {
        let rate = result?;
        total.connections += rate.connections;
        total.errors += rate.errors;
        total.elapsed = total.elapsed.max(rate.elapsed);
    }
    Ok(total)
}

/// Connects in a loop for `duration`, cycling over `targets` (starting at
/// `first`, so workers spread over them from the start).
fn connect_loop(
    targets: &[SocketAddrV4],
    first: usize,
    duration: Duration,
    timeout: Duration,
) -> ConnRate {
    let start = Instant::now();
    let mut rate = ConnRate::default();
    let mut buf = [0u8; 64];
    let mut i = first;
    while start.elapsed() < duration {
        let addr = targets[i % targets.len()];
        i = i.wrapping_add(1);
        match one_connection(addr, timeout, &mut buf) {
            Ok(()) => rate.connections += 1,
            Err(_) => rate.errors += 1,
        }
    }
    rate.elapsed = start.elapsed();
    rate
}

fn one_connection(addr: SocketAddrV4, timeout: Duration, buf: &mut [u8]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr.into(), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let n = stream.read(buf)?;
    set_linger_zero(&stream);
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "server closed without greeting",
        ));
    }
    Ok(())
}

fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket we own with a correctly sized value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// `iperf3 -s` bound to `addr` in `ns`; returns once it listens.
pub fn iperf3_server(ns: &Netns, addr: SocketAddrV4) -> Result<Proc> {
    let mut cmd = ns.command("iperf3");
    cmd.args([
        "-s",
        "--forceflush",
        "-B",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
    ]);
    let mut proc = Proc::spawn("iperf3 -s", &mut cmd)?;
    proc.wait_for_line(Duration::from_secs(10), |line| {
        line.contains("Server listening")
    })?;
    Ok(proc)
}

/// `iperf3 -c addr -t seconds -J` from `ns`; returns the received rate in
/// bits per second.
pub fn iperf3_client(ns: &Netns, addr: SocketAddrV4, seconds: u32) -> Result<f64> {
    let mut cmd = ns.command("iperf3");
    cmd.args([
        "-c",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
        "-t",
        &seconds.to_string(),
        "--connect-timeout",
        "3000",
        "-J",
    ]);
    let out = run_checked(&mut cmd, Duration::from_secs(u64::from(seconds) + 30))
        .context("iperf3 client")?;
    let report: serde_json::Value = serde_json::from_str(&out).context("iperf3 -J output")?;
    if let Some(err) = report.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {err}");
    }
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 report lacks end.sum_received.bits_per_second")
}
