//! Why a packet is not balanced, and what then happens to it.

use aya_ebpf::bindings::xdp_action;
use lb_common::GlobalStat;

/// The value of a `Result<_, Error>`, or from the enclosing function the
/// error's verdict (`Error::verdict`: counted, its action).
macro_rules! or_verdict {
    ($r:expr) => {
        match $r {
            Ok(v) => v,
            Err(e) => return e.verdict(),
        }
    };
}
pub(crate) use or_verdict;

#[derive(Clone, Copy)]
pub enum Error {
    /// No live connection: the new-flow stage schedules the packet (not an
    /// outcome: the entry program tail-calls that stage).
    NoConnection,
    /// Not for a VIP, not a reply of a connection: the stack's business.
    NotOurs,
    /// An ICMP message (options-free, unfragmented IPv4): `icmp_error`
    /// decides whether it is about one of our connections.
    Icmp,
    /// Truncated or malformed header.
    Malformed,
    /// Fragment addressed to a VIP.
    Fragment,
    /// IPv4 options on a packet addressed to a VIP.
    IpOptions,
    /// VIP known, but no service on this port and protocol.
    UnknownPort,
    /// The service has no (active) backend.
    NoBackend,
    /// TTL would expire here: the stack answers with ICMP time exceeded.
    TtlExceeded,
    /// The connection could not be recorded.
    ConntrackFull,
    /// Another live connection already owns this connection's reply tuple.
    TupleClash,
    /// Another CPU was writing the connection-table slot this connection
    /// needs.
    FlowBusy,
    /// The backend's tunnel route has no resolved tunnel source.
    NoTunnelSource,
    /// `bpf_xdp_adjust_head` failed after the packet was rewritten.
    AdjustFailed,
    /// Encapsulated to a tunnel endpoint, but the inner packet is no
    /// connection of ours: the stack gets it untouched.
    EncapNotOurs,
    /// Encapsulated to a tunnel endpoint, with broken outer headers.
    EncapMalformed,
    /// Every SNAT port tried for a new connection was in use toward its
    /// backend.
    SnatPortsBusy,
    /// A DSR backend's reply (from a VIP, no connection) that came back
    /// encapsulated: decapsulated, the stack routes it to the client.
    DsrReply,
    /// Would be answered with ICMP fragmentation-needed, but this CPU's
    /// token bucket for those answers is empty (`frag_needed.rs`).
    FragNeededRateLimited,
}

impl Error {
    #[inline(always)]
    pub fn action(self) -> u32 {
        match self {
            Error::NotOurs
            | Error::Icmp
            | Error::TtlExceeded
            | Error::EncapNotOurs
            | Error::DsrReply => xdp_action::XDP_PASS,
            Error::Malformed
            | Error::Fragment
            | Error::IpOptions
            | Error::UnknownPort
            | Error::NoBackend
            | Error::ConntrackFull
            | Error::TupleClash
            | Error::FlowBusy
            | Error::NoTunnelSource
            | Error::AdjustFailed
            | Error::EncapMalformed
            | Error::SnatPortsBusy
            | Error::FragNeededRateLimited
            | Error::NoConnection => xdp_action::XDP_DROP,
        }
    }

    /// Counts this error and returns its action: for paths that cannot
    /// hand an `Err` back. A `Result<u32, Error>` whose `Err` leaves the
    /// action half undefined may be packed by LLVM from any register, a
    /// pointer included, and the verifier rejects the shift that packs a
    /// pointer (seen after the encapsulations' head adjustment).
    #[inline(always)]
    pub fn verdict(self) -> u32 {
        crate::stats::inc(self.stat());
        self.action()
    }

    #[inline(always)]
    pub fn stat(self) -> GlobalStat {
        match self {
            Error::NotOurs | Error::Icmp => GlobalStat::PassNotOurs,
            Error::NoConnection => GlobalStat::DropNoStage,
            Error::Malformed => GlobalStat::DropMalformed,
            Error::Fragment => GlobalStat::DropFragment,
            Error::IpOptions => GlobalStat::DropIpOptions,
            Error::UnknownPort => GlobalStat::DropUnknownPort,
            Error::NoBackend => GlobalStat::DropNoBackend,
            Error::TtlExceeded => GlobalStat::PassTtlExceeded,
            Error::ConntrackFull => GlobalStat::DropConntrackFull,
            Error::TupleClash => GlobalStat::DropTupleClash,
            Error::FlowBusy => GlobalStat::DropFlowBusy,
            Error::NoTunnelSource => GlobalStat::DropNoTunnelSource,
            Error::AdjustFailed => GlobalStat::DropAdjustFailed,
            Error::EncapNotOurs => GlobalStat::PassEncapNotOurs,
            Error::EncapMalformed => GlobalStat::DropEncapMalformed,
            Error::SnatPortsBusy => GlobalStat::DropSnatPortsBusy,
            Error::DsrReply => GlobalStat::PassDsrReply,
            Error::FragNeededRateLimited => GlobalStat::DropFragNeededRateLimited,
        }
    }
}
