//! Which keys still open sessions: per key id, how many request values it opened
//! and when it last did, so an operator rotating keys can tell when an old key is
//! safe to drop ([`SessionConfig::key_usage`](crate::SessionConfig::key_usage)).
//!
//! Counting is two relaxed atomic operations per opened value, no lock. The layer
//! reports cookies of a key no longer in the ring at WARN at most once per key id per
//! minute, remembering at most 32 ids (they are attacker-chosen); the rest go to DEBUG.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
#[cfg(feature = "tower")]
use std::sync::Mutex;

use time::OffsetDateTime;

/// How often one unknown key id may be reported at WARN, in seconds.
#[cfg(feature = "tower")]
pub(crate) const UNKNOWN_KEY_WARN_INTERVAL: i64 = 60;

/// How many unknown key ids are remembered for that (bounded: key ids in forged
/// cookies are attacker-chosen).
#[cfg(feature = "tower")]
pub(crate) const UNKNOWN_KEY_SLOTS: usize = 32;

/// What one key of the ring has opened since the configuration was built.
///
/// ```
/// use sealed_session::{headers, Keyring, SessionConfig};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = SessionConfig::builder(Keyring::new([[1u8; 32], [2u8; 32]])?).build()?;
/// let session = headers::load(&config, &http::HeaderMap::new()).await?;
/// assert!(session.is_new(), "no cookie: nothing was opened");
/// for key in config.key_usage() {
///     println!("{:08x} primary={} opens={} last={:?}", key.key_id, key.primary, key.opens, key.last_seen);
///     assert_eq!(key.opens, 0);
/// }
/// # Ok::<(), sealed_session::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUsage {
    /// The key id, as in the wire header and in `inspect` output.
    pub key_id: u32,
    /// True for the primary key, the one that seals.
    pub primary: bool,
    /// Request values (cookies or headers) this key opened that were still live.
    pub opens: u64,
    /// When it last opened one (by the configuration's clock); `None` if never.
    pub last_seen: Option<OffsetDateTime>,
}

/// The counters of one key.
struct KeyCounter {
    key_id: u32,
    opens: AtomicU64,
    /// Unix seconds of the last open; `i64::MIN` for never.
    last_seen: AtomicI64,
}

/// Per-key counters, in keyring order (primary first), and the unknown-key log limiter.
pub(crate) struct Usage {
    keys: Vec<KeyCounter>,
    /// Unknown key ids reported at WARN, with when (the layer's limiter).
    #[cfg(feature = "tower")]
    unknown: Mutex<Vec<(u32, i64)>>,
}

impl Usage {
    /// Counters for these key ids, primary first.
    pub(crate) fn new(key_ids: &[u32]) -> Self {
        Usage {
            keys: key_ids
                .iter()
                .map(|&key_id| KeyCounter {
                    key_id,
                    opens: AtomicU64::new(0),
                    last_seen: AtomicI64::new(i64::MIN),
                })
                .collect(),
            #[cfg(feature = "tower")]
            unknown: Mutex::new(Vec::new()),
        }
    }

    /// Counts one live value opened by `key_id` at `now` (unix seconds).
    pub(crate) fn record(&self, key_id: u32, now: i64) {
        let Some(i) = self.keys.iter().position(|k| k.key_id == key_id) else {
            return;
        };
        let key = &self.keys[i];
        key.opens.fetch_add(1, Ordering::Relaxed);
        // Most opens land in the same second: skip the write then.
        if key.last_seen.load(Ordering::Relaxed) < now {
            key.last_seen.fetch_max(now, Ordering::Relaxed);
        }
        if i != 0 {
            tracing::debug!(
                key_id = %KeyId(key_id),
                "session opened with an old key; it is re-sealed under the primary on the way out"
            );
        }
    }

    /// A snapshot of every key's counters, primary first.
    pub(crate) fn snapshot(&self) -> Vec<KeyUsage> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let last = k.last_seen.load(Ordering::Relaxed);
                KeyUsage {
                    key_id: k.key_id,
                    primary: i == 0,
                    opens: k.opens.load(Ordering::Relaxed),
                    last_seen: (last != i64::MIN)
                        .then(|| OffsetDateTime::from_unix_timestamp(last).ok())
                        .flatten(),
                }
            })
            .collect()
    }

    /// True when a value sealed by the unknown `key_id` should be reported at WARN
    /// now: not reported in the last [`UNKNOWN_KEY_WARN_INTERVAL`] seconds, and there is
    /// room to remember it.
    #[cfg(feature = "tower")]
    pub(crate) fn warn_unknown(&self, key_id: u32, now: i64) -> bool {
        let mut seen = self.unknown.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = seen.iter_mut().find(|(id, _)| *id == key_id) {
            if now.saturating_sub(entry.1) >= UNKNOWN_KEY_WARN_INTERVAL {
                entry.1 = now;
                return true;
            }
            return false;
        }
        if seen.len() >= UNKNOWN_KEY_SLOTS {
            seen.retain(|&(_, at)| now.saturating_sub(at) < UNKNOWN_KEY_WARN_INTERVAL);
        }
        if seen.len() >= UNKNOWN_KEY_SLOTS {
            return false;
        }
        seen.push((key_id, now));
        true
    }
}

impl fmt::Debug for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

/// A key id as logs and `inspect` print it: 8 hex digits.
#[derive(Clone, Copy)]
pub(crate) struct KeyId(pub(crate) u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_keeps_the_latest_time() {
        let usage = Usage::new(&[10, 20]);
        usage.record(20, 100);
        usage.record(20, 90); // a clock that went back never moves last_seen back
        usage.record(10, 50);
        usage.record(99, 200); // not in the ring: ignored
        let snap = usage.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(
            (snap[0].key_id, snap[0].primary, snap[0].opens),
            (10, true, 1)
        );
        assert_eq!(
            (snap[1].key_id, snap[1].primary, snap[1].opens),
            (20, false, 2)
        );
        assert_eq!(snap[1].last_seen.unwrap().unix_timestamp(), 100);
        assert_eq!(snap[0].last_seen.unwrap().unix_timestamp(), 50);
        assert_eq!(Usage::new(&[1]).snapshot()[0].last_seen, None);
    }

    #[cfg(feature = "tower")]
    #[test]
    fn an_unknown_key_warns_once_per_interval() {
        let usage = Usage::new(&[1]);
        assert!(usage.warn_unknown(7, 1000));
        assert!(!usage.warn_unknown(7, 1001));
        assert!(!usage.warn_unknown(7, 1000 + UNKNOWN_KEY_WARN_INTERVAL - 1));
        assert!(usage.warn_unknown(7, 1000 + UNKNOWN_KEY_WARN_INTERVAL));
        assert!(
            usage.warn_unknown(8, 1001),
            "another id has its own interval"
        );
    }

    #[cfg(feature = "tower")]
    #[test]
    fn remembered_ids_are_bounded() {
        let usage = Usage::new(&[1]);
        for id in 0..UNKNOWN_KEY_SLOTS as u32 {
            assert!(usage.warn_unknown(id, 0));
        }
        // Full, and every entry is recent: a new id goes to DEBUG, memory does not grow.
        assert!(!usage.warn_unknown(1_000, 1));
        assert_eq!(usage.unknown.lock().unwrap().len(), UNKNOWN_KEY_SLOTS);
        // Once the interval has passed, old entries make room.
        assert!(usage.warn_unknown(1_000, UNKNOWN_KEY_WARN_INTERVAL));
        assert_eq!(usage.unknown.lock().unwrap().len(), 1);
    }
}
