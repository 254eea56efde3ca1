//! Tunnel routes: how to reach a pod network (`TUNNELS` LPM trie, keyed by
//! the IPv4 prefix of the pod network in network byte order), the per-backend
//! cache of that lookup (`BACKEND_TUNNEL`), and the load balancer's own
//! tunnel endpoints, where encapsulated replies arrive (`TUNNEL_ENDPOINTS`).

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

/// Bytes IPIP adds in front of the inner IPv4 packet (the outer IPv4 header).
pub const IPIP_OVERHEAD: u16 = 20;
/// Bytes VXLAN adds to the frame: outer IPv4 (20), UDP (8), VXLAN (8) and
/// the inner Ethernet header (14).
pub const VXLAN_OVERHEAD: u16 = 50;

/// Whether a route of kind `kind` (`encap::*`) encapsulates (IPIP or
/// VXLAN), rather than routing plainly.
#[inline(always)]
pub const fn encapsulates(kind: u8) -> bool {
    kind == encap::IPIP || kind == encap::VXLAN
}

/// Bytes the encapsulation `kind` (`encap::*`) adds; 0 for `encap::NONE`.
#[inline(always)]
pub const fn overhead(kind: u8) -> u16 {
    match kind {
        encap::IPIP => IPIP_OVERHEAD,
        encap::VXLAN => VXLAN_OVERHEAD,
        _ => 0,
    }
}

/// The underlay MTU assumed toward a node whose route MTU the kernel does
/// not report (no route yet): Ethernet's.
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;

/// IPv4 and TCP headers without options: what an MSS leaves out of the MTU
/// (RFC 879).
pub const MSS_HEADERS: u16 = 40;

/// The largest TCP MSS whose segments still fit a route MTU of `mtu` once
/// encapsulated with `overhead` bytes (saturating at 0 for absurd MTUs).
#[inline(always)]
pub const fn tunnel_mss(mtu: u16, overhead: u16) -> u16 {
    mtu.saturating_sub(overhead).saturating_sub(MSS_HEADERS)
}

/// TTL of the outer header the load balancer writes.
pub const OUTER_TTL: u8 = 64;

/// The VXLAN UDP source port range (the IANA dynamic range, as Linux's
/// `udp_flow_src_port` uses by default).
pub const VXLAN_SRC_PORT_MIN: u16 = 49152;
pub const VXLAN_SRC_PORT_MAX: u16 = 65535;

/// The VXLAN UDP source port of a flow whose hash is `hash`
/// (`hash::spread_hash` of the packet's 5-tuple as received), host byte order:
/// spread over `VXLAN_SRC_PORT_MIN..=VXLAN_SRC_PORT_MAX` the way Linux's
/// `udp_flow_src_port` does, so the receiving node's NIC spreads the flows
/// over its queues (RSS hashes the outer UDP ports).
#[inline(always)]
pub const fn vxlan_src_port(hash: u32) -> u16 {
    let h = hash ^ (hash << 16);
    let span = (VXLAN_SRC_PORT_MAX - VXLAN_SRC_PORT_MIN) as u64;
    ((((h as u64) * span) >> 32) as u16) + VXLAN_SRC_PORT_MIN
}

/// Value of the `TUNNELS` map: the node behind a pod network, and how this
/// load balancer reaches it.
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
    /// The load balancer's tunnel source (outer source address), network
    /// byte order, resolved by userspace (`--tunnel-source`, or the
    /// preferred source of the route to `node_ip`); 0 for `encap::NONE`, or
    /// when it could not be resolved (the datapath then drops new
    /// connections to the route: `drop_no_tunnel_source`).
    pub src_ip: u32,
    /// The load balancer's VTEP MAC (inner source MAC); zero unless VXLAN.
    pub src_mac: [u8; 6],
    pub _pad2: u16,
}
const _: () = assert!(core::mem::size_of::<Tunnel>() == 32);
const _: () = assert!(core::mem::align_of::<Tunnel>() == 4);

/// Value of the `BACKEND_TUNNEL` per-CPU array (indexed by backend id): the
/// `TUNNELS` answer for a backend address, cached by the datapath so that
/// established flows do no longest-prefix match per packet. Like `NextHop`,
/// an entry is used only within the epoch (about a second) it was resolved
/// in, so tunnel route changes are followed quickly.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BackendTunnel {
    /// The route's value; `encap::NONE` also when no route holds the backend.
    pub tunnel: Tunnel,
    /// Backend address the entry was resolved for, network byte order.
    pub backend_ip: u32,
    /// `NextHop::epoch_of` the time it was resolved.
    pub epoch: u16,
    /// 1 once resolved; 0 in a fresh slot.
    pub valid: u8,
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<BackendTunnel>() == 40);

impl BackendTunnel {
    /// Whether this entry may be used for backend address `ip` at `epoch`.
    pub const fn valid_for(&self, ip: u32, epoch: u16) -> bool {
        self.valid != 0 && self.epoch == epoch && self.backend_ip == ip
    }
}

/// Key of the `TUNNEL_ENDPOINTS` map: where this load balancer receives
/// encapsulated packets (replies from pods): its tunnel source address, and
/// for VXLAN the UDP port and the VNI (a packet with another VNI is not
/// ours, even to our port).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct TunnelEndpoint {
    /// Local address (outer destination), network byte order.
    pub addr: u32,
    /// VXLAN UDP port, network byte order; 0 for IPIP.
    pub port: u16,
    /// `proto::IPIP` or `proto::UDP` (VXLAN).
    pub proto: u8,
    pub _pad: u8,
    /// VXLAN: the VNI as its header carries it (`vni_wire`); 0 for IPIP.
    pub vni: u32,
}
const _: () = assert!(core::mem::size_of::<TunnelEndpoint>() == 12);

