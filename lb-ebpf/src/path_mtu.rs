//! Path MTU toward nodes (`lb_common::path_mtu`): a router between the load
//! balancer and a node that cannot carry one of our encapsulated packets
//! answers it with ICMP fragmentation-needed addressed to our tunnel source.
//! Nothing on this host listens for it (no ipip module, no VXLAN socket: the
//! encapsulation is done here), so the ICMP stage records the reported MTU
//! per node (per backend for direct server return without an encapsulating
//! route; `learn`, into `PATH_MTU`), and the tunnel path uses the smaller
//! of it and the route MTU (`cap`) for its fragmentation-needed answers and
//! its MSS clamping. The learned MTU is folded into the cached next hop
//! (`forward::next_hop`), so established packets pay no lookup for it.
//!
//! Only an error about a packet we sent is learned from: the quoted packet
//! is IPv4 without options (what `encap_outer` writes), its source is the
//! error's destination, and either
//! - it went through a tunnel route: its source is one of our tunnel
//!   endpoints (`TUNNEL_ENDPOINTS`) for its encapsulation, its destination
//!   a node of a tunnel route (`TUNNEL_NODES`): IPIP, or UDP to the
//!   endpoint's VXLAN port with its VNI (so a VXLAN error must quote the
//!   VXLAN header: 36 bytes, which routers following RFC 1812 do; one
//!   quoting only 8 bytes is not learned from); or
//! - it is a direct-server-return packet (`dsr.rs`): IPIP addressed to a
//!   backend (or a pod behind an IPIP route), not a node. The quote must
//!   then reach into the client's packet inside (its IPv4 header and ports:
//!   48 bytes, again what RFC 1812 routers quote), which must belong to a
//!   live DSR connection to that very backend, from the outer source DSR
//!   uses toward it (`dsr_via`). The MTU is recorded toward the address DSR
//!   resolves its next hop for (`dsr::known_outer`: the backend, or the
//!   node of its IPIP route).
//!
//! The MTU must be plausible (`lb_common::path_mtu::accepts`).

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use lb_common::{
    FlowKey, GlobalStat, PathMtu, TunnelEndpoint, conntrack::DIR_FORWARD, path_mtu::accepts, proto,
    service::mode, tunnel::VNI_WIRE_MASK,
};

use crate::{
    conntrack, dsr,
    headers::{
        ETH_LEN, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_LEN, IP_OFFSET_RAW, IPV4_LEN, Ipv4Hdr,
        L4_OFF, UDP_LEN, UdpHdr, VXLAN_LEN, VXLAN_VNI_OFF,
    },
    maps::{PATH_MTU, TUNNEL_ENDPOINTS, TUNNEL_NODES},
    packet::{load, ptr_at},
    stats,
};

/// Frame offsets (the error's IPv4 header has no options: `parse` passes
/// ICMP with options before the ICMP stage): the quoted IPv4 header, its
/// payload, the VNI word of a quoted VXLAN header.
const QUOTE_OFF: usize = L4_OFF + ICMP_LEN;
const QUOTE_L4_OFF: usize = QUOTE_OFF + IPV4_LEN;
const QUOTE_VNI_OFF: usize = QUOTE_L4_OFF + UDP_LEN + VXLAN_VNI_OFF;
/// Quoted bytes needed: an IPIP packet's header and 8 bytes (RFC 792); a
/// VXLAN packet's header, UDP and VXLAN headers (the VNI names the
/// endpoint).
const IPIP_QUOTE_MIN: usize = IPV4_LEN + 8;
const VXLAN_QUOTE_MIN: usize = IPV4_LEN + UDP_LEN + VXLAN_LEN;
/// A DSR packet's quote: the outer and the client's IPv4 headers, and the
/// first 8 bytes of the client's TCP/UDP header (its ports).
const DSR_QUOTE_MIN: usize = 2 * IPV4_LEN + 8;
/// Frame offsets of the client's packet inside a quoted DSR packet.
const DSR_INNER_OFF: usize = QUOTE_L4_OFF;
const DSR_PORTS_OFF: usize = DSR_INNER_OFF + IPV4_LEN;

