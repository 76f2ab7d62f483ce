//! Revocation for stateless sessions: a logout that really logs out, on every
//! server, with no store round trip per request.
//!
//! A sealed cookie can be copied, so ending a session means refusing its copies.
//! Three things can be revoked:
//!
//! - **one session**: `destroy()` records the session id, until the moment that
//!   session would have expired anyway (its creation plus the config's
//!   `max_lifetime`);
//! - **every session of a subject**: `session.set_subject(name)` at login seals a
//!   keyed hash of the name; `SessionConfig::revoke_subject(name)` (or
//!   `session.log_out_everywhere(name)`) refuses every session whose subject was set
//!   at or before that moment ("log out everywhere", a password change);
//! - **everything issued before a cutoff**: `SessionConfigBuilder::revoke_issued_before`
//!   (a mass logout without rotating keys).
//!
//! Every load checks a local in-memory replica: two hash lookups and a comparison,
//! no I/O. A revoked session opens as a fresh one whose `load_error()` says why.
//!
//! # Sharing revocations between servers
//! With a [`RevocationBackend`] (memory for several configs in one process, file,
//! Redis, PostgreSQL or SQLite), a revocation is appended to the backend and each
//! process polls it every `revocation_sync_interval` (500 ms by default), so a
//! revocation reaches every server within about that bound; a new process loads
//! the whole list on its first sync ([`SessionConfig::sync_revocations`](crate::SessionConfig::sync_revocations)
//! at startup). A revocation that could not be recorded is an error: the logout
//! answers 503, never a success.
//!
//! When the backend cannot be read the replica goes stale. Past
//! `revocation_max_staleness` (5 s by default) the layer refuses sessions that
//! carry a subject with 503 ([`StalePolicy::FailClosed`], the default), or keeps
//! serving them and logs ([`StalePolicy::Serve`]); either way a WARN line says how
//! stale the replica is. Sync resumes on its own once the backend answers.
//!
//! # Bounds
//! Each entry expires with the longest session it could refuse: `max_lifetime`
//! after the revocation (no session it refuses can outlive that), so the replica
//! never holds more than the revocations of one `max_lifetime` window: about 60 bytes per revoked session
//! and 80 per revoked subject (per key of the ring), hash-map overhead included.
//! 100,000 logouts a week with the default 7-day lifetime keep it near 6 MB.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::envelope::{Meta, Subject, SUBJECT_HASH_LEN};
use crate::{Error, Keyring, SessionId};

mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisRevocations;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use crate::store::sql::revocations::SqlRevocations;
pub use file::FileRevocations;
pub use memory::MemoryRevocations;

/// Length of one record on the wire: kind, key id, id or hash, at, until.
pub(crate) const RECORD_LEN: usize = 1 + 4 + 16 + 8 + 8;

/// Where revocations are shared between processes. Records are opaque bytes (at
/// most 64); applying one twice does no harm, so a backend may return a record
/// more than once.
///
/// ```
/// # async fn demo() -> Result<(), sealed_session::Error> {
/// use sealed_session::revocation::MemoryRevocations;
/// use sealed_session::{Keyring, SessionConfig};
/// // Two configs sharing one backend see each other's revocations.
/// let shared = MemoryRevocations::new();
/// let keys = Keyring::generate();
/// let a = SessionConfig::builder(keys.clone()).revocation(shared.clone()).build()?;
/// let b = SessionConfig::builder(keys).revocation(shared).build()?;
/// a.revoke_subject("ada").await?;
/// b.sync_revocations().await?;
/// # Ok(()) }
/// ```
#[async_trait::async_trait]
pub trait RevocationBackend: Send + Sync + 'static {
    /// Appends one record that every process sharing the backend will read; it may
    /// be dropped after `until` (unix seconds).
    ///
    /// # Errors
    /// [`Error::Store`] when it could not be recorded: the revocation did not happen.
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error>;

    /// The records appended after `cursor`, or every live one for `None`, and the
    /// cursor to pass next time. A backend that cannot answer "after" (it was
    /// compacted) returns every live record.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend cannot be read.
    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error>;
}

/// What the layer does with sessions that carry a subject while the revocation
/// replica is stale (the backend could not be read for longer than the allowed
/// staleness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StalePolicy {
    /// Refuse them: the request answers 503 (a revocation made elsewhere might be missed).
    #[default]
    FailClosed,
    /// Serve them from the stale replica and log how stale it is.
    Serve,
}

/// What one revocation refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// One session, by id.
    Session(SessionId),
    /// Every session whose subject (under this key) was set at or before `at`.
    Subject {
        key_id: u32,
        hash: [u8; SUBJECT_HASH_LEN],
    },
}

