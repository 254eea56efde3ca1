//! ICMP fragmentation-needed (type 3 code 4, RFC 792 / RFC 1191) built in
//! XDP, as Katran and Cilium do: a packet with DF set that would exceed the
//! route MTU toward its pod's node once encapsulated is answered, from the
//! address the client sent it to (the VIP), with the MTU that is left for
//! it (route MTU − encapsulation overhead). The client's path-MTU discovery
//! then sends smaller packets. The answer quotes the packet as the client
//! sent it (not rewritten yet): its IPv4 header and the first 8 bytes of its
//! payload (the ports, and TCP's sequence number), what RFC 792 asks for and
//! what the client's stack needs to find the socket.
//!
//! The frame is rewritten in place: cut to the answer's length first
//! (`bpf_xdp_adjust_tail`; a failure leaves the packet untouched), then the
//! quote is written after the new headers and the frame goes back where it
//! came from (MACs swapped; redirected to the ingress interface through
//! `TX_PORTS`, `XDP_TX` when it is not there).
//!
//! Rate-limited, as routers limit the ICMP errors they generate: a token
//! bucket per CPU (`ICMP_BUCKET`, no atomics), refilled from the daemon's
//! clock (`conntrack::now_ns`, `CLOCK_TICK_MS` steps) at `ICMP_LIMIT`'s
//! rate up to its burst (`ferrolbd --icmp-rate/--icmp-burst`; defaults
//! 1000/s and 50, Linux's `icmp_msgs_per_sec` and `icmp_msgs_burst`, per
//! CPU here). Linux itself exempts its own fragmentation-needed from those
//! limits ("don't limit PMTU discovery"); here every answer costs a write
//! toward a source address nobody checked, so a flood of oversized DF
//! packets from spoofed clients must not turn into as many answers. With
//! the bucket empty the packet is dropped (it could not be delivered
//! anyway), counted `drop_frag_needed_rate_limited`; the client's
//! retransmission gets its answer once tokens are back. Only this path
//! reads the bucket.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use lb_common::{GlobalStat, csum, proto};

use crate::{
    conntrack,
    error::Error,
    headers::{
        ETH_LEN, ETH_P_IP_RAW, EthHdr, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_LEN, IPV4_LEN,
        Ipv4Hdr,
    },
    maps::{ICMP_BUCKET, ICMP_LIMIT, TX_PORTS},
    packet::{frame_len, load, ptr_at, store},
    stats,
};

/// Quoted: the original IPv4 header (never with options here) and 8 bytes.
const QUOTE_LEN: usize = IPV4_LEN + 8;
const ICMP_OFF: usize = ETH_LEN + IPV4_LEN;
const QUOTE_OFF: usize = ICMP_OFF + ICMP_LEN;
/// The whole answer frame.
const FRAME_LEN: usize = QUOTE_OFF + QUOTE_LEN;
/// TOS of the answer: precedence "internetwork control", as Linux sends its
/// ICMP errors.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
const ANSWER_TTL: u8 = 64;

