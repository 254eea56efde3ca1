//! `cargo xtask <task>`: the project's developer commands.
//!
//! Kept light on purpose (anyhow, clap, libc): the heavy lifting of the demo
//! and the benchmark lives in binaries of the `tests` crate, which this tool
//! builds and runs.

mod cmd;
mod lint;
mod run_bin;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ferrolb developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: nightly rust-src, LLVM 22 dev packages,
    /// bpf-linker, the Debian tools the tests use; mount bpffs.
    Setup,
    /// Run setup, then every test of the workspace (needs root), and print a summary.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. `-- --nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// rustfmt check and clippy -D warnings for the host crates and for lb-ebpf.
    Lint,
    /// Build (release), create a namespace topology, start ferrolbd, send traffic, show the spread.
    Demo {
        /// Arguments passed to the demo binary (see `--help` of ferrolb-demo).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmark: cost per packet vs an XDP_DROP program; end to end ferrolb
    /// vs nftables DNAT vs no load balancer; overlay throughput.
    Bench {
        /// Arguments passed to the bench binary (see `--help` of ferrolb-bench).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Setup => setup::run(),
        Task::Test { args } => {
            setup::run()?;
            test::run(&args)
        }
        Task::Lint => lint::run(),
        Task::Demo { args } => {
            setup::run()?;
            run_bin::run("ferrolb-demo", &args)
        }
        Task::Bench { args } => {
            setup::run()?;
            run_bin::run("ferrolb-bench", &args)
        }
    }
}
