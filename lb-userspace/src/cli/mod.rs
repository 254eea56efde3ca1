//! `ferrolbctl`: the command-line client of the REST API.

mod args;
mod client;
mod file;
mod run;
mod table;

pub use args::{
    BackendArg, CliArgs, Command, Output, ServiceCommand, parse_backend, parse_service_addr,
};
pub use client::{ApiClient, CliError};
pub use file::parse_services_file;
pub use run::run;

#[cfg(test)]
mod tests;
