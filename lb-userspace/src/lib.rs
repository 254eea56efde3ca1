//! ferrolb userspace: the daemon's building blocks and the CLI's client.
//!
//! - `config`: the service model and its validation;
//! - `state`: the saved configuration (`services.json`);
//! - `datapath`: loading/attaching the XDP program and programming its maps;
//! - `controller`: configuration + datapath + state file, changed together;
//! - `api`: the REST API (axum) and `/metrics`;
//! - `daemon`: `ferrolbd`'s flags and run loop;
//! - `cli`: `ferrolbctl`.

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod datapath;
pub mod state;

#[cfg(test)]
mod test_support;

/// The compiled XDP programs (lb-ebpf), built by this crate's build script.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf"));
