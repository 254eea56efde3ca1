//! `ferrolbd`'s flags (each also from the environment).

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use lb_common::icmp_limit::{DEFAULT_BURST, DEFAULT_RATE_PER_S, MAX_BURST, MAX_RATE_PER_S};

use crate::{
    config::{MacAddr, parse_ip},
    datapath::XdpModeArg,
};

/// ferrolb's XDP load balancer daemon.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "ferrolbd", version, about)]
pub struct DaemonArgs {
    /// Interface to attach the XDP program to (repeatable; in the environment,
    /// comma-separated). None: the API runs but no traffic is balanced.
    #[arg(
        long = "iface",
        value_name = "IF",
        env = "FERROLB_IFACE",
        value_delimiter = ','
    )]
    pub ifaces: Vec<String>,

    /// Interface to attach the IPIP decapsulation program to, on a node
    /// (repeatable; in the environment, comma-separated): IPIP packets
    /// addressed to the interface's IPv4 addresses lose their outer header
    /// and the node routes the inner packet (DSR, IPIP delivery to pods)
    /// without the kernel's ipip module. Not also an --iface.
    #[arg(
        long = "node-decap",
        value_name = "IF",
        env = "FERROLB_NODE_DECAP",
        value_delimiter = ','
    )]
    pub node_decap: Vec<String>,

    /// Address of the REST API.
    #[arg(long, env = "FERROLB_API_ADDR", default_value = "127.0.0.1:7701")]
    pub api_addr: SocketAddr,

    /// Directory of the saved configuration (services.json).
    #[arg(long, env = "FERROLB_STATE_DIR", default_value = "/var/lib/ferrolb")]
    pub state_dir: PathBuf,

    /// XDP attach mode (--iface and --node-decap): auto tries driver mode and falls back to skb.
    #[arg(long, env = "FERROLB_XDP_MODE", value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,

    /// Directory on a bpf filesystem where the maps are pinned (mounted if
    /// the bpffs root is not).
    #[arg(long, env = "FERROLB_BPFFS_DIR", default_value = "/sys/fs/bpf/ferrolb")]
    pub bpffs_dir: PathBuf,

    /// Entries of the connection table (two per connection), rounded up to
    /// a power of two; changing it drops the pinned table.
    #[arg(long, env = "FERROLB_CONNTRACK_SIZE", value_parser = clap::value_parser!(u32).range(2..))]
    pub conntrack_size: Option<u32>,

    /// Seconds between scans of the connection table that count live
    /// connections (`ferrolb_conntrack_entries`).
    #[arg(long, env = "FERROLB_CONNTRACK_SCAN_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub conntrack_scan_interval_s: u64,

    /// The load balancer's address on the node network: the outer source of
    /// IPIP and VXLAN delivery to pods, where the nodes send the
    /// encapsulated replies. Default: per tunnel route, the preferred source
    /// address of this host's route to the node.
    #[arg(long, value_name = "IP", env = "FERROLB_TUNNEL_SOURCE", value_parser = parse_host_ip)]
    pub tunnel_source: Option<Ipv4Addr>,

    /// The load balancer's VTEP MAC (inner source MAC of VXLAN frames; the
    /// nodes' forwarding database maps it to the tunnel source). Default: the
    /// MAC of the interface holding the tunnel source.
    #[arg(long, value_name = "MAC", env = "FERROLB_VTEP_MAC", value_parser = parse_vtep_mac)]
    pub vtep_mac: Option<MacAddr>,

    /// The load balancer's own address on the pod network (overlay). Kept
    /// for full NAT, which will use it as SNAT source; DNAT does not use it.
    #[arg(long, value_name = "IP", env = "FERROLB_OVERLAY_IP", value_parser = parse_host_ip)]
    pub overlay_ip: Option<Ipv4Addr>,

    /// ICMP fragmentation-needed answers each CPU may send per second
    /// (token bucket refill; Linux's icmp_msgs_per_sec). With the bucket
    /// empty, the oversized packet is dropped (drop_frag_needed_rate_limited).
    #[arg(long, value_name = "N", env = "FERROLB_ICMP_RATE", default_value_t = DEFAULT_RATE_PER_S, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RATE_PER_S)))]
    pub icmp_rate: u32,

    /// Most ICMP fragmentation-needed answers each CPU sends back to back
    /// (token bucket size; Linux's icmp_msgs_burst).
    #[arg(long, value_name = "N", env = "FERROLB_ICMP_BURST", default_value_t = DEFAULT_BURST, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BURST)))]
    pub icmp_burst: u32,
}

/// A unicast, non-loopback IPv4 address (a host's address on a network).
fn parse_host_ip(s: &str) -> Result<Ipv4Addr, String> {
    let ip = parse_ip(s)?;
    if ip.is_loopback() {
        return Err(format!("{ip} is a loopback address"));
    }
    Ok(ip)
}

