//! Counters.

/// Per backend counters (`BACKEND_STATS`; a service's are its backends'
/// plus `RETIRED_STATS`), one per CPU; userspace adds them up.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets client -> backend.
    pub packets: u64,
    /// Bytes (whole frames) client -> backend.
    pub bytes: u64,
    /// Connections scheduled.
    pub new_connections: u64,
    /// Packets backend -> client.
    pub reply_packets: u64,
    /// Bytes backend -> client.
    pub reply_bytes: u64,
}
const _: () = assert!(core::mem::size_of::<Counters>() == 40);

impl Counters {
    /// Adds `other` into `self` (summing per-CPU values).
    pub fn add(&mut self, other: &Counters) {
        self.packets = self.packets.wrapping_add(other.packets);
        self.bytes = self.bytes.wrapping_add(other.bytes);
        self.new_connections = self.new_connections.wrapping_add(other.new_connections);
        self.reply_packets = self.reply_packets.wrapping_add(other.reply_packets);
        self.reply_bytes = self.reply_bytes.wrapping_add(other.reply_bytes);
    }
}

/// Value of `GLOBAL_STATS` (one per-CPU block): every `GlobalStat`
/// counter of one CPU, side by side. One block rather than an array of
/// counters: a packet that bumps two of them (e.g. `EncapIpip` and
/// `Redirect`) finds both behind one per-CPU pointer, mostly in one cache
/// line; an array element per counter costs a pointer load and a line each.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalCounters {
    /// Indexed by `GlobalStat`.
    pub counts: [u64; GlobalStat::COUNT as usize],
}
const _: () = assert!(core::mem::size_of::<GlobalCounters>() == 8 * GlobalStat::COUNT as usize);

impl Default for GlobalCounters {
    fn default() -> GlobalCounters {
        GlobalCounters {
            counts: [0; GlobalStat::COUNT as usize],
        }
    }
}

impl GlobalCounters {
    /// Counter `stat` (0 for an index out of range: none is).
    pub fn get(&self, stat: GlobalStat) -> u64 {
        self.counts.get(stat as usize).copied().unwrap_or(0)
    }
}

