//! Test packets built with etherparse: every header written from its fields,
//! checksums computed by etherparse (never by the code under test), so an
//! expected output frame is an independent statement of what the datapath
//! must produce.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{
    EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header, PacketHeaders,
    TcpHeader, TransportHeader, UdpHeader,
};

pub type Mac = [u8; 6];

#[derive(Clone, Debug)]
pub enum L4 {
    Tcp(TcpHeader),
    Udp(UdpHeader),
}

/// An Ethernet / IPv4 / TCP|UDP frame under construction.
#[derive(Clone, Debug)]
pub struct Frame {
    pub eth: Ethernet2Header,
    pub ip: Ipv4Header,
    pub l4: L4,
    pub payload: Vec<u8>,
    /// Write a UDP checksum of zero ("no checksum").
    pub udp_no_checksum: bool,
}

fn ipv4(src: SocketAddrV4, dst: SocketAddrV4, proto: IpNumber) -> Ipv4Header {
    let mut ip = Ipv4Header::new(0, 64, proto, src.ip().octets(), dst.ip().octets())
        .expect("zero payload length fits");
    ip.identification = 0x1234;
    ip
}

impl Frame {
    pub fn tcp(src_mac: Mac, dst_mac: Mac, src: SocketAddrV4, dst: SocketAddrV4) -> Frame {
        let mut tcp = TcpHeader::new(src.port(), dst.port(), 1000, 64240);
        tcp.ack = true;
        tcp.acknowledgment_number = 2000;
        Frame {
            eth: Ethernet2Header {
                source: src_mac,
                destination: dst_mac,
                ether_type: EtherType::IPV4,
            },
            ip: ipv4(src, dst, IpNumber::TCP),
            l4: L4::Tcp(tcp),
            payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            udp_no_checksum: false,
        }
    }

    pub fn udp(src_mac: Mac, dst_mac: Mac, src: SocketAddrV4, dst: SocketAddrV4) -> Frame {
        Frame {
            eth: Ethernet2Header {
                source: src_mac,
                destination: dst_mac,
                ether_type: EtherType::IPV4,
            },
            ip: ipv4(src, dst, IpNumber::UDP),
            l4: L4::Udp(UdpHeader {
                source_port: src.port(),
                destination_port: dst.port(),
                length: 0,
                checksum: 0,
            }),
            payload: b"ping".to_vec(),
            udp_no_checksum: false,
        }
    }

    /// A TCP SYN (no ACK, no payload).
    pub fn syn(mut self) -> Frame {
        if let L4::Tcp(t) = &mut self.l4 {
            t.syn = true;
            t.ack = false;
            t.acknowledgment_number = 0;
        }
        self.payload.clear();
        self
    }

    /// A TCP SYN-ACK answering a SYN (SYN and ACK set, acknowledging 1001:
    /// the fixtures' segments start at sequence number 1000), its options
    /// kept.
    pub fn syn_ack(mut self) -> Frame {
        if let L4::Tcp(t) = &mut self.l4 {
            t.syn = true;
            t.ack = true;
            t.acknowledgment_number = 1001;
        }
        self.payload.clear();
        self
    }

    pub fn fin(mut self) -> Frame {
        if let L4::Tcp(t) = &mut self.l4 {
            t.fin = true;
        }
        self
    }

    pub fn rst(mut self) -> Frame {
        if let L4::Tcp(t) = &mut self.l4 {
            t.rst = true;
        }
        self
    }

    pub fn ttl(mut self, ttl: u8) -> Frame {
        self.ip.time_to_live = ttl;
        self
    }

    pub fn macs(mut self, src: Mac, dst: Mac) -> Frame {
        self.eth.source = src;
        self.eth.destination = dst;
        self
    }

    /// Same frame with other addresses (checksums follow at `bytes()`).
    pub fn addrs(mut self, src: SocketAddrV4, dst: SocketAddrV4) -> Frame {
        self.ip.source = src.ip().octets();
        self.ip.destination = dst.ip().octets();
        match &mut self.l4 {
            L4::Tcp(t) => {
                t.source_port = src.port();
                t.destination_port = dst.port();
            }
            L4::Udp(u) => {
                u.source_port = src.port();
                u.destination_port = dst.port();
            }
        }
        self
    }

    pub fn no_udp_checksum(mut self) -> Frame {
        self.udp_no_checksum = true;
        self
    }

