//! ferrolbd's `--xdp-mode` against real interfaces: driver mode where the
//! driver supports XDP, generic (skb) mode on request or as auto's fallback,
//! and a clear failure where neither is possible.

use tests::daemon::{Daemon, DaemonConfig};
use tests::netns::Netns;

/// The XDP attachment `ip link` reports for `dev`: "xdpgeneric", "xdp"
/// (driver mode) or "none".
fn xdp_kind(ns: &Netns, dev: &str) -> String {
    let link = ns.ip(&["link", "show", "dev", dev]).unwrap();
    if link.contains("xdpgeneric") {
        "xdpgeneric".into()
    } else if link.contains(" xdp ") || link.contains("prog/xdp") {
        "xdp".into()
    } else {
        "none".into()
    }
}

/// A namespace whose loopback is up: `lo` has no native XDP support (this
/// kernel has no dummy driver, the usual stand-in).
fn with_loopback(role: &str) -> Netns {
    let ns = Netns::create(role).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns
}

fn with_veth(role: &str) -> Netns {
    let ns = Netns::create(role).unwrap();
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])
        .unwrap();
    ns.ip(&["link", "set", "v0", "up"]).unwrap();
    ns.ip(&["link", "set", "v1", "up"]).unwrap();
    ns
}

fn config(iface: &str, mode: &str) -> DaemonConfig {
    let mut config = DaemonConfig::new(vec![iface.to_string()]);
    config.xdp_mode = mode.to_string();
    config
}

#[test]
fn auto_uses_driver_mode_where_the_driver_supports_xdp() {
    let ns = with_veth("auto-drv");
    let mut daemon = Daemon::start(&ns, config("v0", "auto")).unwrap();
    assert_eq!(xdp_kind(&ns, "v0"), "xdp");
    daemon.stop().unwrap();
    assert_eq!(xdp_kind(&ns, "v0"), "none", "detached on SIGTERM");
}

#[test]
fn auto_falls_back_to_generic_mode_without_driver_support() {
    let ns = with_loopback("auto-gen");
    let daemon = Daemon::start(&ns, config("lo", "auto")).unwrap();
    assert_eq!(xdp_kind(&ns, "lo"), "xdpgeneric", "{}", daemon.log());
}

#[test]
fn skb_mode_attaches_generic_even_where_the_driver_supports_xdp() {
    let ns = with_veth("skb");
    let _daemon = Daemon::start(&ns, config("v0", "skb")).unwrap();
    assert_eq!(xdp_kind(&ns, "v0"), "xdpgeneric");
}

#[test]
fn driver_mode_fails_clearly_without_driver_support() {
    let ns = with_loopback("drv-fail");
    let err = Daemon::start(&ns, config("lo", "driver"))
        .err()
        .expect("ferrolbd must refuse driver mode on loopback");
    let msg = format!("{err:#}");
    assert!(msg.contains("exited at start"), "{msg}");
    assert!(
        msg.contains("interface lo"),
        "the error names the interface: {msg}"
    );
    assert_eq!(xdp_kind(&ns, "lo"), "none");
}

#[test]
fn unknown_interface_fails_clearly() {
    let ns = with_loopback("no-if");
    let err = Daemon::start(&ns, config("nosuch0", "auto"))
        .err()
        .expect("ferrolbd must refuse an unknown interface");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("nosuch0"),
        "the error names the interface: {msg}"
    );
}
