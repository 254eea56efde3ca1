//! Layout of the connection table (`maps::CONNTRACK`): an array of buckets,
//! each holding `FLOW_WAYS` entries, indexed by a seeded hash of a
//! connection's client end, and beside it one tag word per bucket
//! (`maps::CONNTRACK_TAGS`).
//!
//! Why not a kernel (LRU) hash map: inserting into one costs a helper call,
//! a bucket lock and the LRU free-list bookkeeping, measured at about three
//! times the cost of a whole established-flow packet here, twice per new
//! connection. An array lookup is inlined by the verifier, so a lookup is a
//! hash, one bounds check and a few compares, and an insert is plain
//! stores. Eviction is LRU within a bucket: a new entry takes a free slot,
//! else an expired one, else the one seen longest ago.
//!
//! Tags. A bucket's tag word holds one byte per slot (`tag`): free, being
//! written, or a hash of the slot's key. A lookup reads the tag word and
//! compares only the keys whose tag matches: a key that is not in the
//! bucket (every new connection) costs one read of the tag word and no
//! access to the bucket itself. The tag words are 80 times denser than the
//! buckets (8 bytes per 640), so they stay in the CPU's cache where the
//! buckets cannot: a new connection's lookups then miss no cache line, and
//! its writes into its random bucket are stores the CPU does not wait for.
//! Slots are claimed by a compare-and-swap on the tag word (see the
//! datapath's `flow_table.rs`).
//!
//! Both entries of a connection live in one bucket, the bucket of its
//! client end (address, port, protocol): the forward entry's source, the
//! reply entry's destination. A new connection then touches one bucket, a
//! random one. A source-NATed connection (`onearm`, `fullnat`) has two
//! client ends, the client's and the SNAT address and port its replies come
//! back to: its reply entry lives in the bucket of the latter
//! (`peer_bucket`). A packet is looked up in the bucket of its source (a
//! client's packet), then of its destination (a reply toward a client; the
//! first probe then went to the bucket of the backend's address and port,
//! the same few buckets for all its replies, so cache-hot).
//!
//! The datapath and userspace compute buckets with `bucket_index`, with the
//! `BucketHash` the daemon chose at load (kept with the pinned table, so
//! connections survive a restart).

use crate::{Flow, FlowKey, conntrack::DIR_FORWARD};

/// Entries per bucket (four connections), one tag byte each in the bucket's
/// 64-bit tag word. Fewer ways would evict live connections from crowded
/// buckets while the table is far from full.
pub const FLOW_WAYS: usize = 8;

/// Value of `CONNTRACK`: one bucket. Which slots hold an entry is in the
/// bucket's tag word (`tag`), not here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowBucket {
    pub keys: [FlowKey; FLOW_WAYS],
    pub flows: [Flow; FLOW_WAYS],
}
const _: () = assert!(core::mem::size_of::<FlowBucket>() == (16 + 64) * FLOW_WAYS);
const _: () = assert!(core::mem::align_of::<FlowBucket>() == 8);

/// A bucket's tag word (value of `CONNTRACK_TAGS`): byte `way` (from the
/// least significant, as the little-endian datapath reads it) is slot
/// `way`'s tag.
pub mod tag {
    use crate::FlowKey;

    /// A slot that never held an entry.
    pub const FREE: u8 = 0;
    /// A slot a CPU is writing: it matches no key and no other CPU takes it.
    pub const CLAIMED: u8 = 1;
    /// The lowest tag of a slot holding an entry.
    pub const FIRST: u8 = 2;

    /// The tag of an entry under `key`: a hash of the whole key (the bucket
    /// is a hash of one end only), one of `FIRST..=255`. Not seeded: which
    /// bucket a key goes to is secret (`BucketHash`), so a sender cannot
    /// crowd one bucket with keys of one tag either.
    #[inline(always)]
    pub const fn of(key: &FlowKey) -> u8 {
        let addrs = ((key.src_ip as u64) << 32) | key.dst_ip as u64;
        let rest = ((key.src_port as u64) << 40) | ((key.dst_port as u64) << 24) | key.proto as u64;
        let h = (addrs ^ rest).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56;
        // The top byte scaled onto the 254 tags without a branch: a branch
        // here doubles the datapath verifier's states at every lookup.
        ((h * (256 - FIRST as u64)) >> 8) as u8 + FIRST
    }

