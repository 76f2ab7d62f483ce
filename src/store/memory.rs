//! [`MemoryStore`]: the embedded default store, a bounded in-process cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use moka::Expiry;

use super::{SessionStore, StoreKey};
use crate::Error;

/// Default bound on the number of entries.
const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// Default bound on the bytes held: 64 MiB.
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Bytes charged per entry on top of its value, for the key and the cache's bookkeeping.
const ENTRY_OVERHEAD: u64 = 64;

/// A value plus the TTL it was saved with (read back by [`TtlExpiry`]).
#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

/// Gives every entry the TTL passed to `save`, on insert and on overwrite.
struct TtlExpiry;

impl Expiry<StoreKey, Entry> for TtlExpiry {
    fn expire_after_create(&self, _: &StoreKey, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &StoreKey,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// The embedded default store: an in-process cache bounded in entries **and** bytes,
/// with a per-entry TTL.
///
/// Built on [`moka`] with LRU eviction, so a new save is always admitted and the
/// least recently used entries make room for it; a flood of sessions therefore
/// cannot grow memory past the bounds (it evicts older spilled sessions, which then
/// load as missing). Entries live only as long as the process, and each server
/// process has its own: use [`FileStore`](super::FileStore) or a Redis store when
/// sessions must survive restarts or be shared by several processes.
///
/// Cloning is cheap and clones share the same entries.
///
/// # How both bounds are enforced
/// Each entry is charged `max(value length + 64, max_bytes / max_entries)` (64 bytes for the
/// key and the cache's bookkeeping)
/// against a single `max_bytes` capacity. Total charge ≤ `max_bytes` then bounds the
/// bytes, and since every entry costs at least `max_bytes / max_entries`, it also
/// bounds the count to `max_entries`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use std::time::Duration;
/// use sealed_session::store::{SessionStore, StoreKey};
/// use sealed_session::store::MemoryStore;
///
/// let store = MemoryStore::new().with_max_entries(1_000).with_max_bytes(8 << 20);
/// let key = StoreKey::from_bytes([7; 16]);
/// store.save(&key, b"ciphertext", Duration::from_secs(600)).await?;
/// assert_eq!(store.load(&key).await?.as_deref(), Some(&b"ciphertext"[..]));
/// store.delete(&key).await?;
/// assert_eq!(store.load(&key).await?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<StoreKey, Entry>,
    max_entries: u64,
    max_bytes: u64,
}

impl MemoryStore {
    /// A store with the default bounds: 10,000 entries and 64 MiB.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new();
    /// assert_eq!(store.charged_bytes(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_bounds(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }

    /// Returns the store bounded to `max_entries` entries (0 is treated as 1).
    ///
    /// Meant to be chained right after [`new`](Self::new): it builds a fresh cache,
    /// so entries saved before are not carried over.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new().with_max_entries(500);
    /// ```
    pub fn with_max_entries(self, max_entries: u64) -> Self {
        Self::with_bounds(max_entries, self.max_bytes)
    }

    /// Returns the store bounded to `max_bytes` bytes, counting
    /// 64 bytes of overhead per entry (0 is treated as 1).
    ///
    /// A single value bigger than this bound is refused by `save`. Like
    /// [`with_max_entries`](Self::with_max_entries), it builds a fresh cache.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new().with_max_bytes(8 << 20);
    /// ```
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Self::with_bounds(self.max_entries, max_bytes)
    }

    /// Bytes currently charged against the byte bound, after
    /// running pending evictions. Entries whose TTL passed less than about a
    /// second ago may still be counted until the cache's timer removes them.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new();
    /// assert_eq!(store.charged_bytes(), 0);
    /// ```
    pub fn charged_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    fn with_bounds(max_entries: u64, max_bytes: u64) -> Self {
        let max_entries = max_entries.max(1);
        // Keep the per-entry minimum charge within moka's u32 weights.
        let max_bytes = max_bytes.clamp(1, max_entries.saturating_mul(u64::from(u32::MAX)));
        let slot = max_bytes.div_ceil(max_entries);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |_: &StoreKey, entry: &Entry| -> u32 {
                let charge = charge(entry.bytes.len(), slot);
                u32::try_from(charge).unwrap_or(u32::MAX)
            })
            .expire_after(TtlExpiry)
            // LRU always admits a new entry (TinyLFU may silently reject a fresh
            // session in favour of popular ones, and a save must not vanish).
            .eviction_policy(EvictionPolicy::lru())
            .build();
        MemoryStore {
            cache,
            max_entries,
            max_bytes,
        }
    }

    /// The smallest charge of one entry: `max_bytes / max_entries`, rounded up.
    fn slot(&self) -> u64 {
        self.max_bytes.div_ceil(self.max_entries)
    }
}

/// The charge of an entry holding `len` value bytes, given the per-entry minimum `slot`.
fn charge(len: usize, slot: u64) -> u64 {
    (len as u64).saturating_add(ENTRY_OVERHEAD).max(slot)
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.cache.get(key).map(|entry| entry.bytes.to_vec()))
    }

    /// # Errors
    /// [`Error::Store`] when the value alone is bigger than the store's byte bound.
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let charge = charge(value.len(), self.slot());
        if charge > self.max_bytes || charge > u64::from(u32::MAX) {
            return Err(Error::store(
                "save",
                format!(
                    "entry is {} bytes, over the memory store's {}-byte bound",
                    charge, self.max_bytes
                ),
            ));
        }
        let entry = Entry {
            bytes: Arc::from(value),
            ttl,
        };
        self.cache.insert(*key, entry);
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.cache.invalidate(key);
        Ok(())
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        // Apply pending evictions, then count by iterating: moka's `entry_count`
        // still includes entries whose TTL passed until its timer wheel (about
        // one-second buckets) removes them, while `iter` skips them.
        self.cache.run_pending_tasks();
        Ok(Some(self.cache.iter().count()))
    }

    async fn clear(&self) -> Result<(), Error> {
        self.cache.invalidate_all();
        self.cache.run_pending_tasks();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_bounds_count_and_bytes() {
        let store = MemoryStore::new().with_max_entries(10).with_max_bytes(1000);
        assert_eq!(store.slot(), 100);
        assert_eq!(charge(1, store.slot()), 100);
        assert_eq!(charge(500, store.slot()), 564);
    }

    #[test]
    fn zero_bounds_are_clamped() {
        let store = MemoryStore::new().with_max_entries(0).with_max_bytes(0);
        assert_eq!(store.max_entries, 1);
        assert_eq!(store.max_bytes, 1);
    }

    #[tokio::test]
    async fn oversized_value_is_refused_not_dropped() {
        let store = MemoryStore::new().with_max_bytes(1024);
        let key = StoreKey::from_bytes([1; 16]);
        let err = store
            .save(&key, &[0; 2048], Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Store);
        assert!(std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("1024-byte bound"));
    }

    #[test]
    fn debug_shows_bounds_only() {
        let text = format!("{:?}", MemoryStore::new());
        assert!(text.starts_with("MemoryStore { max_entries: 10000"));
    }
}