/// One revocation: what, when it was made (unix milliseconds: a subject set later,
/// even within the same second, stands), and until when it can matter (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) target: Target,
    pub(crate) at: i64,
    pub(crate) until: i64,
}

impl Record {
    pub(crate) fn to_bytes(self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        let (kind, key_id, bytes) = match self.target {
            Target::Session(id) => (1u8, 0u32, *id.as_bytes()),
            Target::Subject { key_id, hash } => (2u8, key_id, hash),
        };
        out[0] = kind;
        out[1..5].copy_from_slice(&key_id.to_be_bytes());
        out[5..21].copy_from_slice(&bytes);
        out[21..29].copy_from_slice(&self.at.to_be_bytes());
        out[29..37].copy_from_slice(&self.until.to_be_bytes());
        out
    }

    /// A record from its bytes; `None` for anything else (a record of a later
    /// version, or garbage), which is skipped.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; RECORD_LEN] = bytes.try_into().ok()?;
        let key_id = u32::from_be_bytes(b[1..5].try_into().ok()?);
        let id: [u8; 16] = b[5..21].try_into().ok()?;
        let at = i64::from_be_bytes(b[21..29].try_into().ok()?);
        let until = i64::from_be_bytes(b[29..37].try_into().ok()?);
        let target = match b[0] {
            1 => Target::Session(SessionId::from_bytes(id)),
            2 => Target::Subject { key_id, hash: id },
            _ => return None,
        };
        Some(Record { target, at, until })
    }
}

/// The in-memory replica every load checks.
#[derive(Default)]
pub(crate) struct Replica {
    /// Revoked session ids, each with the end of the window it matters in.
    sessions: HashMap<SessionId, i64>,
    /// Revoked subjects: the latest revocation time and the end of its window.
    subjects: HashMap<(u32, [u8; SUBJECT_HASH_LEN]), (i64, i64)>,
}

impl Replica {
    pub(crate) fn apply(&mut self, r: &Record) {
        match r.target {
            Target::Session(id) => {
                let until = self.sessions.entry(id).or_insert(r.until);
                *until = (*until).max(r.until);
            }
            Target::Subject { key_id, hash } => {
                let (at, until) = self
                    .subjects
                    .entry((key_id, hash))
                    .or_insert((r.at, r.until));
                *at = (*at).max(r.at);
                *until = (*until).max(r.until);
            }
        }
    }

    /// Drops what can no longer refuse anything.
    pub(crate) fn prune(&mut self, now: i64) {
        self.sessions.retain(|_, until| *until > now);
        self.subjects.retain(|_, (_, until)| *until > now);
    }

    /// Number of entries held.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len() + self.subjects.len()
    }

    fn refuses_session(&self, id: &SessionId) -> bool {
        self.sessions.contains_key(id)
    }

    fn refuses_subject(&self, s: &Subject) -> bool {
        self.subjects
            .get(&(s.key_id, s.hash))
            .is_some_and(|(at, _)| s.since <= *at)
    }
}

/// The revocation settings of a config builder.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) backend: Option<Arc<dyn RevocationBackend>>,
    pub(crate) interval: Duration,
    pub(crate) max_staleness: Duration,
    pub(crate) policy: StalePolicy,
    pub(crate) cutoff: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backend: None,
            interval: Duration::from_millis(500),
            max_staleness: Duration::from_secs(5),
            policy: StalePolicy::FailClosed,
            cutoff: None,
        }
    }
}

/// A config's revocations: the replica, the backend it syncs from, the sync loop.
pub(crate) struct Revocations {
    settings: Settings,
    replica: RwLock<Replica>,
    /// Serializes syncs and holds the cursor.
    cursor: tokio::sync::Mutex<Option<u128>>,
    /// When the last successful sync started (`None` before the first).
    synced: RwLock<Option<Instant>>,
    started: AtomicBool,
    /// Rate limit of the staleness WARN: unix seconds of the last line.
    warned_stale: AtomicI64,
    /// Syncs that failed since the last success (for the log line).
    failures: AtomicU64,
    /// The latest revocation time this process recorded (unix ms): a subject set
    /// afterwards is stamped later than it, even within the same millisecond.
    last_at: AtomicI64,
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("shared", &self.settings.backend.is_some())
            .field("interval", &self.settings.interval)
            .field("max_staleness", &self.settings.max_staleness)
            .field("policy", &self.settings.policy)
            .field("cutoff", &self.settings.cutoff)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    pub(crate) fn new(settings: Settings) -> Arc<Self> {
        let this = Arc::new(Revocations {
            settings,
            replica: RwLock::default(),
            cursor: tokio::sync::Mutex::new(None),
            synced: RwLock::new(None),
            started: AtomicBool::new(false),
            warned_stale: AtomicI64::new(0),
            failures: AtomicU64::new(0),
            last_at: AtomicI64::new(0),
        });
        this.ensure_syncing();
        this
    }

