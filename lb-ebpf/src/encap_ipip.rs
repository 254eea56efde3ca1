//! IPIP encapsulation (RFC 2003): an outer IPv4 header (protocol 4) from the
//! load balancer's tunnel source to the node is put in front of the DNATed
//! packet.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{FlowKey, Tunnel, proto, tunnel::IPIP_OVERHEAD};

use crate::{
    encap_outer::{InnerFields, inner_fields, outer_ipv4},
    error::Error,
    headers::{ETH_LEN, ETH_P_IP_RAW, EthHdr, Ipv4Hdr},
    packet::{ptr_at, store},
    parse::Packet,
};

/// Adds the outer header. Returns the outer packet (`ip` = outer header);
/// every pointer of `pkt` is invalid afterwards.
#[inline(always)]
pub fn encapsulate(ctx: &XdpContext, pkt: &Packet, t: &Tunnel) -> Result<Packet, Error> {
    let inner: InnerFields = inner_fields(pkt);
    let macs: [u8; 12] = crate::packet::load(pkt.eth.cast());

    // SAFETY: helper call on this program's context. Every packet pointer is
    // invalid after it (the verifier forgets them): all are derived again.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(IPIP_OVERHEAD as i32)) } != 0 {
        return Err(Error::AdjustFailed);
    }
    // [Ethernet 14][outer IPv4 20][inner IPv4 ...]: the old Ethernet header
    // (now at 20..34) is overwritten by the outer IPv4 header.
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::AdjustFailed)?;
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::AdjustFailed)?;
    // The frame's MACs as received, until `transmit` sets the next hop's:
    // a frame passed to the stack must still be addressed to this host.
    store(eth.cast::<[u8; 12]>(), macs);
    store(unsafe { &raw mut (*eth).ether_type }, ETH_P_IP_RAW);
    let total = inner.tot_len.wrapping_add(IPIP_OVERHEAD);
    store(ip, outer_ipv4(&inner, t, total, proto::IPIP));
    Ok(Packet {
        eth,
        ip,
        l4: ip.cast(),
        key: FlowKey::new(t.src_ip, t.node_ip, 0, 0, proto::IPIP),
        tcp_flags: 0,
    })
}
