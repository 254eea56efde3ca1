//! `ferrolb_decap`: the node-side IPIP decapsulation program.
//!
//! An IPv4 packet with protocol 4 (IPIP) whose outer destination is in
//! `DECAP_ADDRS` loses its outer IPv4 header and goes to the stack, which
//! routes or delivers the inner packet (to a pod, or to a VIP on the node's
//! or a pod's loopback for DSR). This stands in for the kernel's `ipip`
//! module on nodes that do not have it. Everything else passes untouched;
//! malformed IPIP to a decapsulation address is dropped. See
//! docs/datapath.md, "Node-side IPIP decapsulation".

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use lb_common::{DecapStat, csum, proto};

use crate::{
    headers::{ETH_LEN, ETH_P_IP_RAW, EthHdr, IP_MF_OFFSET_RAW, IPV4_LEN, Ipv4Hdr},
    maps::{DECAP_ADDRS, DECAP_STATS},
    packet::{StripError, load, ptr_at, strip_to},
};

/// Offset of the inner IPv4 header.
const INNER_OFF: usize = ETH_LEN + IPV4_LEN;

/// What happens to the packet, and the counter that records it.
pub fn run(ctx: &XdpContext) -> u32 {
    let (action, stat) = match decap(ctx) {
        Ok(()) => (xdp_action::XDP_PASS, DecapStat::Decapsulated),
        Err(stat @ (DecapStat::PassNotIpip | DecapStat::PassNotOurs)) => {
            (xdp_action::XDP_PASS, stat)
        }
        Err(stat) => (xdp_action::XDP_DROP, stat),
    };
    inc(stat);
    action
}

#[inline(always)]
fn inc(stat: DecapStat) {
    crate::stats::inc_in(&DECAP_STATS, stat as u32);
}

/// Whether `addr` (network byte order) is a decapsulation address.
#[inline(always)]
fn is_decap_addr(addr: u32) -> bool {
    // SAFETY: only the presence of the entry is read.
    unsafe { DECAP_ADDRS.get(addr).is_some() }
}

/// Checks the outer and inner headers and strips the outer one. `Err` is
/// the counter of a packet that is passed or dropped unchanged.
#[inline(always)]
fn decap(ctx: &XdpContext) -> Result<(), DecapStat> {
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(DecapStat::PassNotIpip)?;
    if load(unsafe { &raw const (*eth).ether_type }) != ETH_P_IP_RAW {
        return Err(DecapStat::PassNotIpip);
    }
    // A truncated IPv4 header is not ours to judge (the balancer and the
    // stack decide): it cannot be told to be IPIP to us.
    let outer: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(DecapStat::PassNotIpip)?;
    let version_ihl = load(unsafe { &raw const (*outer).version_ihl });
    if version_ihl >> 4 != 4 || load(unsafe { &raw const (*outer).protocol }) != proto::IPIP {
        return Err(DecapStat::PassNotIpip);
    }
    if !is_decap_addr(load(unsafe { &raw const (*outer).daddr })) {
        return Err(DecapStat::PassNotOurs);
    }

    // Outer header: no options, not a fragment, a right checksum (the stack
    // never sees this header, so nobody else checks it).
    if version_ihl != 0x45 {
        return Err(DecapStat::DropIpOptions);
    }
    if load(unsafe { &raw const (*outer).frag_off }) & IP_MF_OFFSET_RAW != 0 {
        return Err(DecapStat::DropFragment);
    }
    let frame_len = ctx.data_end() - ctx.data();
    let outer_len = u16::from_be(load(unsafe { &raw const (*outer).tot_len })) as usize;
    if outer_len < IPV4_LEN + IPV4_LEN || ETH_LEN + outer_len > frame_len {
        return Err(DecapStat::DropMalformed);
    }
    if csum::ipv4_header(load(outer.cast::<[u16; IPV4_LEN / 2]>())) != 0 {
        return Err(DecapStat::DropBadChecksum);
    }

    // Inner header: present, IPv4, and filling the outer payload exactly
    // (trailing Ethernet padding past the outer datagram is allowed).
    let inner: *mut Ipv4Hdr = ptr_at(ctx, INNER_OFF).ok_or(DecapStat::DropMalformed)?;
    let inner_vihl = load(unsafe { &raw const (*inner).version_ihl });
    if inner_vihl >> 4 != 4 {
        return Err(DecapStat::DropInnerNotIpv4);
    }
    let inner_len = u16::from_be(load(unsafe { &raw const (*inner).tot_len })) as usize;
    let inner_hdr_len = (inner_vihl & 0x0f) as usize * 4;
    if inner_hdr_len < IPV4_LEN || inner_len < inner_hdr_len || inner_len + IPV4_LEN != outer_len {
        return Err(DecapStat::DropMalformed);
    }

    // Move the Ethernet header forward over the outer IPv4 header (its
    // EtherType is IPv4 either way) and drop the first 20 bytes.
    strip_to::<INNER_OFF>(ctx).map_err(|e| match e {
        StripError::Short => DecapStat::DropMalformed,
        StripError::AdjustFailed => DecapStat::DropAdjustFailed,
    })
}
