//! `ferrolbctl`'s arguments.

use std::{net::Ipv4Addr, path::PathBuf};

use lb_common::limits::MAX_WEIGHT;

use crate::config::{Mode, Select, ServiceKey};

/// Command-line client of ferrolbd's REST API.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "ferrolbctl", version, about)]
pub struct CliArgs {
    /// Base URL of the API.
    #[arg(
        long,
        env = "FERROLB_API",
        default_value = "http://127.0.0.1:7701",
        global = true
    )]
    pub api: String,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Readable tables.
    Table,
    /// The API's JSON.
    Json,
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Manage services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Manage tunnel routes (pod network → node).
    #[command(subcommand)]
    Tunnel(super::TunnelCommand),
}

#[derive(Clone, Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// List the services.
    List,
    /// Show a service with its counters.
    Get {
        /// VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp.
        #[arg(value_parser = parse_service_addr)]
        service: ServiceKey,
    },
    /// Delete a service.
    Delete {
        /// VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp.
        #[arg(value_parser = parse_service_addr)]
        service: ServiceKey,
    },
    /// Create or replace the services in a file (JSON or YAML; one service
    /// or a list).
    Apply {
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Create a service (fails if it exists).
    Add {
        /// VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp.
        #[arg(value_parser = parse_service_addr)]
        service: ServiceKey,
        /// Backend IP:PORT[,WEIGHT] (repeatable).
        #[arg(long = "backend", value_name = "IP:PORT[,WEIGHT]", value_parser = parse_backend)]
        backends: Vec<BackendArg>,
        /// Packet rewriting mode: dnat, onearm, fullnat, or dsr (direct server
        /// return; backends on the service port).
        #[arg(long)]
        mode: Option<Mode>,
        /// fullnat: source address of connections to the backends (default
        /// the daemon's --overlay-ip).
        #[arg(long, value_name = "IP")]
        snat_ip: Option<std::net::Ipv4Addr>,
        /// Backend selection: rr or hash.
        #[arg(long)]
        select: Option<Select>,
        /// Idle timeout of connections, seconds (default 3600 TCP, 60 UDP).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
        timeout: Option<u32>,
        /// Name, e.g. default/web.
        #[arg(long)]
        name: Option<String>,
    },
}

/// `--backend IP:PORT[,WEIGHT]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendArg {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub weight: Option<u32>,
}

