//! The connection-table scan task: counts live connections for
//! `/metrics` (the datapath reuses expired slots itself, nothing is
//! deleted).

use std::{sync::Arc, time::Duration};

use crate::datapath::Conntrack;

/// Scans the table every `every`, forever (abort the task to stop it).
pub async fn run_scan(conntrack: Arc<Conntrack>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ct = Arc::clone(&conntrack);
        match tokio::task::spawn_blocking(move || ct.scan()).await {
            Ok(Ok(r)) => tracing::debug!(used = r.used, live = r.live, "conntrack scan"),
            Ok(Err(e)) => tracing::warn!(error = %e, "conntrack scan failed"),
            Err(e) => tracing::warn!(error = %e, "conntrack scan task failed"),
        }
    }
}
