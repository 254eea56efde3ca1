//! Errors of the datapath layer.

use std::{io, path::PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("bpf filesystem at {path}: {source}")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("loading the eBPF object: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("the eBPF object has no XDP program {0}")]
    MissingProgram(&'static str),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("program: {0}")]
    Program(#[source] Box<aya::programs::ProgramError>),
    #[error("attaching to interface {iface} in {mode} mode: {source}")]
    Attach {
        iface: String,
        mode: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("interface {0:?} does not exist")]
    UnknownIface(String),
    #[error("interface {0:?} has no IPv4 address: no IPIP to decapsulate there")]
    NoIpv4(String),
    #[error(
        "interface {0:?} is given to both --iface and --node-decap: an interface runs one XDP program"
    )]
    BothPrograms(String),
    #[error("reading interface addresses: {0}")]
    IfAddrs(#[source] nix::errno::Errno),
    #[error("device map {name}: {source}")]
    DevMap {
        name: &'static str,
        #[source]
        source: Box<aya::maps::xdp::XdpMapError>,
    },
    #[error("tunnel {tunnel}: {reason}")]
    TunnelSource { tunnel: String, reason: String },
    /// The source address of a source-NATing service could not be chosen.
    #[error("service {service}: {reason}")]
    SnatSource { service: String, reason: String },
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    IcmpLimit(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl DatapathError {
    pub(crate) fn map(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> Self {
        move |e| DatapathError::Map {
            name,
            source: Box::new(e),
        }
    }

    pub(crate) fn program(e: aya::programs::ProgramError) -> Self {
        DatapathError::Program(Box::new(e))
    }
}
