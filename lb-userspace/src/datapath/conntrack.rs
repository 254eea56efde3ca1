//! The connection table from userspace: listing and counting its entries.
//!
//! Only the datapath writes the table (`lb_common::flow_table`): expired
//! entries and entries of removed backends are not deleted, the datapath
//! treats them as free slots and ends such connections at their next
//! packet. Userspace does not claim slots as the datapath does, so it never
//! writes a bucket while the program runs (tests do, on an idle table).

use std::{
    collections::HashMap as StdHashMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::maps::{Array, MapData};
use lb_common::{
    Flow, FlowBucket, FlowKey,
    conntrack::DIR_FORWARD,
    flow_table::{BucketHash, FLOW_WAYS, forward_bucket, reply_bucket, tag},
    maps::{CONNTRACK, CONNTRACK_TAGS},
    service::mode::DSR,
};

use super::{DatapathError, clock::monotonic_coarse_ns};

/// The `CONNTRACK` map and its tag words, shared by the API (listing,
/// metrics) and the scan task.
pub struct Conntrack {
    maps: Mutex<Maps>,
    hash: BucketHash,
    live: AtomicU64,
}

struct Maps {
    buckets: Array<MapData, FlowBucket>,
    tags: Array<MapData, u64>,
}

impl Maps {
    /// Bucket `index` and its tag word.
    fn get(&self, index: u32) -> Result<(FlowBucket, u64), DatapathError> {
        Ok((
            self.buckets
                .get(&index, 0)
                .map_err(DatapathError::map(CONNTRACK))?,
            self.tags
                .get(&index, 0)
                .map_err(DatapathError::map(CONNTRACK_TAGS))?,
        ))
    }
}

/// What one scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Slots holding an entry, live or not.
    pub used: usize,
    /// Live entries: seen within their timeout, or their other direction
    /// was (as the datapath judges it).
    pub live: usize,
}

/// Whether `flow` is live at `now_ns` given its partner's last-seen time.
fn pair_live(flow: &Flow, partner: Option<&Flow>, now_ns: u64) -> bool {
    let partner_seen = partner.map_or(0, |p| p.last_seen_ns);
    !flow.expired_at(flow.last_seen_ns.max(partner_seen), now_ns)
}

impl Conntrack {
    pub(crate) fn new(
        buckets: Array<MapData, FlowBucket>,
        tags: Array<MapData, u64>,
        hash: BucketHash,
    ) -> Self {
        Self {
            maps: Mutex::new(Maps { buckets, tags }),
            hash,
            live: AtomicU64::new(0),
        }
    }

    /// Every used slot's entry, live or not (a snapshot; the datapath keeps
    /// writing).
    pub fn entries(&self) -> Result<Vec<(FlowKey, Flow)>, DatapathError> {
        let maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for i in 0..maps.buckets.len() {
            let (b, tags) = maps.get(i)?;
            out.extend(b.entries(tags));
        }
        Ok(out)
    }

    /// Live entries counted by the last scan.
    pub fn last_entry_count(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// Counts used and live entries at `now_ns` (CLOCK_MONOTONIC_COARSE).
    pub fn scan_at(&self, now_ns: u64) -> Result<ScanReport, DatapathError> {
        let entries = self.entries()?;
        let by_key: StdHashMap<FlowKey, &Flow> = entries.iter().map(|(k, f)| (*k, f)).collect();
        // A DSR entry has no partner (its peer key may name another
        // connection's reply entry), as in the datapath.
        let partner = |k: &FlowKey, f: &Flow| {
            (f.mode != DSR)
                .then(|| by_key.get(&f.peer_key(k.proto)).copied())
                .flatten()
        };
        let live = entries
            .iter()
            .filter(|(k, f)| pair_live(f, partner(k, f), now_ns))
            .count();
        self.live.store(live as u64, Ordering::Relaxed);
        Ok(ScanReport {
            used: entries.len(),
            live,
        })
    }

    /// One scan now.
    pub fn scan(&self) -> Result<ScanReport, DatapathError> {
        self.scan_at(monotonic_coarse_ns())
    }

    /// Writes an entry into its bucket's first free slot, or over its own
    /// (tests and tools, on a table the datapath is not writing).
    pub fn insert(&self, key: FlowKey, flow: Flow) -> Result<(), DatapathError> {
        let maps = &mut *self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let index = if flow.direction == DIR_FORWARD {
            forward_bucket(&key, &self.hash)
        } else {
            reply_bucket(&key, &self.hash)
        };
        let (mut b, tags) = maps.get(index)?;
        let way = b
            .find(tags, &key)
            .or_else(|| (0..FLOW_WAYS).find(|&w| tag::at(tags, w) == tag::FREE))
            .ok_or_else(|| DatapathError::Full(format!("{CONNTRACK}: bucket {index} is full")))?;
        b.keys[way] = key;
        b.flows[way] = flow;
        // Entry first, then its tag (the datapath's publication order).
        maps.buckets
            .set(index, b, 0)
            .map_err(DatapathError::map(CONNTRACK))?;
        maps.tags
            .set(index, tag::with(tags, way, tag::of(&key)), 0)
            .map_err(DatapathError::map(CONNTRACK_TAGS))
    }
}
