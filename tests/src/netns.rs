//! Network namespaces created by a test, deleted on drop (also on panic).
//!
//! Names are unique per process and per call (`flb<pid>-<n>-<role>`), so
//! tests run in parallel and leftovers of a killed run can be recognised and
//! removed ([`cleanup_stale`]). Commands run inside with
//! `nsenter --net=/run/netns/NAME` (not `ip netns exec`, which remounts /sys
//! and would hide /sys/fs/bpf); test code runs inside with [`Netns::run`].

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::process::run_checked;

/// Prefix of every namespace (and bpffs directory) a test creates.
pub const PREFIX: &str = "flb";
const NETNS_DIR: &str = "/run/netns";
const CMD_TIMEOUT: Duration = Duration::from_secs(20);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `flb<pid>-<n>-<role>`.
pub fn unique_name(role: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}-{role}", std::process::id())
}

/// A network namespace under /run/netns. Deleted on drop if this value
/// created it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owned: bool,
}

impl Netns {
    /// Create a namespace with a unique name for `role` and bring its
    /// loopback up.
    pub fn create(role: &str) -> Result<Netns> {
        let name = unique_name(role);
        run_checked(
            Command::new("ip").args(["netns", "add", &name]),
            CMD_TIMEOUT,
        )
        .with_context(|| format!("creating network namespace {name}"))?;
        let ns = Netns { name, owned: true };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A non-owning handle on the same namespace.
    pub fn handle(&self) -> Netns {
        Netns {
            name: self.name.clone(),
            owned: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// `ip -n NAME ARGS...`; returns stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_checked(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            CMD_TIMEOUT,
        )
    }

    /// The path MTU this namespace has learned toward `to` (from `ip route
    /// get`), None if none below its route's.
    pub fn learned_mtu(&self, to: std::net::Ipv4Addr) -> Result<Option<u32>> {
        let route = self.ip(&["route", "get", &to.to_string()])?;
        route
            .split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)
            .map(|m| {
                m.parse::<u32>()
                    .with_context(|| format!("mtu in {route:?}"))
            })
            .transpose()
    }

    /// A command that runs `program` inside this namespace
    /// (`nsenter --net=/run/netns/NAME -- program`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        cmd
    }

    /// Run `program args...` inside the namespace to completion (bounded);
    /// returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        run_checked(self.command(program).args(args), CMD_TIMEOUT)
    }

    /// Run `f` on a thread that has entered this namespace, and return its
    /// result. Sockets created inside keep the namespace after the thread
    /// ends, so a connection made here can be used from the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let file = File::open(self.path())
            .with_context(|| format!("opening {}", self.path().display()))?;
        thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: setns(2) on an open namespace file descriptor;
                    // it changes only this thread's network namespace.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc != 0 {
                        return Err(anyhow!(
                            "setns into {}: {}",
                            self.name,
                            std::io::Error::last_os_error()
                        ));
                    }
                    Ok(f())
                })
                .join()
                .map_err(|panic| {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    anyhow!("code running in namespace {} panicked: {msg}", self.name)
                })?
        })
    }

    /// Write a sysctl under /proc/sys/net for this namespace, e.g.
    /// `sysctl("net/ipv4/ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value))?
            .with_context(|| format!("setting {} = {value} in {}", path.display(), self.name))
    }

    /// `ethtool -K DEV FEATURE on|off` inside the namespace.
    pub fn ethtool_feature(&self, dev: &str, feature: &str, on: bool) -> Result<()> {
        self.exec(
            "ethtool",
            &["-K", dev, feature, if on { "on" } else { "off" }],
        )?;
        Ok(())
    }

    /// Assign `cidr` (e.g. `10.0.1.2/24`) to `dev` and bring it up.
    pub fn addr(&self, dev: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", dev])?;
        self.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Interface index of `dev` in this namespace.
    pub fn ifindex(&self, dev: &str) -> Result<u32> {
        let path = PathBuf::from(format!("/sys/class/net/{dev}/ifindex"));
        let text = self.run(|| std::fs::read_to_string(&path))??;
        Ok(text.trim().parse()?)
    }

    /// Kill every process still running in the namespace.
    fn kill_all(&self) {
        if let Ok(pids) = run_checked(
            Command::new("ip").args(["netns", "pids", &self.name]),
            CMD_TIMEOUT,
        ) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2); the pids are processes inside a namespace
                // this test created.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            self.kill_all();
            let _ = run_checked(
                Command::new("ip").args(["netns", "del", &self.name]),
                CMD_TIMEOUT,
            );
        }
    }
}

/// Create a veth pair with one end in each namespace; no name ever exists in
/// the root namespace. Both ends are brought up, with one queue per CPU and
/// each CPU transmitting on its own queue ([`set_xps`]), as a multi-queue
/// NIC's driver sets itself up: a veth's receive queue is the sender's
/// transmit queue, and with a single one, every packet of an end whose
/// queue is served by NAPI (an XDP program attached in driver mode, or GRO
/// on) was handled by whichever CPU had scheduled that one NAPI instance,
/// in the middle of the other CPU's work.
pub fn veth(a: &Netns, a_dev: &str, b: &Netns, b_dev: &str) -> Result<()> {
    let queues = veth_queues();
    let queue_count = queues.to_string();
    a.ip(&[
        "link",
        "add",
        a_dev,
        "numtxqueues",
        &queue_count,
        "numrxqueues",
        &queue_count,
        "type",
        "veth",
        "peer",
        "name",
        b_dev,
        "netns",
        b.name(),
    ])
    .with_context(|| {
        format!(
            "creating veth {}:{a_dev} <-> {}:{b_dev}",
            a.name(),
            b.name()
        )
    })?;
    set_xps(a, a_dev, queues)?;
    set_xps(b, b_dev, queues)?;
    a.ip(&["link", "set", a_dev, "up"])?;
    b.ip(&["link", "set", b_dev, "up"])?;
    Ok(())
}

/// Queues of every veth: one per CPU (the peer takes the same count).
fn veth_queues() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(MAX_VETH_QUEUES))
}

/// Most queues a veth gets (an XPS mask of one 32-bit word).
const MAX_VETH_QUEUES: usize = 32;

/// Maps transmit queue `i` of `dev` (of `queues`) to CPU `i` (XPS). XPS is set through
/// sysfs only, which shows a namespace's devices to a process that mounted
/// it from there: `ip netns exec` does.
fn set_xps(ns: &Netns, dev: &str, queues: usize) -> Result<()> {
    let script: Vec<String> = (0..queues)
        .map(|i| {
            format!(
                "echo {:x} > /sys/class/net/{dev}/queues/tx-{i}/xps_cpus",
                1u32 << i
            )
        })
        .collect();
    run_checked(
        Command::new("ip").args(["netns", "exec", ns.name(), "sh", "-ec", &script.join("; ")]),
        CMD_TIMEOUT,
    )
    .with_context(|| format!("mapping {dev}'s queues to CPUs in {}", ns.name()))?;
    Ok(())
}

/// Remove namespaces left behind by test processes that no longer run
/// (killed before their drops ran), and the processes still inside them.
pub fn cleanup_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if owner_is_gone(&name) {
            // Re-own it so Drop kills what is inside and deletes it.
            drop(Netns { name, owned: true });
        }
    }
}

/// Whether `name` was made by [`unique_name`] in a process that has ended.
pub fn owner_is_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((pid, _)) = rest.split_once('-') else {
        return false;
    };
    match pid.parse::<u32>() {
        Ok(pid) => !PathBuf::from(format!("/proc/{pid}")).exists(),
        Err(_) => false,
    }
}
