//! `cargo xtask lint`: rustfmt and clippy (-D warnings), host crates and lb-ebpf.

use std::process::Command;

use anyhow::Result;

use crate::cmd;

pub fn run() -> Result<()> {
    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))?;
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "lb-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    cmd::ensure_nightly_component("clippy", "lint")?;
    // lb-ebpf only builds for the BPF target, with the nightly toolchain and
    // core rebuilt from source (what aya-build does for the real build).
    let mut ebpf = Command::new("rustup");
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
    ] {
        ebpf.env_remove(var);
    }
    ebpf.current_dir(cmd::workspace_root().join("lb-ebpf"))
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]);
    cmd::run(&mut ebpf)?;
    println!("lint: ok");
    Ok(())
}