    /// Slot `way`'s tag in tag word `word`.
    #[inline(always)]
    pub const fn at(word: u64, way: usize) -> u8 {
        (word >> (8 * way)) as u8
    }

    /// Tag word `word` with slot `way`'s tag set to `t`.
    #[inline(always)]
    pub const fn with(word: u64, way: usize, t: u8) -> u64 {
        (word & !(0xff << (8 * way))) | ((t as u64) << (8 * way))
    }

    /// The slots of tag word `word` whose tag is `t`: bit `8 * way` set for
    /// each (exact, without a branch).
    #[inline(always)]
    pub const fn matching(word: u64, t: u8) -> u64 {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        // Bytes equal to `t` become zero; a byte's top bit is then set
        // where it is not zero (its low seven bits carried into it, or it
        // had it).
        let x = word ^ (t as u64 * 0x0101_0101_0101_0101);
        let nonzero = ((x & LOW7) + LOW7) | x;
        (!nonzero & !LOW7) >> 7
    }

    /// The lowest way in `slots` (as `matching` returns them), 0 for none;
    /// below `FLOW_WAYS`. Without a branch: the lowest set bit (bit
    /// `8 * way`) times a constant whose bytes count up from the top, whose
    /// top byte is then `way`.
    #[inline(always)]
    pub const fn first(slots: u64) -> usize {
        let lowest = slots & slots.wrapping_neg();
        (lowest.wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize
            & (crate::flow_table::FLOW_WAYS - 1)
    }

    /// Whether a slot with tag `t` holds an entry.
    #[inline(always)]
    pub const fn used(t: u8) -> bool {
        t >= FIRST
    }
}

/// Buckets of a table sized for `entries` connections' entries (rounded up
/// to a power of two, at least one bucket).
pub const fn buckets_for(entries: u32) -> u32 {
    let ways = FLOW_WAYS as u32;
    let e = if entries < ways { ways } else { entries };
    let rounded = match e.checked_next_power_of_two() {
        Some(r) => r,
        None => 1 << 31,
    };
    rounded / ways
}

/// How a connection end is hashed to its bucket: multiply-shift
/// (Dietzfelbinger et al.), the top bits of a random odd 64-bit multiplier
/// times the end's 56 bits. For any two ends, the chance that they share a
/// bucket is at most 2 / buckets over the multiplier, which nobody outside
/// knows, so nobody can aim packets at one bucket. One native 64-bit
/// multiply: the four-round 32-bit hash it replaces cost the datapath a
/// tenth of an established packet (every 32-bit multiply and rotate is
/// masked on the BPF target).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BucketHash {
    /// Odd.
    pub mult: u64,
    /// 64 minus log2 of the bucket count.
    pub shift: u32,
    /// The bucket count minus one.
    pub mask: u32,
}
const _: () = assert!(core::mem::size_of::<BucketHash>() == 16);

impl BucketHash {
    /// The hash of a table of `buckets` buckets (a power of two, as
    /// `buckets_for` gives) with multiplier `seed` (made odd).
    pub const fn new(seed: u64, buckets: u32) -> BucketHash {
        let buckets = if buckets == 0 { 1 } else { buckets };
        BucketHash {
            mult: seed | 1,
            shift: 64 - buckets.trailing_zeros(),
            mask: buckets - 1,
        }
    }
}

/// The bucket of connection end (`ip`, `port`, `proto`), all in network
/// byte order. Below `h.mask + 1` even for a made-up `h` (a wrapping shift,
/// then the mask): the datapath's bounds check keeps the rest.
#[inline(always)]
pub const fn bucket_index(ip: u32, port: u16, proto: u8, h: &BucketHash) -> u32 {
    let end = ((ip as u64) << 24) | ((port as u64) << 8) | proto as u64;
    (end.wrapping_mul(h.mult).wrapping_shr(h.shift) as u32) & h.mask
}

