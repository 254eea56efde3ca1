//! The return path of encapsulated delivery: replies from pods that their
//! node sends back encapsulated (IPIP, or VXLAN to a tunnel's UDP port)
//! addressed to one of the load balancer's tunnel endpoints
//! (`TUNNEL_ENDPOINT_SET`, `TUNNEL_ENDPOINTS`). The inner packet is checked
//! in place first; only a packet of one of our connections is
//! decapsulated, and then goes through
//! the balancer like a plain reply; a DSR backend's reply (from a VIP,
//! without a connection) is decapsulated and given to the stack as it is.
//! Everything else encapsulated to us is
//! left to the stack untouched (a kernel VXLAN device on this host, for one,
//! may own it); broken outer headers are dropped. See docs/datapath.md,
//! "Encapsulated replies".

use aya_ebpf::programs::XdpContext;
use lb_common::{EndpointSet, FlowKey, TunnelEndpoint, csum, proto, tunnel::VNI_WIRE_MASK};

use crate::{
    conntrack::{self, Entry},
    error::Error,
    headers::{
        ETH_LEN, ETH_P_IP_RAW, EthHdr, IP_MF_OFFSET_RAW, IPV4_LEN, Ipv4Hdr, UDP_LEN, UdpHdr,
        VXLAN_FLAG_I, VXLAN_LEN, VXLAN_VNI_OFF,
    },
    icmp_error,
    maps::{TUNNEL_ENDPOINT_SET, TUNNEL_ENDPOINTS},
    packet::{StripError, load, ptr_at, strip_to},
    parse::is_vip,
};

const OUTER_L4_OFF: usize = ETH_LEN + IPV4_LEN;
/// IPIP: the inner IPv4 header follows the outer one.
const IPIP_INNER_OFF: usize = OUTER_L4_OFF;
/// VXLAN: outer UDP, VXLAN header, inner Ethernet, then inner IPv4.
const VXLAN_INNER_ETH_OFF: usize = OUTER_L4_OFF + UDP_LEN + VXLAN_LEN;
const VXLAN_INNER_OFF: usize = VXLAN_INNER_ETH_OFF + ETH_LEN;

/// This load balancer's tunnel endpoints, if it has any: an inlined array
/// load, so UDP traffic of a balancer without tunnels pays only that.
#[inline(always)]
fn endpoints() -> Option<&'static EndpointSet> {
    TUNNEL_ENDPOINT_SET.get(0).filter(|set| !set.is_empty())
}

/// Whether `ep` is a tunnel endpoint of this load balancer: one of `set`'s
/// inline entries (compared field by field), else, only when some did not
/// fit inline, an entry of `TUNNEL_ENDPOINTS`.
#[inline(always)]
fn is_endpoint(set: &EndpointSet, ep: TunnelEndpoint) -> bool {
    for slot in &set.inline {
        if slot.addr == ep.addr
            && slot.port == ep.port
            && slot.proto == ep.proto
            && slot.vni == ep.vni
        {
            return true;
        }
    }
    // SAFETY: only the presence of the entry is read.
    set.spilled != 0 && unsafe { TUNNEL_ENDPOINTS.get(ep).is_some() }
}

/// Decapsulates an encapsulated reply of one of our connections.
/// `Ok(None)`: not encapsulated to a tunnel endpoint (the balancer handles
/// the packet as it is). `Ok(Some(entry))`: decapsulated, the frame now
/// holds the inner packet (behind the original outer Ethernet header), whose
/// connection-table entry is `entry` (map pointers survive the head
/// adjustment). `Err`: passed untouched (`EncapNotOurs`), passed
/// decapsulated (`DsrReply`) or dropped.
#[inline(always)]
pub fn decap(ctx: &XdpContext, now: u64) -> Result<Option<Entry>, Error> {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return Ok(None);
    };
    if load(unsafe { &raw const (*eth).ether_type }) != ETH_P_IP_RAW {
        return Ok(None);
    }
    let Some(outer) = ptr_at::<Ipv4Hdr>(ctx, ETH_LEN) else {
        return Ok(None);
    };
    // Outer options or fragments: not recognised here (the stack reassembles
    // what is its own); the balancer passes such packets to non-VIPs.
    if load(unsafe { &raw const (*outer).version_ihl }) != 0x45
        || load(unsafe { &raw const (*outer).frag_off }) & IP_MF_OFFSET_RAW != 0
    {
        return Ok(None);
    }
    let daddr = load(unsafe { &raw const (*outer).daddr });
    let protocol = load(unsafe { &raw const (*outer).protocol });
    let vxlan = match protocol {
        proto::IPIP => false,
        proto::UDP => true,
        _ => return Ok(None),
    };
    let Some(set) = endpoints() else {
        return Ok(None);
    };
    // VXLAN: the UDP port and the VNI are part of the endpoint (a VXLAN
    // packet too short for its header is no VXLAN of ours).
    let (port, vni) = if vxlan {
        let Some(udp) = ptr_at::<UdpHdr>(ctx, OUTER_L4_OFF) else {
            return Ok(None);
        };
        let Some(vni) = ptr_at::<u32>(ctx, OUTER_L4_OFF + UDP_LEN + VXLAN_VNI_OFF) else {
            return Ok(None);
        };
        (
            load(unsafe { &raw const (*udp).dest }),
            load(vni) & VNI_WIRE_MASK,
        )
    } else {
        (0, 0)
    };
    if !is_endpoint(
        set,
        TunnelEndpoint {
            addr: daddr,
            port,
            proto: protocol,
            _pad: 0,
            vni,
        },
    ) {
        return Ok(None);
    }

    // Ours to judge from here. The outer header: a right checksum (nobody
    // else sees it) and a length inside the frame (Ethernet padding after
    // it is allowed).
    if csum::ipv4_header(load(outer.cast::<[u16; IPV4_LEN / 2]>())) != 0 {
        return Err(Error::EncapMalformed);
    }
    let outer_len = u16::from_be(load(unsafe { &raw const (*outer).tot_len })) as usize;
    if ETH_LEN + outer_len > ctx.data_end() - ctx.data() {
        return Err(Error::EncapMalformed);
    }
    let key = if vxlan {
        check_vxlan(ctx, outer_len)?;
        inner_key::<VXLAN_INNER_OFF>(ctx, outer_len)?
    } else {
        inner_key::<IPIP_INNER_OFF>(ctx, outer_len)?
    };
    // Only a packet of a live connection of ours is decapsulated, and the
    // reply of a DSR backend (from a VIP, no connection: its node routes
    // the client network into the tunnel), which goes to the stack as it
    // is once decapsulated (the stack routes it to the client).
    let entry = match conntrack::lookup_reply(&key, now) {
        Some(e) => Some(e),
        None if is_vip(key.src_ip) => None,
        None => return Err(Error::EncapNotOurs),
    };
    // The outer Ethernet header moves over the outer IPv4 header's tail
    // (IPIP) or the inner Ethernet header (VXLAN).
    let stripped = if vxlan {
        strip_to::<VXLAN_INNER_OFF>(ctx)
    } else {
        strip_to::<IPIP_INNER_OFF>(ctx)
    };
    stripped.map_err(|e| match e {
        StripError::Short => Error::EncapMalformed,
        StripError::AdjustFailed => Error::AdjustFailed,
    })?;
    entry.map(Some).ok_or(Error::DsrReply)
}

