//! ferrolbd started by a test in the load balancer's namespace, with its own
//! state directory and bpffs pin directory, stopped (SIGTERM) and cleaned up
//! on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::api::Api;
use crate::bins::bin_path;
use crate::netns::{Netns, owner_is_gone, unique_name};
use crate::process::{Proc, run_output};
use crate::tempdir::TempDir;

/// Where the API listens inside the load balancer's namespace.
pub const API_ADDR: &str = "127.0.0.1:7701";
const BPFFS: &str = "/sys/fs/bpf";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Interfaces to attach to (`--iface`).
    pub ifaces: Vec<String>,
    /// Interfaces to decapsulate IPIP on (`--node-decap`).
    pub node_decap: Vec<String>,
    /// `--xdp-mode` (auto, driver, skb).
    pub xdp_mode: String,
    /// Extra flags.
    pub extra_args: Vec<String>,
}

impl DaemonConfig {
    pub fn new(ifaces: Vec<String>) -> DaemonConfig {
        DaemonConfig {
            ifaces,
            node_decap: Vec::new(),
            xdp_mode: "auto".to_string(),
            extra_args: Vec::new(),
        }
    }
}

/// A running (or stopped, restartable) ferrolbd.
pub struct Daemon {
    proc: Option<Proc>,
    ns: Netns,
    config: DaemonConfig,
    dir: TempDir,
    bpffs_dir: PathBuf,
}

impl Daemon {
    /// Start ferrolbd in `ns` and wait until `/healthz` answers.
    pub fn start(ns: &Netns, config: DaemonConfig) -> Result<Daemon> {
        cleanup_stale_pins();
        let dir = TempDir::new("ferrolbd")?;
        std::fs::create_dir_all(dir.path().join("state"))?;
        let mut daemon = Daemon {
            proc: None,
            ns: ns.handle(),
            config,
            dir,
            bpffs_dir: PathBuf::from(BPFFS).join(unique_name("pins")),
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    /// Persistent configuration directory (`--state-dir`).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Pinned maps directory (`--bpffs-dir`).
    pub fn bpffs_dir(&self) -> &Path {
        &self.bpffs_dir
    }

    /// The daemon's log file (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("ferrolbd.log")
    }

    /// Contents of the log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn api_url(&self) -> String {
        format!("http://{API_ADDR}")
    }

    /// A client for the REST API.
    pub fn api(&self) -> Api {
        Api::new(&self.ns, &self.api_url())
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().and_then(Proc::pid)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the daemon log")?;
        let mut cmd = self.ns.command(bin_path("ferrolbd")?);
        for iface in &self.config.ifaces {
            cmd.args(["--iface", iface]);
        }
        for iface in &self.config.node_decap {
            cmd.args(["--node-decap", iface]);
        }
        cmd.args(["--api-addr", API_ADDR])
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--bpffs-dir")
            .arg(&self.bpffs_dir)
            .args(["--xdp-mode", &self.config.xdp_mode])
            .args(&self.config.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut proc = Proc::spawn_inherit("ferrolbd", &mut cmd)?;
        let api = self.api();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = proc.try_status() {
                bail!("ferrolbd exited at start ({status}); log:\n{}", self.log());
            }
            if api.healthy() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "ferrolbd not healthy after {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGTERM and wait for exit. Returns the exit status (None if it had to
    /// be killed or was not running).
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        match self.proc.take() {
            Some(mut proc) => proc.stop(),
            None => Ok(None),
        }
    }

    /// Stop (SIGTERM) and start again with the same state and pin
    /// directories.
    pub fn restart(&mut self) -> Result<()> {
        let status = self.stop()?;
        match status {
            Some(status) if status.success() => {}
            other => bail!(
                "ferrolbd did not exit cleanly on SIGTERM ({other:?}); log:\n{}",
                self.log()
            ),
        }
        self.spawn()
    }

    /// Run `ferrolbctl --api URL ARGS...` in the daemon's namespace.
    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = self.ns.command(bin_path("ferrolbctl")?);
        cmd.args(["--api", &self.api_url()]).args(args);
        run_output(&mut cmd, CTL_TIMEOUT)
    }

    /// `ferrolbctl args` that must succeed: its stdout (panics with the
    /// command and its output otherwise).
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args).unwrap();
        let (o, e) = output_text(&out);
        assert!(out.status.success(), "ferrolbctl {args:?} failed: {o}{e}");
        o
    }

    /// `ferrolbctl args` that must fail: its stderr (panics with the
    /// command and its output otherwise).
    pub fn ctl_err(&self, args: &[&str]) -> String {
        let out = self.ctl(args).unwrap();
        let (o, e) = output_text(&out);
        assert!(
            !out.status.success(),
            "ferrolbctl {args:?} should fail: {o}"
        );
        e
    }
}

fn output_text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.bpffs_dir);
    }
}

/// Remove pin directories left by test processes that no longer run.
pub fn cleanup_stale_pins() {
    let Ok(entries) = std::fs::read_dir(BPFFS) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if owner_is_gone(&name) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
