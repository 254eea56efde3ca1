//! The connection table: one entry per direction of a connection.
//!
//! A connection from client C to VIP V balanced to backend B has
//! - a forward entry keyed by (C -> V) whose value rewrites the packet to
//!   (C -> B), and
//! - a reply entry keyed by (B -> C) whose value rewrites it to (V -> C).
//!
//! Both directions use the same rewrite code. Both entries live in one
//! bucket of the table (`flow_table`). A direct-server-return connection
//! (`service::mode::DSR`) has only the forward entry: its packets are not
//! rewritten (`nat_dst_ip` is the backend the packet is encapsulated to)
//! and its replies do not come through the load balancer.

/// Key of a connection-table entry: a packet's 5-tuple as it arrives.
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
    pub _pad0: u8,
    // A scalar, not a byte array: LLVM's BPF backend zeroes an odd-sized
    // byte array with a call to a memset loop.
    pub _pad1: u16,
}
const _: () = assert!(core::mem::size_of::<FlowKey>() == 16);

impl FlowKey {
    /// A key from a packet's addresses and ports (network byte order).
    #[inline(always)]
    pub const fn new(src_ip: u32, dst_ip: u32, src_port: u16, dst_port: u16, proto: u8) -> Self {
        FlowKey {
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            proto,
            _pad0: 0,
            _pad1: 0,
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

/// A resolved next hop: where a packet to `dst_ip` leaves and with which
/// MAC addresses. The datapath caches `bpf_fib_lookup` results in connection
/// entries and per backend, and re-resolves them once per epoch (2^30 ns,
/// about a second) so route and neighbour changes are followed quickly.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NextHop {
    /// Destination the entry was resolved for, network byte order.
    pub dst_ip: u32,
    /// Egress interface; 0 means "not resolved".
    pub ifindex: u32,
    /// Low 16 bits of `now_ns >> NEXT_HOP_EPOCH_SHIFT` when resolved.
    pub epoch: u16,
    /// MTU of the route: larger packets go to the stack (which fragments or
    /// answers ICMP fragmentation-needed).
    pub mtu: u16,
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
}
const _: () = assert!(core::mem::size_of::<NextHop>() == 24);

/// A cached next hop is used only within the epoch it was resolved in.
pub const NEXT_HOP_EPOCH_SHIFT: u32 = 30;

impl NextHop {
    /// The epoch (as stored in `NextHop::epoch`) of time `now_ns`.
    pub const fn epoch_of(now_ns: u64) -> u16 {
        (now_ns >> NEXT_HOP_EPOCH_SHIFT) as u16
    }

    /// Whether this entry may be used for a packet to `dst_ip` at `epoch`.
    pub const fn valid_for(&self, dst_ip: u32, epoch: u16) -> bool {
        self.ifindex != 0 && self.epoch == epoch && self.dst_ip == dst_ip
    }
}

/// Value of a connection-table entry: one cache line.
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
    /// Zero. (Held the service id while packets were counted per service
    /// too; a service's counters are now derived from its backends'.)
    pub _reserved: u32,
    pub backend_id: u32,
    /// `Backend::generation` when the connection was made.
    pub backend_generation: u32,
    /// Idle timeout, seconds (the service's, or `TCP_CLOSE_TIMEOUT_S`).
    pub timeout_s: u32,
    /// `DIR_FORWARD` or `DIR_REPLY`.
    pub direction: u8,
    /// `CT_*` bits.
    pub tcp_flags: u8,
    /// The service's `service::mode` when the connection was made:
    /// `mode::DSR` entries are forward entries without a reply entry, whose
    /// packets are encapsulated, not rewritten.
    pub mode: u8,
    pub _pad: u8,
    /// CLOCK_MONOTONIC_COARSE nanoseconds (the datapath reads them from the
    /// `CLOCK` map) of the last packet
    /// in this direction, refreshed at most every `LAST_SEEN_GRANULARITY_NS`.
    pub last_seen_ns: u64,
    /// Where this direction's packets go next (cache, see `NextHop`).
    pub next_hop: NextHop,
}
const _: () = assert!(core::mem::size_of::<Flow>() == 64);

/// How stale `Flow::last_seen_ns` may get before a packet refreshes it: fewer
/// writes to shared cache lines on busy flows.
pub const LAST_SEEN_GRANULARITY_NS: u64 = 1_000_000_000;

impl Flow {
    /// The key of the other direction of the connection this entry belongs
    /// to: the packet this entry produces, seen from the other side.
    #[inline(always)]
    pub const fn peer_key(&self, proto: u8) -> FlowKey {
        FlowKey::new(
            self.nat_dst_ip,
            self.nat_src_ip,
            self.nat_dst_port,
            self.nat_src_port,
            proto,
        )
    }

    /// Whether this entry, seen last at `last_seen_ns`, has been idle longer
    /// than its timeout at `now_ns`.
    pub const fn expired_at(&self, last_seen_ns: u64, now_ns: u64) -> bool {
        now_ns.wrapping_sub(last_seen_ns) > (self.timeout_s as u64) * 1_000_000_000
    }
}
