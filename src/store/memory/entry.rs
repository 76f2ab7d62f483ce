//! One cache entry: its bytes, how long it lives, whether it was read back, and
//! what it is charged against the byte bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use crate::store::StoreKey;

/// Bytes charged per entry on top of its value, for the key and the cache's bookkeeping.
pub(super) const ENTRY_OVERHEAD: u64 = 64;

/// Whether an entry was read back since it was first saved. Overwrites of the entry
/// share it, and so does the next write of its session under a new key
/// ([`save_replacing`](crate::store::SessionStore::save_replacing)): a session in use stays in use.
#[derive(Default)]
pub(super) struct Usage {
    pub(super) read: AtomicBool,
}

impl Usage {
    pub(super) fn was_read(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }
}

/// A value plus the TTL it was saved with (read back by [`TtlExpiry`]).
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) bytes: Arc<[u8]>,
    pub(super) ttl: Duration,
    /// Set by `expire_in`: a newer write replaced this entry. Its TTL then only ever
    /// shortens, and it may make room for new entries once no unread one is left.
    pub(super) retired: bool,
    pub(super) usage: Arc<Usage>,
}

/// Gives every entry the TTL passed to `save`, on insert and on overwrite; an entry
/// retired by `expire_in` keeps the shorter of its new TTL and the time it had left.
pub(super) struct TtlExpiry;

impl Expiry<StoreKey, Entry> for TtlExpiry {
    fn expire_after_create(&self, _: &StoreKey, entry: &Entry, _: Instant) -> Option<Duration> {
        // `expire_in` only rewrites an entry that is there; one that expired just before
        // its rewrite landed stays expired.
        Some(if entry.retired {
            Duration::ZERO
        } else {
            entry.ttl
        })
    }

    fn expire_after_update(
        &self,
        _: &StoreKey,
        entry: &Entry,
        _: Instant,
        left: Option<Duration>,
    ) -> Option<Duration> {
        Some(match left {
            Some(left) if entry.retired => entry.ttl.min(left),
            _ => entry.ttl,
        })
    }
}

/// The charge of an entry holding `len` value bytes, given the per-entry minimum `slot`.
pub(super) fn charge(len: usize, slot: u64) -> u64 {
    (len as u64).saturating_add(ENTRY_OVERHEAD).max(slot)
}
