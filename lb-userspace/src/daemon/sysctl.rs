//! Reading IPv4 sysctl switches for the start-up checks.

use std::path::Path;

/// Whether the switch at `rel` under `sysctl_root` (`/proc/sys`) reads 0.
/// A switch that cannot be read is not reported.
pub fn is_off(sysctl_root: &Path, rel: &str) -> bool {
    std::fs::read_to_string(sysctl_root.join(rel)).is_ok_and(|v| v.trim() == "0")
}

/// `net.ipv4.conf.<iface>.<switch>` for each of `ifaces` where it is off
/// (interface names with a '/' cannot name a sysctl and are skipped).
pub fn iface_switches_off(sysctl_root: &Path, ifaces: &[String], switch: &str) -> Vec<String> {
    ifaces
        .iter()
        .filter(|iface| !iface.contains('/'))
        .filter(|iface| is_off(sysctl_root, &format!("net/ipv4/conf/{iface}/{switch}")))
        .map(|iface| format!("net.ipv4.conf.{iface}.{switch}"))
        .collect()
}
