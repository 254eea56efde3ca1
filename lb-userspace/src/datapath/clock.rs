//! The datapath's clock. The XDP program reads the time from the `CLOCK`
//! map (an inlined array load, cheaper per packet than a time helper); the
//! daemon writes CLOCK_MONOTONIC_COARSE there every `CLOCK_TICK_MS`, with
//! the connection table's bucket hash (multiplier, shift, mask). The table
//! scan compares `Flow::last_seen_ns` against the same clock.

use std::sync::Mutex;

use aya::maps::{Array, MapData};
use lb_common::{flow_table::BucketHash, maps as names};

use super::DatapathError;

/// CLOCK_MONOTONIC_COARSE in nanoseconds, the clock of `Flow::last_seen_ns`.
pub fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE
    // always exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The `CLOCK` map, which also carries the connection table's bucket hash
/// (`lb_common::Clock`).
pub struct Clock {
    map: Mutex<Array<MapData, lb_common::Clock>>,
    bucket_hash: BucketHash,
}

impl Clock {
    pub(crate) fn new(map: Array<MapData, lb_common::Clock>, bucket_hash: BucketHash) -> Self {
        Self {
            map: Mutex::new(map),
            bucket_hash,
        }
    }

    /// Publishes the current time to the datapath.
    pub fn tick(&self) -> Result<(), DatapathError> {
        self.set(monotonic_coarse_ns())
    }

    /// Publishes `now_ns` (tests move time with this).
    pub fn set(&self, now_ns: u64) -> Result<(), DatapathError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let clock = lb_common::Clock {
            now_ns,
            bucket_hash: self.bucket_hash,
        };
        map.set(0, clock, 0)
            .map_err(DatapathError::map(names::CLOCK))
    }
}
