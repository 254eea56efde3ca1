//! Pieces shared by the parts of `cargo xtask demo` (`ferrolb-demo`):
//! step headings that honour Ctrl-C, running `ferrolbctl` visibly.

use anyhow::{Result, bail};

use crate::{daemon::Daemon, interrupt};

/// Prints a step heading; fails if Ctrl-C was pressed (the caller then
/// cleans up by dropping what it built).
pub fn step(title: &str) -> Result<()> {
    interrupt::check()?;
    println!("\n=== {title}");
    Ok(())
}

/// Runs `ferrolbctl args` against `daemon`, printing the command and its
/// output; fails with its error output if it fails.
pub fn print_ctl(daemon: &Daemon, args: &[&str]) -> Result<()> {
    println!("  $ ferrolbctl {}", args.join(" "));
    let out = daemon.ctl(args)?;
    print!("{}", indent(&String::from_utf8_lossy(&out.stdout)));
    if !out.status.success() {
        bail!(
            "ferrolbctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `text` with every line indented by four spaces (and a final newline).
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
