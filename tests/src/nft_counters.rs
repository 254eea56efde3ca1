//! Named nftables packet counters in a namespace, to prove which way traffic
//! took (e.g. that a node's uplink received VXLAN, UDP 8472, and no plain
//! packet to its pods). Rules sit in a `prerouting` chain at raw priority,
//! so they see a packet as it arrives: an encapsulated packet on the uplink,
//! then (once the kernel's VXLAN device has decapsulated it) the inner packet
//! arriving on that device. XDP runs before them: a packet an XDP program
//! decapsulated is counted as the inner packet only.

use anyhow::{Context, Result};

use crate::netns::Netns;
use crate::nft;

/// The table this module manages (one per namespace).
pub const TABLE: &str = "ferrolb_counters";

/// Counters installed in one namespace; the table is deleted on drop.
#[derive(Debug)]
pub struct Counters {
    ns: Netns,
}

impl Counters {
    /// Install one counter per `(name, match)`: every packet that matches the
    /// nftables expression `match` (e.g. `iifname "eth0" udp dport 8472`) is
    /// counted under `name`. Replaces counters this module installed before
    /// in `ns`.
    pub fn install<N: AsRef<str>, E: AsRef<str>>(
        ns: &Netns,
        counters: &[(N, E)],
    ) -> Result<Counters> {
        let mut rules = format!("table inet {TABLE} {{\n");
        for (name, _) in counters {
            rules.push_str(&format!("  counter {} {{ }}\n", name.as_ref()));
        }
        rules.push_str(
            "  chain prerouting {\n    type filter hook prerouting priority raw; policy accept;\n",
        );
        for (name, expr) in counters {
            let (name, expr) = (name.as_ref(), expr.as_ref());
            rules.push_str(&format!("    {expr} counter name \"{name}\"\n"));
        }
        rules.push_str("  }\n}\n");
        let _ = ns.exec("nft", &["delete", "table", "inet", TABLE]);
        nft::load(ns, &rules)?;
        Ok(Counters { ns: ns.handle() })
    }

    /// Packets counted so far under `name`.
    pub fn packets(&self, name: &str) -> Result<u64> {
        let out = self
            .ns
            .exec("nft", &["-j", "list", "counter", "inet", TABLE, name])?;
        let json: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("nft -j output: {out}"))?;
        json["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|item| item["counter"]["packets"].as_u64())
            .with_context(|| format!("no counter {name} in {}: {out}", self.ns.name()))
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        let _ = self.ns.exec("nft", &["delete", "table", "inet", TABLE]);
    }
}