/// Indexes of `GlobalCounters::counts`: what happened to packets that were not simply
/// balanced. Names (`GlobalStat::name`) are the Prometheus label values.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalStat {
    /// Passed to the stack: not for a VIP and not a reply of a connection.
    PassNotOurs = 0,
    /// Dropped: fragment addressed to a VIP.
    DropFragment = 1,
    /// Dropped: IPv4 header with options addressed to a VIP.
    DropIpOptions = 2,
    /// Dropped: truncated or malformed IPv4/TCP/UDP header.
    DropMalformed = 3,
    /// Dropped: known VIP, no service on that port and protocol.
    DropUnknownPort = 4,
    /// Dropped: the service has no backend.
    DropNoBackend = 5,
    /// Passed to the stack unbalanced: TTL would expire here (the kernel
    /// answers with ICMP time exceeded).
    PassTtlExceeded = 6,
    /// Rewritten packet handed to the stack: the FIB had no neighbour entry
    /// (or no route) for the next hop.
    PassFibMiss = 7,
    /// Rewritten packet handed to the stack: egress interface not in the
    /// device map.
    PassNoTxPort = 8,
    /// Sent back out of the interface it came in on.
    Tx = 9,
    /// Redirected to another interface.
    Redirect = 10,
    /// A connection whose backend was removed ended and was rescheduled.
    BackendGone = 11,
    /// Dropped: the connection table had no bucket for the new connection
    /// (the bucket mask in `CLOCK` exceeds the table: a misconfigured
    /// daemon). A full bucket does not drop: it evicts (`ConntrackEvicted`).
    DropConntrackFull = 12,
    /// Dropped: a new connection's reply tuple (backend -> client) belongs
    /// to another live connection (the client reached two VIPs sharing a
    /// backend from the same source port).
    DropTupleClash = 13,
    /// Dropped: another CPU was writing the connection-table slot the new
    /// connection needed (the sender retransmits).
    DropFlowBusy = 14,
    /// An open connection (no FIN or RST seen) was evicted from a full
    /// bucket of the connection table to make room for a new one (not a
    /// drop). Closing connections go first and are not counted.
    ConntrackEvicted = 15,
    /// Sent IPIP-encapsulated to a pod's node (counted with `tx`/`redirect`
    /// or the pass that followed).
    EncapIpip = 16,
    /// Sent VXLAN-encapsulated to a pod's node.
    EncapVxlan = 17,
    /// Encapsulated packet handed to the stack: larger than the route MTU
    /// toward the node and without DF (the stack fragments the outer
    /// packet; with DF the client gets `icmp_frag_needed`).
    PassEncapTooBig = 18,
    /// Dropped: the tunnel route of the backend has no tunnel source (it
    /// could not be resolved when the route was programmed).
    DropNoTunnelSource = 19,
    /// An encapsulated reply (IPIP or VXLAN to a tunnel endpoint) was
    /// decapsulated and went through the balancer.
    Decapsulated = 20,
    /// Passed to the stack untouched: encapsulated to a tunnel endpoint, but
    /// the inner packet is no connection of ours. (Outer fragments and
    /// options are not looked at here: they count as `pass_not_ours`.)
    PassEncapNotOurs = 21,
    /// Dropped: encapsulated to a tunnel endpoint, with a truncated or
    /// inconsistent outer header, a bad outer checksum or a bad VXLAN header.
    DropEncapMalformed = 22,
    /// Dropped: `bpf_xdp_adjust_head` refused to add or remove an outer
    /// header (no headroom), after the packet was already rewritten.
    DropAdjustFailed = 23,
    /// Dropped: a new source-NATed connection (`onearm`, `fullnat`) found
    /// every port it tried taken by a live connection to the same backend
    /// (`limits::SNAT_PORT_TRIES`); the client retries.
    DropSnatPortsBusy = 24,
    /// An ICMP error (destination unreachable, time exceeded, parameter
    /// problem) about a packet sent toward a backend was translated and
    /// sent to the connection's client.
    IcmpToClient = 25,
    /// An ICMP error about a reply sent toward a client was translated and
    /// sent to the connection's backend.
    IcmpToBackend = 26,
    /// Decapsulated and passed to the stack: encapsulated to a tunnel
    /// endpoint, carrying a packet from a VIP that is no connection of ours
    /// (a DSR backend's reply its node sent into the tunnel); the stack
    /// routes it to the client, not rewritten.
    PassDsrReply = 27,
    /// Dropped: a balancer stage (`maps::STAGES`) could not be tail-called
    /// (not loaded into `PROGRAMS`: a loader bug).
    DropNoStage = 28,
    /// Answered with ICMP fragmentation-needed (sent back out of the
    /// ingress interface, not counted as `redirect`/`tx`): a packet with DF
    /// set that is larger than the route MTU toward its pod's node (or a
    /// DSR backend) once encapsulated.
    IcmpFragNeeded = 29,
    /// The MSS option of a SYN (toward an encapsulated or DSR backend) or
    /// SYN-ACK (from an encapsulated one) was lowered to what fits the
    /// tunnel.
    MssClamped = 30,
    /// Dropped: a packet that would have been answered with ICMP
    /// fragmentation-needed (`icmp_frag_needed`) while this CPU's token
    /// bucket for those answers was empty (`ferrolbd --icmp-rate`,
    /// `--icmp-burst`). It could not have been delivered anyway.
    DropFragNeededRateLimited = 31,
    /// An ICMP fragmentation-needed from a router about one of our own
    /// encapsulated packets (quoted source our tunnel source, IPIP or our
    /// VXLAN port and VNI) lowered the path MTU recorded toward its node
    /// (`PATH_MTU`); passed on to the stack untouched.
    PathMtuLearned = 32,
}

impl GlobalStat {
    pub const COUNT: u32 = 33;