/// The bucket a forward entry (key: client -> VIP) is written to.
#[inline(always)]
pub const fn forward_bucket(key: &FlowKey, h: &BucketHash) -> u32 {
    bucket_index(key.src_ip, key.src_port, key.proto, h)
}

/// The bucket a reply entry (key: backend -> client) is written to: the
/// same as its connection's forward entry, unless the connection is
/// source-NATed (then the reply's destination is the SNAT address and port).
#[inline(always)]
pub const fn reply_bucket(key: &FlowKey, h: &BucketHash) -> u32 {
    bucket_index(key.dst_ip, key.dst_port, key.proto, h)
}

/// The bucket of the other entry of `flow`'s connection: a forward entry's
/// reply entry is keyed (backend -> the forward's new source), a reply
/// entry's forward entry (client -> VIP) is in the bucket of the client the
/// reply goes to. Without source NAT both are the entry's own bucket.
#[inline(always)]
pub const fn peer_bucket(flow: &Flow, proto: u8, h: &BucketHash) -> u32 {
    if flow.direction == DIR_FORWARD {
        bucket_index(flow.nat_src_ip, flow.nat_src_port, proto, h)
    } else {
        bucket_index(flow.nat_dst_ip, flow.nat_dst_port, proto, h)
    }
}

impl FlowBucket {
    /// The way holding `key`, if any, in this bucket with tag word `tags`
    /// (host side; the datapath has its own unrolled copy).
    pub fn find(&self, tags: u64, key: &FlowKey) -> Option<usize> {
        let t = tag::of(key);
        (0..FLOW_WAYS).find(|&w| tag::at(tags, w) == t && self.keys[w] == *key)
    }

