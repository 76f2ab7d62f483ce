//! [`MemoryStore`]: the embedded default store, a bounded in-process cache.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::{SessionStore, StoreKey};
use crate::Error;

mod admission;
mod entry;

use admission::Admission;
use entry::{charge, Entry, TtlExpiry, ENTRY_OVERHEAD};

/// Default bound on the number of entries.
const DEFAULT_MAX_ENTRIES: u64 = 10_000;

/// Default bound on the bytes held: 64 MiB.
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// By default one value may take at most this fraction (1/64) of the byte bound.
const DEFAULT_ENTRY_SHARE: u64 = 64;

/// The embedded default store: an in-process cache bounded in entries **and** bytes,
/// with a per-entry TTL, that a flood of new sessions cannot empty of the sessions
/// people are using.
///
/// Built on [`moka`] (weights, TTLs, the bounds). Room for a save is decided in
/// this order:
/// 1. there is room: it is stored;
/// 2. else it displaces the oldest entries **never read back** since they were saved
///    (the one-shot session of a client that did not return);
/// 3. else it displaces the oldest entries **retired** by a newer write of their
///    session ([`expire_in`](SessionStore::expire_in)): previous states, kept only for
///    requests still in flight with the previous cookie;
/// 4. else `save` fails with [`Error::Store`] ("full of sessions in use"): the layer
///    answers 503 and the client keeps its previous cookie.
///
/// An entry counts as read back once a load returned it, and the next write of its
/// session under a new key ([`save_replacing`](SessionStore::save_replacing)) inherits
/// that: a session in use that keeps writing stays in use. So the current entry of a
/// session in use leaves only when it expires (its TTL is the session's own expiry) or
/// is deleted, never to make room, and a save that returns `Ok` is in the store. One
/// value may take at most 1/64 of the byte bound by default
/// ([`with_max_entry_bytes`](Self::with_max_entry_bytes)); a bigger one is refused with
/// [`Error::Store`], so no single client takes a large share.
///
/// What remains: a flood still fills free space and displaces sessions not yet read
/// back (including a real user's session between the request that moved it to the
/// store and their next one) and then previous states of sessions (a request sent with
/// the previous cookie before the newer write's reply arrived then finds its entry
/// gone); once the store holds only the current entries of sessions in use, new or
/// growing sessions that need the store are refused until some expire or are deleted;
/// and a client that reads its own sessions back competes with real users, at the
/// price of two requests per entry. Size the bounds for the sessions you expect to be
/// in use at once, or use a shared store.
///
/// Entries live only as long as the process, and each server process has its own:
/// use [`FileStore`](super::FileStore) or a Redis store when sessions must survive
/// restarts or be shared by several processes.
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
    /// Largest value accepted; `None`: the default share of `max_bytes`.
    max_entry_bytes: Option<u64>,
    /// Held by a save from its room check to its insert, so concurrent saves cannot
    /// together overshoot the bound (which would make moka evict an entry in use), and
    /// by every other write, so `expire_in` never brings back what another write changed.
    admission: Arc<Mutex<Admission>>,
}

