//! Layout of the connection table (`maps::CONNTRACK`): an array of buckets,
//! each holding `FLOW_WAYS` entries, indexed by a seeded hash of a
//! connection's client end.
//!
//! Why not a kernel (LRU) hash map: inserting into one costs a helper call,
//! a bucket lock and the LRU free-list bookkeeping, measured at about three
//! times the cost of a whole established-flow packet here, twice per new
//! connection. An array lookup is inlined by the verifier, so a lookup is a
//! hash, one bounds check and up to eight key compares in two cache lines,
//! and an insert is plain stores. Eviction is LRU within a bucket: a new entry
//! takes a free slot, else an expired one, else the one seen longest ago.
//!
//! Both entries of a connection live in one bucket, the bucket of its
//! client end (address, port, protocol): the forward entry's source, the
//! reply entry's destination. A new connection then touches one bucket, a
//! random one, which is what a new connection costs most here (a cache and
//! TLB miss in a table of tens of megabytes). A source-NATed connection
//! (`onearm`, `fullnat`) has two client ends, the client's and the SNAT
//! address and port its replies come back to: its reply entry lives in the
//! bucket of the latter (`peer_bucket`). A packet is looked up in the
//! bucket of its source (a client's packet), then of its destination (a
//! reply toward a client; the first probe then went to the bucket of the
//! backend's address and port, the same few buckets for all its replies,
//! so cache-hot).
//!
//! The datapath and userspace compute buckets with `bucket_index`, with the
//! seed and bucket count the daemon chose at load (kept with the pinned
//! table, so connections survive a restart).

use crate::{Flow, FlowKey, conntrack::DIR_FORWARD, hash::flow_hash_seeded};

/// Entries per bucket (four connections): their keys fill two 64-byte cache
/// lines. Fewer ways would evict live connections from crowded buckets
/// while the table is far from full.
pub const FLOW_WAYS: usize = 8;

/// Value of `CONNTRACK`: one bucket.
///
/// A slot is free while its key's protocol is 0 (no real key has protocol
/// 0). Writers (the datapath) take `locks[way]` (64-bit: the BPF ISA has no 32-bit compare-and-swap
/// without ALU32) with a compare-and-swap from
/// 0 to 1 before writing a slot and store 0 after, so two CPUs never write
/// one slot at once; readers take no lock (see the datapath's
/// `flow_table.rs` for what a reader may see during a write).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowBucket {
    pub keys: [FlowKey; FLOW_WAYS],
    pub locks: [u64; FLOW_WAYS],
    pub flows: [Flow; FLOW_WAYS],
}
const _: () = assert!(core::mem::size_of::<FlowBucket>() == (16 + 8 + 64) * FLOW_WAYS);
const _: () = assert!(core::mem::align_of::<FlowBucket>() == 8);

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

/// The bucket of connection end (`ip`, `port`, `proto`), all in network
/// byte order, in a table of `mask + 1` buckets (a power of two).
#[inline(always)]
pub const fn bucket_index(ip: u32, port: u16, proto: u8, seed: u32, mask: u32) -> u32 {
    flow_hash_seeded(seed, ip, 0, port, 0, proto) & mask
}

/// The bucket a forward entry (key: client -> VIP) is written to.
#[inline(always)]
pub const fn forward_bucket(key: &FlowKey, seed: u32, mask: u32) -> u32 {
    bucket_index(key.src_ip, key.src_port, key.proto, seed, mask)
}

/// The bucket a reply entry (key: backend -> client) is written to: the
/// same as its connection's forward entry, unless the connection is
/// source-NATed (then the reply's destination is the SNAT address and port).
#[inline(always)]
pub const fn reply_bucket(key: &FlowKey, seed: u32, mask: u32) -> u32 {
    bucket_index(key.dst_ip, key.dst_port, key.proto, seed, mask)
}

/// The bucket of the other entry of `flow`'s connection: a forward entry's
/// reply entry is keyed (backend -> the forward's new source), a reply
/// entry's forward entry (client -> VIP) is in the bucket of the client the
/// reply goes to. Without source NAT both are the entry's own bucket.
#[inline(always)]
pub const fn peer_bucket(flow: &Flow, proto: u8, seed: u32, mask: u32) -> u32 {
    if flow.direction == DIR_FORWARD {
        bucket_index(flow.nat_src_ip, flow.nat_src_port, proto, seed, mask)
    } else {
        bucket_index(flow.nat_dst_ip, flow.nat_dst_port, proto, seed, mask)
    }
}

impl FlowBucket {
    /// Whether slot `way` holds an entry.
    pub fn used(&self, way: usize) -> bool {
        self.keys[way].proto != 0
    }

    /// The way holding `key`, if any (host side; the datapath has its own
    /// unrolled copy).
    pub fn find(&self, key: &FlowKey) -> Option<usize> {
        (0..FLOW_WAYS).find(|&w| self.used(w) && self.keys[w] == *key)
    }

    /// The entries of the used slots (host side: listing the table).
    pub fn entries(&self) -> impl Iterator<Item = (FlowKey, Flow)> + '_ {
        (0..FLOW_WAYS)
            .filter(|&w| self.used(w))
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

    #[test]
    fn seed_moves_keys_between_buckets() {
        let mask = buckets_for(262_144) - 1;
        let moved = (0u16..256)
            .filter(|&p| {
                let k = FlowKey::new(0x0100_000a, 0x0a00_600a, p.to_be(), 80u16.to_be(), 6);
                forward_bucket(&k, 1, mask) != forward_bucket(&k, 2, mask)
            })
            .count();
        assert!(moved > 250, "{moved}");
    }

    #[test]
    fn both_entries_of_a_connection_share_a_bucket() {
        let mask = buckets_for(262_144) - 1;
        let forward = FlowKey::new(0x0201_000a, 0x0a00_600a, 40000u16.to_be(), 80u16.to_be(), 6);
        let reply = FlowKey::new(
            0x0202_000a,
            0x0201_000a,
            8080u16.to_be(),
            40000u16.to_be(),
            6,
        );
        assert_eq!(
            forward_bucket(&forward, 7, mask),
            reply_bucket(&reply, 7, mask)
        );
    }

    #[test]
    fn peer_bucket_names_the_other_entrys_bucket() {
        let mask = buckets_for(262_144) - 1;
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
        assert_eq!(
            peer_bucket(&forward, 6, 7, mask),
            reply_bucket(&reply_key, 7, mask)
        );
        let reply = Flow {
            nat_src_ip: client.dst_ip,
            nat_src_port: client.dst_port,
            nat_dst_ip: client.src_ip,
            nat_dst_port: client.src_port,
            direction: crate::conntrack::DIR_REPLY,
            ..Flow::default()
        };
        assert_eq!(
            peer_bucket(&reply, 6, 7, mask),
            forward_bucket(&client, 7, mask)
        );
        assert_ne!(
            forward_bucket(&client, 7, mask),
            reply_bucket(&reply_key, 7, mask),
            "this example's two ends hash to different buckets"
        );
    }

    #[test]
    fn find_skips_free_slots() {
        let mut b = FlowBucket::default();
        let k = FlowKey::new(1, 2, 3, 4, 6);
        assert_eq!(b.find(&k), None);
        assert_eq!(b.find(&FlowKey::default()), None);
        b.keys[2] = k;
        assert_eq!(b.find(&k), Some(2));
    }
}