    /// The entries of the used slots, given the bucket's tag word (host
    /// side: listing the table; a slot being written is left out).
    pub fn entries(&self, tags: u64) -> impl Iterator<Item = (FlowKey, Flow)> + '_ {
        (0..FLOW_WAYS)
            .filter(move |&w| tag::used(tag::at(tags, w)))
            .map(|w| (self.keys[w], self.flows[w]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_counts_are_powers_of_two() {
        assert_eq!(buckets_for(0), 1);
        assert_eq!(buckets_for(2), 1);
        assert_eq!(buckets_for(8), 1);
        assert_eq!(buckets_for(9), 2);
        assert_eq!(buckets_for(262_144), 32_768);
        assert_eq!(buckets_for(300_000), 65_536);
        assert_eq!(buckets_for(u32::MAX), 1 << 28);
    }

    /// A multiplier as the daemon draws them (at random).
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

    fn table(buckets: u32) -> BucketHash {
        BucketHash::new(SEED, buckets)
    }

    #[test]
    fn hash_parameters_follow_the_bucket_count() {
        let h = table(32_768);
        assert_eq!((h.shift, h.mask), (64 - 15, 32_767));
        assert_eq!(h.mult & 1, 1);
        assert_eq!(BucketHash::new(2, 1).mult, 3, "made odd");
        // One bucket: a shift by 64 wraps to 0, the mask keeps bucket 0.
        let one = BucketHash::new(SEED, 1);
        assert_eq!(bucket_index(0xffff_ffff, 0xffff, 17, &one), 0);
    }

    #[test]
    fn seed_moves_keys_between_buckets() {
        let other = BucketHash::new(0xbf58_476d_1ce4_e5b9, 32_768);
        let moved = (0u16..256)
            .filter(|&p| {
                let k = FlowKey::new(0x0100_000a, 0x0a00_600a, p.to_be(), 80u16.to_be(), 6);
                forward_bucket(&k, &table(32_768)) != forward_bucket(&k, &other)
            })
            .count();
        assert!(moved > 250, "{moved}");
    }

    #[test]
    fn every_bit_of_the_end_moves_it_to_another_bucket() {
        let h = table(32_768);
        for (ip, port, proto) in [(0x0100_000a_u32, 40000u16, 6u8), (0xffff_ffff, 0, 17)] {
            let base = bucket_index(ip, port, proto, &h);
            for bit in 0..32 {
                assert_ne!(
                    bucket_index(ip ^ 1 << bit, port, proto, &h),
                    base,
                    "ip bit {bit}"
                );
            }
            for bit in 0..16 {
                assert_ne!(
                    bucket_index(ip, port ^ 1 << bit, proto, &h),
                    base,
                    "port bit {bit}"
                );
            }
            for bit in 0..8 {
                assert_ne!(
                    bucket_index(ip, port, proto ^ 1 << bit, &h),
                    base,
                    "proto bit {bit}"
                );
            }
        }
    }

    #[test]
    fn clients_spread_evenly_over_the_buckets() {
        // 64 clients per bucket on average: one address and every port, and
        // consecutive addresses on one port.
        let h = table(1024);
        let mut load = [0u32; 1024];
        for port in 0..=u16::MAX {
            load[bucket_index(0x0201_000a, port.to_be(), 6, &h) as usize] += 1;
        }
        for host in 0..65_536u32 {
            load[bucket_index((0x0a00_0000 | host).to_be(), 443u16.to_be(), 6, &h) as usize] += 1;
        }
        let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
        assert!(
            *min >= 96 && *max <= 160,
            "bucket loads {min}..{max} around 128"
        );
    }

    #[test]
    fn both_entries_of_a_connection_share_a_bucket() {
        let h = table(buckets_for(262_144));
        let forward = FlowKey::new(0x0201_000a, 0x0a00_600a, 40000u16.to_be(), 80u16.to_be(), 6);
        let reply = FlowKey::new(
            0x0202_000a,
            0x0201_000a,
            8080u16.to_be(),
            40000u16.to_be(),
            6,
        );
        assert_eq!(forward_bucket(&forward, &h), reply_bucket(&reply, &h));
    }

    #[test]
    fn peer_bucket_names_the_other_entrys_bucket() {
        let h = table(buckets_for(262_144));
        let client = FlowKey::new(0x0201_000a, 0x0a00_600a, 40000u16.to_be(), 80u16.to_be(), 6);
        // Source-NATed to 172.16.1.1:2000 toward 10.244.1.2:8080.
        let forward = Flow {
            nat_src_ip: 0x0101_10ac,
            nat_src_port: 2000u16.to_be(),
            nat_dst_ip: 0x0201_f40a,
            nat_dst_port: 8080u16.to_be(),
            direction: DIR_FORWARD,
            ..Flow::default()
        };
        let reply_key = forward.peer_key(6);
        assert_eq!(peer_bucket(&forward, 6, &h), reply_bucket(&reply_key, &h));
        let reply = Flow {
            nat_src_ip: client.dst_ip,
            nat_src_port: client.dst_port,
            nat_dst_ip: client.src_ip,
            nat_dst_port: client.src_port,
            direction: crate::conntrack::DIR_REPLY,
            ..Flow::default()
        };
        assert_eq!(peer_bucket(&reply, 6, &h), forward_bucket(&client, &h));
        assert_ne!(
            forward_bucket(&client, &h),
            reply_bucket(&reply_key, &h),
            "this example's two ends hash to different buckets"
        );
    }

    #[test]
    fn tags_are_never_free_or_claimed_and_spread() {
        let mut seen = [0u32; 256];
        for port in 0..4096u16 {
            let k = FlowKey::new(0x0201_000a, 0x0a00_600a, port.to_be(), 80u16.to_be(), 6);
            let t = tag::of(&k);
            assert!(tag::used(t), "{t}");
            seen[t as usize] += 1;
        }
        // 4096 keys over 254 tags: 16 each on average.
        assert!(seen.iter().skip(2).all(|&n| n > 0 && n < 48), "{seen:?}");
    }

    #[test]
    fn every_field_of_the_key_moves_its_tag() {
        let k = FlowKey::new(0x0201_000a, 0x0a00_600a, 40000u16.to_be(), 80u16.to_be(), 6);
        let others = [
            FlowKey {
                src_ip: 0x0301_000a,
                ..k
            },
            FlowKey {
                dst_ip: 0x0b00_600a,
                ..k
            },
            FlowKey {
                src_port: 40001u16.to_be(),
                ..k
            },
            FlowKey {
                dst_port: 81u16.to_be(),
                ..k
            },
            FlowKey { proto: 17, ..k },
            // A connection's reply key: the same ends, swapped.
            FlowKey::new(k.dst_ip, k.src_ip, k.dst_port, k.src_port, 6),
        ];
        for o in others {
            assert_ne!(tag::of(&o), tag::of(&k), "{o:?}");
        }
    }

    #[test]
    fn tag_words_hold_one_byte_per_way() {
        let w = tag::with(tag::with(0, 0, 7), 7, 0xfe);
        assert_eq!(w, 0xfe00_0000_0000_0007);
        assert_eq!((tag::at(w, 0), tag::at(w, 3), tag::at(w, 7)), (7, 0, 0xfe));
        assert_eq!(tag::with(w, 0, tag::CLAIMED), 0xfe00_0000_0000_0001);
    }

    #[test]
    fn matching_finds_exactly_the_slots_of_a_tag() {
        // Tags next to the one looked for, and 0x80 (the top bit alone),
        // where carry tricks go wrong.
        let w = u64::from_le_bytes([1, 0, 1, 2, 0x80, 0x81, 1, 0xff]);
        assert_eq!(tag::matching(w, 1), 1 | 1 << 16 | 1 << 48);
        assert_eq!(tag::matching(w, 0), 1 << 8);
        assert_eq!(tag::matching(w, 0x80), 1 << 32);
        assert_eq!(tag::matching(w, 0xff), 1 << 56);
        assert_eq!(tag::matching(w, 3), 0);
        for way in 0..FLOW_WAYS {
            for t in [0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff] {
                let w = tag::with(0x5555_5555_5555_5555, way, t);
                let expected = (0..FLOW_WAYS)
                    .filter(|&i| tag::at(w, i) == t)
                    .fold(0, |m, i| m | 1 << (8 * i));
                assert_eq!(tag::matching(w, t), expected, "way {way} tag {t}");
            }
        }
    }

    #[test]
    fn first_is_the_lowest_way_of_a_slot_set() {
        assert_eq!(tag::first(0), 0);
        for way in 0..FLOW_WAYS {
            let one = 1u64 << (8 * way);
            assert_eq!(tag::first(one), way);
            // Every higher way also set.
            let above = (way..FLOW_WAYS).fold(0, |m, w| m | 1 << (8 * w));
            assert_eq!(tag::first(above), way);
        }
        let w = u64::from_le_bytes([9, 0, 9, 0, 0, 9, 0, 0]);
        let m = tag::matching(w, 0);
        assert_eq!(tag::first(m), 1);
        assert_eq!(tag::first(m & (m - 1)), 3);
    }

    #[test]
    fn find_and_entries_follow_the_tags() {
        let mut b = FlowBucket::default();
        let k = FlowKey::new(1, 2, 3, 4, 6);
        assert_eq!(b.find(0, &k), None);
        b.keys[2] = k;
        assert_eq!(b.find(0, &k), None, "written, not published");
        assert_eq!(b.entries(0).count(), 0);
        let published = tag::with(0, 2, tag::of(&k));
        assert_eq!(b.find(published, &k), Some(2));
        let mut listed = b.entries(published);
        assert_eq!(listed.next().map(|(key, _)| key), Some(k));
        assert!(listed.next().is_none());
        let claimed = tag::with(0, 2, tag::CLAIMED);
        assert_eq!(b.find(claimed, &k), None, "being rewritten");
        assert_eq!(b.entries(claimed).count(), 0);
    }
}