/// The ICMP stage's first step: records the MTU of a fragmentation-needed
/// about one of our encapsulated packets (counted `path_mtu_learned`);
/// `true` if it did (the error then goes to the stack as before, but is not
/// offered to the relay: it is about no connection). `false` for anything
/// else, untouched: not such an error, not about our packet, truncated, or
/// an MTU not worth learning (`accepts`); the relay then handles it as
/// before (it passes). Only reads the packet.
#[inline(always)]
pub fn learn(ctx: &XdpContext, now: u64) -> bool {
    learn_in(ctx.ctx, now)
}

/// `learn`'s work, in a BPF function of its own (not inlined): its many
/// exits return to one state of the caller, so the relay after it is
/// verified once, not once per exit (inlined, the ICMP stage's verified
/// instructions doubled). It takes the raw context and reads the packet
/// afresh: packet pointers are not passed between BPF functions.
#[inline(never)]
fn learn_in(raw: *mut xdp_md, now: u64) -> bool {
    // A volatile read of the context pointer: otherwise LLVM may pass
    // `data`/`data_end` themselves as arguments (see `mss_clamp::clamp_to`).
    // SAFETY: reads a local.
    let raw = unsafe { core::ptr::read_volatile(&raw) };
    let ctx = XdpContext::new(raw);
    learned(&ctx, now).is_some()
}

#[inline(always)]
fn learned(ctx: &XdpContext, now: u64) -> Option<()> {
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN)?;
    let icmp: *mut [u8; ICMP_LEN] = ptr_at(ctx, L4_OFF)?;
    // Type, code, checksum, unused (2 bytes), next-hop MTU (RFC 1191).
    let [kind, code, _, _, _, _, mtu_hi, mtu_lo] = load(icmp);
    if kind != ICMP_DEST_UNREACH || code != ICMP_FRAG_NEEDED {
        return None;
    }
    // The quote must be inside the datagram (`parse` checked that the
    // datagram is inside the frame), not in Ethernet padding.
    let tot_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len })) as usize;
    let quoted = tot_len.checked_sub(IPV4_LEN + ICMP_LEN)?;
    if quoted < IPIP_QUOTE_MIN {
        return None;
    }
    let inner: *mut Ipv4Hdr = ptr_at(ctx, QUOTE_OFF)?;
    // SAFETY (field pointers): `inner` was bounds-checked just above.
    let saddr = load(unsafe { &raw const (*inner).saddr });
    if load(unsafe { &raw const (*inner).version_ihl }) != 0x45
        || load(unsafe { &raw const (*inner).frag_off }) & IP_OFFSET_RAW != 0
        || load(unsafe { &raw const (*ip).daddr }) != saddr
    {
        return None;
    }
    let protocol = load(unsafe { &raw const (*inner).protocol });
    let (port, vni) = match protocol {
        proto::IPIP => (0, 0),
        proto::UDP => {
            if quoted < VXLAN_QUOTE_MIN {
                return None;
            }
            let udp: *mut UdpHdr = ptr_at(ctx, QUOTE_L4_OFF)?;
            let vni: *mut u32 = ptr_at(ctx, QUOTE_VNI_OFF)?;
            (
                load(unsafe { &raw const (*udp).dest }),
                load(vni) & VNI_WIRE_MASK,
            )
        }
        _ => return None,
    };
    let ep = TunnelEndpoint {
        addr: saddr,
        port,
        proto: protocol,
        _pad: 0,
        vni,
    };
    let dst = load(unsafe { &raw const (*inner).daddr });
    // SAFETY: only the presence of the entries is read.
    let tunnelled =
        unsafe { TUNNEL_ENDPOINTS.get(ep) }.is_some() && unsafe { TUNNEL_NODES.get(dst) }.is_some();
    let toward = if tunnelled {
        dst
    } else if protocol == proto::IPIP && quoted >= DSR_QUOTE_MIN {
        dsr_via(ctx, saddr, dst, now)?
    } else {
        return None;
    };
    let sent_len = u16::from_be(load(unsafe { &raw const (*inner).tot_len }));
    let reported = u16::from_be_bytes([mtu_hi, mtu_lo]);
    // SAFETY: read once, copied out of the map value at once.
    let known = unsafe { PATH_MTU.get(toward) }.copied();
    if !accepts(reported, sent_len, known.as_ref(), now) {
        return None;
    }
    PATH_MTU
        .insert(toward, PathMtu::learned(reported, now), 0)
        .ok()?;
    stats::inc(GlobalStat::PathMtuLearned);
    Some(())
}

