//! Per-CPU counters: no atomics needed, userspace sums the CPUs.

use aya_ebpf::maps::PerCpuArray;
use lb_common::{Counters, GlobalStat};

use crate::maps::{BACKEND_STATS, GLOBAL_STATS};

/// Adds one to slot `index` of a per-CPU counter array.
#[inline(always)]
pub fn inc_in(map: &PerCpuArray<u64>, index: u32) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, no other writer while this program runs here.
        unsafe { *c += 1 };
    }
}

/// Adds one to global counter `stat` (this CPU's `GLOBAL_STATS` block).
#[inline(always)]
pub fn inc(stat: GlobalStat) {
    inc_with(stat, None);
}

/// Adds one to global counters `stat` and `also` with one lookup of the
/// block: on the fast path, each lookup and counter line touched costs more
/// than the addition (an encapsulated packet counts its encapsulation with
/// how it left).
#[inline(always)]
pub fn inc_with(stat: GlobalStat, also: Option<GlobalStat>) {
    let Some(block) = GLOBAL_STATS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU block, see `inc_in`. `get_mut`: no panic path for the
    // verifier to see (every `GlobalStat` is in range).
    let counts = unsafe { &mut (*block).counts };
    if let Some(c) = counts.get_mut(stat as usize) {
        *c += 1;
    }
    if let Some(also) = also
        && let Some(c) = counts.get_mut(also as usize)
    {
        *c += 1;
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

/// Counts a balanced packet against its backend. Its service's counters
/// are derived in userspace (its backends' plus those of backends that
/// left it, `RETIRED_STATS`): one per-CPU counter line per packet fewer.
#[inline(always)]
pub fn count(backend_id: u32, reply: bool, bytes: u64, new_connection: bool) {
    bump(
        BACKEND_STATS.get_ptr_mut(backend_id),
        reply,
        bytes,
        new_connection,
    );
}