impl MemoryStore {
    /// A store with the default bounds: 10,000 entries and 64 MiB, at most 1 MiB per value.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new();
    /// assert_eq!(store.charged_bytes(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_bounds(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES, None)
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
        Self::with_bounds(max_entries, self.max_bytes, self.max_entry_bytes)
    }

    /// Returns the store bounded to `max_bytes` bytes, counting
    /// 64 bytes of overhead per entry (0 is treated as 1).
    ///
    /// A single value bigger than this bound is refused by `save`, and so is, unless
    /// [`with_max_entry_bytes`](Self::with_max_entry_bytes) says otherwise, one bigger
    /// than 1/64 of it. Like [`with_max_entries`](Self::with_max_entries), it builds a
    /// fresh cache.
    ///
    /// ```
    /// let store = sealed_session::store::MemoryStore::new().with_max_bytes(8 << 20);
    /// ```
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Self::with_bounds(self.max_entries, max_bytes, self.max_entry_bytes)
    }

    /// Sets the largest value, in bytes, that one entry may hold; `save` refuses a
    /// bigger one with [`Error::Store`]. The default is 1/64 of the byte bound (at least
    /// what one entry is charged anyway), so that no single session, however big, can
    /// push out many others.
    ///
    /// **Warning**: a cap near the byte bound lets one client's session displace
    /// many sessions at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use sealed_session::store::{MemoryStore, SessionStore, StoreKey};
    ///
    /// let store = MemoryStore::new().with_max_entry_bytes(64 * 1024);
    /// let key = StoreKey::from_bytes([7; 16]);
    /// let err = store.save(&key, &[0; 65 * 1024], Duration::from_secs(60)).await.unwrap_err();
    /// assert_eq!(err.kind(), sealed_session::ErrorKind::Store);
    /// # }
    /// ```
    pub fn with_max_entry_bytes(mut self, max_entry_bytes: u64) -> Self {
        self.max_entry_bytes = Some(max_entry_bytes);
        self
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

    fn with_bounds(max_entries: u64, max_bytes: u64, max_entry_bytes: Option<u64>) -> Self {
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
            // `save` makes room itself before inserting (see the type's docs), so moka
            // never has to evict for a save. LRU keeps moka from second-guessing that:
            // its TinyLFU may silently not admit a new entry, and counts no accesses at
            // all until the cache is half full.
            .eviction_policy(EvictionPolicy::lru())
            .build();
        MemoryStore {
            cache,
            max_entries,
            max_bytes,
            max_entry_bytes,
            admission: Arc::default(),
        }
    }

    /// Stores `value` under `key` (see the type's docs for the room it needs). The
    /// entry keeps the usage of the entry it overwrites, else of `replaced`, else is new.
    fn write(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        replaced: Option<&StoreKey>,
    ) -> Result<(), Error> {
        let slot = self.slot();
        let new_charge = charge(value.len(), slot);
        if new_charge > self.max_bytes || new_charge > u64::from(u32::MAX) {
            return Err(Error::store(
                "save",
                format!(
                    "entry is {} bytes, over the memory store's {}-byte bound",
                    new_charge, self.max_bytes
                ),
            ));
        }
        let cap = self.entry_cap();
        if value.len() as u64 > cap {
            return Err(Error::store(
                "save",
                format!(
                    "value is {} bytes, over the memory store's {cap}-byte per-entry cap",
                    value.len()
                ),
            ));
        }
        let mut admission = self.admission();
        // Settle pending writes and expiries, so the weights below are current.
        self.cache.run_pending_tasks();
        // An overwrite keeps the entry's usage (a session read back stays in use), and
        // so does the next write of a session under a new key.
        let previous = self.cache.get(key);
        let old_charge = previous
            .as_ref()
            .map_or(0, |old| charge(old.bytes.len(), slot));
        let is_new = previous.is_none();
        let usage = match previous {
            Some(old) => old.usage,
            None => replaced
                .and_then(|replaced| self.cache.get(replaced))
                .map(|old| old.usage)
                .unwrap_or_default(),
        };
        let inserted = Instant::now();
        let entry = Entry {
            bytes: Arc::from(value),
            ttl,
            retired: false,
            usage,
        };
        let free = self.max_bytes.saturating_sub(self.cache.weighted_size());
        let growth = new_charge.saturating_sub(old_charge);
        if growth > free && !admission.make_room(&self.cache, slot, growth - free, key) {
            return Err(Error::store(
                "save",
                format!(
                    "memory store is full of sessions in use and did not admit this \
                     {}-byte value ({} of {} bytes charged)",
                    value.len(),
                    self.cache.weighted_size(),
                    self.max_bytes
                ),
            ));
        }
        self.cache.insert(*key, entry.clone());
        self.cache.run_pending_tasks();
        // Present, or present and already expired (a TTL shorter than this call).
        if !self.cache.contains_key(key) && inserted.elapsed() < ttl {
            return Err(Error::store(
                "save",
                "memory store did not keep the value (deleted or cleared meanwhile?)",
            ));
        }
        if is_new && !entry.usage.was_read() {
            admission.push_unread(&self.cache, self.record_limit(), *key, &entry.usage);
        }
        Ok(())
    }

    /// The smallest charge of one entry: `max_bytes / max_entries`, rounded up.
    fn slot(&self) -> u64 {
        self.max_bytes.div_ceil(self.max_entries)
    }

    /// The largest value `save` accepts.
    fn entry_cap(&self) -> u64 {
        self.max_entry_bytes.unwrap_or_else(|| {
            (self.max_bytes / DEFAULT_ENTRY_SHARE).max(self.slot().saturating_sub(ENTRY_OVERHEAD))
        })
    }

    /// The records of who may be displaced, which is also the lock that writes take.
    fn admission(&self) -> MutexGuard<'_, Admission> {
        // Nothing panics while holding the lock; poisoned records are still consistent.
        self.admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The most records an admission queue keeps before it drops the stale ones.
    fn record_limit(&self) -> usize {
        usize::try_from(self.max_entries.saturating_mul(2))
            .unwrap_or(usize::MAX)
            .max(64)
    }
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
            .field("max_entry_bytes", &self.entry_cap())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.cache.get(key).map(|entry| {
            entry.usage.read.store(true, Ordering::Relaxed);
            entry.bytes.to_vec()
        }))
    }

    /// # Errors
    /// [`Error::Store`] when the value is bigger than the store's byte bound or its
    /// per-entry cap, or when the store is full of entries in use (see the type's docs).
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        self.write(key, value, ttl, None)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        let _writing = self.admission();
        self.cache.invalidate(key);
        Ok(())
    }

    /// Shortens the entry's TTL to `ttl` if that is sooner than it would expire, keeps
    /// its value and whether it is in use, and marks it retired: it may make room for
    /// new entries once no unread entry is left (see the type's docs). A zero `ttl`
    /// removes it.
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        let mut admission = self.admission();
        let result = self.cache.entry(*key).and_compute_with(|current| {
            let Some(current) = current else {
                return Op::Nop;
            };
            if ttl.is_zero() {
                return Op::Remove;
            }
            // The same bytes and usage; moka keeps the shorter of `ttl` and the time left.
            Op::Put(Entry {
                ttl,
                retired: true,
                ..current.into_value()
            })
        });
        if let CompResult::ReplacedWith(entry) = result {
            admission.push_retired(&self.cache, self.record_limit(), *key, &entry.value().bytes);
        }
        Ok(())
    }

    /// As [`save`](SessionStore::save); the new entry is in use if the `replaced` one
    /// was (it shares whether it was read back).
    ///
    /// # Errors
    /// As [`save`](SessionStore::save).
    async fn save_replacing(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        replaced: &StoreKey,
    ) -> Result<(), Error> {
        self.write(key, value, ttl, Some(replaced))
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        // Apply pending evictions, then count by iterating: moka's `entry_count`
        // still includes entries whose TTL passed until its timer wheel (about
        // one-second buckets) removes them, while `iter` skips them.
        self.cache.run_pending_tasks();
        Ok(Some(self.cache.iter().count()))
    }

    async fn clear(&self) -> Result<(), Error> {
        let mut admission = self.admission();
        self.cache.invalidate_all();
        self.cache.run_pending_tasks();
        *admission = Admission::default();
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
    fn the_entry_cap_is_a_64th_of_the_bytes_unless_set() {
        assert_eq!(MemoryStore::new().entry_cap(), 1 << 20);
        assert_eq!(
            MemoryStore::new().with_max_bytes(1 << 20).entry_cap(),
            16_384
        );
        // Never below what one entry is charged anyway.
        let few = MemoryStore::new().with_max_entries(10).with_max_bytes(1000);
        assert_eq!(few.entry_cap(), 36);
        // A cap set before the bounds survives them.
        let set = MemoryStore::new()
            .with_max_entry_bytes(500)
            .with_max_bytes(1 << 30);
        assert_eq!(set.entry_cap(), 500);
    }

    #[tokio::test]
    async fn a_value_over_the_entry_cap_is_refused_with_the_cap() {
        let store = MemoryStore::new().with_max_entry_bytes(4096);
        let key = StoreKey::from_bytes([1; 16]);
        let err = store
            .save(&key, &[0; 4097], Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Store);
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("4096-byte per-entry cap"), "{cause}");
        assert_eq!(store.load(&key).await.unwrap(), None);
        store
            .save(&key, &[0; 4096], Duration::from_secs(60))
            .await
            .unwrap();
        assert!(store.cache.contains_key(&key));
    }

    pub(super) fn key(n: u32) -> StoreKey {
        let mut bytes = [0x5a; 16];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        StoreKey::from_bytes(bytes)
    }

    pub(super) const HOUR: Duration = Duration::from_secs(3600);

    /// `expire_in` shortens a long TTL, never lengthens a short one, keeps the value
    /// and whether the entry is in use, is not a new save, and creates nothing.
    #[tokio::test]
    async fn expire_in_only_ever_shortens_and_keeps_the_entry() {
        let store = MemoryStore::new();
        let short = Duration::from_millis(150);
        store.save(&key(1), b"long", HOUR).await.unwrap();
        store.load(&key(1)).await.unwrap().unwrap();
        store.save(&key(2), b"short", short).await.unwrap();
        store.save(&key(3), b"unread", HOUR).await.unwrap();
        let unread = store.admission().unread.len();

        store.expire_in(&key(1), short).await.unwrap();
        store.expire_in(&key(2), HOUR).await.unwrap();
        store.expire_in(&key(3), HOUR).await.unwrap();
        store.expire_in(&key(9), HOUR).await.unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"long");
        assert!(store.cache.get(&key(1)).unwrap().usage.was_read());
        assert!(!store.cache.get(&key(3)).unwrap().usage.was_read());
        assert_eq!(store.admission().unread.len(), unread, "not a new save");
        assert!(
            !store.cache.contains_key(&key(9)),
            "a missing key stays missing"
        );

        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.load(&key(1)).await.unwrap(), None, "shortened");
        assert_eq!(store.load(&key(2)).await.unwrap(), None, "not lengthened");
        assert_eq!(store.load(&key(3)).await.unwrap().unwrap(), b"unread");
        // A second, longer `expire_in` does not undo the first one's shortening.
        store.save(&key(4), b"twice", HOUR).await.unwrap();
        store.expire_in(&key(4), short).await.unwrap();
        store.expire_in(&key(4), HOUR).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.load(&key(4)).await.unwrap(), None);
        // A zero TTL removes the entry; a save over a retired entry is a plain save.
        store.save(&key(5), b"gone", HOUR).await.unwrap();
        store.expire_in(&key(5), Duration::ZERO).await.unwrap();
        assert_eq!(store.load(&key(5)).await.unwrap(), None);
        store.save(&key(6), b"old", HOUR).await.unwrap();
        store.expire_in(&key(6), short).await.unwrap();
        store.save(&key(6), b"new", HOUR).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.load(&key(6)).await.unwrap().unwrap(), b"new");
        assert!(!store.cache.get(&key(6)).unwrap().retired);
    }

    #[test]
    fn debug_shows_bounds_only() {
        let text = format!("{:?}", MemoryStore::new());
        assert!(text.starts_with("MemoryStore { max_entries: 10000"));
    }
}
