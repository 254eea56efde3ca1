//! Per-CPU counters: no atomics needed, userspace sums the CPUs.

use lb_common::{Counters, GlobalStat};

use crate::maps::{BACKEND_STATS, GLOBAL_STATS, SERVICE_STATS};

#[inline(always)]
pub fn inc(stat: GlobalStat) {
    if let Some(c) = GLOBAL_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no other writer while this program runs here.
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn bump(c: Option<*mut Counters>, reply: bool, bytes: u64, new_connection: bool) {
    let Some(c) = c else { return };
    // SAFETY: per-CPU slot, see `inc`.
    let c = unsafe { &mut *c };
    if reply {
        c.reply_packets += 1;
        c.reply_bytes += bytes;
    } else {
        c.packets += 1;
        c.bytes += bytes;
    }
    if new_connection {
        c.new_connections += 1;
    }
}

/// Counts a balanced packet against its service and backend.
#[inline(always)]
pub fn count(service_id: u32, backend_id: u32, reply: bool, bytes: u64, new_connection: bool) {
    bump(
        SERVICE_STATS.get_ptr_mut(service_id),
        reply,
        bytes,
        new_connection,
    );
    bump(
        BACKEND_STATS.get_ptr_mut(backend_id),
        reply,
        bytes,
        new_connection,
    );
}
