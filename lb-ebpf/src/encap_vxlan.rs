//! VXLAN encapsulation (RFC 7348), as flannel's VXLAN backend expects it:
//! outer Ethernet / IPv4 (tunnel source to node) / UDP (source port from the
//! flow hash, destination the tunnel's port, checksum 0) / VXLAN (I flag,
//! VNI) / inner Ethernet (node's VTEP MAC from the load balancer's) / the
//! DNATed IPv4 packet (for DSR: the IPIP packet to the backend).

use aya_ebpf::programs::XdpContext;
use lb_common::{
    FlowKey, Tunnel,
    hash::spread_hash,
    proto,
    tunnel::{VXLAN_OVERHEAD, vni_wire, vxlan_src_port},
};

use crate::{
    encap_outer::push_outer,
    error::Error,
    headers::{ETH_LEN, EthHdr, IPV4_LEN, UDP_LEN, UdpHdr, VXLAN_FLAG_I, VXLAN_LEN, VxlanHdr},
    packet::{copy_mac, ptr_at, store},
    parse::Packet,
};

const UDP_OFF: usize = ETH_LEN + IPV4_LEN;
const VXLAN_OFF: usize = UDP_OFF + UDP_LEN;
/// Where the inner Ethernet header is: the frame's own Ethernet header,
/// which stays in place (its EtherType is IPv4 already).
const INNER_ETH_OFF: usize = VXLAN_OFF + VXLAN_LEN;
const _: () = assert!(INNER_ETH_OFF == VXLAN_OVERHEAD as usize);

/// Adds the outer headers. `flow`: the 5-tuple of the packet as received
/// (client -> VIP), whose hash picks the UDP source port. Returns the outer
/// packet (`ip` = outer IPv4 header); every pointer of `pkt` is invalid
/// afterwards.
#[inline(always)]
pub fn encapsulate(
    ctx: &XdpContext,
    pkt: &Packet,
    t: &Tunnel,
    flow: &FlowKey,
) -> Result<Packet, Error> {
    // The flow hash of the packet as received (client -> VIP): the same for
    // every packet of the connection, different between connections.
    let k = flow;
    let src_port = vxlan_src_port(spread_hash(
        k.src_ip, k.dst_ip, k.src_port, k.dst_port, k.proto,
    ));

    let (eth, ip, total) = push_outer(ctx, pkt, t.src_ip, t.node_ip, VXLAN_OVERHEAD, proto::UDP)?;
    // One bounds check for the three headers: the verifier accepts any
    // offset inside the checked range, and the compiler kept one check per
    // header, each reloading the frame's bounds.
    let hdrs: *mut [u8; INNER_ETH_OFF + ETH_LEN] = ptr_at(ctx, 0).ok_or(Error::AdjustFailed)?;
    let base = hdrs.cast::<u8>();
    // SAFETY: each header lies inside `hdrs`.
    let (udp, vxlan, inner_eth) = unsafe {
        (
            base.add(UDP_OFF).cast::<UdpHdr>(),
            base.add(VXLAN_OFF).cast::<VxlanHdr>(),
            base.add(INNER_ETH_OFF).cast::<EthHdr>(),
        )
    };

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
    store(
        vxlan,
        VxlanHdr {
            flags: u32::from_ne_bytes([VXLAN_FLAG_I, 0, 0, 0]),
            vni: vni_wire(t.vni),
        },
    );
    copy_mac(unsafe { &raw mut (*inner_eth).dst }, &raw const t.vtep_mac);
    copy_mac(unsafe { &raw mut (*inner_eth).src }, &raw const t.src_mac);
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
