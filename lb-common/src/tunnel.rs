//! Tunnel routes: how to reach a pod network (`TUNNELS` LPM trie, keyed by
//! the IPv4 prefix of the pod network in network byte order).

/// How packets to a tunnel route are delivered (`Tunnel::encap`).
pub mod encap {
    /// Not encapsulated: the pod network is routed to the node.
    pub const NONE: u8 = 0;
    /// IPv4 in IPv4 (RFC 2003), outer destination `Tunnel::node_ip`.
    pub const IPIP: u8 = 1;
    /// VXLAN (RFC 7348) to `Tunnel::node_ip`:`Tunnel::dst_port`, VNI
    /// `Tunnel::vni`, inner destination MAC `Tunnel::vtep_mac`.
    pub const VXLAN: u8 = 2;
}

/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// Value of the `TUNNELS` map: the node behind a pod network.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tunnel {
    /// Node address (outer destination), network byte order.
    pub node_ip: u32,
    /// VXLAN network identifier (24-bit value, host byte order); 0 unless
    /// `encap` is `encap::VXLAN`.
    pub vni: u32,
    /// VXLAN UDP destination port, network byte order; 0 unless VXLAN.
    pub dst_port: u16,
    /// The node's VTEP MAC (inner destination MAC); zero unless VXLAN.
    pub vtep_mac: [u8; 6],
    /// `encap::*`.
    pub encap: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<Tunnel>() == 20);
const _: () = assert!(core::mem::align_of::<Tunnel>() == 4);
