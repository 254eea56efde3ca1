//! `cargo xtask test`: every test of the workspace, then a summary.
//!
//! Runs `cargo test --workspace --exclude lb-ebpf --no-fail-fast` (lb-ebpf
//! only builds for the BPF target; lb-userspace's build script builds it),
//! streams its output, and ends with a summary per test binary and one
//! aggregated `test result:` line in cargo's own format.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cmd;

#[derive(Default, Debug, Clone, PartialEq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    filtered: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.filtered += other.filtered;
    }
}

struct Suite {
    name: String,
    counts: Counts,
}

enum Line {
    Out(String),
    Err(String),
}

pub fn run(extra: &[String]) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        println!("test: warning: not root; the XDP and namespace tests need root and will fail");
    }
    let started = Instant::now();
    // The end-to-end tests run the real binaries (ferrolbd, ferrolbctl, the
    // test server); `cargo test` alone builds only test harnesses of binaries.
    cmd::run(cmd::cargo().args(["build", "--workspace", "--exclude", "lb-ebpf", "--bins"]))?;
    let mut command = cmd::cargo();
    command
        .args([
            "test",
            "--workspace",
            "--exclude",
            "lb-ebpf",
            "--no-fail-fast",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!(
        "+ cargo test --workspace --exclude lb-ebpf --no-fail-fast {}",
        extra.join(" ")
    );
    let mut child = command.spawn().context("could not start cargo test")?;

    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let stderr = child.stderr.take().context("cargo test stderr")?;
    let tx_err = tx.clone();
    let out_reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(Line::Out(line));
        }
    });
    let err_reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx_err.send(Line::Err(line));
        }
    });

    let mut suites: Vec<Suite> = Vec::new();
    let mut current = String::from("(unknown)");
    let mut failed_tests: Vec<String> = Vec::new();
    for line in rx {
        match line {
            Line::Out(text) => {
                println!("{text}");
                if let Some(counts) = parse_result(&text) {
                    suites.push(Suite {
                        name: current.clone(),
                        counts,
                    });
                } else if let Some(name) = parse_failed_test(&text) {
                    failed_tests.push(format!("{current}: {name}"));
                }
            }
            Line::Err(text) => {
                eprintln!("{text}");
                if let Some(name) = parse_suite_start(&text) {
                    current = name;
                }
            }
        }
    }
    let _ = out_reader.join();
    let _ = err_reader.join();
    let status = child.wait().context("waiting for cargo test")?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();

    let mut total = Counts::default();
    println!();
    println!("==================== ferrolb test summary ====================");
    for suite in &suites {
        total.add(&suite.counts);
        if suite.counts.passed + suite.counts.failed + suite.counts.ignored == 0 {
            continue;
        }
        println!(
            "{:<7} {:<44} {:>4} passed {:>3} failed {:>3} ignored",
            if suite.counts.failed == 0 {
                "ok"
            } else {
                "FAILED"
            },
            suite.name,
            suite.counts.passed,
            suite.counts.failed,
            suite.counts.ignored
        );
    }
    for name in &failed_tests {
        println!("failed: {name}");
    }
    if suites.is_empty() {
        println!("no test ran (did the build fail? see above)");
    }
    println!("===============================================================");
    let ok = status.success() && total.failed == 0 && !suites.is_empty();
    println!(
        "test result: {}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; finished in {:.2}s",
        if ok { "ok" } else { "FAILED" },
        total.passed,
        total.failed,
        total.ignored,
        total.filtered,
        started.elapsed().as_secs_f64()
    );
    if !ok {
        // Exit here rather than return an error: the output must end with
        // the result line above (no error report or backtrace after it).
        let _ = std::io::stdout().flush();
        std::process::exit(1);
    }
    Ok(())
}

/// `     Running tests/e2e_service.rs (target/debug/deps/e2e_service-abc)` or
/// `   Doc-tests lb_common`.
fn parse_suite_start(line: &str) -> Option<String> {
    let line = line.trim_start();
    if let Some(rest) = line.strip_prefix("Running ") {
        let path = rest.split_whitespace().next()?;
        let owner = rest
            .split('(')
            .nth(1)
            .and_then(|p| p.rsplit('/').next())
            .and_then(|file| file.rsplit_once('-').map(|(name, _)| name.to_string()));
        return Some(match owner {
            Some(bin) if path.starts_with("unittests") => format!("{bin} ({path})"),
            _ => path.to_string(),
        });
    }
    line.strip_prefix("Doc-tests ")
        .map(|krate| format!("doc-tests {}", krate.trim()))
}

/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s`
fn parse_result(line: &str) -> Option<Counts> {
    let rest = line.strip_prefix("test result: ")?;
    let (_, numbers) = rest.split_once(". ")?;
    let mut counts = Counts::default();
    for part in numbers.split(';') {
        let mut words = part.split_whitespace();
        let (Some(number), Some(label)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match label {
            "passed" => counts.passed = number,
            "failed" => counts.failed = number,
            "ignored" => counts.ignored = number,
            "filtered" => counts.filtered = number,
            _ => {}
        }
    }
    Some(counts)
}

/// `test e2e_tcp_reaches_every_backend ... FAILED`
fn parse_failed_test(line: &str) -> Option<String> {
    let rest = line.strip_prefix("test ")?;
    let name = rest.strip_suffix(" ... FAILED")?;
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_result_line() {
        let counts = parse_result(
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 4 filtered out; finished in 0.01s",
        );
        assert_eq!(
            counts,
            Some(Counts {
                passed: 3,
                failed: 2,
                ignored: 1,
                filtered: 4
            })
        );
        assert_eq!(parse_result("test foo ... ok"), None);
    }

    #[test]
    fn names_suites_and_failures() {
        assert_eq!(
            parse_suite_start(
                "     Running tests/e2e_service.rs (target/debug/deps/e2e_service-0123abcd)"
            )
            .as_deref(),
            Some("tests/e2e_service.rs")
        );
        assert_eq!(
            parse_suite_start(
                "     Running unittests src/lib.rs (target/debug/deps/lb_common-0123)"
            )
            .as_deref(),
            Some("lb_common (unittests)")
        );
        assert_eq!(
            parse_suite_start("   Doc-tests lb_common").as_deref(),
            Some("doc-tests lb_common")
        );
        assert_eq!(
            parse_failed_test("test e2e::tcp ... FAILED").as_deref(),
            Some("e2e::tcp")
        );
        assert_eq!(parse_failed_test("test e2e::tcp ... ok"), None);
    }
}
