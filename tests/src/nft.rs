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

/// One balanced VIP.
#[derive(Debug, Clone)]
pub struct DnatService {
    /// `tcp` or `udp`.
    pub protocol: String,
    pub vip: SocketAddrV4,
    pub backends: Vec<SocketAddrV4>,
}

impl DnatService {
    pub fn new(protocol: &str, vip: SocketAddrV4, backends: Vec<SocketAddrV4>) -> DnatService {
        DnatService {
            protocol: protocol.to_string(),
            vip,
            backends,
        }
    }
}

/// The ruleset (one `table ip`) for `services`.
pub fn dnat_ruleset(services: &[DnatService]) -> String {
    let mut rules = format!("table ip {TABLE} {{\n");
    let mut dispatch = String::new();
    for (s, svc) in services.iter().enumerate() {
        for (e, backend) in svc.backends.iter().enumerate() {
            rules.push_str(&format!(
                "  chain svc{s}-ep{e} {{\n    meta l4proto {} dnat to {backend}\n  }}\n",
                svc.protocol
            ));
        }
        let vmap = (0..svc.backends.len())
            .map(|e| format!("{e} : goto svc{s}-ep{e}"))
            .collect::<Vec<_>>()
            .join(", ");
        dispatch.push_str(&format!(
            "    ip daddr {} {} dport {} numgen random mod {} vmap {{ {vmap} }}\n",
            svc.vip.ip(),
            svc.protocol,
            svc.vip.port(),
            svc.backends.len()
        ));
    }
    rules.push_str(&format!(
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{dispatch}  }}\n}}\n"
    ));
    rules
}

/// Install DNAT for one VIP in `ns` (replacing what this module installed).
pub fn add_dnat(
    ns: &Netns,
    protocol: &str,
    vip: SocketAddrV4,
    backends: &[SocketAddrV4],
) -> Result<()> {
    add_dnat_many(ns, &[DnatService::new(protocol, vip, backends.to_vec())])
}

/// Install DNAT for several VIPs in `ns` (replacing what this module
/// installed).
pub fn add_dnat_many(ns: &Netns, services: &[DnatService]) -> Result<()> {
    for svc in services {
        anyhow::ensure!(
            !svc.backends.is_empty(),
            "nft DNAT for {} needs a backend",
            svc.vip
        );
        anyhow::ensure!(
            svc.protocol == "tcp" || svc.protocol == "udp",
            "nft DNAT: protocol must be tcp or udp, got {:?}",
            svc.protocol
        );
    }
    remove(ns);
    load(ns, &dnat_ruleset(services))
}

/// `nft -f -` in `ns` with `rules`; an error quotes nft's complaint and the
/// rules.
pub fn load(ns: &Netns, rules: &str) -> Result<()> {
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
            "nft rejected the ruleset in {}: {}\n{rules}",
            ns.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Remove the table (no error if absent).
pub fn remove(ns: &Netns) {
    let _ = ns.exec("nft", &["delete", "table", "ip", TABLE]);
}
