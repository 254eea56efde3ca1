//! `demo` and `bench`: build the release binaries, run one of the `tests`
//! crate's programs, and pass its exit status on.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

pub fn run(binary: &str, args: &[String]) -> Result<()> {
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--package",
        "lb-userspace",
        "--package",
        "tests",
        "--bins",
    ]))?;
    let path = cmd::target_dir().join("release").join(binary);
    println!("+ {} {}", path.display(), args.join(" "));
    let mut child = Command::new(&path)
        .args(args)
        .spawn()
        .with_context(|| format!("could not start {}", path.display()))?;
    // Ctrl-C reaches the whole foreground process group: the program cleans
    // up its namespaces and daemon on SIGINT; wait for it to finish that
    // instead of dying first. (Set after spawning so the child does not
    // inherit the ignored disposition.)
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let status = child.wait().context("waiting for the program")?;
    if !status.success() {
        bail!("{binary} failed ({status})");
    }
    Ok(())
}
