//! Running commands: echo them, fail with a message naming the command.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo` as invoked by the user (the same toolchain that runs xtask).
pub fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Where cargo puts build outputs (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

fn describe(cmd: &Command) -> String {
    let mut text = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            text.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    text.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Print and run a command with inherited stdio; error if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let text = describe(cmd);
    println!("+ {text}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{text}`"))?;
    if !status.success() {
        bail!("`{text}` failed ({status})");
    }
    Ok(())
}

/// Run a command quietly and return its stdout, or `None` if it failed.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes sure the nightly toolchain has `component` (installing nightly
/// with it if nightly is missing). `who` prefixes what is printed (`setup`,
/// `lint`). Returns whether anything was installed.
pub fn ensure_nightly_component(component: &str, who: &str) -> Result<bool> {
    // What `-Z build-std` needs of rust-src is its source tree in the
    // sysroot, however it got there.
    if component == "rust-src" && nightly_rust_src_present() {
        return Ok(false);
    }
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]));
    match installed {
        Some(list) if list.lines().any(|l| l.starts_with(component)) => Ok(false),
        Some(_) => {
            println!("{who}: adding {component} to the nightly toolchain");
            run(Command::new("rustup").args([
                "component",
                "add",
                component,
                "--toolchain",
                "nightly",
            ]))?;
            Ok(true)
        }
        None => {
            println!("{who}: installing the nightly toolchain with {component}");
            run(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
                component,
            ]))?;
            Ok(true)
        }
    }
}

/// Whether the nightly sysroot holds the standard library's sources.
fn nightly_rust_src_present() -> bool {
    output(Command::new("rustc").args(["+nightly", "--print", "sysroot"])).is_some_and(|sysroot| {
        std::path::Path::new(sysroot.trim())
            .join("lib/rustlib/src/rust/library/core/src/lib.rs")
            .is_file()
    })
}
