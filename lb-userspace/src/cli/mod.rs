//! `ferrolbctl`: the command-line client of the REST API.

mod args;
mod client;
mod file;
mod run;
mod table;
mod tunnel;
mod tunnel_file;

pub use args::{
    BackendArg, CliArgs, Command, Output, ServiceCommand, parse_backend, parse_service_addr,
};
pub use client::{ApiClient, CliError};
pub use file::parse_services_file;
pub use run::run;
pub use tunnel::{TunnelCommand, parse_tunnel_name};
pub use tunnel_file::parse_tunnels_file;

#[cfg(test)]
mod tests;
