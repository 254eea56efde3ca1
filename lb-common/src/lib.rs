//! Map keys and values shared by the ferrolb datapath (`lb-ebpf`) and its
//! userspace (`lb-userspace`).
//!
//! Every type here is `#[repr(C)]`, has no implicit padding (explicit `_pad`
//! fields instead, checked by const assertions) and stores addresses and ports
//! in **network byte order**, exactly as they appear in the packet, so the
//! datapath never swaps bytes; each such field's doc comment says "network
//! byte order".
//!
//! With the `user` feature, the types implement `aya::Pod` so userspace can
//! read and write the maps.
#![no_std]

pub mod clock;
pub mod conntrack;
pub mod csum;
pub mod decap;
pub mod flow_table;
pub mod hash;
pub mod icmp_limit;
pub mod limits;
pub mod maps;
pub mod path_mtu;
pub mod service;
pub mod stats;
pub mod tunnel;

pub use clock::Clock;
pub use conntrack::{Flow, FlowKey, NextHop};
pub use decap::DecapStat;
pub use flow_table::FlowBucket;
pub use icmp_limit::{IcmpBucket, IcmpLimit};
pub use path_mtu::PathMtu;
pub use service::{Backend, Service, VipKey};
pub use stats::{Counters, GlobalCounters, GlobalStat};
pub use tunnel::{BackendTunnel, EndpointSet, Tunnel, TunnelEndpoint};

/// IP protocol numbers the balancer handles.
pub mod proto {
    /// ICMP (errors relayed; fragmentation-needed answers sent).
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv4 in IPv4 (IPIP, RFC 2003).
    pub const IPIP: u8 = 4;
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all these types are `#[repr(C)]`, `Copy`, contain only integers
    // and have no implicit padding (see the const assertions next to each
    // definition), so any byte pattern is a valid value.
    unsafe impl aya::Pod for crate::Clock {}
    unsafe impl aya::Pod for crate::VipKey {}
    unsafe impl aya::Pod for crate::Service {}
    unsafe impl aya::Pod for crate::Backend {}
    unsafe impl aya::Pod for crate::FlowKey {}
    unsafe impl aya::Pod for crate::Flow {}
    unsafe impl aya::Pod for crate::FlowBucket {}
    unsafe impl aya::Pod for crate::NextHop {}
    unsafe impl aya::Pod for crate::Counters {}
    unsafe impl aya::Pod for crate::GlobalCounters {}
    unsafe impl aya::Pod for crate::Tunnel {}
    unsafe impl aya::Pod for crate::BackendTunnel {}
    unsafe impl aya::Pod for crate::TunnelEndpoint {}
    unsafe impl aya::Pod for crate::EndpointSet {}
    unsafe impl aya::Pod for crate::IcmpLimit {}
    unsafe impl aya::Pod for crate::IcmpBucket {}
    unsafe impl aya::Pod for crate::PathMtu {}
}
