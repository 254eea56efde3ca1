//! What the fixtures expect of an ICMP fragmentation-needed answer built
//! in XDP (`lb-ebpf/src/frag_needed.rs`), built independently with
//! etherparse (shared by tests/tests/xdp_mtu.rs, xdp_frag_limit.rs and xdp_pmtu.rs).

use etherparse::{
    EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpDscp, IpNumber, Ipv4Header,
    icmpv4::DestUnreachableHeader,
};

use crate::{
    dnat_fixture::XDP_REDIRECT,
    packets::{Frame, L4},
    xdp::Run,
};

/// Asserts that `run` answered `input` with the ICMP fragmentation-needed
/// carrying `mtu` (`expect_frag_needed`), sent back out (`XDP_REDIRECT`).
#[track_caller]
pub fn assert_answered(run: &Run, input: &Frame, mtu: u16, label: impl std::fmt::Display) {
    assert_eq!(run.action, XDP_REDIRECT, "{label}");
    assert_eq!(run.output, expect_frag_needed(input, mtu), "{label}");
}

/// The ICMP fragmentation-needed answer to `input` (as the client sent it)
/// carrying `mtu`: from the VIP back to the client, quoting the client's
/// IPv4 header and 8 bytes.
pub fn expect_frag_needed(input: &Frame, mtu: u16) -> Vec<u8> {
    let sent = input.bytes();
    let quote = &sent[Ethernet2Header::LEN..Ethernet2Header::LEN + 28];
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );
    let mut ip = Ipv4Header::new(
        (icmp.header_len() + quote.len()) as u16,
        64,
        IpNumber::ICMP,
        input.ip.destination,
        input.ip.source,
    )
    .unwrap();
    ip.dont_fragment = false;
    ip.identification = 0;
    ip.dscp = IpDscp::try_new(0xc0 >> 2).unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = Vec::new();
    Ethernet2Header {
        source: input.eth.destination,
        destination: input.eth.source,
        ether_type: EtherType::IPV4,
    }
    .write(&mut out)
    .unwrap();
    ip.write(&mut out).unwrap();
    icmp.write(&mut out).unwrap();
    out.extend_from_slice(quote);
    out
}

/// `f` with a payload making its IPv4 packet `ip_len` bytes long.
pub fn oversized(mut f: Frame, ip_len: usize) -> Frame {
    let headers = 20 + if matches!(f.l4, L4::Tcp(_)) { 20 } else { 8 };
    f.payload = (0..ip_len - headers).map(|i| i as u8).collect();
    f
}
