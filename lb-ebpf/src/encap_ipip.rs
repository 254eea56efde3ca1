//! IPIP encapsulation (RFC 2003): an outer IPv4 header (protocol 4) from the
//! load balancer's tunnel source to the node is put in front of the DNATed
//! packet; for DSR, to the backend in front of the packet as received.

use aya_ebpf::programs::XdpContext;
use lb_common::{FlowKey, Tunnel, proto, tunnel::IPIP_OVERHEAD};

use crate::{encap_outer::push_outer, error::Error, parse::Packet};

/// Adds the outer header toward the tunnel's node. Returns the outer packet
/// (`ip` = outer header); every pointer of `pkt` is invalid afterwards.
#[inline(always)]
pub fn encapsulate(ctx: &XdpContext, pkt: &Packet, t: &Tunnel) -> Result<Packet, Error> {
    encapsulate_to(ctx, pkt, t.src_ip, t.node_ip)
}

/// Adds an outer header from `src` to `dst` (network byte order). Returns
/// the outer packet; every pointer of `pkt` is invalid afterwards.
#[inline(always)]
pub fn encapsulate_to(ctx: &XdpContext, pkt: &Packet, src: u32, dst: u32) -> Result<Packet, Error> {
    // [Ethernet 14][outer IPv4 20][inner IPv4 ...]: the old Ethernet header
    // (now at 20..34) is overwritten by the outer IPv4 header.
    let (eth, ip, _) = push_outer(ctx, pkt, src, dst, IPIP_OVERHEAD, proto::IPIP)?;
    Ok(Packet {
        eth,
        ip,
        l4: ip.cast(),
        key: FlowKey::new(src, dst, 0, 0, proto::IPIP),
        tcp_flags: 0,
    })
}