/// The UDP and VXLAN headers and the inner Ethernet header's type.
#[inline(always)]
fn check_vxlan(ctx: &XdpContext, outer_len: usize) -> Result<(), Error> {
    let udp: *mut UdpHdr = ptr_at(ctx, OUTER_L4_OFF).ok_or(Error::EncapMalformed)?;
    let udp_len = u16::from_be(load(unsafe { &raw const (*udp).len })) as usize;
    if udp_len + IPV4_LEN != outer_len {
        return Err(Error::EncapMalformed);
    }
    let flags: *mut u8 = ptr_at(ctx, OUTER_L4_OFF + UDP_LEN).ok_or(Error::EncapMalformed)?;
    if load(flags) & VXLAN_FLAG_I == 0 {
        return Err(Error::EncapMalformed);
    }
    let inner_eth: *mut EthHdr = ptr_at(ctx, VXLAN_INNER_ETH_OFF).ok_or(Error::EncapMalformed)?;
    // Not IPv4 inside (ARP of a learning VXLAN, IPv6): not ours.
    if load(unsafe { &raw const (*inner_eth).ether_type }) != ETH_P_IP_RAW {
        return Err(Error::EncapNotOurs);
    }
    Ok(())
}

/// The 5-tuple of the inner packet at `OFF` (from the frame start), whose
/// IPv4 header must fill the outer payload; for an ICMP error, the key of
/// the connection entry its quote names (`icmp_error::quote`).
#[inline(always)]
fn inner_key<const OFF: usize>(ctx: &XdpContext, outer_len: usize) -> Result<FlowKey, Error> {
    let inner: *mut Ipv4Hdr = ptr_at(ctx, OFF).ok_or(Error::EncapMalformed)?;
    let vihl = load(unsafe { &raw const (*inner).version_ihl });
    let inner_len = u16::from_be(load(unsafe { &raw const (*inner).tot_len })) as usize;
    if vihl >> 4 != 4
        || ((vihl & 0x0f) as usize) * 4 < IPV4_LEN
        || inner_len < IPV4_LEN
        || inner_len + (OFF - ETH_LEN) != outer_len
    {
        return Err(Error::EncapMalformed);
    }
    // Only plain TCP/UDP can be a connection of ours, or an ICMP error
    // about one (a pod's port unreachable, say: keyed by its quote).
    let protocol = load(unsafe { &raw const (*inner).protocol });
    if vihl != 0x45 || load(unsafe { &raw const (*inner).frag_off }) & IP_MF_OFFSET_RAW != 0 {
        return Err(Error::EncapNotOurs);
    }
    if protocol == proto::ICMP {
        return icmp_error::quote::<OFF>(ctx)
            .map(|q| q.key)
            .map_err(|_| Error::EncapNotOurs);
    }
    if (protocol != proto::TCP && protocol != proto::UDP) || inner_len < IPV4_LEN + 4 {
        return Err(Error::EncapNotOurs);
    }
    let ports: *mut [u16; 2] = ptr_at(ctx, OFF + IPV4_LEN).ok_or(Error::EncapMalformed)?;
    let [sport, dport] = load(ports);
    Ok(FlowKey::new(
        load(unsafe { &raw const (*inner).saddr }),
        load(unsafe { &raw const (*inner).daddr }),
        sport,
        dport,
        protocol,
    ))
}
