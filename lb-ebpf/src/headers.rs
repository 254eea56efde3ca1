//! Wire formats of the headers the datapath reads and writes. Multi-byte
//! fields hold the raw bytes (network byte order) loaded natively, the same
//! representation `lb_common` keys use, so nothing is byte-swapped on the
//! fast path.
//!
//! The IPv4 header starts 14 bytes into the frame, so its 32-bit fields are
//! only 2-byte aligned: every access goes through `read_unaligned` /
//! `write_unaligned` (x86's JIT emits a single load either way).

pub const ETH_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const TCP_LEN: usize = 20;
pub const UDP_LEN: usize = 8;
/// Offset of the L4 header: IPv4 headers with options are never balanced.
pub const L4_OFF: usize = ETH_LEN + IPV4_LEN;

/// EtherType IPv4 (0x0800) as loaded natively from the wire.
pub const ETH_P_IP_RAW: u16 = u16::from_ne_bytes([0x08, 0x00]);

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ether_type: u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: u16,
    pub id: u16,
    pub frag_off: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub check: u16,
    pub saddr: u32,
    pub daddr: u32,
}

/// `frag_off` bits (MF flag and fragment offset) as loaded natively: any set
/// means the packet is a fragment.
pub const IP_MF_OFFSET_RAW: u16 = u16::from_ne_bytes([0x3f, 0xff]);

/// `frag_off`'s fragment offset bits as loaded natively: any set means a
/// fragment other than the first.
pub const IP_OFFSET_RAW: u16 = u16::from_ne_bytes([0x1f, 0xff]);

/// `frag_off`'s DF bit as loaded natively.
pub const IP_DF_RAW: u16 = u16::from_ne_bytes([0x40, 0x00]);

/// UDP header (every field raw, network byte order).
#[repr(C)]
pub struct UdpHdr {
    pub source: u16,
    pub dest: u16,
    pub len: u16,
    pub check: u16,
}

/// VXLAN header (RFC 7348): flags (I = 0x08), 24 reserved bits, VNI (24
/// bits), 8 reserved bits; as two raw words.
#[repr(C)]
pub struct VxlanHdr {
    pub flags: u32,
    pub vni: u32,
}
pub const VXLAN_LEN: usize = 8;
/// The VXLAN I flag (a valid VNI is present), first byte of the header.
pub const VXLAN_FLAG_I: u8 = 0x08;
/// Offset of the VNI word (VNI, reserved byte) in the VXLAN header.
pub const VXLAN_VNI_OFF: usize = 4;

/// ICMP header (RFC 792): type, code, checksum, then 4 bytes that depend on
/// the type (unused, or the next-hop MTU of fragmentation-needed).
pub const ICMP_LEN: usize = 8;
/// Offset of the ICMP checksum in its header.
pub const ICMP_CHECK_OFF: usize = 2;
/// ICMP error types that quote the packet they are about.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// Destination-unreachable code of fragmentation-needed (RFC 1191: the
/// next-hop MTU in the header's last two bytes).
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// TCP flags (byte 13 of the TCP header).
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
/// Offsets in the TCP header: data offset (high nibble), flags, checksum.
pub const TCP_DOFF_OFF: usize = 12;
pub const TCP_FLAGS_OFF: usize = 13;
pub const TCP_CHECK_OFF: usize = 16;
/// Offsets in the UDP header: length, checksum.
pub const UDP_LEN_OFF: usize = 4;
pub const UDP_CHECK_OFF: usize = 6;

const _: () = assert!(core::mem::size_of::<EthHdr>() == ETH_LEN);
const _: () = assert!(core::mem::size_of::<Ipv4Hdr>() == IPV4_LEN);
const _: () = assert!(core::mem::size_of::<UdpHdr>() == UDP_LEN);
const _: () = assert!(core::mem::size_of::<VxlanHdr>() == VXLAN_LEN);
