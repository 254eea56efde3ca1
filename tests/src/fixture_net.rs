//! A network namespace that gives the packet fixtures a deterministic FIB:
//! one namespace, two interfaces (client side and backend side, the two ends
//! of a veth pair), fixed MACs and permanent neighbour entries.
//!
//! ```text
//!   client 10.0.1.2 (02:..:01:02) -- fx-client 10.0.1.1 (02:..:01:01)
//!   backends 10.0.2.2, .3 (02:..:02:02, :03) -- fx-backend 10.0.2.1 (02:..:02:01)
//!   10.0.2.9: on the backend link, no neighbour entry
//! ```

use std::{os::fd::AsRawFd, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::packets::Mac;

pub const CLIENT_IF: &str = "fx-client";
pub const BACKEND_IF: &str = "fx-backend";
pub const CLIENT_IF_MAC: Mac = [2, 0, 0, 0, 1, 1];
pub const CLIENT_MAC: Mac = [2, 0, 0, 0, 1, 2];
pub const BACKEND_IF_MAC: Mac = [2, 0, 0, 0, 2, 1];
pub const BACKEND1_MAC: Mac = [2, 0, 0, 0, 2, 2];
pub const BACKEND2_MAC: Mac = [2, 0, 0, 0, 2, 3];

pub struct FixtureNet {
    pub name: String,
    pub client_ifindex: u32,
    pub backend_ifindex: u32,
}

/// Runs `ip` with `args`; an error carries its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `02:00:00:00:01:01`.
pub fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl FixtureNet {
    /// Creates the namespace and moves the calling thread into it (BPF map
    /// updates naming interfaces and test runs resolve them there).
    pub fn enter() -> Result<FixtureNet> {
        crate::netns::cleanup_stale();
        let name = crate::netns::unique_name("fx");
        ip(&["netns", "add", &name])?;
        let net = FixtureNet {
            name: name.clone(),
            client_ifindex: 0,
            backend_ifindex: 0,
        };
        let n = name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            n,
            "link",
            "add",
            CLIENT_IF,
            "address",
            &mac_str(CLIENT_IF_MAC),
            "type",
            "veth",
            "peer",
            "name",
            BACKEND_IF,
            "address",
            &mac_str(BACKEND_IF_MAC),
        ])?;
        ip(&["-n", n, "addr", "add", "10.0.1.1/24", "dev", CLIENT_IF])?;
        ip(&["-n", n, "addr", "add", "10.0.2.1/24", "dev", BACKEND_IF])?;
        ip(&["-n", n, "link", "set", CLIENT_IF, "up"])?;
        ip(&["-n", n, "link", "set", BACKEND_IF, "up"])?;
        for (addr, mac, dev) in [
            ("10.0.1.2", CLIENT_MAC, CLIENT_IF),
            ("10.0.2.2", BACKEND1_MAC, BACKEND_IF),
            ("10.0.2.3", BACKEND2_MAC, BACKEND_IF),
        ] {
            ip(&[
                "-n",
                n,
                "neigh",
                "replace",
                addr,
                "lladdr",
                &mac_str(mac),
                "dev",
                dev,
                "nud",
                "permanent",
            ])?;
        }
        net.reenter()?;
        // /proc/sys/net follows the opening thread's namespace.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling forwarding")?;
        let mut net = net;
        net.client_ifindex = ifindex(CLIENT_IF)?;
        net.backend_ifindex = ifindex(BACKEND_IF)?;
        Ok(net)
    }
}

impl FixtureNet {
    /// Moves the calling thread (back) into this namespace: test runs
    /// resolve their ingress interface in the caller's namespace, so a
    /// program using two fixtures switches between them.
    pub fn reenter(&self) -> Result<()> {
        let file = std::fs::File::open(format!("/run/netns/{}", self.name))?;
        // SAFETY: setns on a valid namespace fd; affects this thread only.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Index of interface `name` in the calling thread's namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("no interface {name}");
    }
    Ok(idx)
}

impl Drop for FixtureNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
