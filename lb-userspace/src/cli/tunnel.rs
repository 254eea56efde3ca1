//! `ferrolbctl tunnel ...`: tunnel routes (pod network → node).

use std::{net::Ipv4Addr, path::PathBuf};

use serde_json::Value;

use super::{
    ApiClient, CliError,
    run::{decode, pretty},
    table,
    tunnel_file::parse_tunnels_file,
};
use crate::config::{Encap, Ipv4Cidr, MacAddr, TunnelInput, TunnelSpec, check_tunnel_name};

#[derive(Clone, Debug, clap::Subcommand)]
pub enum TunnelCommand {
    /// List the tunnel routes.
    List,
    /// Show a tunnel route.
    Get {
        #[arg(value_parser = parse_tunnel_name)]
        name: String,
    },
    /// Delete a tunnel route.
    Delete {
        #[arg(value_parser = parse_tunnel_name)]
        name: String,
    },
    /// Create or replace the tunnel routes in a file (JSON or YAML; one
    /// route or a list, each with its `name`).
    Apply {
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Create or replace a tunnel route.
    Add {
        #[arg(value_parser = parse_tunnel_name)]
        name: String,
        /// The pod network behind the node, e.g. 192.168.140.64/26.
        #[arg(long, value_name = "CIDR")]
        pod_cidr: Ipv4Cidr,
        /// The node's address.
        #[arg(long, value_name = "IP")]
        node_ip: Ipv4Addr,
        /// none, ipip or vxlan.
        #[arg(long)]
        encap: Encap,
        /// VXLAN network identifier (vxlan only; default 1).
        #[arg(long, value_name = "N")]
        vni: Option<u32>,
        /// The node's VTEP MAC (vxlan only, required there).
        #[arg(long, value_name = "MAC")]
        vtep_mac: Option<MacAddr>,
        /// VXLAN UDP port (vxlan only; default 8472).
        #[arg(long, value_name = "PORT")]
        dst_port: Option<u16>,
    },
}

/// A tunnel name argument.
pub fn parse_tunnel_name(s: &str) -> Result<String, String> {
    check_tunnel_name(s)
        .map(|()| s.to_string())
        .map_err(|e| format!("{s:?}: {e}"))
}

fn path(name: &str) -> String {
    format!("/v1/tunnels/{name}")
}

/// Runs `cmd`, returning what to print.
pub fn run(client: &ApiClient, cmd: &TunnelCommand, json: bool) -> Result<String, CliError> {
    Ok(match cmd {
        TunnelCommand::List => {
            let v = client.get_path("/v1/tunnels")?;
            if json {
                pretty(&v)
            } else {
                table::tunnels(&decode::<Vec<TunnelSpec>>(v)?)
            }
        }
        TunnelCommand::Get { name } => {
            let v = client.get_path(&path(name))?;
            if json {
                pretty(&v)
            } else {
                table::tunnels(&[decode::<TunnelSpec>(v)?])
            }
        }
        TunnelCommand::Delete { name } => {
            client.delete_path(&path(name))?;
            if json {
                pretty(&serde_json::json!({ "deleted": name }))
            } else {
                format!("deleted tunnel {name}\n")
            }
        }
        TunnelCommand::Apply { file } => {
            let tunnels = parse_tunnels_file(file).map_err(CliError::Input)?;
            let mut applied = Vec::new();
            for (name, input) in &tunnels {
                applied.push(client.put_path(&path(name), input).map_err(|e| match e {
                    CliError::Api { status, message } => CliError::Api {
                        status,
                        message: format!("tunnel {name}: {message}"),
                    },
                    e => e,
                })?);
            }
            if json {
                pretty(&Value::Array(applied))
            } else {
                tunnels
                    .iter()
                    .map(|(n, _)| format!("applied tunnel {n}\n"))
                    .collect()
            }
        }
        TunnelCommand::Add {
            name,
            pod_cidr,
            node_ip,
            encap,
            vni,
            vtep_mac,
            dst_port,
        } => {
            let input = TunnelInput::from(&TunnelSpec {
                name: name.clone(),
                pod_cidr: *pod_cidr,
                node_ip: *node_ip,
                encap: *encap,
                vni: *vni,
                vtep_mac: *vtep_mac,
                dst_port: *dst_port,
            });
            // Checked here first: a bad combination never reaches the API.
            crate::config::validate_tunnel(&input, None)
                .map_err(|e| CliError::Input(e.to_string()))?;
            let v = client.put_path(&path(name), &input)?;
            if json {
                pretty(&v)
            } else {
                let t: TunnelSpec = decode(v)?;
                format!("tunnel {} → {} ({})\n", t.pod_cidr, t.node_ip, t.encap)
            }
        }
    })
}
