//! A new connection's entries wait in a per-CPU scratch (`NEW_ENTRIES`)
//! while its first packet is rewritten and sent on, and are written into
//! the connection table last (`commit`), into the slots claimed for them
//! beforehand (`flow_table::claim`).
//!
//! Why last: the entries' bucket is a random one, not in the CPU's cache.
//! The CPU holds the stores until their cache lines arrive, and every later
//! store (stack spills included) queues behind them; the path after the
//! insert, encapsulation above all, filled that queue and stalled the CPU
//! for the rest of the miss. Written last, the stores complete while the
//! CPU goes on (with the next packet), and the packet leaves only after the
//! program returns, so the entries are published before it does, as
//! before. The packet path reads the forward entry from the scratch.
//!
//! The scratch is this CPU's alone: an XDP program runs to completion on
//! its CPU, and the stage commits before it returns.

use lb_common::{Flow, FlowKey};

use crate::{
    flow_table::{self, Claim},
    maps::NEW_ENTRIES,
};

/// An entry to write: its key and value and the slot claimed for it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NewEntry {
    pub key: FlowKey,
    pub flow: Flow,
    bucket: u32,
    way: u32,
}

/// Value of `NEW_ENTRIES`: the entries of one new connection (`REPLY`,
/// `FORWARD`), written in that order: once the forward entry exists the
/// backend may answer, and its answer must find the reply entry.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NewEntries {
    pub entries: [NewEntry; 2],
    /// How many entries to write, the last ones (2: both, 1: `FORWARD`
    /// alone, 0 (as the map starts): none).
    pending: u32,
    _pad: u32,
}

/// Index of the reply entry.
pub const REPLY: usize = 0;
/// Index of the forward entry.
pub const FORWARD: usize = 1;
/// Entries per connection.
const ENTRIES: usize = 2;

/// This CPU's scratch.
#[inline(always)]
pub fn scratch() -> Option<*mut NewEntries> {
    NEW_ENTRIES.get_ptr_mut(0)
}

/// Entry `i` of scratch `s` (`REPLY` or `FORWARD`).
#[inline(always)]
pub fn entry(s: *mut NewEntries, i: usize) -> *mut NewEntry {
    // SAFETY: `i` is `REPLY` or `FORWARD` at every call site: inside the
    // value.
    unsafe { (&raw mut (*s).entries).cast::<NewEntry>().add(i) }
}

/// Records that entry `i` of `s` goes under `key` into the slot of claim
/// `c`; its value is written into `(*entry(s, i)).flow` by the caller.
#[inline(always)]
pub fn stage(s: *mut NewEntries, i: usize, c: &Claim, key: &FlowKey) {
    let (bucket, way) = c.slot();
    // SAFETY: map value pointer (`entry`), this CPU's.
    let e = unsafe { &mut *entry(s, i) };
    e.key = *key;
    e.bucket = bucket;
    e.way = way as u32;
}

/// Marks the entries of `s` from `first` on (`REPLY`: both, `FORWARD`: the
/// forward entry alone) ready for `commit`.
#[inline(always)]
pub fn ready(s: *mut NewEntries, first: usize) {
    // SAFETY: map value pointer, this CPU's.
    unsafe { (*s).pending = ENTRIES.saturating_sub(first) as u32 };
}

/// Writes the ready entries into their claimed slots and publishes them.
#[inline(always)]
pub fn commit() {
    let Some(s) = scratch() else {
        return;
    };
    // SAFETY: map value pointer, this CPU's.
    let first = ENTRIES.saturating_sub(unsafe { (*s).pending } as usize);
    for i in REPLY..ENTRIES {
        if i < first {
            continue;
        }
        // SAFETY: as above.
        let e = unsafe { &*entry(s, i) };
        // The way is checked again by `write` (the verifier does not know
        // what the scratch holds).
        if let Some(b) = flow_table::at(e.bucket) {
            flow_table::write(b, e.way as usize, &e.key, &e.flow);
        }
    }
    ready(s, ENTRIES);
}
