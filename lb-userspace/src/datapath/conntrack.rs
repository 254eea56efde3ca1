//! The connection table from userspace: expiry GC and purge of removed
//! backends' connections.

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::maps::{HashMap, MapData, MapError};
use lb_common::{Flow, FlowKey, maps::CONNTRACK};

use super::{BackendHandle, DatapathError, clock::monotonic_coarse_ns};

/// The `CONNTRACK` map, shared by the service programming (purge) and the
/// GC task.
pub struct Conntrack {
    map: Mutex<HashMap<MapData, FlowKey, Flow>>,
    entries: AtomicU64,
}

/// What one GC pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Entries seen.
    pub scanned: usize,
    /// Entries deleted.
    pub removed: usize,
}

/// The first half of a GC pass: entries that looked expired in a snapshot.
/// `Conntrack::gc_apply` checks each again before deleting it.
#[derive(Clone, Debug, Default)]
pub struct GcPlan {
    /// Entries in the snapshot.
    pub scanned: usize,
    /// Keys that looked expired, with the entry as it was then.
    pub candidates: Vec<(FlowKey, Flow)>,
}

/// Whether `flow` is expired at `now_ns` given its
/// partner's last-seen time: the pair lives while either direction is seen
/// within the timeout, as the datapath judges it.
fn pair_expired(flow: &Flow, partner: Option<&Flow>, now_ns: u64) -> bool {
    let partner_seen = partner.map_or(0, |p| p.last_seen_ns);
    flow.expired_at(flow.last_seen_ns.max(partner_seen), now_ns)
}

impl Conntrack {
    pub(crate) fn new(map: HashMap<MapData, FlowKey, Flow>) -> Self {
        Self {
            map: Mutex::new(map),
            entries: AtomicU64::new(0),
        }
    }

    /// Every entry (a snapshot; the datapath keeps writing).
    pub fn entries(&self) -> Result<Vec<(FlowKey, Flow)>, DatapathError> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        Self::snapshot(&map)
    }

    fn snapshot(
        map: &HashMap<MapData, FlowKey, Flow>,
    ) -> Result<Vec<(FlowKey, Flow)>, DatapathError> {
        let mut out = Vec::new();
        for item in map.iter() {
            match item {
                Ok(kv) => out.push(kv),
                // The key vanished between listing and reading it.
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(DatapathError::map(CONNTRACK)(e)),
            }
        }
        Ok(out)
    }

    /// Entries counted by the last GC pass or purge.
    pub fn last_entry_count(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    /// Writes an entry (tests; the datapath writes its own).
    pub fn insert(&self, key: FlowKey, flow: Flow) -> Result<(), DatapathError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(key, flow, 0)
            .map_err(DatapathError::map(CONNTRACK))
    }

    fn delete(
        map: &mut HashMap<MapData, FlowKey, Flow>,
        keys: &[FlowKey],
    ) -> Result<usize, DatapathError> {
        let mut n = 0;
        for k in keys {
            match map.remove(k) {
                Ok(()) => n += 1,
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(DatapathError::map(CONNTRACK)(e)),
            }
        }
        Ok(n)
    }

    /// Deletes expired connections at `now_ns` (CLOCK_MONOTONIC_COARSE). A
    /// pair is expired when neither direction was seen within the timeout,
    /// as the datapath judges it; an entry whose partner is gone expires on
    /// its own.
    pub fn gc_at(&self, now_ns: u64) -> Result<GcReport, DatapathError> {
        let plan = self.gc_plan(now_ns)?;
        self.gc_apply(&plan, now_ns)
    }

    /// Snapshots the table and lists the entries that look expired.
    pub fn gc_plan(&self, now_ns: u64) -> Result<GcPlan, DatapathError> {
        let entries = self.entries()?;
        let by_key: StdHashMap<FlowKey, &Flow> = entries.iter().map(|(k, f)| (*k, f)).collect();
        let candidates = entries
            .iter()
            .filter(|(k, f)| pair_expired(f, by_key.get(&f.peer_key(k.proto)).copied(), now_ns))
            .copied()
            .collect();
        Ok(GcPlan {
            scanned: entries.len(),
            candidates,
        })
    }

    /// Deletes the candidates of `plan` that are still expired: each is read
    /// again, with its partner, and kept if it was refreshed or re-created
    /// since the snapshot (seen again, or another backend id or generation).
    pub fn gc_apply(&self, plan: &GcPlan, now_ns: u64) -> Result<GcReport, DatapathError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut doomed = Vec::new();
        for (key, seen) in &plan.candidates {
            let Some(now) = Self::read(&map, key)? else {
                continue;
            };
            if (now.backend_id, now.backend_generation)
                != (seen.backend_id, seen.backend_generation)
            {
                continue;
            }
            let partner = Self::read(&map, &now.peer_key(key.proto))?;
            if pair_expired(&now, partner.as_ref(), now_ns) {
                doomed.push(*key);
            }
        }
        let removed = Self::delete(&mut map, &doomed)?;
        self.entries
            .store((plan.scanned - removed) as u64, Ordering::Relaxed);
        Ok(GcReport {
            scanned: plan.scanned,
            removed,
        })
    }

    /// The entry under `key`, if any.
    fn read(
        map: &HashMap<MapData, FlowKey, Flow>,
        key: &FlowKey,
    ) -> Result<Option<Flow>, DatapathError> {
        match map.get(key, 0) {
            Ok(flow) => Ok(Some(flow)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(DatapathError::map(CONNTRACK)(e)),
        }
    }

    /// One GC pass now.
    pub fn gc(&self) -> Result<GcReport, DatapathError> {
        self.gc_at(monotonic_coarse_ns())
    }

    /// Deletes the connections (both directions) of `backends`, matching id
    /// and generation. Returns how many entries went.
    pub fn purge_backends(&self, backends: &[BackendHandle]) -> Result<usize, DatapathError> {
        if backends.is_empty() {
            return Ok(0);
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = Self::snapshot(&map)?;
        let gone: HashSet<(u32, u32)> = backends.iter().map(|b| (b.id, b.generation)).collect();
        let doomed: Vec<FlowKey> = entries
            .iter()
            .filter(|(_, f)| gone.contains(&(f.backend_id, f.backend_generation)))
            .map(|(k, _)| *k)
            .collect();
        let removed = Self::delete(&mut map, &doomed)?;
        self.entries
            .store((entries.len() - removed) as u64, Ordering::Relaxed);
        Ok(removed)
    }
}
