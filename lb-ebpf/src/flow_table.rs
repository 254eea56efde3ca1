//! The connection table's slots: find a key in its bucket, write an entry.
//! Layout, tags and why it is not a kernel hash map: `lb_common::flow_table`.
//!
//! Concurrency. A writer claims a slot with a compare-and-swap (a BPF
//! atomic) on its bucket's tag word, setting the slot's tag to `CLAIMED`:
//! the slot stops matching, and no other CPU claims it. A writer that finds
//! the slot claimed, or loses the swap (another CPU changed the word in
//! between), gives up: the packet is dropped and counted
//! (`drop_flow_busy`), the sender retransmits. It then writes the entry and
//! its key, and publishes the slot with one byte store of the key's tag, as
//! volatile stores the compiler keeps in order, which x86's store ordering
//! keeps for the other CPU. A new connection claims both its slots before
//! writing either: a compare-and-swap waits for every earlier store to
//! reach the cache, and the entries' stores miss it (the bucket is a random
//! one), while the tag word is cached. Readers take no lock: a reader that
//! matched a key just before its slot is rewritten may read a mix of the
//! old and new entry for that one packet. A slot is rewritten only when its
//! connection ended (closed, expired, backend gone) or is evicted from a
//! full bucket, so that packet belonged to a connection that is over.

use core::{
    intrinsics::{AtomicOrdering, atomic_cxchg},
    ptr::{read_volatile, write_volatile},
    sync::atomic::{Ordering, compiler_fence},
};

use lb_common::{
    Flow, FlowBucket, FlowKey, GlobalStat,
    conntrack::CT_CLOSING,
    flow_table::{
        BucketHash, FLOW_WAYS, bucket_index, forward_bucket, peer_bucket, reply_bucket, tag,
    },
};

use crate::{
    error::Error,
    maps::{CLOCK, CONNTRACK, CONNTRACK_TAGS},
    stats,
};

/// A bucket of the table and its tag word.
#[derive(Clone, Copy)]
pub struct Bucket {
    slots: *mut FlowBucket,
    tags: *mut u64,
    index: u32,
}

/// The bucket `index(hash)` names (see `lb_common::flow_table`).
#[inline(always)]
fn bucket(index: impl FnOnce(&BucketHash) -> u32) -> Option<Bucket> {
    // The bucket hash comes with the clock (same cache line). A mask larger
    // than the table only makes the lookups below fail.
    let clock = CLOCK.get(0)?;
    at(index(&clock.bucket_hash))
}

/// Bucket `index`; `None` beyond the table.
#[inline(always)]
pub fn at(index: u32) -> Option<Bucket> {
    Some(Bucket {
        slots: CONNTRACK.get_ptr_mut(index)?,
        tags: CONNTRACK_TAGS.get_ptr_mut(index)?,
        index,
    })
}

/// The bucket of the client end of `key`, a client's packet (forward
/// entries live there).
#[inline(always)]
pub fn source_bucket(key: &FlowKey) -> Option<Bucket> {
    bucket(|h| forward_bucket(key, h))
}

/// The bucket of the other entry of `flow`'s connection (usually `flow`'s
/// own; see `lb_common::flow_table::peer_bucket`).
#[inline(always)]
pub fn peer_bucket_of(flow: &Flow, proto: u8) -> Option<Bucket> {
    bucket(|h| peer_bucket(flow, proto, h))
}