/// Answers the (not yet rewritten) packet in the frame with ICMP
/// fragmentation-needed carrying `mtu` (host order). `Ok(None)`, with the
/// packet untouched, when the frame is too short to be rewritten in place
/// (only with route MTUs below 70 bytes): the caller then handles the
/// packet as it would without DF. A failed tail adjustment (shrinking does
/// not fail) drops: the verifier forbids the packet's old pointers after
/// the helper, so the caller could not go on with it. With the rate
/// limit's bucket empty, `Error::FragNeededRateLimited` (a drop).
///
/// Written field by field straight into the frame, checksums summed from
/// the frame: structs and arrays built on the stack first cost stack the
/// program does not have (the BPF limit is 512 bytes for everything
/// inlined into it).
#[inline(always)]
pub fn answer(ctx: &XdpContext, mtu: u16) -> Result<Option<u32>, Error> {
    let len = frame_len(ctx) as usize;
    if len < FRAME_LEN {
        return Ok(None);
    }
    if !allowed() {
        // An error (counted by the caller), not `Ok(Some(XDP_DROP))`: with
        // that constant in the `Ok` half, LLVM packed an undefined action
        // (a map pointer) into another `Result` and the verifier rejected
        // the shift.
        return Err(Error::FragNeededRateLimited);
    }
    // Cut the frame to the answer's length. Shrinking keeps the first
    // FRAME_LEN bytes, so the packet is read after this, as it was.
    // SAFETY: helper call on this program's context. Every packet pointer
    // is invalid afterwards: all are derived here.
    if unsafe { bpf_xdp_adjust_tail(ctx.ctx, FRAME_LEN as i32 - len as i32) } != 0 {
        return Err(Error::AdjustFailed);
    }
    let eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(Error::AdjustFailed)?;
    let ip: *mut Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Error::AdjustFailed)?;
    // One pointer per range read or written whole: the verifier knows the
    // bounds of the pointer it saw checked.
    let orig: *mut [u32; QUOTE_LEN / 4] = ptr_at(ctx, ETH_LEN).ok_or(Error::AdjustFailed)?;
    let msg: *mut [u8; ICMP_LEN + QUOTE_LEN] = ptr_at(ctx, ICMP_OFF).ok_or(Error::AdjustFailed)?;

    // The quote: the client's IPv4 header and 8 bytes (14..42) copied to
    // after the ICMP header (42..70); the ranges do not overlap.
    let quote = unsafe { msg.cast::<u8>().add(ICMP_LEN) }.cast::<u32>();
    for i in 0..QUOTE_LEN / 4 {
        store(
            unsafe { quote.add(i) },
            load(unsafe { orig.cast::<u32>().add(i) }),
        );
    }

    let icmp = msg.cast::<u16>();
    store(
        icmp,
        u16::from_ne_bytes([ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED]),
    );
    store(unsafe { icmp.add(1) }, 0); // checksum, below
    store(unsafe { icmp.add(2) }, 0); // unused
    store(unsafe { icmp.add(3) }, mtu.to_be()); // next-hop MTU (RFC 1191)
    let check = checksum::<{ (ICMP_LEN + QUOTE_LEN) / 2 }>(icmp);
    store(unsafe { icmp.add(1) }, check);

    // The IPv4 header, from the VIP the client sent to, back to the client.
    let client = load(unsafe { &raw const (*ip).saddr });
    let vip = load(unsafe { &raw const (*ip).daddr });
    store(unsafe { &raw mut (*ip).version_ihl }, 0x45);
    store(unsafe { &raw mut (*ip).tos }, TOS_INTERNETWORK_CONTROL);
    store(
        unsafe { &raw mut (*ip).tot_len },
        ((IPV4_LEN + ICMP_LEN + QUOTE_LEN) as u16).to_be(),
    );
    store(unsafe { &raw mut (*ip).id }, 0);
    store(unsafe { &raw mut (*ip).frag_off }, 0);
    store(unsafe { &raw mut (*ip).ttl }, ANSWER_TTL);
    store(unsafe { &raw mut (*ip).protocol }, proto::ICMP);
    store(unsafe { &raw mut (*ip).check }, 0);
    store(unsafe { &raw mut (*ip).saddr }, vip);
    store(unsafe { &raw mut (*ip).daddr }, client);
    let check = checksum::<{ IPV4_LEN / 2 }>(ip.cast());
    store(unsafe { &raw mut (*ip).check }, check);

    // Back where it came from: the client's MAC becomes the destination.
    let dst = load(unsafe { &raw const (*eth).dst });
    let src = load(unsafe { &raw const (*eth).src });
    store(unsafe { &raw mut (*eth).dst }, src);
    store(unsafe { &raw mut (*eth).src }, dst);
    store(unsafe { &raw mut (*eth).ether_type }, ETH_P_IP_RAW);
    stats::inc(GlobalStat::IcmpFragNeeded);
    // Back out of the ingress interface through the device map rather than
    // XDP_TX: on veth, XDP_TX from the stack's (skb) receive path did not
    // reach the peer in the end-to-end tests, the map's redirect does (it
    // carries every other packet). XDP_TX if the interface is not in it.
    Ok(Some(
        TX_PORTS
            .redirect(ctx.ingress_ifindex() as u32, 0)
            .unwrap_or(xdp_action::XDP_TX),
    ))
}

/// Takes a token from this CPU's bucket (refilled first). No bucket (cannot
/// happen: an array slot): allowed, as before the limit.
#[inline(always)]
fn allowed() -> bool {
    let limit = ICMP_LIMIT.get(0).copied().unwrap_or_default().effective();
    match ICMP_BUCKET.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no other writer while this program runs here.
        Some(b) => unsafe { &mut *b }.take(limit, conntrack::now_ns()),
        None => true,
    }
}

/// The Internet checksum of `N` 16-bit words at `p` (inside the frame,
/// checked by the caller), summed from the frame (no stack copy).
#[inline(always)]
fn checksum<const N: usize>(p: *const u16) -> u16 {
    let mut sum: u32 = 0;
    for i in 0..N {
        sum += u32::from(load(unsafe { p.add(i) }));
    }
    csum::finish(sum)
}
