//! [`MemoryStore`]: the embedded default store, a bounded in-process cache.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use moka::ops::compute::{CompResult, Op};
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

/// By default one value may take at most this fraction (1/64) of the byte bound.
const DEFAULT_ENTRY_SHARE: u64 = 64;

/// Whether an entry was read back since it was first saved; overwrites of the entry share it.
#[derive(Default)]
struct Usage {
    read: AtomicBool,
}

impl Usage {
    fn was_read(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }
}

/// A value plus the TTL it was saved with (read back by [`TtlExpiry`]).
#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
    usage: Arc<Usage>,
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

/// Entries nobody has read back yet, oldest first: the only ones a new entry displaces.
type Unread = VecDeque<(StoreKey, Weak<Usage>)>;

/// The embedded default store: an in-process cache bounded in entries **and** bytes,
/// with a per-entry TTL, that a flood of new sessions cannot empty of the sessions
/// people are using.
///
/// Built on [`moka`] (weights, TTLs, the bounds). Room for a save is decided in
/// this order:
/// 1. there is room: it is stored;
/// 2. else it displaces the oldest entries **never read back** since they were saved
///    (the one-shot session of a client that did not return);
/// 3. else `save` fails with [`Error::Store`] ("full of sessions in use"): the layer
///    answers 503 and the client keeps its previous cookie.
///
/// So an entry that was read back leaves only when it expires (its TTL is the
/// session's own expiry) or is deleted, never to make room, and a save that returns
/// `Ok` is in the store. One value may take at most 1/64 of the byte bound by
/// default ([`with_max_entry_bytes`](Self::with_max_entry_bytes)); a bigger one is
/// refused with [`Error::Store`], so no single client takes a large share.
///
/// What remains: a flood still fills free space and displaces sessions not yet read
/// back (including a real user's session between the request that moved it to the
/// store and their next one, and a session just moved to a new id by
/// [`regenerate`](crate::Session::regenerate)); once the store holds only sessions in
/// use, new or growing sessions that need the store are refused until some expire or
/// are deleted; and a client that reads its own sessions back competes with real
/// users, at the price of two requests per entry. Size the bounds for the sessions
/// you expect to be in use at once, or use a shared store.
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
    /// together overshoot the bound (which would make moka evict an entry in use).
    unread: Arc<Mutex<Unread>>,
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
            unread: Arc::default(),
        }
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

    /// The queue of unread entries, which is also the lock that saves take.
    fn unread(&self) -> MutexGuard<'_, Unread> {
        // Nothing panics while holding the lock; a poisoned queue is still consistent.
        self.unread.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the oldest entries never read back (other than `except`) until at least
    /// `needed` bytes of charge are freed; `false` when there are not enough of them.
    fn displace_unread(&self, unread: &mut Unread, needed: u64, except: &StoreKey) -> bool {
        let slot = self.slot();
        let mut freed = 0;
        let mut kept = Vec::new();
        while freed < needed {
            let Some((key, usage)) = unread.pop_front() else {
                break;
            };
            // Gone (evicted, expired, deleted, replaced) or read meanwhile: not a candidate.
            let Some(usage) = usage.upgrade().filter(|u| !u.was_read()) else {
                continue;
            };
            if key == *except {
                kept.push((key, Arc::downgrade(&usage)));
                continue;
            }
            let removed = self
                .cache
                .entry(key)
                .and_compute_with(|current| match current {
                    // Only this very entry, and only if no load has read it meanwhile.
                    Some(entry)
                        if Arc::ptr_eq(&entry.value().usage, &usage) && !usage.was_read() =>
                    {
                        Op::Remove
                    }
                    _ => Op::Nop,
                });
            if let CompResult::Removed(entry) = removed {
                freed += charge(entry.value().bytes.len(), slot);
            }
        }
        for record in kept.into_iter().rev() {
            unread.push_front(record);
        }
        freed >= needed
    }

    /// Remembers a new entry as unread, dropping stale records when they pile up.
    fn push_unread(&self, unread: &mut Unread, key: StoreKey, usage: &Arc<Usage>) {
        unread.push_back((key, Arc::downgrade(usage)));
        let limit = usize::try_from(self.max_entries.saturating_mul(2)).unwrap_or(usize::MAX);
        if unread.len() > limit.max(64) {
            unread.retain(|(_, usage)| usage.upgrade().is_some_and(|u| !u.was_read()));
        }
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
        let mut unread = self.unread();
        // Settle pending writes and expiries, so the weights below are current.
        self.cache.run_pending_tasks();
        // An overwrite keeps the entry's usage (a session read back stays in use).
        let previous = self.cache.get(key);
        let old_charge = previous
            .as_ref()
            .map_or(0, |old| charge(old.bytes.len(), slot));
        let is_new = previous.is_none();
        let entry = Entry {
            bytes: Arc::from(value),
            ttl,
            usage: previous.map(|old| old.usage).unwrap_or_default(),
        };
        let free = self.max_bytes.saturating_sub(self.cache.weighted_size());
        let growth = new_charge.saturating_sub(old_charge);
        if growth > free && !self.displace_unread(&mut unread, growth - free, key) {
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
        let inserted = Instant::now();
        self.cache.insert(*key, entry.clone());
        self.cache.run_pending_tasks();
        // Present, or present and already expired (a TTL shorter than this call).
        if !self.cache.contains_key(key) && inserted.elapsed() < ttl {
            return Err(Error::store(
                "save",
                "memory store did not keep the value (deleted or cleared meanwhile?)",
            ));
        }
        if is_new {
            self.push_unread(&mut unread, *key, &entry.usage);
        }
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
        self.unread().clear();
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

    fn key(n: u32) -> StoreKey {
        let mut bytes = [0x5a; 16];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        StoreKey::from_bytes(bytes)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// A store that holds only entries read back refuses a new one with an error (it
    /// evicts none of them), and never answers `Ok` for a value it does not keep.
    #[tokio::test]
    async fn a_store_full_of_entries_in_use_refuses_new_ones() {
        let store = MemoryStore::new()
            .with_max_entries(50)
            .with_max_bytes(50 * 1024);
        for n in 0..50 {
            store.save(&key(n), &[1; 900], HOUR).await.unwrap();
            assert!(store.load(&key(n)).await.unwrap().is_some());
        }
        let (mut stored, mut refused) = (0, 0);
        for n in 1000..1200 {
            match store.save(&key(n), &[2; 900], HOUR).await {
                // `contains_key` does not count as a read, so the entry stays unread.
                Ok(()) => {
                    assert!(store.cache.contains_key(&key(n)), "save {n} said Ok");
                    stored += 1;
                }
                Err(e) => {
                    assert_eq!(e.kind(), crate::ErrorKind::Store);
                    let cause = std::error::Error::source(&e).unwrap().to_string();
                    assert!(cause.contains("full of sessions in use"), "{cause}");
                    assert!(!store.cache.contains_key(&key(n)));
                    refused += 1;
                }
            }
        }
        assert!(refused > 0, "{stored} stored, {refused} refused");
        for n in 0..50 {
            assert!(
                store.cache.contains_key(&key(n)),
                "entry {n} in use was evicted"
            );
        }
        assert!(store.charged_bytes() <= 50 * 1024);
    }

    /// New entries displace the oldest entries nobody read back, so a store full of
    /// one-shot sessions keeps admitting new ones.
    #[tokio::test]
    async fn new_entries_displace_the_oldest_unread_ones() {
        let store = MemoryStore::new()
            .with_max_entries(20)
            .with_max_bytes(20 * 1024);
        for n in 0..10 {
            store.save(&key(n), &[1; 900], HOUR).await.unwrap();
            store.load(&key(n)).await.unwrap().unwrap();
        }
        for n in 100..400 {
            store.save(&key(n), &[2; 900], HOUR).await.unwrap();
            assert!(store.cache.contains_key(&key(n)));
        }
        for n in 0..10 {
            assert!(
                store.cache.contains_key(&key(n)),
                "entry {n} in use was evicted"
            );
        }
        assert!(store.cache.contains_key(&key(399)) && !store.cache.contains_key(&key(100)));
        // Overwriting an entry in use keeps it in use.
        store.save(&key(3), &[3; 900], HOUR).await.unwrap();
        for n in 400..500 {
            store.save(&key(n), &[2; 900], HOUR).await.unwrap();
        }
        assert_eq!(store.load(&key(3)).await.unwrap().unwrap(), [3; 900]);
        assert!(store.unread().len() <= 64, "stale records are dropped");
    }

    #[test]
    fn debug_shows_bounds_only() {
        let text = format!("{:?}", MemoryStore::new());
        assert!(text.starts_with("MemoryStore { max_entries: 10000"));
    }
}
