//! The node-side IPIP decapsulation program (`ferrolb_decap`): its counters.
//!
//! `DECAP_STATS` is indexed by [`DecapStat`]; names (`DecapStat::name`) are
//! the Prometheus label values of `ferrolb_decap_packets_total{result=...}`.

/// Indexes of `DECAP_STATS`: what the decapsulation program did with a packet.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecapStat {
    /// IPIP to a decapsulation address: outer header removed, inner packet
    /// passed to the stack.
    Decapsulated = 0,
    /// Passed untouched: not IPv4, or not IPIP.
    PassNotIpip = 1,
    /// Passed untouched: IPIP to an address that is not a decapsulation
    /// address (the stack's business).
    PassNotOurs = 2,
    /// Dropped: outer IPv4 header with options (or a header length below 5
    /// words).
    DropIpOptions = 3,
    /// Dropped: outer header is a fragment.
    DropFragment = 4,
    /// Dropped: outer total length beyond the frame, or not the inner
    /// datagram's length plus the outer header; inner header truncated or
    /// with a bad header length.
    DropMalformed = 5,
    /// Dropped: outer IPv4 header checksum wrong.
    DropBadChecksum = 6,
    /// Dropped: the inner packet is not IPv4.
    DropInnerNotIpv4 = 7,
    /// Dropped: `bpf_xdp_adjust_head` refused to remove the outer header.
    DropAdjustFailed = 8,
}

impl DecapStat {
    pub const COUNT: u32 = 9;

    pub const ALL: [DecapStat; DecapStat::COUNT as usize] = [
        DecapStat::Decapsulated,
        DecapStat::PassNotIpip,
        DecapStat::PassNotOurs,
        DecapStat::DropIpOptions,
        DecapStat::DropFragment,
        DecapStat::DropMalformed,
        DecapStat::DropBadChecksum,
        DecapStat::DropInnerNotIpv4,
        DecapStat::DropAdjustFailed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            DecapStat::Decapsulated => "decapsulated",
            DecapStat::PassNotIpip => "pass_not_ipip",
            DecapStat::PassNotOurs => "pass_not_ours",
            DecapStat::DropIpOptions => "drop_ip_options",
            DecapStat::DropFragment => "drop_fragment",
            DecapStat::DropMalformed => "drop_malformed",
            DecapStat::DropBadChecksum => "drop_bad_checksum",
            DecapStat::DropInnerNotIpv4 => "drop_inner_not_ipv4",
            DecapStat::DropAdjustFailed => "drop_adjust_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_stat_at_its_index() {
        for (i, s) in DecapStat::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
