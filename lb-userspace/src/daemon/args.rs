//! `ferrolbd`'s flags (each also from the environment).

use std::{net::SocketAddr, path::PathBuf};

use crate::datapath::XdpModeArg;

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
