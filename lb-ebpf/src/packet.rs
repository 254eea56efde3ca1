//! Bounds-checked access to the packet. Every pointer into the frame comes
//! from `ptr_at`, which proves to the verifier that the access is inside
//! `data..data_end`.

use core::mem;

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};

use crate::headers::ETH_LEN;

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
    let mac_hdr: [u8; ETH_LEN] = load(ptr_at(ctx, 0).ok_or(StripError::Short)?);
    // The verifier needs a pointer proven in bounds for the write itself.
    let new_eth: *mut [u8; ETH_LEN] = ptr_at(ctx, OFF - ETH_LEN).ok_or(StripError::Short)?;
    store(new_eth, mac_hdr);
    // SAFETY: helper call on this program's context.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, (OFF - ETH_LEN) as i32) } != 0 {
        return Err(StripError::AdjustFailed);
    }
    Ok(())
}
