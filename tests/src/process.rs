//! Child processes that are stopped when dropped (also during a panic), with
//! a bounded wait for a "ready" line on their stdout.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running child process; SIGTERM then SIGKILL on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    lines: Option<Receiver<String>>,
    log: Vec<String>,
}

impl Proc {
    /// Spawn `cmd` with stdout piped (read line by line in the background)
    /// and stderr inherited, so its logs show in the test's output.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            lines: Some(rx),
            log: Vec::new(),
        })
    }

    /// Spawn with stdout not captured (inherited).
    pub fn spawn_inherit(name: &str, cmd: &mut Command) -> Result<Proc> {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            lines: None,
            log: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Wait until a stdout line satisfies `ready`; error if the process exits
    /// or `timeout` passes first.
    pub fn wait_for_line(
        &mut self,
        timeout: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let rx = self
            .lines
            .as_ref()
            .context("stdout of this process is not captured")?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if ready(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "{} not ready after {timeout:?}; its output: {:?}",
                        self.name,
                        self.log
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.try_status();
                    bail!(
                        "{} exited before it was ready ({status:?}); its output: {:?}",
                        self.name,
                        self.log
                    )
                }
            }
        }
    }

    /// Exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGTERM, wait up to the grace period, then SIGKILL. Returns the exit
    /// status (None if it had to be killed).
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait()?;
        Ok(None)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Run a command to completion with a bounded wait and return its output
/// whatever its exit status (an error only if it cannot run or times out).
pub fn run_output(cmd: &mut Command, timeout: Duration) -> Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Ok(std::process::Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    })
}

/// Run a command (bounded) and return its stdout; error naming the command
/// and its stderr if it fails.
pub fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let out = run_output(cmd, timeout)?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
