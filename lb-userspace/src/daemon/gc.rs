//! The connection-table GC task.

use std::{sync::Arc, time::Duration};

use crate::datapath::Conntrack;

/// Deletes expired connections every `every`, forever (abort the task to
/// stop it).
pub async fn run_gc(conntrack: Arc<Conntrack>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ct = Arc::clone(&conntrack);
        match tokio::task::spawn_blocking(move || ct.gc()).await {
            Ok(Ok(r)) if r.removed > 0 => {
                tracing::debug!(scanned = r.scanned, removed = r.removed, "conntrack GC")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "conntrack GC failed"),
            Err(e) => tracing::warn!(error = %e, "conntrack GC task failed"),
        }
    }
}