/// Endpoints `EndpointSet` holds inline: one tunnel source with IPIP and a
/// VXLAN network or two, what a load balancer usually has.
pub const INLINE_ENDPOINTS: usize = 4;

/// Value of `TUNNEL_ENDPOINT_SET`'s one entry: the tunnel endpoints, so
/// that the return path compares an encapsulated packet's outer end with a
/// few inline entries (an array load the verifier inlines) instead of a hash
/// lookup, which measured about 40 ns, an eighth of an encapsulated reply's
/// cost. `TUNNEL_ENDPOINTS` still holds every endpoint; those that do not
/// fit inline are counted in `spilled`, and only then does the datapath
/// look in the hash. A free slot is all zero (protocol 0 matches no
/// packet).
///
/// Userspace rewrites the whole value at once, and an endpoint keeps its
/// slot while it exists (`with_endpoints`), so a datapath reading during a
/// rewrite sees each slot's old or new endpoint, never loses one that stays.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EndpointSet {
    pub inline: [TunnelEndpoint; INLINE_ENDPOINTS],
    /// How many endpoints are only in `TUNNEL_ENDPOINTS`.
    pub spilled: u32,
}
const _: () = assert!(core::mem::size_of::<EndpointSet>() == 12 * INLINE_ENDPOINTS + 4);

impl EndpointSet {
    /// The set holding exactly `wanted` (distinct endpoints): those already
    /// inline keep their slot, new ones take free slots in order, the rest
    /// spill.
    pub fn with_endpoints(&self, wanted: &[TunnelEndpoint]) -> Self {
        let mut next = Self::default();
        for (slot, ep) in self.inline.iter().enumerate() {
            if ep.proto != 0 && wanted.contains(ep) {
                next.inline[slot] = *ep;
            }
        }
        for ep in wanted {
            if next.inline.contains(ep) {
                continue;
            }
            match next.inline.iter().position(|s| s.proto == 0) {
                Some(free) => next.inline[free] = *ep,
                None => next.spilled += 1,
            }
        }
        next
    }

    /// The endpoints held inline.
    pub fn inline_endpoints(&self) -> impl Iterator<Item = &TunnelEndpoint> {
        self.inline.iter().filter(|s| s.proto != 0)
    }

    /// How many endpoints there are, inline and spilled.
    pub fn len(&self) -> usize {
        self.inline_endpoints().count() + self.spilled as usize
    }

    /// Whether it holds no endpoint (the datapath's check too: it stops at
    /// the first used slot).
    pub fn is_empty(&self) -> bool {
        self.spilled == 0 && self.inline.iter().all(|ep| ep.proto == 0)
    }
}

/// Mask of the VNI in the VXLAN header's second word loaded natively (its
/// last byte is reserved).
pub const VNI_WIRE_MASK: u32 = u32::from_ne_bytes([0xff, 0xff, 0xff, 0]);

/// The VXLAN header's second word (24-bit VNI in network byte order, then a
/// zero reserved byte) as loaded natively, for `vni` (host order).
#[inline(always)]
pub const fn vni_wire(vni: u32) -> u32 {
    u32::from_ne_bytes([(vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_mss_leaves_room_for_the_overhead() {
        assert_eq!(tunnel_mss(1500, overhead(encap::VXLAN)), 1410);
        assert_eq!(tunnel_mss(1500, overhead(encap::IPIP)), 1440);
        assert_eq!(tunnel_mss(9000, overhead(encap::NONE)), 8960);
        assert_eq!(tunnel_mss(70, overhead(encap::VXLAN)), 0);
    }

    #[test]
    fn vxlan_src_port_stays_in_range_and_spreads() {
        let mut seen = [false; 4];
        for h in [
            0u32,
            1,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x8000_0000,
            0x1234_5678,
        ] {
            let p = vxlan_src_port(h);
            assert!(
                (VXLAN_SRC_PORT_MIN..=VXLAN_SRC_PORT_MAX).contains(&p),
                "{h:#x}: {p}"
            );
        }
        for i in 0..4096u32 {
            let p = vxlan_src_port(crate::hash::spread_hash(i, 2, 3, 4, 17));
            seen[((p - VXLAN_SRC_PORT_MIN) / 4096) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }
}

#[cfg(test)]
mod endpoint_set_tests {
    use super::*;
    use crate::proto;

    fn ep(addr: u32, port: u16) -> TunnelEndpoint {
        TunnelEndpoint {
            addr,
            port,
            proto: if port == 0 { proto::IPIP } else { proto::UDP },
            _pad: 0,
            vni: if port == 0 { 0 } else { vni_wire(1) },
        }
    }

    #[test]
    fn endpoints_keep_their_slots_and_the_rest_spill() {
        let (a, b, c, d, e) = (ep(1, 0), ep(1, 8472), ep(2, 0), ep(2, 8472), ep(3, 0));
        let s = EndpointSet::default().with_endpoints(&[a, b, c]);
        assert_eq!(s.inline, [a, b, c, TunnelEndpoint::default()]);
        assert_eq!((s.spilled, s.len()), (0, 3));
        // `b` goes, `d` and `e` come: `a` and `c` stay where they were.
        let s = s.with_endpoints(&[c, d, e, a]);
        assert_eq!(s.inline, [a, d, c, e]);
        assert_eq!(s.spilled, 0);
        let s = s.with_endpoints(&[b, c, d, e, a]);
        assert_eq!(s.inline, [a, d, c, e]);
        assert_eq!((s.spilled, s.len()), (1, 5));
        let s = s.with_endpoints(&[]);
        assert_eq!(s, EndpointSet::default());
        assert!(s.is_empty());
    }
}