    /// The serialized frame with correct lengths and checksums.
    pub fn bytes(&self) -> Vec<u8> {
        let mut ip = self.ip.clone();
        let mut out = Vec::new();
        self.eth.write(&mut out).expect("write to Vec");
        match &self.l4 {
            L4::Tcp(t) => {
                let mut t = t.clone();
                ip.set_payload_len(t.header_len() + self.payload.len())
                    .expect("payload fits");
                ip.header_checksum = ip.calc_header_checksum();
                t.checksum = t.calc_checksum_ipv4(&ip, &self.payload).expect("fits");
                ip.write(&mut out).expect("write to Vec");
                t.write(&mut out).expect("write to Vec");
            }
            L4::Udp(u) => {
                let mut u = u.clone();
                u.length = (UdpHeader::LEN + self.payload.len()) as u16;
                ip.set_payload_len(UdpHeader::LEN + self.payload.len())
                    .expect("payload fits");
                ip.header_checksum = ip.calc_header_checksum();
                u.checksum = if self.udp_no_checksum {
                    0
                } else {
                    u.calc_checksum_ipv4(&ip, &self.payload).expect("fits")
                };
                ip.write(&mut out).expect("write to Vec");
                u.write(&mut out).expect("write to Vec");
            }
        }
        out.extend_from_slice(&self.payload);
        out
    }
}

/// An ARP request (who-has `target` tell `sender`), broadcast.
pub fn arp_request(src_mac: Mac, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// Parses `frame` and asserts its IPv4 header checksum and TCP/UDP checksum
/// are right (a zero UDP checksum is accepted as "none").
pub fn assert_checksums_valid(frame: &[u8]) {
    let headers = PacketHeaders::from_ethernet_slice(frame).expect("output frame parses");
    assert_ip_and_l4_checksums(&headers);
}

fn assert_ip_and_l4_checksums(headers: &PacketHeaders) {
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = &headers.net else {
        panic!("frame is not IPv4: {headers:?}");
    };
    assert_eq!(
        ip.header_checksum,
        ip.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let payload = headers.payload.slice();
    match &headers.transport {
        Some(TransportHeader::Tcp(t)) => assert_eq!(
            t.checksum,
            t.calc_checksum_ipv4(ip, payload).expect("fits"),
            "TCP checksum"
        ),
        Some(TransportHeader::Udp(u)) => {
            if u.checksum != 0 {
                assert_eq!(
                    u.checksum,
                    u.calc_checksum_ipv4(ip, payload).expect("fits"),
                    "UDP checksum"
                );
            }
        }
        Some(TransportHeader::Icmpv4(i)) => assert_eq!(
            i.checksum,
            Icmpv4Header::with_checksum(i.icmp_type.clone(), payload).checksum,
            "ICMP checksum"
        ),
        other => panic!("unexpected transport header {other:?}"),
    }
}

/// An Ethernet / IPv4 / ICMP frame from `src` to `dst` (identification
/// 0x4321, TTL `ttl`) carrying `icmp_type` and `payload` (for an error: the
/// quoted packet), with lengths and checksums computed by etherparse.
pub fn icmp_frame(
    macs: (Mac, Mac),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    icmp_type: Icmpv4Type,
    payload: &[u8],
) -> Vec<u8> {
    let icmp = Icmpv4Header::with_checksum(icmp_type, payload);
    let mut ip = Ipv4Header::new(
        (icmp.header_len() + payload.len()) as u16,
        ttl,
        IpNumber::ICMP,
        src.octets(),
        dst.octets(),
    )
    .expect("payload fits");
    ip.identification = 0x4321;
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = Vec::new();
    Ethernet2Header {
        source: macs.0,
        destination: macs.1,
        ether_type: EtherType::IPV4,
    }
    .write(&mut out)
    .expect("write to Vec");
    ip.write(&mut out).expect("write to Vec");
    icmp.write(&mut out).expect("write to Vec");
    out.extend_from_slice(payload);
    out
}

/// The IPv4 packet of `frame` (its Ethernet header removed), cut to `len`
/// bytes: what an ICMP error quotes.
pub fn quote(frame: &Frame, len: usize) -> Vec<u8> {
    let bytes = frame.bytes();
    let ip = &bytes[Ethernet2Header::LEN..];
    ip[..len.min(ip.len())].to_vec()
}

/// Parses the ICMP error `frame` and asserts its checksums: outer IPv4 and
/// ICMP (over the whole quote), the quoted IPv4 header's, and the quoted
/// TCP/UDP checksum when the whole quoted packet is there.
pub fn assert_icmp_checksums_valid(frame: &[u8]) {
    let headers = PacketHeaders::from_ethernet_slice(frame).expect("output frame parses");
    assert_ip_and_l4_checksums(&headers);
    let quote = headers.payload.slice();
    let (inner, _) = Ipv4Header::from_slice(quote).expect("quote has an IPv4 header");
    assert_eq!(
        inner.header_checksum,
        inner.calc_header_checksum(),
        "quoted IPv4 header checksum"
    );
    if quote.len() >= usize::from(inner.total_len) {
        let inner = PacketHeaders::from_ip_slice(&quote[..usize::from(inner.total_len)])
            .expect("quoted packet parses");
        assert_ip_and_l4_checksums(&inner);
    }
}