/// The quoted packet is IPIP to `backend` carrying a client's packet
/// (`DSR_QUOTE_MIN` bytes quoted, checked by the caller): the address its
/// DSR connection resolves its next hop toward, if the
/// client's packet belongs to a live DSR connection to `backend` and `src`
/// is the outer source DSR uses toward it, as this CPU resolved it
/// (`dsr::known_outer`: the tunnel source, or the kernel's preferred source
/// toward the backend): an error sent to any other address of ours (a VIP,
/// say, reachable by anyone) quoting a made-up outer header is not learned
/// from. (Not resolved here: the FIB query's stack took the ICMP stage past
/// its limit. An error handled on a CPU that has not sent to the backend
/// this epoch is not learned from; the router reports again.)
#[inline(always)]
fn dsr_via(ctx: &XdpContext, src: u32, backend: u32, now: u64) -> Option<u32> {
    let ip: *mut Ipv4Hdr = ptr_at(ctx, DSR_INNER_OFF)?;
    let ports: *mut [u16; 2] = ptr_at(ctx, DSR_PORTS_OFF)?;
    // SAFETY (field pointers): `ip` was bounds-checked just above.
    let protocol = load(unsafe { &raw const (*ip).protocol });
    if load(unsafe { &raw const (*ip).version_ihl }) != 0x45
        || load(unsafe { &raw const (*ip).frag_off }) & IP_OFFSET_RAW != 0
        || (protocol != proto::TCP && protocol != proto::UDP)
    {
        return None;
    }
    let [src_port, dst_port] = load(ports);
    let key = FlowKey::new(
        load(unsafe { &raw const (*ip).saddr }),
        load(unsafe { &raw const (*ip).daddr }),
        src_port,
        dst_port,
        protocol,
    );
    let e = conntrack::lookup(&key, now)?;
    // SAFETY: map value pointer, read only.
    let f = unsafe { &*e.flow };
    if f.direction != DIR_FORWARD || f.mode != mode::DSR || f.nat_dst_ip != backend {
        return None;
    }
    let (known_src, via) = dsr::known_outer(f, now)?;
    (known_src == src).then_some(via)
}

/// The smaller of `route_mtu` and the MTU learned toward `node` (network
/// byte order), while it holds. One hash lookup: called when a next hop is
/// resolved (once per epoch, the answer is cached with it), for packets
/// too big for the route, and for the MSS of SYNs. A BPF function of its
/// own (not inlined), reading the clock itself: inlined, or with the time
/// as an argument, the key's stack slot and the time kept alive across the
/// packet's rewrite took the tunnel path past the 512-byte stack limit;
/// here they live in this function's own frame, only while it runs.
#[inline(never)]
pub fn cap(node: u32, route_mtu: u16) -> u16 {
    let now = crate::conntrack::now_ns();
    // SAFETY: map value read in place.
    match unsafe { PATH_MTU.get(node) } {
        Some(p) => p.cap(route_mtu, now),
        None => route_mtu,
    }
}
