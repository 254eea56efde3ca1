//! Bounds-checked access to the packet. Every pointer into the frame comes
//! from `ptr_at`, which proves to the verifier that the access is inside
//! `data..data_end`.

use core::mem;

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};

use crate::headers::{ETH_LEN, EthHdr};

/// A pointer to a `T` at `offset` bytes into the frame, or `None` if the frame
/// is too short.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    // The verifier needs this exact shape: pointer + constant size compared
    // against data_end before any access.
    if start + offset + mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

#[inline(always)]
pub fn load<T: Copy>(ptr: *const T) -> T {
    // SAFETY: `ptr` comes from `ptr_at`, which checked the bounds; the packet
    // gives no alignment guarantee, hence unaligned.
    unsafe { ptr.read_unaligned() }
}

#[inline(always)]
pub fn store<T>(ptr: *mut T, value: T) {
    // SAFETY: as for `load`.
    unsafe { ptr.write_unaligned(value) }
}

/// The 12 MAC bytes of an Ethernet header, read as two words: a byte array
/// (alignment 1) is copied byte by byte even where misaligned word access
/// is allowed, 24 instructions instead of 4.
#[derive(Clone, Copy)]
pub struct Macs(u64, u32);

/// Reads the MACs of the Ethernet header at `eth` (bounds-checked by the
/// caller for at least 12 bytes).
#[inline(always)]
pub fn load_macs(eth: *const u8) -> Macs {
    // SAFETY: inside the caller's bounds-checked header.
    Macs(load(eth.cast()), load(unsafe { eth.add(8) }.cast()))
}

/// Writes `macs` to the Ethernet header at `eth` (as `load_macs`).
#[inline(always)]
pub fn store_macs(eth: *mut u8, macs: Macs) {
    store(eth.cast(), macs.0);
    // SAFETY: as for `load_macs`.
    store(unsafe { eth.add(8) }.cast(), macs.1);
}

/// Writes the MAC address `src` (in a map value or the frame) to `dst` in
/// the frame as a word and a half-word: a `[u8; 6]` copy from a map value
/// compiles to a call of the byte-copying `memcpy` subprogram. Not for a
/// source on the stack: the verifier rejects misaligned stack access, and a
/// 6-byte field there is rarely 4-byte aligned.
#[inline(always)]
pub fn copy_mac(dst: *mut [u8; 6], src: *const [u8; 6]) {
    let (d, s) = (dst.cast::<u8>(), src.cast::<u8>());
    store(d.cast::<u32>(), load(s.cast::<u32>()));
    // SAFETY: both are 6 bytes long.
    store(
        unsafe { d.add(4) }.cast::<u16>(),
        load(unsafe { s.add(4) }.cast::<u16>()),
    );
}

/// Length of the whole frame, for byte counters.
#[inline(always)]
pub fn frame_len(ctx: &XdpContext) -> u64 {
    (ctx.data_end() - ctx.data()) as u64
}

/// Why `strip_to` failed.
pub enum StripError {
    /// The frame is shorter than the offset (callers have proven it is not).
    Short,
    /// `bpf_xdp_adjust_head` refused; the frame's head was already
    /// rewritten, so it cannot go on.
    AdjustFailed,
}

/// Leaves the frame as its Ethernet header followed by what was at offset
/// `OFF`: the Ethernet header (its MACs: the frame was addressed to this
/// host; its EtherType) is copied to just before `OFF`, then the bytes
/// before it are removed (decapsulation). Every packet pointer is invalid
/// afterwards.
#[inline(always)]
pub fn strip_to<const OFF: usize>(ctx: &XdpContext) -> Result<(), StripError> {
    // Read whole before writing: the destination may overlap it.
    let old_eth: *mut EthHdr = ptr_at(ctx, 0).ok_or(StripError::Short)?;
    let macs = load_macs(old_eth.cast());
    let ether_type = load(unsafe { &raw const (*old_eth).ether_type });
    // The verifier needs a pointer proven in bounds for the write itself.
    let new_eth: *mut EthHdr = ptr_at(ctx, OFF - ETH_LEN).ok_or(StripError::Short)?;
    store_macs(new_eth.cast(), macs);
    store(unsafe { &raw mut (*new_eth).ether_type }, ether_type);
    // SAFETY: helper call on this program's context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, (OFF - ETH_LEN) as i32) } != 0 {
        return Err(StripError::AdjustFailed);
    }
    Ok(())
}
