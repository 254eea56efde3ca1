//! Loading an XDP program into the kernel. The verifier gives up with
//! EAGAIN when a signal (or task work) is pending for the loading thread,
//! however far it got: the balancer takes seconds to verify, and a test
//! process or a daemon with other threads gets such an interruption now and
//! then. Like libbpf (`PROG_LOAD_ATTEMPTS`), the load is tried again; aya
//! does not retry it.

use aya::programs::{ProgramError, Xdp};

/// Attempts at a load interrupted with EAGAIN (libbpf's count).
pub const LOAD_ATTEMPTS: u32 = 5;

/// Loads `prog`, retrying a load the verifier was interrupted in.
pub fn load_program(prog: &mut Xdp) -> Result<(), ProgramError> {
    retry_interrupted(
        || prog.load(),
        |e| matches!(e, ProgramError::LoadError { io_error, .. } if is_eagain(io_error)),
    )
}

fn is_eagain(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

/// Runs `load` until it succeeds, fails otherwise than `interrupted`, or
/// was tried `LOAD_ATTEMPTS` times.
fn retry_interrupted<E>(
    mut load: impl FnMut() -> Result<(), E>,
    interrupted: impl Fn(&E) -> bool,
) -> Result<(), E> {
    let mut attempt = 1;
    loop {
        match load() {
            Err(e) if attempt < LOAD_ATTEMPTS && interrupted(&e) => {
                tracing::warn!(attempt, "program load interrupted (EAGAIN), retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Error;

    use super::*;

    /// `retry_interrupted` as `load_program` calls it, on the error the
    /// load reports.
    fn retry(mut load: impl FnMut() -> Result<(), Error>) -> Result<(), Error> {
        retry_interrupted(&mut load, is_eagain)
    }

    #[test]
    fn an_interrupted_load_is_tried_again() {
        let mut calls = 0;
        let r = retry(|| {
            calls += 1;
            if calls < 3 {
                Err(Error::from_raw_os_error(libc::EAGAIN))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(calls, 3);
    }

    /// `retry` of a load that always fails with `errno`: its answer and
    /// the number of attempts.
    fn always_failing(errno: i32) -> (Result<(), Error>, u32) {
        let mut calls = 0;
        let r = retry(|| {
            calls += 1;
            Err(Error::from_raw_os_error(errno))
        });
        (r, calls)
    }

    #[test]
    fn a_rejected_program_is_not_tried_again() {
        let (r, calls) = always_failing(libc::EACCES);
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EACCES));
        assert_eq!(calls, 1);
    }

    #[test]
    fn interruptions_are_retried_a_bounded_number_of_times() {
        let (r, calls) = always_failing(libc::EAGAIN);
        assert!(is_eagain(&r.unwrap_err()));
        assert_eq!(calls, LOAD_ATTEMPTS);
    }
}
