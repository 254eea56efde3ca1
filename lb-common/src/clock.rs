//! Value of the `CLOCK` map: what the daemon tells the datapath, rewritten
//! every `maps::CLOCK_TICK_MS`.

/// The one entry of `CLOCK`. The datapath reads it for the time and at each
/// connection-table bucket it computes (an inlined array load, one hot
/// cache line).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Clock {
    /// CLOCK_MONOTONIC_COARSE nanoseconds, at most `CLOCK_TICK_MS` old.
    pub now_ns: u64,
    /// Seed of the connection table's bucket hash (`flow_table`), chosen at
    /// random when the table is created and kept while it lives.
    pub flow_seed: u32,
    /// Buckets of the connection table minus one (a power of two minus one).
    pub flow_mask: u32,
}
const _: () = assert!(core::mem::size_of::<Clock>() == 16);