    fn replica(&self) -> std::sync::RwLockReadGuard<'_, Replica> {
        self.replica.read().unwrap_or_else(|e| e.into_inner())
    }

    fn replica_mut(&self) -> std::sync::RwLockWriteGuard<'_, Replica> {
        self.replica.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How long since the last successful sync; zero without a shared backend.
    fn staleness(&self) -> Option<Duration> {
        self.settings.backend.as_ref()?;
        let synced = *self.synced.read().unwrap_or_else(|e| e.into_inner());
        Some(synced.map_or(Duration::MAX, |t| t.elapsed()))
    }

    /// True when a session with a subject would be refused now because the replica
    /// is staler than allowed (fail-closed policy): the layer then opens the session
    /// before calling the handler, so the refusal can still be a 503.
    #[cfg(feature = "tower")]
    pub(crate) fn refuses_stale_now(&self) -> bool {
        self.settings.policy == StalePolicy::FailClosed
            && self
                .staleness()
                .is_some_and(|stale| stale > self.settings.max_staleness)
    }

    /// Starts the background sync once, if there is a backend and a Tokio runtime.
    pub(crate) fn ensure_syncing(self: &Arc<Self>) {
        if self.settings.backend.is_none() || self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            loop {
                let Some(this) = weak.upgrade() else { return };
                if let Err(e) = this.sync().await {
                    let failures = this.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures, "revocation sync failed; the replica is going stale");
                    }
                }
                let interval = this.settings.interval;
                drop(this);
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// Reads what the backend has that the replica does not, and applies it.
    ///
    /// # Errors
    /// The backend's [`Error::Store`].
    pub(crate) async fn sync(&self) -> Result<(), Error> {
        let Some(backend) = &self.settings.backend else {
            return Ok(());
        };
        let started = Instant::now();
        let mut cursor = self.cursor.lock().await;
        let (records, next) = backend.read(*cursor).await?;
        let now = unix_now();
        {
            let mut replica = self.replica_mut();
            for bytes in &records {
                if let Some(r) = Record::from_bytes(bytes) {
                    if r.until > now {
                        replica.apply(&r);
                    }
                }
            }
            replica.prune(now);
        }
        *cursor = Some(next);
        *self.synced.write().unwrap_or_else(|e| e.into_inner()) = Some(started);
        if self.failures.swap(0, Ordering::Relaxed) > 0 {
            tracing::info!("revocation sync recovered");
        }
        Ok(())
    }

    /// Records revocations: appended to the backend (if any) first, then to the
    /// local replica, so this process refuses them at once.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend did not take a record: nothing is revoked then.
    pub(crate) async fn record(&self, records: &[Record]) -> Result<(), Error> {
        if let Some(backend) = &self.settings.backend {
            for r in records {
                backend.append(&r.to_bytes(), r.until).await?;
            }
        }
        let mut replica = self.replica_mut();
        for r in records {
            replica.apply(r);
            self.last_at.fetch_max(r.at, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The time to stamp a subject set now with: now, or just after the latest
    /// revocation this process recorded (a re-login right after "log out everywhere").
    pub(crate) fn subject_time(&self, now_ms: i64) -> i64 {
        now_ms.max(self.last_at.load(Ordering::Acquire).saturating_add(1))
    }

    /// Refuses a session that a revocation covers, checked on every load (no I/O).
    ///
    /// # Errors
    /// [`Error::Revoked`] (the session opens as a fresh one), or
    /// [`Error::RevocationUnavailable`] for a session with a subject while the
    /// replica is staler than allowed under [`StalePolicy::FailClosed`].
    pub(crate) fn check(&self, meta: &Meta, keyring: &Keyring) -> Result<(), Error> {
        if self
            .settings
            .cutoff
            .is_some_and(|cutoff| meta.created < cutoff)
        {
            return Err(Error::Revoked {
                reason: "issued before the revocation cutoff",
            });
        }
        if let Some(subject) = &meta.subject {
            if !keyring.has_key(subject.key_id) {
                // Its subject can no longer be revoked: refuse it rather than let it slip.
                return Err(Error::Revoked {
                    reason: "its subject was hashed under a key no longer in the ring",
                });
            }
            if let Some(stale) = self.staleness() {
                if stale > self.settings.max_staleness {
                    self.warn_stale(stale);
                    if self.settings.policy == StalePolicy::FailClosed {
                        return Err(Error::RevocationUnavailable {
                            stale_secs: stale.as_secs(),
                        });
                    }
                }
            }
        }
        let replica = self.replica();
        if replica.refuses_session(&meta.id) {
            return Err(Error::Revoked {
                reason: "the session was ended",
            });
        }
        if meta
            .subject
            .as_ref()
            .is_some_and(|s| replica.refuses_subject(s))
        {
            return Err(Error::Revoked {
                reason: "all sessions of its subject were revoked",
            });
        }
        Ok(())
    }

    /// One WARN line per 10 s at most about a stale replica.
    fn warn_stale(&self, stale: Duration) {
        let now = unix_now();
        let last = self.warned_stale.load(Ordering::Relaxed);
        if now - last >= 10
            && self
                .warned_stale
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let stale_secs = if stale == Duration::MAX {
                None
            } else {
                Some(stale.as_secs())
            };
            tracing::warn!(
                stale_secs,
                policy = ?self.settings.policy,
                "the revocation replica is stale: sessions with a subject are {}",
                match self.settings.policy {
                    StalePolicy::FailClosed => "refused (503)",
                    StalePolicy::Serve => "served without the latest revocations",
                }
            );
        }
    }

    /// What a health check wants to know.
    pub(crate) fn status(&self) -> RevocationStatus {
        RevocationStatus {
            entries: self.replica().len(),
            stale_for: self.staleness(),
        }
    }
}

/// The state of a config's revocation replica, for health checks and metrics
/// ([`SessionConfig::revocation_status`](crate::SessionConfig::revocation_status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationStatus {
    /// Revoked sessions and subjects held (each expires with its window).
    pub entries: usize,
    /// Time since the last successful sync with the backend (`Duration::MAX`: never);
    /// `None` without a backend (nothing to sync).
    pub stale_for: Option<Duration>,
}