/// Parses `VIP:PORT/PROTO` (`10.96.0.10:80/tcp`).
pub fn parse_service_addr(s: &str) -> Result<ServiceKey, String> {
    let usage = || format!("{s:?}: expected VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp");
    let (addr, proto) = s.split_once('/').ok_or_else(usage)?;
    let (vip, port) = addr.rsplit_once(':').ok_or_else(usage)?;
    ServiceKey::parse_parts(proto, vip, port).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `IP:PORT[,WEIGHT]` (`10.0.2.2:8080,3`).
pub fn parse_backend(s: &str) -> Result<BackendArg, String> {
    let usage = || format!("{s:?}: expected IP:PORT[,WEIGHT], e.g. 10.0.2.2:8080,3");
    let (addr, weight) = match s.split_once(',') {
        Some((a, w)) => (a, Some(w)),
        None => (s, None),
    };
    let (ip, port) = addr.rsplit_once(':').ok_or_else(usage)?;
    let ip = crate::config::parse_ip(ip).map_err(|e| format!("{s:?}: ip: {e}"))?;
    let port = port
        .parse::<i64>()
        .map_err(|_| format!("{s:?}: port: {port:?} is not a number"))
        .and_then(|p| crate::config::check_port(p).map_err(|e| format!("{s:?}: port: {e}")))?;
    let weight = match weight {
        None => None,
        Some(w) => match w.parse::<u32>() {
            Ok(w) if (1..=MAX_WEIGHT).contains(&w) => Some(w),
            _ => return Err(format!("{s:?}: weight: must be 1..={MAX_WEIGHT}")),
        },
    };
    Ok(BackendArg { ip, port, weight })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;
    use clap::Parser;

    #[test]
    fn service_addr() {
        let k = parse_service_addr("10.96.0.10:80/tcp").unwrap();
        assert_eq!(
            k,
            ServiceKey {
                protocol: Protocol::Tcp,
                vip: "10.96.0.10".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!(
            parse_service_addr("10.96.0.10:53/udp").unwrap().protocol,
            Protocol::Udp
        );
        for (bad, names) in [
            ("10.96.0.10:80", "expected VIP:PORT/PROTO"),
            ("10.96.0.10/tcp", "expected VIP:PORT/PROTO"),
            ("10.96.0.10:80/sctp", "protocol: unknown protocol \"sctp\""),
            ("10.96.0.300:80/tcp", "vip:"),
            ("10.96.0.10:0/tcp", "port: must be 1..=65535"),
            ("10.96.0.10:65536/tcp", "port: must be 1..=65535"),
            ("10.96.0.10:http/tcp", "port: \"http\" is not a number"),
        ] {
            let err = parse_service_addr(bad).unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
    }

    #[test]
    fn backend() {
        assert_eq!(
            parse_backend("10.0.2.2:8080").unwrap(),
            BackendArg {
                ip: "10.0.2.2".parse().unwrap(),
                port: 8080,
                weight: None
            }
        );
        assert_eq!(parse_backend("10.0.2.2:8080,3").unwrap().weight, Some(3));
        for (bad, names) in [
            ("10.0.2.2", "expected IP:PORT[,WEIGHT]"),
            ("10.0.2.2:8080,0", "weight: must be 1..=100"),
            ("10.0.2.2:8080,101", "weight: must be 1..=100"),
            ("10.0.2.2:8080,x", "weight: must be 1..=100"),
            ("10.0.2:8080", "ip:"),
            ("10.0.2.2:0", "port: must be 1..=65535"),
        ] {
            let err = parse_backend(bad).unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
    }

    #[test]
    fn add_command() {
        let a = CliArgs::try_parse_from([
            "ferrolbctl",
            "--api",
            "http://127.0.0.1:9",
            "service",
            "add",
            "10.96.0.10:80/tcp",
            "--backend",
            "10.0.2.2:8080,2",
            "--backend",
            "10.0.2.3:8080",
            "--select",
            "hash",
            "--timeout",
            "30",
            "--name",
            "default/web",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(a.api, "http://127.0.0.1:9");
        assert_eq!(a.output, Output::Json);
        match a.command {
            Command::Service(ServiceCommand::Add {
                service,
                backends,
                select,
                timeout,
                name,
                mode,
                snat_ip,
            }) => {
                assert_eq!(service.port, 80);
                assert_eq!(backends.len(), 2);
                assert_eq!(backends[0].weight, Some(2));
                assert_eq!(select, Some(Select::Hash));
                assert_eq!(timeout, Some(30));
                assert_eq!(name.as_deref(), Some("default/web"));
                assert_eq!(mode, None);
                assert_eq!(snat_ip, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn argument_errors_name_what_is_wrong() {
        for (args, names) in [
            (
                vec!["service", "add", "10.96.0.10:80/tcp", "--mode", "tun"],
                "unknown mode \"tun\"",
            ),
            (
                vec!["service", "add", "10.96.0.10:80/tcp", "--select", "lc"],
                "unknown select \"lc\"",
            ),
            (
                vec![
                    "service",
                    "add",
                    "10.96.0.10:80/tcp",
                    "--backend",
                    "1.2.3.4",
                ],
                "--backend",
            ),
            (
                vec!["service", "add", "10.96.0.10:80/tcp", "--timeout", "0"],
                "--timeout",
            ),
            (
                vec!["service", "get", "nonsense"],
                "expected VIP:PORT/PROTO",
            ),
            (vec!["service", "apply"], "--file"),
            (vec!["service", "list", "-o", "yaml"], "--output"),
        ] {
            let mut full = vec!["ferrolbctl"];
            full.extend(&args);
            let err = CliArgs::try_parse_from(&full).unwrap_err().to_string();
            assert!(err.contains(names), "{args:?}: {err}");
        }
    }
}
