//! The test server (`ferrolb-testsrv`) and how to start it in a namespace.
//!
//! Protocol, so a client can tell which backend answered and what that
//! backend saw:
//! - TCP: on accept the server writes `NAME PEER MSS\n` (PEER is the client
//!   address as the backend sees it, MSS the accepted socket's `TCP_MAXSEG`:
//!   the segment size it sends with, bounded by the MSS the client's SYN
//!   carried when it arrived), then echoes whatever it receives.
//! - UDP: every datagram gets the reply `NAME PEER`.

use std::net::SocketAddrV4;
use std::time::Duration;

use anyhow::Result;

use crate::bins::bin_path;
use crate::netns::Netns;
use crate::process::Proc;

/// Binary name of the test server.
pub const BINARY: &str = "ferrolb-testsrv";
/// Line the server prints once its sockets are bound.
pub const READY: &str = "ready";

/// Start the test server in `ns`, listening on `addr` (TCP and UDP), and wait
/// until it is bound.
pub fn start(ns: &Netns, name: &str, addr: SocketAddrV4) -> Result<Proc> {
    spawn(ns, name, addr, &[])
}

/// Start the test server in `ns` as `start` does, TCP only, closing every
/// connection once greeted, from the accepting thread (`--greet-only`):
/// cheap connections for connection-rate benchmarks.
pub fn start_greeter(ns: &Netns, name: &str, addr: SocketAddrV4) -> Result<Proc> {
    spawn(ns, name, addr, &["--tcp-only", "--greet-only"])
}

fn spawn(ns: &Netns, name: &str, addr: SocketAddrV4, extra: &[&str]) -> Result<Proc> {
    let mut cmd = ns.command(bin_path(BINARY)?);
    cmd.args(["--name", name, "--listen", &addr.to_string()]);
    cmd.args(extra);
    let mut proc = Proc::spawn(&format!("{BINARY} {name}"), &mut cmd)?;
    proc.wait_for_line(Duration::from_secs(10), |line| line == READY)?;
    Ok(proc)
}

/// The server's UDP reply: `NAME PEER`.
pub fn format_reply(name: &str, peer: std::net::SocketAddr) -> String {
    format!("{name} {peer}")
}

/// The server's TCP greeting: `NAME PEER MSS`.
pub fn format_greeting(name: &str, peer: std::net::SocketAddr, mss: u32) -> String {
    format!("{name} {peer} {mss}")
}
