//! Pinned maps across restarts and upgrades: a pinned map is reused when it
//! has the type, key and value sizes, size and flags this build wants;
//! otherwise its pin is removed so the loader creates it anew (its entries
//! are lost, which is what resizing the connection table or upgrading a
//! map's layout means; services and tunnels come back from the state
//! directory). Also keeps the connection table's bucket hash (its
//! multiplier) with the pinned table, and drops a table whose hash is lost.

use std::path::Path;

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use lb_common::{
    Backend, BackendTunnel, Clock, Counters, DecapStat, EndpointSet, FlowBucket, GlobalCounters,
    NextHop, Service, Tunnel, TunnelEndpoint, VipKey, limits, maps as names,
};

/// What a pinned map must look like to be reused.
struct Expected {
    name: &'static str,
    map_type: MapType,
    key_size: usize,
    value_size: usize,
    entries: u32,
    flags: u32,
}

const fn expected<K, V>(name: &'static str, map_type: MapType, entries: u32) -> Expected {
    Expected {
        name,
        map_type,
        key_size: size_of::<K>(),
        value_size: size_of::<V>(),
        entries,
        flags: 0,
    }
}

/// The kernel's map flag for maps allocated per element (`bpf.h`).
const BPF_F_NO_PREALLOC: u32 = 1;

impl Expected {
    /// The same with map flags `flags`.
    const fn with_flags(self, flags: u32) -> Expected {
        Expected { flags, ..self }
    }
}

/// Every pinned map but `CONNTRACK`, `CONNTRACK_TAGS` and `CLOCK` (checked
/// in `prepare`).
fn others() -> [Expected; 16] {
    use MapType::{Array as A, Hash as H, LpmTrie as L, PerCpuArray as P};
    [
        expected::<VipKey, Service>(names::SERVICES, H, limits::MAX_SERVICES),
        expected::<u32, u32>(names::VIPS, H, limits::MAX_SERVICES),
        expected::<u32, u32>(names::RINGS, A, limits::MAX_SERVICES * limits::RING_SIZE),
        expected::<u32, Backend>(names::BACKENDS, A, limits::MAX_BACKENDS),
        expected::<u32, u32>(names::RR_STATE, P, limits::MAX_SERVICES),
        expected::<u32, Counters>(names::RETIRED_STATS, P, limits::MAX_SERVICES),
        expected::<u32, Counters>(names::BACKEND_STATS, P, limits::MAX_BACKENDS),
        expected::<u32, GlobalCounters>(names::GLOBAL_STATS, P, 1),
        expected::<u32, NextHop>(names::BACKEND_NEXT_HOP, P, limits::MAX_BACKENDS),
        expected::<u32, u64>(names::DECAP_STATS, P, DecapStat::COUNT),
        expected::<u32, u32>(names::DECAP_ADDRS, H, limits::MAX_DECAP_ADDRS),
        // LPM trie key: prefix length (u32) + address (u32).
        // An LPM trie is created with BPF_F_NO_PREALLOC (the kernel's
        // requirement, set by aya-ebpf).
        expected::<u64, Tunnel>(names::TUNNELS, L, limits::MAX_TUNNELS)
            .with_flags(BPF_F_NO_PREALLOC),
        expected::<u32, BackendTunnel>(names::BACKEND_TUNNEL, P, limits::MAX_BACKENDS),
        expected::<TunnelEndpoint, u32>(names::TUNNEL_ENDPOINTS, H, limits::MAX_TUNNEL_ENDPOINTS),
        expected::<u32, EndpointSet>(names::TUNNEL_ENDPOINT_SET, A, 1),
        expected::<u32, u32>(names::TUNNEL_NODES, H, limits::MAX_TUNNELS),
    ]
}

/// What `prepare` found.
pub struct TablePins {
    /// The bucket hash multiplier (`BucketHash::mult`): the pinned table's,
    /// or a new random one.
    pub seed: u64,
}

/// Checks the pins of `CONNTRACK` (an array of `buckets` `FlowBucket`s),
/// its tag words `CONNTRACK_TAGS` and `CLOCK` in `dir`, removes those that
/// do not fit and those of maps this build no longer has (`RETIRED_PINS`),
/// and returns the seed to use.
pub fn prepare(dir: &Path, buckets: u32) -> TablePins {
    for name in names::RETIRED_PINS {
        remove_pin(dir, name);
    }
    for e in others() {
        if !fits(dir, &e) {
            remove_pin(dir, e.name);
        }
    }
    let clock_ok = fits(
        dir,
        &expected::<u32, Clock>(names::CLOCK, MapType::Array, 1).with_flags(names::PAGE_ALIGNED),
    );
    // The table and its tag words go together: a table pinned without
    // them (an older build's) has entries no lookup would find.
    let table_ok = fits(
        dir,
        &expected::<u32, FlowBucket>(names::CONNTRACK, MapType::Array, buckets)
            .with_flags(names::PAGE_ALIGNED),
    ) && fits(
        dir,
        &expected::<u32, u64>(names::CONNTRACK_TAGS, MapType::Array, buckets),
    ) && dir.join(names::CONNTRACK).exists()
        == dir.join(names::CONNTRACK_TAGS).exists();
    let kept = if table_ok && clock_ok {
        pinned_seed(dir)
    } else {
        None
    };
    // A table whose bucket hash is not kept (its clock pin gone or of
    // another layout) is unusable: its entries sit in buckets of an
    // unknown hash, where lookups miss while they look live to the scans
    // and fill their buckets. It starts empty with the new hash.
    if !table_ok || kept.is_none() {
        remove_pin(dir, names::CONNTRACK);
        remove_pin(dir, names::CONNTRACK_TAGS);
    }
    if !clock_ok {
        remove_pin(dir, names::CLOCK);
    }
    TablePins {
        seed: kept.unwrap_or_else(random_seed),
    }
}

