//! WARN lines a client can cause, at most once a minute per kind: a forged or
//! corrupted cookie, a fingerprint that changed, a session refused while the
//! revocation list is stale. Each event still logs at DEBUG; the next WARN says how
//! many were left out, so a flood of bad cookies costs one line a minute, not one
//! per request.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Seconds between two WARN lines of one kind.
pub(crate) const WARN_INTERVAL: i64 = 60;

/// One kind of client-caused warning: when it last logged and how many since.
#[derive(Debug)]
pub(crate) struct Limited {
    last: AtomicI64,
    left_out: AtomicU64,
}

impl Limited {
    const fn new() -> Self {
        Limited {
            last: AtomicI64::new(i64::MIN),
            left_out: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event should be logged at WARN now (`n` more happened
    /// since the last WARN and went to DEBUG only); `None` when it is within the
    /// interval and is counted instead. Lock-free; one caller wins a race.
    pub(crate) fn warn_now(&self, now: i64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        if (last == i64::MIN || now.saturating_sub(last) >= WARN_INTERVAL)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.left_out.swap(0, Ordering::Relaxed));
        }
        self.left_out.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The client-caused warnings of one configuration (its clones share them).
#[derive(Debug)]
pub(crate) struct Warnings {
    /// A value that failed authentication or had unknown flags.
    #[cfg(feature = "tower")]
    pub(crate) refused: Limited,
    /// A session opened under another fingerprint ([`FingerprintMode::LogOnly`](crate::FingerprintMode::LogOnly)).
    pub(crate) fingerprint_changed: Limited,
    /// A session refused because the revocation list is too stale to check it.
    #[cfg(feature = "tower")]
    pub(crate) revocation_refused: Limited,
}

impl Warnings {
    pub(crate) const fn new() -> Self {
        Warnings {
            #[cfg(feature = "tower")]
            refused: Limited::new(),
            fingerprint_changed: Limited::new(),
            #[cfg(feature = "tower")]
            revocation_refused: Limited::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_with_the_count_left_out() {
        let l = Limited::new();
        assert_eq!(l.warn_now(1000), Some(0), "the first one warns");
        for t in 1000..1000 + WARN_INTERVAL {
            assert_eq!(l.warn_now(t), None);
        }
        assert_eq!(l.warn_now(1000 + WARN_INTERVAL), Some(60));
        assert_eq!(l.warn_now(1000 + WARN_INTERVAL), None);
        // A clock that goes back does not unlock a WARN.
        assert_eq!(l.warn_now(10), None);
        assert_eq!(l.warn_now(1000 + 2 * WARN_INTERVAL), Some(2));
    }
}