/// Unix seconds now, by the system clock (revocation windows are wall-clock times).
pub(crate) fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// Unix milliseconds now, by the system clock.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(key_id: u32, since: i64) -> Subject {
        Subject {
            key_id,
            hash: [9; SUBJECT_HASH_LEN],
            since,
        }
    }

    #[test]
    fn records_round_trip_and_junk_is_skipped() {
        for target in [
            Target::Session(SessionId::from_bytes([4; 16])),
            Target::Subject {
                key_id: 0xDEAD_BEEF,
                hash: [7; 16],
            },
        ] {
            let r = Record {
                target,
                at: 1_800_000_000,
                until: 1_800_604_800,
            };
            assert_eq!(Record::from_bytes(&r.to_bytes()), Some(r));
        }
        assert_eq!(Record::from_bytes(&[0; RECORD_LEN]), None);
        assert_eq!(Record::from_bytes(&[1; 3]), None);
    }

    #[test]
    fn subject_epochs_refuse_what_was_set_before_them() {
        let mut replica = Replica::default();
        replica.apply(&Record {
            target: Target::Subject {
                key_id: 1,
                hash: [9; 16],
            },
            at: 1000,
            until: 5000,
        });
        assert!(replica.refuses_subject(&subject(1, 999)));
        assert!(
            replica.refuses_subject(&subject(1, 1000)),
            "the same second too"
        );
        assert!(
            !replica.refuses_subject(&subject(1, 1001)),
            "a later login stands"
        );
        assert!(
            !replica.refuses_subject(&subject(2, 999)),
            "another key's hash is another entry"
        );
        // A later revocation of the same subject moves the epoch; an earlier one does not.
        replica.apply(&Record {
            target: Target::Subject {
                key_id: 1,
                hash: [9; 16],
            },
            at: 900,
            until: 5000,
        });
        assert!(replica.refuses_subject(&subject(1, 1000)));
    }

    #[test]
    fn entries_expire_with_the_longest_session_they_could_refuse() {
        let mut replica = Replica::default();
        for i in 0..1000u32 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            replica.apply(&Record {
                target: Target::Session(SessionId::from_bytes(id)),
                at: 0,
                until: 100 + i64::from(i % 10),
            });
        }
        assert_eq!(replica.len(), 1000);
        replica.prune(104);
        assert_eq!(replica.len(), 500, "entries past their window are dropped");
        replica.prune(110);
        assert_eq!(replica.len(), 0);
    }
}
