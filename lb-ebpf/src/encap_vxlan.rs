//! VXLAN encapsulation (RFC 7348), as flannel's VXLAN backend expects it:
//! outer Ethernet / IPv4 (tunnel source to node) / UDP (source port from the
//! flow hash, destination the tunnel's port, checksum 0) / VXLAN (I flag,
//! VNI) / inner Ethernet (node's VTEP MAC from the load balancer's) / the
//! DNATed IPv4 packet.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use lb_common::{
    FlowKey, Tunnel,
    hash::flow_hash,
    proto,
    tunnel::{VXLAN_OVERHEAD, vxlan_src_port},
};

use crate::{
    encap_outer::{InnerFields, inner_fields, outer_ipv4},
    error::Error,
    headers::{
        ETH_LEN, ETH_P_IP_RAW, EthHdr, IPV4_LEN, Ipv4Hdr, UDP_LEN, UdpHdr, VXLAN_FLAG_I, VXLAN_LEN,
        VxlanHdr,
    },
    packet::{load, ptr_at, store},
    parse::Packet,
};

const UDP_OFF: usize = ETH_LEN + IPV4_LEN;
const VXLAN_OFF: usize = UDP_OFF + UDP_LEN;
/// Where the inner Ethernet header is: the frame's own Ethernet header,
/// which stays in place (its EtherType is IPv4 already).
const INNER_ETH_OFF: usize = VXLAN_OFF + VXLAN_LEN;
const _: () = assert!(INNER_ETH_OFF == VXLAN_OVERHEAD as usize);

/// Adds the outer headers. Returns the outer packet (`ip` = outer IPv4
/// header); every pointer of `pkt` is invalid afterwards.
#[inline(always)]
pub fn encapsulate(ctx: &XdpContext, pkt: &Packet, t: &Tunnel) -> Result<Packet, Error> {
    let inner: InnerFields = inner_fields(pkt);
    let macs: [u8; 12] = load(pkt.eth.cast());
    // The flow hash of the packet as received (client -> VIP): the same for
    // every packet of the connection, different between connections.
    let k = &pkt.key;
    let src_port = vxlan_src_port(flow_hash(
        k.src_ip, k.dst_ip, k.src_port, k.dst_port, k.proto,
    ));

    // SAFETY: helper call on this program's context. Every packet pointer is
    // invalid after it (the verifier forgets them): all are derived again.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(VXLAN_OVERHEAD as i32)) } != 0 {
        return Err(Error::AdjustFailed);
    }
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::AdjustFailed)?;
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::AdjustFailed)?;
    let udp: *mut UdpHdr = ptr_at(ctx, UDP_OFF).ok_or(Error::AdjustFailed)?;
    let vxlan: *mut VxlanHdr = ptr_at(ctx, VXLAN_OFF).ok_or(Error::AdjustFailed)?;
    let inner_eth: *mut EthHdr = ptr_at(ctx, INNER_ETH_OFF).ok_or(Error::AdjustFailed)?;

    // Outer Ethernet: the MACs as received until `transmit` sets the next
    // hop's (a frame passed to the stack must be addressed to this host).
    store(eth.cast::<[u8; 12]>(), macs);
    store(unsafe { &raw mut (*eth).ether_type }, ETH_P_IP_RAW);
    let total = inner.tot_len.wrapping_add(VXLAN_OVERHEAD);
    store(ip, outer_ipv4(&inner, t, total, proto::UDP));
    let udp_len = total.wrapping_sub(IPV4_LEN as u16);
    store(
        udp,
        UdpHdr {
            source: src_port.to_be(),
            dest: t.dst_port,
            len: udp_len.to_be(),
            // No UDP checksum (allowed over IPv4, RFC 7348 section 5; what
            // Linux's VXLAN sends by default).
            check: 0,
        },
    );
    let vni = t.vni;
    store(
        vxlan,
        VxlanHdr {
            flags: u32::from_ne_bytes([VXLAN_FLAG_I, 0, 0, 0]),
            vni: u32::from_ne_bytes([(vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0]),
        },
    );
    store(unsafe { &raw mut (*inner_eth).dst }, t.vtep_mac);
    store(unsafe { &raw mut (*inner_eth).src }, t.src_mac);
    Ok(Packet {
        eth,
        ip,
        l4: udp.cast(),
        key: FlowKey::new(
            t.src_ip,
            t.node_ip,
            src_port.to_be(),
            t.dst_port,
            proto::UDP,
        ),
        tcp_flags: 0,
    })
}
