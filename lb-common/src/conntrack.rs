//! The connection table: one entry per direction of a connection.
//!
//! A connection from client C to VIP V balanced to backend B has
//! - a forward entry keyed by (C -> V) whose value rewrites the packet to
//!   (C -> B), and
//! - a reply entry keyed by (B -> C) whose value rewrites it to (V -> C).
//!
//! Both directions therefore cost one lookup and the same rewrite code.

/// Key of the `CONNTRACK` map: a packet's 5-tuple as it arrives.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Network byte order.
    pub src_ip: u32,
    /// Network byte order.
    pub dst_ip: u32,
    /// Network byte order.
    pub src_port: u16,
    /// Network byte order.
    pub dst_port: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<FlowKey>() == 16);

impl FlowKey {
    /// The key of the opposite direction of a packet whose addresses are
    /// those of `self` (source and destination swapped).
    pub const fn reversed(&self) -> FlowKey {
        FlowKey {
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
            _pad: [0; 3],
        }
    }
}

/// `Flow::direction`: client to backend.
pub const DIR_FORWARD: u8 = 0;
/// `Flow::direction`: backend to client.
pub const DIR_REPLY: u8 = 1;

/// `Flow::tcp_flags` bit: FIN seen in this direction.
pub const CT_FIN: u8 = 1;
/// `Flow::tcp_flags` bit: RST seen (either direction).
pub const CT_RST: u8 = 2;
/// `Flow::tcp_flags` bit: the connection is closing; its timeout is
/// `TCP_CLOSE_TIMEOUT_S`.
pub const CT_CLOSING: u8 = 4;

/// Value of the `CONNTRACK` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flow {
    /// Source address to write into the packet, network byte order.
    pub nat_src_ip: u32,
    /// Destination address to write into the packet, network byte order.
    pub nat_dst_ip: u32,
    /// Source port to write, network byte order.
    pub nat_src_port: u16,
    /// Destination port to write, network byte order.
    pub nat_dst_port: u16,
    pub service_id: u32,
    pub backend_id: u32,
    /// `Backend::generation` when the connection was made.
    pub backend_generation: u32,
    /// Idle timeout, seconds (the service's, or `TCP_CLOSE_TIMEOUT_S`).
    pub timeout_s: u32,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE) of the last packet
    /// in this direction, refreshed at most every `LAST_SEEN_GRANULARITY_NS`.
    pub last_seen_ns: u64,
    /// `DIR_FORWARD` or `DIR_REPLY`.
    pub direction: u8,
    /// `CT_*` bits.
    pub tcp_flags: u8,
    pub _pad: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<Flow>() == 48);

/// How stale `Flow::last_seen_ns` may get before a packet refreshes it: fewer
/// writes to shared cache lines on busy flows.
pub const LAST_SEEN_GRANULARITY_NS: u64 = 1_000_000_000;

impl Flow {
    /// Whether this entry, seen last at `last_seen_ns`, has been idle longer
    /// than its timeout at `now_ns`.
    pub const fn expired_at(&self, last_seen_ns: u64, now_ns: u64) -> bool {
        now_ns.wrapping_sub(last_seen_ns) > (self.timeout_s as u64) * 1_000_000_000
    }
}
