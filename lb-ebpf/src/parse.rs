//! Parses Ethernet / IPv4 / TCP|UDP into what the balancer needs, deciding
//! on the way which malformed or unsupported packets are ours to drop.

use lb_common::{FlowKey, proto};

use crate::{
    error::Error,
    headers::{
        ETH_LEN, ETH_P_IP_RAW, EthHdr, IP_MF_OFFSET_RAW, IPV4_LEN, Ipv4Hdr, L4_OFF, TCP_DOFF_OFF,
        TCP_FLAGS_OFF, TCP_LEN, UDP_LEN, UDP_LEN_OFF,
    },
    maps::VIPS,
    packet::{load, ptr_at},
};
use aya_ebpf::programs::XdpContext;

pub struct Packet {
    pub eth: *mut EthHdr,
    pub ip: *mut Ipv4Hdr,
    /// Start of the TCP or UDP header (bounds-checked for its full length).
    pub l4: *mut u8,
    pub key: FlowKey,
    /// TCP flags byte, 0 for UDP.
    pub tcp_flags: u8,
}

/// Whether `addr` (network byte order) is a VIP of any service.
#[inline(always)]
pub fn is_vip(addr: u32) -> bool {
    // SAFETY: only the presence of the entry is read.
    unsafe { VIPS.get(addr).is_some() }
}

/// `err` if the packet is addressed to a VIP (ours to drop), else not ours.
#[inline(always)]
fn ours_or_pass(daddr: u32, err: Error) -> Error {
    if is_vip(daddr) { err } else { Error::NotOurs }
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, Error> {
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::NotOurs)?;
    if load(unsafe { &raw const (*eth).ether_type }) != ETH_P_IP_RAW {
        return Err(Error::NotOurs);
    }
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::Malformed)?;
    let version_ihl = load(unsafe { &raw const (*ip).version_ihl });
    let daddr = load(unsafe { &raw const (*ip).daddr });
    if version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
        return Err(Error::Malformed);
    }
    let tot_len = u16::from_be(load(unsafe { &raw const (*ip).tot_len })) as usize;
    if tot_len < IPV4_LEN || ETH_LEN + tot_len > ctx.data_end() - ctx.data() {
        return Err(Error::Malformed);
    }
    if load(unsafe { &raw const (*ip).frag_off }) & IP_MF_OFFSET_RAW != 0 {
        return Err(ours_or_pass(daddr, Error::Fragment));
    }
    if version_ihl != 0x45 {
        return Err(ours_or_pass(daddr, Error::IpOptions));
    }

    let protocol = load(unsafe { &raw const (*ip).protocol });
    let l4_len = match protocol {
        proto::TCP => TCP_LEN,
        proto::UDP => UDP_LEN,
        proto::ICMP => return Err(Error::Icmp),
        _ => return Err(Error::NotOurs),
    };
    // The L4 header must be inside both the frame and the IP datagram.
    if tot_len < IPV4_LEN + l4_len {
        return Err(ours_or_pass(daddr, Error::Malformed));
    }
    let l4: *mut u8 = match protocol {
        proto::TCP => ptr_at::<[u8; TCP_LEN]>(ctx, L4_OFF).map(|p| p.cast()),
        _ => ptr_at::<[u8; UDP_LEN]>(ctx, L4_OFF).map(|p| p.cast()),
    }
    .ok_or_else(|| ours_or_pass(daddr, Error::Malformed))?;

    // The header's own length field must fit the datagram: TCP data offset
    // of at least 5 words, UDP length of at least its header.
    let l4_room = tot_len - IPV4_LEN;
    let tcp_flags = if protocol == proto::TCP {
        let data_off = (load(unsafe { l4.add(TCP_DOFF_OFF) }) >> 4) as usize * 4;
        if data_off < TCP_LEN || data_off > l4_room {
            return Err(ours_or_pass(daddr, Error::Malformed));
        }
        load(unsafe { l4.add(TCP_FLAGS_OFF) })
    } else {
        let udp_len = u16::from_be(load(unsafe { l4.add(UDP_LEN_OFF) }.cast::<u16>())) as usize;
        if udp_len < UDP_LEN || udp_len > l4_room {
            return Err(ours_or_pass(daddr, Error::Malformed));
        }
        0
    };
    // Ports are the first four bytes of both TCP and UDP.
    let ports: [u16; 2] = load(l4.cast());
    Ok(Packet {
        eth,
        ip,
        l4,
        key: FlowKey::new(
            load(unsafe { &raw const (*ip).saddr }),
            daddr,
            ports[0],
            ports[1],
            protocol,
        ),
        tcp_flags,
    })
}