    pub const ALL: [GlobalStat; GlobalStat::COUNT as usize] = [
        GlobalStat::PassNotOurs,
        GlobalStat::DropFragment,
        GlobalStat::DropIpOptions,
        GlobalStat::DropMalformed,
        GlobalStat::DropUnknownPort,
        GlobalStat::DropNoBackend,
        GlobalStat::PassTtlExceeded,
        GlobalStat::PassFibMiss,
        GlobalStat::PassNoTxPort,
        GlobalStat::Tx,
        GlobalStat::Redirect,
        GlobalStat::BackendGone,
        GlobalStat::DropConntrackFull,
        GlobalStat::DropTupleClash,
        GlobalStat::DropFlowBusy,
        GlobalStat::ConntrackEvicted,
        GlobalStat::EncapIpip,
        GlobalStat::EncapVxlan,
        GlobalStat::PassEncapTooBig,
        GlobalStat::DropNoTunnelSource,
        GlobalStat::Decapsulated,
        GlobalStat::PassEncapNotOurs,
        GlobalStat::DropEncapMalformed,
        GlobalStat::DropAdjustFailed,
        GlobalStat::DropSnatPortsBusy,
        GlobalStat::IcmpToClient,
        GlobalStat::IcmpToBackend,
        GlobalStat::PassDsrReply,
        GlobalStat::DropNoStage,
        GlobalStat::IcmpFragNeeded,
        GlobalStat::MssClamped,
        GlobalStat::DropFragNeededRateLimited,
        GlobalStat::PathMtuLearned,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            GlobalStat::PassNotOurs => "pass_not_ours",
            GlobalStat::DropFragment => "drop_fragment",
            GlobalStat::DropIpOptions => "drop_ip_options",
            GlobalStat::DropMalformed => "drop_malformed",
            GlobalStat::DropUnknownPort => "drop_unknown_port",
            GlobalStat::DropNoBackend => "drop_no_backend",
            GlobalStat::PassTtlExceeded => "pass_ttl_exceeded",
            GlobalStat::PassFibMiss => "pass_fib_miss",
            GlobalStat::PassNoTxPort => "pass_no_tx_port",
            GlobalStat::Tx => "tx",
            GlobalStat::Redirect => "redirect",
            GlobalStat::BackendGone => "backend_gone",
            GlobalStat::DropConntrackFull => "drop_conntrack_full",
            GlobalStat::DropTupleClash => "drop_tuple_clash",
            GlobalStat::DropFlowBusy => "drop_flow_busy",
            GlobalStat::ConntrackEvicted => "conntrack_evicted",
            GlobalStat::EncapIpip => "encap_ipip",
            GlobalStat::EncapVxlan => "encap_vxlan",
            GlobalStat::PassEncapTooBig => "pass_encap_too_big",
            GlobalStat::DropNoTunnelSource => "drop_no_tunnel_source",
            GlobalStat::Decapsulated => "decapsulated",
            GlobalStat::PassEncapNotOurs => "pass_encap_not_ours",
            GlobalStat::DropEncapMalformed => "drop_encap_malformed",
            GlobalStat::DropAdjustFailed => "drop_adjust_failed",
            GlobalStat::DropSnatPortsBusy => "drop_snat_ports_busy",
            GlobalStat::IcmpToClient => "icmp_to_client",
            GlobalStat::IcmpToBackend => "icmp_to_backend",
            GlobalStat::PassDsrReply => "pass_dsr_reply",
            GlobalStat::DropNoStage => "drop_no_stage",
            GlobalStat::IcmpFragNeeded => "icmp_frag_needed",
            GlobalStat::MssClamped => "mss_clamped",
            GlobalStat::DropFragNeededRateLimited => "drop_frag_needed_rate_limited",
            GlobalStat::PathMtuLearned => "path_mtu_learned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_global_stat_has_its_own_counter_in_the_block() {
        let mut block = GlobalCounters::default();
        for (i, &stat) in GlobalStat::ALL.iter().enumerate() {
            assert_eq!(stat as usize, i, "ALL is in index order");
            block.counts[i] = 100 + i as u64;
        }
        for (i, &stat) in GlobalStat::ALL.iter().enumerate() {
            assert_eq!(block.get(stat), 100 + i as u64, "{stat:?}");
        }
    }
}
