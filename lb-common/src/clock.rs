//! Value of the `CLOCK` map: what the daemon tells the datapath, rewritten
//! every `maps::CLOCK_TICK_MS`.

use crate::flow_table::BucketHash;

/// The one entry of `CLOCK`. The datapath reads it for the time and at each
/// connection-table bucket it computes (an inlined array load, one hot
/// cache line).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Clock {
    /// CLOCK_MONOTONIC_COARSE nanoseconds, at most `CLOCK_TICK_MS` old.
    pub now_ns: u64,
    /// The connection table's bucket hash (`flow_table::BucketHash`), its
    /// multiplier chosen at random when the table is created and kept while
    /// it lives.
    pub bucket_hash: BucketHash,
}
const _: () = assert!(core::mem::size_of::<Clock>() == 24);
