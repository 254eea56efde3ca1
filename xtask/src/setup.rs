//! `cargo xtask setup`: install only what is missing, saying what it does.
//!
//! Checks are cheap (a `dpkg-query`, a `--version`, a look at PATH and
//! /proc/mounts), so a machine that has everything is done in well under a
//! second.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

/// LLVM libraries bpf-linker links against (llvm-22 feature).
const LLVM_PACKAGES: &[&str] = &["llvm-22-dev", "libpolly-22-dev", "libzstd-dev"];
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13";

/// Tools the tests, the demo and the benchmark call, and their Debian package.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("nft", "nftables"),
    ("ethtool", "ethtool"),
    ("iperf3", "iperf3"),
    ("bpftool", "bpftool"),
    ("tcpdump", "tcpdump"),
];

const BPFFS: &str = "/sys/fs/bpf";

pub fn run() -> Result<()> {
    let mut apt = Apt::default();
    let mut done_something = false;

    done_something |= cmd::ensure_nightly_component("rust-src", "setup")?;

    let missing_llvm: Vec<&str> = LLVM_PACKAGES
        .iter()
        .copied()
        .filter(|p| !deb_installed(p))
        .collect();
    if !missing_llvm.is_empty() {
        println!("setup: installing LLVM 22 development packages");
        apt.install(&missing_llvm)?;
        done_something = true;
    }

    done_something |= ensure_bpf_linker()?;

    let missing_tools: Vec<&str> = TOOLS
        .iter()
        .filter(|(bin, _)| find_tool(bin).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing_tools.is_empty() {
        println!("setup: installing tools: {}", missing_tools.join(" "));
        apt.install(&missing_tools)?;
        done_something = true;
    }

    done_something |= ensure_bpffs()?;

    if done_something {
        println!("setup: done");
    } else {
        println!("setup: everything is already in place");
    }
    Ok(())
}

fn ensure_bpf_linker() -> Result<bool> {
    let version = cmd::output(Command::new("bpf-linker").arg("--version"));
    let wanted = format!("bpf-linker {BPF_LINKER_VERSION}.");
    if version.as_deref().is_some_and(|v| v.contains(&wanted)) {
        return Ok(false);
    }
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (takes a few minutes)"
    );
    cmd::run(Command::new("cargo").env("LLVM_PREFIX", LLVM_PREFIX).args([
        "install",
        "bpf-linker",
        "--version",
        &format!("^{BPF_LINKER_VERSION}"),
        "--no-default-features",
        "--features",
        "llvm-22",
    ]))?;
    Ok(true)
}

fn ensure_bpffs() -> Result<bool> {
    let mounts = std::fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let _source = fields.next();
        fields.next() == Some(BPFFS) && fields.next() == Some("bpf")
    });
    if mounted {
        return Ok(false);
    }
    println!("setup: mounting bpffs at {BPFFS}");
    std::fs::create_dir_all(BPFFS).with_context(|| format!("creating {BPFFS}"))?;
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))?;
    Ok(true)
}

fn deb_installed(package: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

/// Look a program up in PATH and in the sbin directories (which a non-login
/// root shell may lack in PATH).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// apt-get, with `apt-get update` run once before the first install.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn install(&mut self, packages: &[&str]) -> Result<()> {
        if !self.updated {
            cmd::run(
                Command::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["update", "-q"]),
            )?;
            self.updated = true;
        }
        cmd::run(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(packages),
        )
    }
}
