//! Ctrl-C handling for the demo and the benchmark: SIGINT sets a flag, the
//! program checks it between steps and unwinds normally, so every namespace,
//! daemon and server is torn down by its drop.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the SIGINT/SIGTERM handler (once).
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: still cleaning up, please wait");
        } else {
            eprintln!("\ninterrupted: cleaning up (namespaces, daemon, servers)");
        }
    })?;
    Ok(())
}

/// Error out if Ctrl-C was pressed.
pub fn check() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}