/// Whether the pin of `e.name` is absent or looks as `e` says. A pin of
/// another layout is removed by `prepare`.
fn fits(dir: &Path, e: &Expected) -> bool {
    let Ok(info) = MapInfo::from_pin(dir.join(e.name)) else {
        return true;
    };
    let ok = info.map_type().is_ok_and(|t| t == e.map_type)
        && info.key_size() as usize == e.key_size
        && info.value_size() as usize == e.value_size
        && info.max_entries() == e.entries
        && info.map_flags() == e.flags;
    if !ok {
        tracing::warn!(
            map = e.name,
            old_entries = info.max_entries(),
            new_entries = e.entries,
            old_value_size = info.value_size(),
            new_value_size = e.value_size,
            old_flags = info.map_flags(),
            new_flags = e.flags,
            "pinned map has another size or layout: recreating it, its entries are dropped"
        );
    }
    ok
}

fn remove_pin(dir: &Path, name: &str) {
    let path = dir.join(name);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove the old pin");
    }
}

/// The seed in the pinned clock, if the table is pinned (restart).
fn pinned_seed(dir: &Path) -> Option<u64> {
    if !dir.join(names::CONNTRACK).exists() {
        return None;
    }
    let data = MapData::from_pin(dir.join(names::CLOCK)).ok()?;
    let clock: Array<MapData, Clock> = Array::try_from(Map::Array(data)).ok()?;
    clock.get(&0, 0).ok().map(|c| c.bucket_hash.mult)
}

/// A seed nobody outside can predict, so nobody can aim packets at one
/// bucket of the table.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if let Err(e) = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
    {
        tracing::warn!(error = %e, "no /dev/urandom: connection table seed from the clock");
        return super::clock::monotonic_coarse_ns() ^ u64::from(std::process::id()) << 32;
    }
    u64::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expectations agree with the object: a freshly pinned set of maps
    /// all fit (otherwise every start would drop them).
    #[test]
    fn maps_pinned_by_this_build_fit() {
        let dirs = crate::test_support::Dirs::new();
        let dp = dirs.load();
        let pins = dirs.pin.clone();
        for e in others() {
            assert!(pins.join(e.name).exists(), "{} pinned", e.name);
            assert!(fits(&pins, &e), "{} fits", e.name);
        }
        drop(dp);
    }

    /// A daemon's pins after it stopped (kept alive by the returned
    /// directories), the table's bucket count and its hash's seed.
    fn pinned_table() -> (crate::test_support::Dirs, std::path::PathBuf, u32, u64) {
        let dirs = crate::test_support::Dirs::new();
        let buckets = lb_common::flow_table::buckets_for(dirs.options().conntrack_size.unwrap());
        drop(dirs.load());
        let pins = dirs.pin.clone();
        let seed = pinned_seed(&pins).expect("the clock and table are pinned");
        (dirs, pins, buckets, seed)
    }

    /// `prepare` drops the pinned table and its tags, and the table the
    /// loader creates next gets a new hash (not `seed`).
    fn assert_recreated(pins: &Path, buckets: u32, seed: u64) {
        let fresh = prepare(pins, buckets);
        assert!(!pins.join(names::CONNTRACK).exists(), "table dropped");
        assert!(!pins.join(names::CONNTRACK_TAGS).exists(), "tags dropped");
        assert_ne!(fresh.seed, seed, "a new table gets a new hash");
    }

    /// A restart keeps the table with its bucket hash; a table whose hash is
    /// lost (here its clock pin is gone, as when an upgrade changes the
    /// clock's layout) is recreated rather than kept with a new hash.
    #[test]
    fn the_table_is_kept_only_with_its_hash() {
        let (_dirs, pins, buckets, seed) = pinned_table();
        assert_eq!(prepare(&pins, buckets).seed, seed);
        assert!(pins.join(names::CONNTRACK).exists());

        std::fs::remove_file(pins.join(names::CLOCK)).unwrap();
        assert_recreated(&pins, buckets, seed);
    }

    /// A table pinned without its tag words (as builds before them pinned
    /// it) is recreated: no lookup would find its entries.
    #[test]
    fn the_table_is_kept_only_with_its_tags() {
        let (_dirs, pins, buckets, seed) = pinned_table();

        std::fs::remove_file(pins.join(names::CONNTRACK_TAGS)).unwrap();
        assert_recreated(&pins, buckets, seed);
    }

    /// The table and clock are created page-aligned (`PAGE_ALIGNED`), and
    /// a table pinned without the flag (by builds before it, same sizes)
    /// is recreated rather than kept misaligned.
    #[test]
    fn the_table_is_kept_only_page_aligned() {
        let (_dirs, pins, buckets, seed) = pinned_table();
        for name in [names::CONNTRACK, names::CLOCK] {
            let info = MapInfo::from_pin(pins.join(name)).unwrap();
            assert_eq!(info.map_flags(), names::PAGE_ALIGNED, "{name}");
        }

        std::fs::remove_file(pins.join(names::CONNTRACK)).unwrap();
        let old: Array<MapData, FlowBucket> = Array::create(buckets, 0).unwrap();
        old.pin(pins.join(names::CONNTRACK)).unwrap();
        assert_recreated(&pins, buckets, seed);
    }

    /// A pin an earlier build made for a map this one no longer has is
    /// removed (it would otherwise stay in bpffs for good).
    #[test]
    fn retired_pins_are_removed() {
        let dir = std::env::temp_dir().join(format!("ferrolb-retired-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in names::RETIRED_PINS {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        prepare(&dir, 1);
        for name in names::RETIRED_PINS {
            assert!(!dir.join(name).exists(), "{name} removed");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
