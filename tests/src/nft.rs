//! nftables DNAT in a namespace, the way kube-proxy's nftables mode balances
//! a Service: a rule on the VIP jumps through a `numgen random` verdict map
//! to one chain per endpoint that DNATs to it. Used as the benchmark's
//! comparison point.

use std::io::Write;
use std::net::SocketAddrV4;
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::netns::Netns;

/// The table this module manages.
pub const TABLE: &str = "ferrolb_compare";

/// The ruleset for `vip` (protocol `tcp` or `udp`) balanced over `backends`.
pub fn dnat_ruleset(protocol: &str, vip: SocketAddrV4, backends: &[SocketAddrV4]) -> String {
    let mut rules = format!("table ip {TABLE} {{\n");
    for (i, backend) in backends.iter().enumerate() {
        rules.push_str(&format!(
            "  chain endpoint-{i} {{\n    meta l4proto {protocol} dnat to {backend}\n  }}\n"
        ));
    }
    let vmap = (0..backends.len())
        .map(|i| format!("{i} : goto endpoint-{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    rules.push_str(&format!(
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
         ip daddr {} {protocol} dport {} numgen random mod {} vmap {{ {vmap} }}\n  }}\n}}\n",
        vip.ip(),
        vip.port(),
        backends.len()
    ));
    rules
}

/// Install DNAT for `vip` in `ns` (replacing an earlier one).
pub fn add_dnat(
    ns: &Netns,
    protocol: &str,
    vip: SocketAddrV4,
    backends: &[SocketAddrV4],
) -> Result<()> {
    anyhow::ensure!(!backends.is_empty(), "nft DNAT needs at least one backend");
    remove(ns);
    let rules = dnat_ruleset(protocol, vip, backends);
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nft")?;
    child
        .stdin
        .take()
        .context("nft stdin")?
        .write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft rejected the ruleset: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Remove the table (no error if absent).
pub fn remove(ns: &Netns) {
    let _ = ns.exec("nft", &["delete", "table", "ip", TABLE]);
}
