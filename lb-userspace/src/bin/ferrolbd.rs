//! `ferrolbd`: the ferrolb daemon.
//!
//! Loads the XDP datapath, attaches it to every `--iface`, restores the
//! services saved in `--state-dir`, and serves the REST API on `--api-addr`.
//! On SIGINT or SIGTERM it detaches the program from the interfaces and
//! exits, leaving the maps pinned under `--bpffs-dir`: the next start adopts
//! them, so established connections survive a restart.

use clap::Parser;
use lb_userspace::daemon::{Daemon, DaemonArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = DaemonArgs::parse();
    let daemon = Daemon::start(&args).await?;
    daemon.serve(shutdown_signal()).await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the daemon");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
    }
}
