//! The connection table's slots: find a key in its bucket, write an entry.
//! Layout and why it is not a kernel hash map: `lb_common::flow_table`.
//!
//! Concurrency. A writer claims a slot with a compare-and-swap (a BPF
//! atomic) on the second word of its key (`lb_common::flow_table::key_word`),
//! which sets the claim byte and clears the protocol: the slot stops
//! matching, and no other CPU claims it. A writer that finds the slot
//! claimed, or loses the swap, gives up: the packet is dropped and counted
//! (`drop_flow_busy`), the sender retransmits. It then writes the entry and
//! the key's addresses, and publishes the slot with one store of the key's
//! second word (its ports and protocol, claim cleared), as volatile stores
//! the compiler keeps in order, which x86's store ordering keeps for the
//! other CPU. Readers take no lock: a reader that matched a key just before
//! its slot is rewritten may read a mix of the old and new entry for that
//! one packet. A slot is rewritten only when its connection ended (closed,
//! expired, backend gone) or is evicted from a full bucket, so that packet
//! belonged to a connection that is over.

use core::{
    intrinsics::{AtomicOrdering, atomic_cxchg},
    ptr::{read_volatile, write_volatile},
    sync::atomic::{Ordering, compiler_fence},
};

use lb_common::{
    Flow, FlowBucket, FlowKey, GlobalStat,
    conntrack::CT_CLOSING,
    flow_table::{
        BucketHash, FLOW_WAYS, bucket_index, forward_bucket, key_word, peer_bucket, reply_bucket,
    },
};

use crate::{
    error::Error,
    maps::{CLOCK, CONNTRACK},
    stats,
};

/// The bucket `index(hash)` names (see `lb_common::flow_table`).
#[inline(always)]
fn bucket(index: impl FnOnce(&BucketHash) -> u32) -> Option<*mut FlowBucket> {
    // The bucket hash comes with the clock (same cache line). A mask larger
    // than the table only makes the lookup below fail.
    let clock = CLOCK.get(0)?;
    CONNTRACK.get_ptr_mut(index(&clock.bucket_hash))
}

/// The bucket of the client end of `key`, a client's packet (forward
/// entries live there).
#[inline(always)]
pub fn source_bucket(key: &FlowKey) -> Option<*mut FlowBucket> {
    bucket(|h| forward_bucket(key, h))
}

/// The bucket of the client end of `key`, a packet toward a client (reply
/// entries live there).
#[inline(always)]
fn destination_bucket(key: &FlowKey) -> Option<*mut FlowBucket> {
    bucket(|h| reply_bucket(key, h))
}

/// The bucket of the other entry of `flow`'s connection (usually `flow`'s
/// own; see `lb_common::flow_table::peer_bucket`).
#[inline(always)]
pub fn peer_bucket_of(flow: &Flow, proto: u8) -> Option<*mut FlowBucket> {
    bucket(|h| peer_bucket(flow, proto, h))
}

/// The bucket of connection end (`ip`, `port`, `proto`): where the reply
/// entry of a connection source-NATed to it goes.
#[inline(always)]
pub fn end_bucket(ip: u32, port: u16, proto: u8) -> Option<*mut FlowBucket> {
    bucket(|h| bucket_index(ip, port, proto, h))
}

#[inline(always)]
fn key_at(b: *mut FlowBucket, way: usize) -> *mut FlowKey {
    // SAFETY: `way < FLOW_WAYS`; the pointer stays inside the map value.
    unsafe { (&raw mut (*b).keys).cast::<FlowKey>().add(way) }
}

#[inline(always)]
fn flow_at(b: *mut FlowBucket, way: usize) -> *mut Flow {
    // SAFETY: as `key_at`.
    unsafe { (&raw mut (*b).flows).cast::<Flow>().add(way) }
}

/// The second word of slot `way`'s key (`key_word`): 8-byte aligned, as
/// the bucket is and the key's size is.
#[inline(always)]
fn word_at(b: *mut FlowBucket, way: usize) -> *mut u64 {
    // SAFETY: as `key_at`; the word lies inside the key.
    unsafe {
        key_at(b, way)
            .cast::<u8>()
            .add(key_word::OFFSET)
            .cast::<u64>()
    }
}

/// Whether the slot's key is `key` (which has a non-zero protocol, so a
/// free slot never matches).
#[inline(always)]
fn matches(slot: *const FlowKey, key: &FlowKey) -> bool {
    // SAFETY: `slot` points into a map value (see `key_at`). Compared field
    // by field: the key on the stack is only 4-byte aligned.
    unsafe {
        (*slot).src_ip == key.src_ip
            && (*slot).dst_ip == key.dst_ip
            && (*slot).src_port == key.src_port
            && (*slot).dst_port == key.dst_port
            && (*slot).proto == key.proto
    }
}

/// The entry of `key` in bucket `b`, live or not.
#[inline(always)]
pub fn find_in(b: *mut FlowBucket, key: &FlowKey) -> Option<*mut Flow> {
    // Unrolled by the compiler: the keys fill two cache lines.
    for way in 0..FLOW_WAYS {
        if matches(key_at(b, way), key) {
            return Some(flow_at(b, way));
        }
    }
    None
}

/// The entry of `key`, live or not: a forward entry in the bucket of the
/// source, else a reply entry in the bucket of the destination.
#[inline(always)]
pub fn find(key: &FlowKey) -> Option<*mut Flow> {
    find_first_in(key, source_bucket, destination_bucket)
}

