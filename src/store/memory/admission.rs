//! Who may be displaced to make room for a save, oldest first: entries never read
//! back, then entries a newer write retired. Entries in use never are.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;

use super::entry::{charge, Entry, Usage};
use crate::store::StoreKey;

/// Who may be displaced to make room, oldest first. Its mutex is also the lock that
/// every write (save, delete, `expire_in`, clear) takes.
#[derive(Default)]
pub(super) struct Admission {
    /// Entries nobody has read back since they were saved: displaced first.
    pub(super) unread: VecDeque<(StoreKey, Weak<Usage>)>,
    /// Entries a newer write of their session replaced (`expire_in`), kept a moment
    /// for requests still in flight with the previous cookie: displaced next.
    pub(super) retired: VecDeque<(StoreKey, Weak<[u8]>)>,
}

impl Admission {
    /// Frees at least `needed` bytes of charge in `cache` (each entry charged by
    /// [`charge`] with the per-entry minimum `slot`) by removing the oldest entries never
    /// read back, then the oldest retired ones, never `except`; `false` when there are
    /// not enough of them.
    pub(super) fn make_room(
        &mut self,
        cache: &Cache<StoreKey, Entry>,
        slot: u64,
        needed: u64,
        except: &StoreKey,
    ) -> bool {
        let mut freed = self.displace_unread(cache, slot, needed, except);
        if freed < needed {
            freed += self.displace_retired(cache, slot, needed - freed, except);
        }
        freed >= needed
    }

    /// Remembers a new entry as unread, dropping stale records past `limit` of them.
    pub(super) fn push_unread(
        &mut self,
        cache: &Cache<StoreKey, Entry>,
        limit: usize,
        key: StoreKey,
        usage: &Arc<Usage>,
    ) {
        self.unread.push_back((key, Arc::downgrade(usage)));
        if self.unread.len() > limit {
            self.unread.retain(|(key, usage)| {
                usage.upgrade().is_some_and(|u| !u.was_read()) && cache.contains_key(key)
            });
        }
    }

    /// Remembers an entry as retired, dropping stale records past `limit` of them.
    pub(super) fn push_retired(
        &mut self,
        cache: &Cache<StoreKey, Entry>,
        limit: usize,
        key: StoreKey,
        bytes: &Arc<[u8]>,
    ) {
        self.retired.push_back((key, Arc::downgrade(bytes)));
        if self.retired.len() > limit {
            self.retired
                .retain(|(key, bytes)| bytes.strong_count() > 0 && cache.contains_key(key));
        }
    }

    /// Removes the oldest entries never read back (other than `except`) until at least
    /// `needed` bytes of charge are freed or none is left; returns the charge freed.
    fn displace_unread(
        &mut self,
        cache: &Cache<StoreKey, Entry>,
        slot: u64,
        needed: u64,
        except: &StoreKey,
    ) -> u64 {
        // Read meanwhile: not a candidate. Removed only if it is this very entry and
        // no load has read it since.
        displace(
            &mut self.unread,
            Candidates {
                cache,
                slot,
                needed,
                except,
            },
            |usage| !usage.was_read(),
            |entry, usage| Arc::ptr_eq(&entry.usage, usage) && !usage.was_read(),
        )
    }

    /// Removes the oldest retired entries (other than `except`) until at least `needed`
    /// bytes of charge are freed or none is left; returns the charge freed.
    fn displace_retired(
        &mut self,
        cache: &Cache<StoreKey, Entry>,
        slot: u64,
        needed: u64,
        except: &StoreKey,
    ) -> u64 {
        // Only this very entry: a save under the key since made a new one.
        displace(
            &mut self.retired,
            Candidates {
                cache,
                slot,
                needed,
                except,
            },
            |_| true,
            |entry, bytes| entry.retired && Arc::ptr_eq(&entry.bytes, bytes),
        )
    }
}

/// Where a displacement takes entries from, and how much it must free.
struct Candidates<'a> {
    cache: &'a Cache<StoreKey, Entry>,
    slot: u64,
    needed: u64,
    except: &'a StoreKey,
}

