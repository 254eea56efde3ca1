//! Start-up check for encapsulated delivery: `accept_local` on the attached
//! interfaces.
//!
//! Until a node's neighbour is resolved the datapath hands the encapsulated
//! packet to the kernel; its outer source is this host's own tunnel source,
//! which the kernel drops as a martian unless `accept_local` is on for the
//! interface the packet arrived on.

use std::path::Path;

use super::sysctl;

/// The `net.ipv4.conf.<iface>.accept_local` switches that are off under
/// `sysctl_root` (`/proc/sys`). Switches that cannot be read are skipped.
pub fn accept_local_off(sysctl_root: &Path, ifaces: &[String]) -> Vec<String> {
    sysctl::iface_switches_off(sysctl_root, ifaces, "accept_local")
}

/// Warns (once per switch) when tunnel routes (or DSR services)
/// encapsulate and `accept_local` is off on attached interfaces.
pub fn warn_if_accept_local_off(ifaces: &[String], tunnels_encapsulate: bool) {
    if !tunnels_encapsulate {
        return;
    }
    for switch in accept_local_off(Path::new("/proc/sys"), ifaces) {
        tracing::warn!(
            "{switch} is 0: encapsulated packets the datapath passes to the kernel (a node's \
             neighbour not resolved yet) carry this host's tunnel source and are dropped as \
             martians; set {switch}=1"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_interfaces_without_accept_local() {
        let root =
            std::env::temp_dir().join(format!("ferrolbd-accept-local-{}", std::process::id()));
        let conf = root.join("net/ipv4/conf");
        for (iface, value) in [("eth0", "1\n"), ("eth1", "0\n")] {
            std::fs::create_dir_all(conf.join(iface)).unwrap();
            std::fs::write(conf.join(iface).join("accept_local"), value).unwrap();
        }
        let ifaces = ["eth0", "eth1", "eth2", "../x"].map(String::from);
        assert_eq!(
            accept_local_off(&root, &ifaces),
            ["net.ipv4.conf.eth1.accept_local"]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