/// The bucket of connection end (`ip`, `port`, `proto`): where the reply
/// entry of a connection source-NATed to it goes.
#[inline(always)]
pub fn end_bucket(ip: u32, port: u16, proto: u8) -> Option<Bucket> {
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

/// Whether the slot's key is `key`.
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

/// The tag word of bucket `b`.
#[inline(always)]
fn tags_of(b: Bucket) -> u64 {
    // SAFETY: map value pointer; racing writers are handled by the claim
    // (`claim`) and publication order (module comment).
    unsafe { read_volatile(b.tags) }
}

/// The way holding `key`, whose tag is `t`, in bucket `b` (tag word
/// `tags`), if any: only the slots whose tag is the key's have their key
/// compared, so a key that is not there costs the tag word alone.
#[inline(always)]
fn way_of(b: Bucket, tags: u64, key: &FlowKey, t: u8) -> Option<usize> {
    // Without a candidate (every new connection), done without a branch
    // per slot.
    if tag::matching(tags, t) == 0 {
        return None;
    }
    // Unrolled by the compiler: cheaper than walking the candidates when
    // there is one.
    (0..FLOW_WAYS).find(|&way| tag::at(tags, way) == t && matches(key_at(b.slots, way), key))
}

/// The entry of `key`, whose tag is `t`, in bucket `b`, live or not.
#[inline(always)]
fn find_tagged(b: Bucket, key: &FlowKey, t: u8) -> Option<*mut Flow> {
    way_of(b, tags_of(b), key, t).map(|way| flow_at(b.slots, way))
}

/// The entry of `key` in bucket `b`, live or not (`way_of`).
#[inline(always)]
pub fn find_in(b: Bucket, key: &FlowKey) -> Option<*mut Flow> {
    find_tagged(b, key, tag::of(key))
}

/// The entry of `key`, live or not: a forward entry in the bucket of the
/// source, else a reply entry in the bucket of the destination.
#[inline(always)]
pub fn find(key: &FlowKey) -> Option<*mut Flow> {
    find_first_in(key, forward_bucket, reply_bucket)
}

/// The entry of `key`, a packet that can only be a reply (a pod's packet
/// its node sent back encapsulated): the reply bucket first, so the usual
/// case probes one bucket.
#[inline(always)]
pub fn find_reply(key: &FlowKey) -> Option<*mut Flow> {
    find_first_in(key, reply_bucket, forward_bucket)
}

/// The entry of `key` in bucket `first`, else in bucket `second` (of the
/// key's two ends: `lb_common::flow_table`'s index functions). The bucket
/// hash and the key's tag serve both probes.
#[inline(always)]
fn find_first_in(
    key: &FlowKey,
    first: fn(&FlowKey, &BucketHash) -> u32,
    second: fn(&FlowKey, &BucketHash) -> u32,
) -> Option<*mut Flow> {
    let h = &CLOCK.get(0)?.bucket_hash;
    let t = tag::of(key);
    if let Some(b) = at(first(key, h))
        && let Some(f) = find_tagged(b, key, t)
    {
        return Some(f);
    }
    find_tagged(at(second(key, h))?, key, t)
}

/// Rank in `oldest` of a connection that is not closing: above every
/// closing one (`last_seen_ns` stays far below it).
const OPEN_RANK: u64 = 1 << 62;

/// The slot of a full bucket (tag word `tags`) to reuse: an expired one,
/// else the closing connection (FIN or RST seen) seen longest ago, else the
/// open one seen longest ago (evicted, counted): a flood of short
/// connections waiting out their close timeout does not push out
/// long-lived open ones. Slots other CPUs are writing (claimed) are
/// skipped; when all are, slot 0 (whose claim then fails).
#[inline(always)]
fn oldest(b: Bucket, tags: u64, now: u64) -> usize {
    let mut chosen = 0;
    let mut best = u64::MAX;
    // Claimed slots rank last (`u64::MAX`, never chosen), without a branch
    // per slot: one per slot multiplied the verifier's states past its
    // limit.
    let claimed = tag::matching(tags, tag::CLAIMED);
    for way in 0..FLOW_WAYS {
        // SAFETY: map value pointer (see `key_at`), read only.
        let f = unsafe { &*flow_at(b.slots, way) };
        let rank = if f.expired_at(f.last_seen_ns, now) {
            0
        } else if f.tcp_flags & CT_CLOSING != 0 {
            1u64.saturating_add(f.last_seen_ns)
        } else {
            OPEN_RANK.saturating_add(f.last_seen_ns)
        } | 0u64.wrapping_sub((claimed >> (8 * way)) & 1);
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

/// A slot this CPU claimed (`claim`): to be written (`write`) or given
/// back (`release`).
pub struct Claim {
    b: Bucket,
    way: usize,
    /// The slot's tag before the claim.
    old: u8,
}

impl Claim {
    /// The claimed slot's bucket (index) and way.
    #[inline(always)]
    pub fn slot(&self) -> (u32, usize) {
        (self.b.index, self.way)
    }
}

/// Claims the slot of bucket `b` that `key` goes to: its own slot if it has
/// one, else a free slot, else an expired one, else the one seen longest
/// ago (a live connection is evicted, counted). `Err(FlowBusy)` when
/// another CPU is writing it or changed the tag word meanwhile.
#[inline(always)]
pub fn claim(b: Bucket, key: &FlowKey, now: u64) -> Result<Claim, Error> {
    // Tags first: the key's own slot, else the first free one (found
    // without a branch per slot, `tag::first`). Only a full bucket has its
    // entries read (`oldest`).
    let tags = tags_of(b);
    let way = if let Some(own) = way_of(b, tags, key, tag::of(key)) {
        own
    } else {
        match tag::matching(tags, tag::FREE) {
            0 => oldest(b, tags, now),
            free => tag::first(free),
        }
    };
    // Already below FLOW_WAYS on every path; checked again for the
    // verifier, which may only know the merged range 0..=FLOW_WAYS.
    if way >= FLOW_WAYS {
        return Err(Error::FlowBusy);
    }
    let old = tag::at(tags, way);
    if old == tag::CLAIMED {
        return Err(Error::FlowBusy);
    }
    // SAFETY: `b.tags` points into the map value; BPF_CMPXCHG on a map
    // value is allowed (kernel >= 5.12).
    let (seen, won) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
            b.tags,
            tags,
            tag::with(tags, way, tag::CLAIMED),
        )
    };
    if !won {
        return Err(Error::FlowBusy);
    }
    // For the verifier: `way` is one of eight constants here, one per path,
    // and a new connection holds two claims at once, which multiplied its
    // states past its limit. The swap won, so `seen == tags` and adding
    // their difference changes nothing, but the verifier cannot know it: it
    // goes on with one state for any way in 0..FLOW_WAYS.
    let way = way.wrapping_add((seen ^ tags) as usize);
    if way >= FLOW_WAYS {
        return Err(Error::FlowBusy);
    }
    Ok(Claim { b, way, old })
}

/// The tag byte of slot `way` (below `FLOW_WAYS`) of bucket `b`.
#[inline(always)]
fn tag_byte(b: Bucket, way: usize) -> *mut u8 {
    // SAFETY: a byte of the tag word.
    unsafe { b.tags.cast::<u8>().add(way) }
}

/// Gives claim `c` back untouched: the slot's entry is as before.
#[inline(always)]
pub fn release(c: Claim) {
    // SAFETY: the claimed byte is this CPU's to write (see `write`).
    unsafe { write_volatile(tag_byte(c.b, c.way), c.old) };
}

/// Writes `flow` under `key` into slot `way` of bucket `b`, which this CPU
/// claimed, and publishes it.
#[inline(always)]
pub fn write(b: Bucket, way: usize, key: &FlowKey, flow: &Flow) {
    if way >= FLOW_WAYS {
        return;
    }
    let k = key_at(b.slots, way);
    let slot = flow_at(b.slots, way);
    // SAFETY: map value pointers; the slot is ours until published. Order
    // matters (see the module comment): compiler fences around the plain
    // copies (a volatile copy would go through the stack, which is full),
    // then the tag as one byte store: other CPUs may be claiming the
    // bucket's other slots in the same word.
    unsafe {
        compiler_fence(Ordering::SeqCst);
        *slot = *flow;
        *k = *key;
        compiler_fence(Ordering::SeqCst);
        write_volatile(tag_byte(b, way), tag::of(key));
    }
}
