//! Start-up check: IPv4 forwarding in the daemon's network namespace.
//!
//! The datapath hands a rewritten packet to the kernel when the FIB has no
//! neighbour for its next hop yet, and `bpf_fib_lookup` answers
//! `FWD_DISABLED` when the ingress interface does not forward: with
//! forwarding off, balanced traffic is lost.

use std::path::Path;

use super::sysctl;

/// The forwarding switches that are off under `sysctl_root` (`/proc/sys`):
/// `net.ipv4.ip_forward`, then `net.ipv4.conf.<iface>.forwarding` for each
/// of `ifaces`. Switches that cannot be read are skipped.
pub fn forwarding_off(sysctl_root: &Path, ifaces: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if sysctl::is_off(sysctl_root, "net/ipv4/ip_forward") {
        out.push("net.ipv4.ip_forward".to_string());
    }
    out.extend(sysctl::iface_switches_off(
        sysctl_root,
        ifaces,
        "forwarding",
    ));
    out
}

/// Warns (once per switch) when forwarding is off for the attached
/// interfaces. Nothing is checked without interfaces: nothing is balanced.
pub fn warn_if_forwarding_off(ifaces: &[String]) {
    if ifaces.is_empty() {
        return;
    }
    for switch in forwarding_off(Path::new("/proc/sys"), ifaces) {
        tracing::warn!(
            "{switch} is 0 in this network namespace: packets the datapath passes to the \
             kernel (next hop not resolved yet) are not forwarded; set {switch}=1"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_switches_that_are_off() {
        let root = std::env::temp_dir().join(format!("ferrolbd-sysctl-{}", std::process::id()));
        let conf = root.join("net/ipv4/conf");
        for (iface, value) in [("eth0", "1\n"), ("eth1", "0\n")] {
            std::fs::create_dir_all(conf.join(iface)).unwrap();
            std::fs::write(conf.join(iface).join("forwarding"), value).unwrap();
        }
        std::fs::write(root.join("net/ipv4/ip_forward"), "0\n").unwrap();
        let ifaces = ["eth0".to_string(), "eth1".to_string(), "eth2".to_string()];
        assert_eq!(
            forwarding_off(&root, &ifaces),
            ["net.ipv4.ip_forward", "net.ipv4.conf.eth1.forwarding"]
        );
        std::fs::write(root.join("net/ipv4/ip_forward"), "1\n").unwrap();
        std::fs::write(conf.join("eth1/forwarding"), "1\n").unwrap();
        assert!(forwarding_off(&root, &ifaces).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
