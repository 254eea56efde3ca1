//! The connection table's pins across restarts: a pinned table (and the
//! clock that carries its hash seed) is reused when it has the layout and
//! size this build wants; otherwise its pins are removed so the loader
//! creates them anew (the old entries are lost, which is what resizing the
//! table or upgrading its layout means).

use std::path::Path;

use aya::maps::{Array, Map, MapData, MapInfo, MapType};
use lb_common::{Clock, FlowBucket, maps as names};

/// What `prepare` found.
pub struct TablePins {
    /// The bucket hash seed: the pinned table's, or a new random one.
    pub seed: u32,
}

/// Checks the pins of `CONNTRACK` (an array of `buckets` `FlowBucket`s) and
/// `CLOCK` in `dir`, removes those that do not fit, and returns the seed to
/// use.
pub fn prepare(dir: &Path, buckets: u32) -> TablePins {
    let clock_ok = fits(dir, names::CLOCK, size_of::<Clock>(), 1);
    let table_ok = fits(dir, names::CONNTRACK, size_of::<FlowBucket>(), buckets);
    let kept = if table_ok && clock_ok {
        pinned_seed(dir)
    } else {
        None
    };
    if !table_ok {
        remove_pin(dir, names::CONNTRACK);
    }
    if !clock_ok {
        remove_pin(dir, names::CLOCK);
    }
    TablePins {
        seed: kept.unwrap_or_else(random_seed),
    }
}

/// Whether the pin `name` is absent or an array of `entries` values of
/// `value_size` bytes. A pin of another layout is removed by `prepare`.
fn fits(dir: &Path, name: &str, value_size: usize, entries: u32) -> bool {
    let Ok(info) = MapInfo::from_pin(dir.join(name)) else {
        return true;
    };
    let ok = matches!(info.map_type(), Ok(MapType::Array))
        && info.value_size() as usize == value_size
        && info.max_entries() == entries;
    if !ok {
        tracing::warn!(
            map = name,
            old_entries = info.max_entries(),
            new_entries = entries,
            old_value_size = info.value_size(),
            new_value_size = value_size,
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
fn pinned_seed(dir: &Path) -> Option<u32> {
    if !dir.join(names::CONNTRACK).exists() {
        return None;
    }
    let data = MapData::from_pin(dir.join(names::CLOCK)).ok()?;
    let clock: Array<MapData, Clock> = Array::try_from(Map::Array(data)).ok()?;
    clock.get(&0, 0).ok().map(|c| c.flow_seed)
}

/// A seed nobody outside can predict, so nobody can aim packets at one
/// bucket of the table.
fn random_seed() -> u32 {
    let mut b = [0u8; 4];
    if let Err(e) = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
    {
        tracing::warn!(error = %e, "no /dev/urandom: connection table seed from the clock");
        return super::clock::monotonic_coarse_ns() as u32 ^ std::process::id();
    }
    u32::from_ne_bytes(b)
}