/// Pops records off the front of `queue` and removes their entries from the cache
/// until `needed` bytes of charge are freed or the queue is empty. A record whose
/// entry is gone, or that `candidate` refuses, is dropped; `except` is kept in place.
/// An entry is removed only while `still_it` holds for the cache's current value
/// (atomically), so a newer save under the same key is never displaced.
fn displace<T: ?Sized>(
    queue: &mut VecDeque<(StoreKey, Weak<T>)>,
    from: Candidates<'_>,
    candidate: impl Fn(&Arc<T>) -> bool,
    still_it: impl Fn(&Entry, &Arc<T>) -> bool,
) -> u64 {
    let mut freed = 0;
    let mut kept = Vec::new();
    while freed < from.needed {
        let Some((key, weak)) = queue.pop_front() else {
            break;
        };
        // Gone (evicted, expired, deleted, replaced, displaced): not a candidate.
        let Some(strong) = weak.upgrade().filter(|s| candidate(s)) else {
            continue;
        };
        if key == *from.except {
            kept.push((key, weak));
            continue;
        }
        let removed = from
            .cache
            .entry(key)
            .and_compute_with(|current| match current {
                Some(entry) if still_it(entry.value(), &strong) => Op::Remove,
                _ => Op::Nop,
            });
        if let CompResult::Removed(entry) = removed {
            freed += charge(entry.value().bytes.len(), from.slot);
        }
    }
    for record in kept.into_iter().rev() {
        queue.push_front(record);
    }
    freed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::memory::tests::{key, HOUR};
    use crate::store::{MemoryStore, SessionStore};

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
        assert!(
            store.admission().unread.len() <= 64,
            "stale records are dropped"
        );
    }

    /// The next write of a session in use is in use; that of a session nobody read is not.
    #[tokio::test]
    async fn save_replacing_inherits_whether_the_session_is_in_use() {
        let store = MemoryStore::new();
        store.save(&key(1), b"read", HOUR).await.unwrap();
        store.load(&key(1)).await.unwrap().unwrap();
        store.save(&key(2), b"unread", HOUR).await.unwrap();
        let unread = store.admission().unread.len();
        store
            .save_replacing(&key(11), b"next", HOUR, &key(1))
            .await
            .unwrap();
        assert!(store.cache.get(&key(11)).unwrap().usage.was_read());
        assert_eq!(store.admission().unread.len(), unread, "in use: not unread");
        store
            .save_replacing(&key(12), b"next", HOUR, &key(2))
            .await
            .unwrap();
        assert!(!store.cache.get(&key(12)).unwrap().usage.was_read());
        // A replaced entry that is gone leaves a new entry.
        store
            .save_replacing(&key(13), b"next", HOUR, &key(99))
            .await
            .unwrap();
        assert!(!store.cache.get(&key(13)).unwrap().usage.was_read());
        assert_eq!(store.admission().unread.len(), unread + 2);
        assert_eq!(store.load(&key(11)).await.unwrap().unwrap(), b"next");
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"read");
    }

    /// Entries retired by `expire_in` make room once no unread entry is left, oldest
    /// first, before a save is refused; the current entries of sessions in use never do.
    #[tokio::test]
    async fn retired_entries_make_room_after_unread_ones() {
        let store = MemoryStore::new()
            .with_max_entries(10)
            .with_max_bytes(10 * 1024);
        // Five sessions in use, each replaced once: five current and five retired entries.
        for n in 0..5 {
            store.save(&key(n), &[1; 900], HOUR).await.unwrap();
            store.load(&key(n)).await.unwrap().unwrap();
            store
                .save_replacing(&key(100 + n), &[2; 900], HOUR, &key(n))
                .await
                .unwrap();
            store
                .expire_in(&key(n), Duration::from_secs(60))
                .await
                .unwrap();
        }
        // The store is full. With no unread entry, a newcomer displaces a retired one...
        store.save(&key(300), &[3; 900], HOUR).await.unwrap();
        assert!(!store.cache.contains_key(&key(0)) && store.cache.contains_key(&key(1)));
        // ...but an unread entry goes first.
        store.save(&key(301), &[3; 900], HOUR).await.unwrap();
        assert!(!store.cache.contains_key(&key(300)) && store.cache.contains_key(&key(1)));
        store.load(&key(301)).await.unwrap().unwrap();
        // Retired entries go oldest first.
        for n in 1..5 {
            store.save(&key(200 + n), &[4; 900], HOUR).await.unwrap();
            store.load(&key(200 + n)).await.unwrap().unwrap();
            assert!(!store.cache.contains_key(&key(n)), "retired entry {n} kept");
            if n < 4 {
                assert!(
                    store.cache.contains_key(&key(n + 1)),
                    "not the oldest first"
                );
            }
        }
        // Every entry is in use now: a save is refused, no entry in use is evicted.
        let err = store.save(&key(400), &[5; 900], HOUR).await.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Store);
        for n in (100..105).chain(201..205).chain([301]) {
            assert!(
                store.cache.contains_key(&key(n)),
                "entry in use {n} evicted"
            );
        }
    }
}