/// A unicast MAC address.
fn parse_vtep_mac(s: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = s.parse()?;
    if mac.0[0] & 1 != 0 {
        return Err(format!("{mac} is a multicast MAC address, not a VTEP's"));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_repeated_ifaces() {
        let a =
            DaemonArgs::try_parse_from(["ferrolbd", "--iface", "eth0", "--iface", "eth1"]).unwrap();
        assert_eq!(a.ifaces, ["eth0", "eth1"]);
        assert_eq!(a.api_addr, "127.0.0.1:7701".parse().unwrap());
        assert_eq!(a.state_dir, PathBuf::from("/var/lib/ferrolb"));
        assert_eq!(a.bpffs_dir, PathBuf::from("/sys/fs/bpf/ferrolb"));
        assert_eq!(a.xdp_mode, XdpModeArg::Auto);
        assert_eq!(a.conntrack_size, None);
        assert!(a.node_decap.is_empty());
        assert_eq!((a.icmp_rate, a.icmp_burst), (1000, 50));
        assert_eq!(
            (a.tunnel_source, a.vtep_mac, a.overlay_ip),
            (None, None, None)
        );
    }

    #[test]
    fn tunnel_flags_are_parsed() {
        let a = DaemonArgs::try_parse_from([
            "ferrolbd",
            "--tunnel-source",
            "172.16.1.1",
            "--vtep-mac",
            "02:AA:00:00:00:01",
            "--overlay-ip",
            "10.244.0.5",
        ])
        .unwrap();
        assert_eq!(a.tunnel_source, Some(Ipv4Addr::new(172, 16, 1, 1)));
        assert_eq!(a.vtep_mac, Some(MacAddr([2, 0xaa, 0, 0, 0, 1])));
        assert_eq!(a.overlay_ip, Some(Ipv4Addr::new(10, 244, 0, 5)));
    }

    #[test]
    fn bad_tunnel_flags_name_the_flag_and_the_problem() {
        for (flag, value, problem) in [
            ("--tunnel-source", "172.16.1", "not an IPv4 address"),
            ("--tunnel-source", "0.0.0.0", "not a unicast address"),
            ("--tunnel-source", "127.0.0.1", "loopback"),
            ("--tunnel-source", "fe80::1", "IPv6"),
            ("--overlay-ip", "224.0.0.1", "not a unicast address"),
            ("--overlay-ip", "255.255.255.255", "not a unicast address"),
            ("--vtep-mac", "02:00:00:00:00", "not a MAC address"),
            ("--vtep-mac", "00:00:00:00:00:00", "all-zero"),
            ("--vtep-mac", "ff:ff:ff:ff:ff:ff", "multicast"),
            ("--vtep-mac", "01:00:5e:00:00:01", "multicast"),
        ] {
            let err = DaemonArgs::try_parse_from(["ferrolbd", flag, value])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(flag) && err.contains(problem),
                "{flag} {value}: {err}"
            );
        }
    }

    #[test]
    fn icmp_limit_flags_are_parsed() {
        let a =
            DaemonArgs::try_parse_from(["ferrolbd", "--icmp-rate", "1", "--icmp-burst", "1000000"])
                .unwrap();
        assert_eq!((a.icmp_rate, a.icmp_burst), (1, 1_000_000));
    }

    #[test]
    fn bad_icmp_limit_flags_name_the_flag_and_the_range() {
        for (flag, value, problem) in [
            ("--icmp-rate", "0", "1..=1000000"),
            ("--icmp-rate", "1000001", "1..=1000000"),
            ("--icmp-rate", "-5", "unexpected argument"),
            ("--icmp-rate", "fast", "invalid digit"),
            ("--icmp-burst", "0", "1..=1000000"),
            ("--icmp-burst", "2000000", "1..=1000000"),
            ("--icmp-burst", "", "empty"),
        ] {
            let err = DaemonArgs::try_parse_from(["ferrolbd", flag, value])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(problem) && (err.contains(flag) || problem == "unexpected argument"),
                "{flag} {value}: {err}"
            );
        }
    }

    #[test]
    fn node_decap_alone_repeated_and_comma_separated() {
        let a = DaemonArgs::try_parse_from([
            "ferrolbd",
            "--node-decap",
            "eth0",
            "--node-decap",
            "eth1",
        ])
        .unwrap();
        assert_eq!(a.node_decap, ["eth0", "eth1"]);
        assert!(a.ifaces.is_empty());
        let a = DaemonArgs::try_parse_from(["ferrolbd", "--node-decap", "eth0,eth1"]).unwrap();
        assert_eq!(a.node_decap, ["eth0", "eth1"]);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (vec!["ferrolbd", "--xdp-mode", "hw"], "--xdp-mode"),
            (vec!["ferrolbd", "--api-addr", "nowhere"], "--api-addr"),
            (
                vec!["ferrolbd", "--conntrack-size", "0"],
                "--conntrack-size",
            ),
        ] {
            let err = DaemonArgs::try_parse_from(&args).unwrap_err().to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }
}
