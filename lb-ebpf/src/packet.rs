//! Bounds-checked access to the packet. Every pointer into the frame comes
//! from `ptr_at`, which proves to the verifier that the access is inside
//! `data..data_end`.

use core::mem;

use aya_ebpf::programs::XdpContext;

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
