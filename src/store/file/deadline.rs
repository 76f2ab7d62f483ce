//! Bounded blocking work: each step of file work runs on Tokio's blocking pool and
//! must finish within the store's deadline, and a step whose caller gave up never
//! makes its change afterwards ([`Claim`]).

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// Shared by a blocking step and its caller: who gets to decide whether the step's
/// change happens, the step (it commits) or the caller (it gave up waiting).
#[derive(Default)]
pub(super) struct Claim(AtomicU8);

impl Claim {
    const OPEN: u8 = 0;
    const COMMITTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// Called by the step right before its irreversible change: `false` when the
    /// caller has given up (the step must then undo what it prepared and stop).
    pub(super) fn commit(&self) -> bool {
        match self.0.compare_exchange(
            Self::OPEN,
            Self::COMMITTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(state) => state == Self::COMMITTED,
        }
    }

    /// Called by the caller on timeout: `true` when the step's change will not happen.
    pub(super) fn abandon(&self) -> bool {
        self.0
            .compare_exchange(
                Self::OPEN,
                Self::ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    fn is_abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::ABANDONED
    }
}

/// What a step returns when its caller gave up before the step got to run or commit.
pub(super) fn abandoned() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the caller stopped waiting; nothing was changed",
    )
}

/// Runs blocking file work on Tokio's blocking pool within `timeout`, mapping failures
/// (and the timeout) to [`Error::Store`].
pub(super) async fn run<T, F>(op: &'static str, timeout: Duration, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&Claim) -> io::Result<T> + Send + 'static,
{
    let claim = Arc::new(Claim::default());
    let step_claim = Arc::clone(&claim);
    let step = tokio::task::spawn_blocking(move || {
        // Queued behind stuck steps for longer than the caller waited: do nothing.
        if step_claim.is_abandoned() {
            return Err(abandoned());
        }
        work(&step_claim)
    });
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(Error::store(op, e)),
        Ok(Err(join)) => Err(Error::store(op, join)),
        Err(_) => {
            let outcome = if claim.abandon() {
                "it will not take effect"
            } else {
                "it was already being applied and may still take effect"
            };
            Err(Error::store(
                op,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the file system did not answer within {timeout:?}; {outcome}"),
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File, OpenOptions};

    use super::*;
    use crate::store::file::tests::temp_dir;

    /// A step stuck in a system call (here: opening a FIFO nobody writes to, without
    /// `O_NONBLOCK`) fails its call at the deadline, and the next call runs.
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_step_stuck_in_the_kernel_fails_at_its_deadline() {
        let dir = temp_dir("stuck");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("SKIPPED: mkfifo is not available");
            return;
        }
        let timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let path = fifo.clone();
        let result = run("load", timeout, move |_| File::open(&path).map(drop)).await;
        let took = started.elapsed();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Store);
        let cause = std::error::Error::source(&err).unwrap();
        let io = cause.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut, "{io}");
        assert!(io.to_string().contains("200ms"), "{io}");
        assert!(took < Duration::from_secs(1), "took {took:?}");
        // The stuck thread holds nothing the next step needs.
        assert_eq!(run("len", timeout, |_| Ok(7)).await.unwrap(), 7);
        // Let the stuck open finish: a writer pairs with it.
        drop(OpenOptions::new().write(true).open(&fifo).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