/// The entry of `key`, a packet that can only be a reply (a pod's packet
/// its node sent back encapsulated): the reply bucket first, so the usual
/// case probes one bucket.
#[inline(always)]
pub fn find_reply(key: &FlowKey) -> Option<*mut Flow> {
    find_first_in(key, destination_bucket, source_bucket)
}

/// The entry of `key` in bucket `first`, else in bucket `second` (of the
/// key's two ends).
#[inline(always)]
fn find_first_in(
    key: &FlowKey,
    first: fn(&FlowKey) -> Option<*mut FlowBucket>,
    second: fn(&FlowKey) -> Option<*mut FlowBucket>,
) -> Option<*mut Flow> {
    if let Some(b) = first(key)
        && let Some(f) = find_in(b, key)
    {
        return Some(f);
    }
    find_in(second(key)?, key)
}

/// Rank in `oldest` of a connection that is not closing: above every
/// closing one (`last_seen_ns` stays far below it).
const OPEN_RANK: u64 = 1 << 62;

/// The slot of a full bucket to reuse: an expired one, else the closing
/// connection (FIN or RST seen) seen longest ago, else the open one seen
/// longest ago (evicted, counted): a flood of short connections waiting out
/// their close timeout does not push out long-lived open ones. Slots other
/// CPUs are writing (claimed) are skipped; when all are, slot 0 (whose
/// claim then fails).
#[inline(always)]
fn oldest(b: *mut FlowBucket, now: u64) -> usize {
    let mut chosen = 0;
    let mut best = u64::MAX;
    for way in 0..FLOW_WAYS {
        // SAFETY: map value pointers (see `key_at`), read only.
        if unsafe { *word_at(b, way) } & key_word::CLAIM != 0 {
            continue;
        }
        let f = unsafe { &*flow_at(b, way) };
        let rank = if f.expired_at(f.last_seen_ns, now) {
            0
        } else if f.tcp_flags & CT_CLOSING != 0 {
            1u64.saturating_add(f.last_seen_ns)
        } else {
            OPEN_RANK.saturating_add(f.last_seen_ns)
        };
        if rank < best {
            best = rank;
            chosen = way;
        }
    }
    if (OPEN_RANK..u64::MAX).contains(&best) {
        stats::inc(GlobalStat::ConntrackEvicted);
    }
    chosen
}

/// Claims the slot of bucket `b` that `key` goes to: its own slot if it has
/// one, else a free slot, else an expired one, else the one seen longest
/// ago (a live connection is evicted, counted); returns its way.
/// `Err(FlowBusy)` when another CPU is writing it.
#[inline(always)]
fn claim(b: *mut FlowBucket, key: &FlowKey, now: u64) -> Result<usize, Error> {
    // Keys first (two cache lines): the key's own slot, else the first
    // free one. Only a full bucket has its entries read (up to eight more
    // lines, in a table far bigger than the cache): a new connection in a
    // bucket with room touches the key lines only.
    let mut own = FLOW_WAYS;
    let mut free = FLOW_WAYS;
    for way in 0..FLOW_WAYS {
        if matches(key_at(b, way), key) {
            own = way;
            break;
        }
        // SAFETY: map value pointer (see `word_at`); racing writers are
        // harmless here, the slot is claimed below with a compare-and-swap.
        if free == FLOW_WAYS
            && unsafe { *word_at(b, way) } & (key_word::PROTO | key_word::CLAIM) == 0
        {
            free = way;
        }
    }
    let chosen = if own < FLOW_WAYS {
        own
    } else if free < FLOW_WAYS {
        free
    } else {
        oldest(b, now)
    };
    // Already below FLOW_WAYS on every path; checked again for the
    // verifier, which may only know the merged range 0..=FLOW_WAYS.
    if chosen >= FLOW_WAYS {
        return Err(Error::FlowBusy);
    }
    let word = word_at(b, chosen);
    // SAFETY: `word` points into the map value; BPF_CMPXCHG on a map value
    // is allowed (kernel >= 5.12).
    let seen = unsafe { read_volatile(word) };
    if seen & key_word::CLAIM != 0 {
        return Err(Error::FlowBusy);
    }
    let claimed = (seen & !key_word::PROTO) | key_word::CLAIMED;
    let (_, won) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
            word, seen, claimed,
        )
    };
    if !won {
        return Err(Error::FlowBusy);
    }
    Ok(chosen)
}

/// Writes `flow` under `key` into slot `way` of bucket `b`, which this CPU
/// claimed, and publishes it.
#[inline(always)]
fn fill(b: *mut FlowBucket, way: usize, key: &FlowKey, flow: &Flow) -> *mut Flow {
    let k = key_at(b, way);
    let slot = flow_at(b, way);
    // SAFETY: map value pointers; the slot is ours until published. Order
    // matters (see the module comment): volatile stores, and compiler
    // fences around the plain copy of the entry (a volatile copy would go
    // through the stack, which is full).
    unsafe {
        compiler_fence(Ordering::SeqCst);
        *slot = *flow;
        compiler_fence(Ordering::SeqCst);
        write_volatile(&raw mut (*k).src_ip, key.src_ip);
        write_volatile(&raw mut (*k).dst_ip, key.dst_ip);
        write_volatile(word_at(b, way), key_word::of(key));
    }
    slot
}

/// Writes `flow` under `key` into bucket `b` (`claim`, then `fill`).
#[inline(always)]
pub fn insert_in(
    b: *mut FlowBucket,
    key: &FlowKey,
    flow: &Flow,
    now: u64,
) -> Result<*mut Flow, Error> {
    let way = claim(b, key, now)?;
    Ok(fill(b, way, key, flow))
}
