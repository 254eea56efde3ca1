//! TCP MSS clamping for connections delivered encapsulated: the MSS option
//! of a SYN going into a tunnel, and of the SYN-ACK coming back from a pod
//! behind one, is lowered to what fits the route MTU toward the node once
//! encapsulated (`lb_common::tunnel::tunnel_mss`), so that neither end
//! sends segments the tunnel cannot carry. A SYN without an MSS option is
//! left alone (the default MSS, 536, fits any tunnel over a 1500-byte
//! underlay), as are options this parser does not understand.

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use lb_common::{GlobalStat, csum, tunnel::tunnel_mss};

use crate::{
    headers::{L4_OFF, TCP_CHECK_OFF, TCP_DOFF_OFF, TCP_LEN, TCP_SYN},
    packet::{load, ptr_at, store},
    parse::Packet,
    stats,
};

/// Where the options start (IPv4 headers with options are never balanced).
const OPTS_OFF: usize = L4_OFF + TCP_LEN;
/// At most 40 bytes of options (data offset of 15 words).
const MAX_OPTS: usize = 40;
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_MSS_LEN: u8 = 4;

/// Whether the packet is a SYN (or SYN-ACK): the only ones carrying MSS.
#[inline(always)]
pub fn is_syn(pkt: &Packet) -> bool {
    pkt.tcp_flags & TCP_SYN != 0
}

/// Lowers the MSS option of the TCP SYN in the frame (headers at the usual
/// offsets, not encapsulated yet) to what fits `mtu` with `overhead` bytes
/// of encapsulation, fixing the TCP checksum incrementally. Nothing changes
/// when the option is absent, already small enough, or the options are
/// malformed (a length below 2, an option running past the header, an MSS
/// option whose length is not 4).
#[inline(always)]
pub fn clamp(ctx: &XdpContext, mtu: u16, overhead: u16) {
    clamp_to(ctx.ctx, tunnel_mss(mtu, overhead));
}

/// `clamp`'s work, in a BPF function of its own (not inlined): the verifier
/// walks the options loop's many exits inside it, and they all return to
/// one state of the caller, so the rest of the program is verified once,
/// not once per exit (inlined, that exceeded the verifier's budget). It
/// takes the raw context and reads the packet afresh: packet pointers are
/// not passed between BPF functions.
#[inline(never)]
fn clamp_to(raw: *mut xdp_md, max: u16) {
    // A volatile read of the context pointer: otherwise LLVM passes
    // `data`/`data_end` themselves as arguments (argument promotion), and
    // the verifier rejects the arithmetic it then does on `data_end`.
    // SAFETY: reads a local.
    let raw = unsafe { core::ptr::read_volatile(&raw) };
    let ctx = XdpContext::new(raw);
    let ctx = &ctx;
    let Some(tcp) = ptr_at::<[u8; TCP_LEN]>(ctx, L4_OFF) else {
        return;
    };
    let doff = (load(unsafe { tcp.cast::<u8>().add(TCP_DOFF_OFF) }) >> 4) as usize * 4;
    // `parse` checked that the header fits the datagram; options: 0..=40.
    let opts_len = doff.wrapping_sub(TCP_LEN);
    if opts_len == 0 || opts_len > MAX_OPTS {
        return;
    }
    // The checksum pointer is checked here, before the options are: later,
    // LLVM would drop its check as implied by the options' (variable
    // offset) ones, which the verifier cannot relate to it.
    let Some(check) = ptr_at::<u16>(ctx, L4_OFF + TCP_CHECK_OFF) else {
        return;
    };
    let mut off = 0usize;
    // Bounded loop: `off` grows by at least one byte per option and the
    // options are at most 40 bytes. It has no iteration counter on purpose:
    // the verifier walks every iteration, and with `off` as the only thing
    // changing, a state whose `off` range lies inside one already seen is
    // pruned, so the walk converges; a counter makes every iteration's
    // states distinct (that exceeded the verifier's budget). One path per
    // option kind (NOP is an option of length 1).
    while off + 2 <= opts_len {
        // The mask restates `off < 64` to the verifier, which needs a
        // bounded variable offset before adding it to a packet pointer.
        let at = OPTS_OFF + (off & 0x3f);
        let Some(kind_len) = ptr_at::<[u8; 2]>(ctx, at) else {
            return;
        };
        let [kind, len] = load(kind_len);
        if kind == OPT_EOL {
            return;
        }
        if kind == OPT_MSS {
            if len == OPT_MSS_LEN && off + OPT_MSS_LEN as usize <= opts_len {
                rewrite(ctx, at, check, off & 1 != 0, max);
            }
            return;
        }
        let step = if kind == OPT_NOP { 1 } else { len as usize };
        if step == 0 || (kind != OPT_NOP && step < 2) {
            return;
        }
        off += step;
    }
}

/// Lowers the MSS option at frame offset `at` to `max` if it is larger,
/// updating the TCP checksum at `check`. `odd`: the option starts at an odd
/// offset in the TCP header.
#[inline(always)]
fn rewrite(ctx: &XdpContext, at: usize, check: *mut u16, odd: bool, max: u16) {
    let Some(opt) = ptr_at::<[u8; 4]>(ctx, at) else {
        return;
    };
    // Written through the pointer whose bounds the verifier saw checked
    // (the whole option).
    let value = unsafe { opt.cast::<u8>().add(2) }.cast::<u16>();
    let mss = load(value);
    if u16::from_be(mss) <= max {
        return;
    }
    let new = max.to_be();
    // The checksum sums 16-bit words from the TCP header's start: a value at
    // an odd offset (after a single NOP, say) straddles two words, and its
    // bytes count swapped (RFC 1624 holds for the swapped values).
    let (old_w, new_w) = if odd {
        (mss.swap_bytes(), new.swap_bytes())
    } else {
        (mss, new)
    };
    store(check, csum::replace2(load(check), old_w, new_w));
    store(value, new);
    stats::inc(GlobalStat::MssClamped);
}
