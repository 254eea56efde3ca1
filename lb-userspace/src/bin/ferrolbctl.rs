//! `ferrolbctl`: command-line client of ferrolbd's REST API. Exits non-zero
//! with the API's error message when a request fails.

use clap::Parser;
use lb_userspace::cli::{CliArgs, run};

fn main() -> std::process::ExitCode {
    let args = CliArgs::parse();
    match run(&args, &mut std::io::stdout().lock()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrolbctl: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
