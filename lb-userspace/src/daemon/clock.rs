//! The clock task: publishes the time to the datapath (see
//! `datapath::Clock`).

use std::{sync::Arc, time::Duration};

use lb_common::maps::CLOCK_TICK_MS;

use crate::datapath::Clock;

/// Writes the time into the `CLOCK` map every `CLOCK_TICK_MS`, forever
/// (abort the task to stop it).
pub async fn run_clock(clock: Arc<Clock>) {
    let mut tick = tokio::time::interval(Duration::from_millis(CLOCK_TICK_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Err(e) = clock.tick() {
            tracing::warn!(error = %e, "writing the datapath clock failed");
        }
    }
}
