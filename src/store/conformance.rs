//! The store conformance suite (feature `conformance`): the checks every
//! [`SessionStore`] of this crate passes, for your own store's tests.
//!
//! [`store_conformance_tests!`](crate::store_conformance_tests) writes one `#[test]`
//! per check into a module of your test crate. Each test builds a fresh store with
//! your constructor and runs the check on its own multi-threaded Tokio runtime, so
//! your tests need no Tokio dependency of their own:
//!
//! ```
//! # mod my_crate {
//! #     pub type MyStore = sealed_session::store::MemoryStore;
//! # }
//! // tests/conformance.rs of your crate, with sealed-session's `conformance` feature
//! // enabled in [dev-dependencies].
//! use my_crate::MyStore;
//!
//! sealed_session::store_conformance_tests!(my_store, async {
//!     // Anything that lives as long as the test (a temp dir, a server) goes in the
//!     // second place of the pair; `None` skips the test.
//!     Some((MyStore::new(), ()))
//! });
//! # fn main() {}
//! ```
//!
//! The constructor is any expression of a future (an `async` block, or a call to an
//! `async fn`) whose output is a `(store, guard)` pair or an `Option` of one (see
//! [`Setup`]): the guard is dropped after the check, and `None` skips the check, for
//! a store whose server is not installed (say so on stderr when you skip). Every
//! store must start empty.
//!
//! Every store must implement [`expire_in`](SessionStore::expire_in): the trait's
//! default does nothing, which never loses a session but fails
//! [`expire_in_only_shortens`] (a store that keeps it holds one entry per write of a
//! big session until that entry's own TTL).
//!
//! A store that cannot count or clear its entries (`len` answers `Ok(None)`, `clear`
//! is the trait's default) passes `counting = false`: the checks that count then
//! only verify that `len` keeps answering `None`.
//!
//! ```
//! use std::time::Duration;
//! use sealed_session::store::{MemoryStore, SessionStore, StoreKey};
//! use sealed_session::Error;
//!
//! /// A store that keeps `len` and `clear` at the trait's defaults.
//! #[derive(Default)]
//! struct Countless(MemoryStore);
//!
//! #[async_trait::async_trait]
//! impl SessionStore for Countless {
//!     async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
//!         self.0.load(key).await
//!     }
//!     async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
//!         self.0.save(key, value, ttl).await
//!     }
//!     async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
//!         self.0.delete(key).await
//!     }
//!     async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
//!         self.0.expire_in(key, ttl).await
//!     }
//! }
//!
//! sealed_session::store_conformance_tests!(countless, async {
//!     Some((Countless::default(), ()))
//! }, counting = false);
//! # fn main() {}
//! ```
//!
//! The checks are also public functions here, to call from a test harness of your own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{SessionStore, StoreKey};

/// A long TTL for entries that must not expire during a check.
const HOUR: Duration = Duration::from_secs(3600);

/// What a constructor passed to [`store_conformance_tests!`](crate::store_conformance_tests)
/// yields: a store and a guard kept alive while the check runs, or `None` to skip.
pub trait Setup: Send {
    /// The store under test.
    type Store: SessionStore;
    /// Whatever must outlive the check (a temp dir, a server process); `()` if nothing.
    type Guard: Send;

    /// The store and its guard, or `None` to skip the check.
    fn into_setup(self) -> Option<(Self::Store, Self::Guard)>;
}

impl<S: SessionStore, G: Send> Setup for (S, G) {
    type Store = S;
    type Guard = G;

    fn into_setup(self) -> Option<(S, G)> {
        Some(self)
    }
}

impl<S: SessionStore, G: Send> Setup for Option<(S, G)> {
    type Store = S;
    type Guard = G;

    fn into_setup(self) -> Option<(S, G)> {
        self
    }
}

/// Runs one check: builds a multi-threaded Tokio runtime, awaits `make` on it,
/// and runs `check` on the store it yields (nothing, when it yields `None`).
///
/// # Panics
/// When the runtime cannot be built, and whenever the check fails: it is a test.
#[doc(hidden)]
pub fn run<M, C, F>(make: M, check: C)
where
    M: Future,
    M::Output: Setup,
    C: FnOnce(Arc<<M::Output as Setup>::Store>) -> F,
    F: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a Tokio runtime for the conformance check");
    runtime.block_on(async move {
        let Some((store, guard)) = make.await.into_setup() else {
            return;
        };
        check(Arc::new(store)).await;
        drop(guard);
    });
}

/// The key the checks use for `n`: distinct for distinct `n`, never all one byte.
pub fn key(n: u32) -> StoreKey {
    let mut bytes = [0xa5; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    StoreKey::from_bytes(bytes)
}

/// A value that names its key and writer, so a torn or swapped entry shows.
pub fn value(n: u32, writer: u32, len: usize) -> Vec<u8> {
    let mut v = format!("{n}:{writer}:").into_bytes();
    v.resize(len.max(v.len()), (writer % 251) as u8);
    v
}

/// Asserts what `len` answers: `Some(expected)` for a counting store, `None` otherwise.
async fn assert_len<S: SessionStore>(store: &S, counting: bool, expected: usize, why: &str) {
    let len = store.len().await.expect("len");
    if counting {
        assert_eq!(len, Some(expected), "{why}");
    } else {
        assert_eq!(
            len, None,
            "a store run with counting = false answers len with None"
        );
    }
}

/// A key never saved loads as `None`.
pub async fn missing_key_is_none<S: SessionStore>(store: Arc<S>, _counting: bool) {
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
}

/// Values round-trip byte for byte (70 KB of every byte value, and an empty one);
/// a delete removes only its own key.
pub async fn save_load_delete<S: SessionStore>(store: Arc<S>, _counting: bool) {
    let binary: Vec<u8> = (0..=255).cycle().take(70_000).collect();
    store.save(&key(1), &binary, HOUR).await.unwrap();
    store.save(&key(2), b"", HOUR).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap(), Some(binary));
    assert_eq!(store.load(&key(2)).await.unwrap(), Some(Vec::new()));
    store.delete(&key(1)).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    assert_eq!(store.load(&key(2)).await.unwrap(), Some(Vec::new()));
}

/// Deleting a missing key, twice, is not an error.
pub async fn delete_missing_is_ok<S: SessionStore>(store: Arc<S>, _counting: bool) {
    store.delete(&key(9)).await.unwrap();
    store.delete(&key(9)).await.unwrap();
}

/// Keys that differ in one byte, first or last, are distinct entries.
pub async fn keys_differing_in_one_byte_are_distinct<S: SessionStore>(
    store: Arc<S>,
    _counting: bool,
) {
    let base = [0x11; 16];
    let mut first = base;
    first[0] = 0x12;
    let mut last = base;
    last[15] = 0x12;
    let keys = [base, first, last, [0; 16], [0xff; 16]].map(StoreKey::from_bytes);
    for (n, k) in keys.iter().enumerate() {
        store.save(k, &[n as u8; 3], HOUR).await.unwrap();
    }
    for (n, k) in keys.iter().enumerate() {
        assert_eq!(
            store.load(k).await.unwrap(),
            Some(vec![n as u8; 3]),
            "{k:?}"
        );
    }
    store.delete(&keys[1]).await.unwrap();
    assert_eq!(store.load(&keys[1]).await.unwrap(), None);
    assert_eq!(store.load(&keys[0]).await.unwrap(), Some(vec![0; 3]));
    assert_eq!(store.load(&keys[2]).await.unwrap(), Some(vec![2; 3]));
}

/// Overwriting replaces the value and the TTL: a shorter TTL shortens the entry's life.
pub async fn overwrite_replaces_value_and_ttl<S: SessionStore>(store: Arc<S>, _counting: bool) {
    store.save(&key(1), b"first", HOUR).await.unwrap();
    store.save(&key(1), b"second", HOUR).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"second");
    // Overwriting with a short TTL shortens the entry's life too.
    store
        .save(&key(1), b"third", Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"third");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
}

/// An entry loads until its TTL passes and never after; a zero TTL expires at
/// once; expired entries are not counted.
pub async fn expiry_is_honoured<S: SessionStore>(store: Arc<S>, counting: bool) {
    store
        .save(&key(1), b"short", Duration::from_millis(300))
        .await
        .unwrap();
    store.save(&key(2), b"long", HOUR).await.unwrap();
    store.save(&key(3), b"zero", Duration::ZERO).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"short");
    assert_eq!(
        store.load(&key(3)).await.unwrap(),
        None,
        "a zero TTL expires at once"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    assert_eq!(store.load(&key(2)).await.unwrap().unwrap(), b"long");
    assert_len(&*store, counting, 1, "expired entries are not counted").await;
}

/// A TTL of years (as long as `Duration` can say) is accepted and the entry loads.
pub async fn a_huge_ttl_is_accepted<S: SessionStore>(store: Arc<S>, _counting: bool) {
    store
        .save(&key(1), b"years", Duration::from_secs(400 * 24 * 3600))
        .await
        .unwrap();
    store
        .save(&key(2), b"forever", Duration::MAX)
        .await
        .unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"years");
    assert_eq!(store.load(&key(2)).await.unwrap().unwrap(), b"forever");
}

/// 64 tasks at once each write their own key and all fight over one: every own
/// entry lands whole, and the contended one holds one whole write.
pub async fn concurrent_saves_all_land<S: SessionStore>(store: Arc<S>, counting: bool) {
    const TASKS: u32 = 64;
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            // Each task writes its own key, and all fight over key 0.
            store
                .save(&key(n + 1), &value(n + 1, n, 2048), HOUR)
                .await
                .unwrap();
            store.save(&key(0), &value(0, n, 4096), HOUR).await.unwrap();
            store.load(&key(0)).await.unwrap().expect("key 0 present");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for n in 0..TASKS {
        let got = store.load(&key(n + 1)).await.unwrap();
        assert_eq!(got, Some(value(n + 1, n, 2048)), "entry {n} lost or torn");
    }
    let winner = store.load(&key(0)).await.unwrap().unwrap();
    assert!(
        (0..TASKS).any(|n| winner == value(0, n, 4096)),
        "the contended entry is one whole write"
    );
    assert_len(
        &*store,
        counting,
        TASKS as usize + 1,
        "every key counted once",
    )
    .await;
}

/// `len` counts distinct live keys; `clear` empties the store, which stays usable.
pub async fn len_and_clear<S: SessionStore>(store: Arc<S>, counting: bool) {
    assert_len(&*store, counting, 0, "a new store is empty").await;
    for n in 0..5 {
        store.save(&key(n), b"x", HOUR).await.unwrap();
    }
    store.save(&key(0), b"again", HOUR).await.unwrap();
    assert_len(&*store, counting, 5, "an overwrite is not a new entry").await;
    if !counting {
        return;
    }
    store.clear().await.unwrap();
    assert_eq!(store.len().await.unwrap(), Some(0));
    assert_eq!(store.load(&key(3)).await.unwrap(), None);
    // Usable after clear.
    store.save(&key(3), b"back", HOUR).await.unwrap();
    assert_eq!(store.load(&key(3)).await.unwrap().unwrap(), b"back");
}

/// `expire_in` only ever shortens: an entry with an hour left goes within 150 ms, one
/// with 200 ms left does not get an hour, a zero TTL removes at once; the value stays
/// as it was until then, and a later save of the key is a fresh write with its own TTL.
pub async fn expire_in_only_shortens<S: SessionStore>(store: Arc<S>, counting: bool) {
    let short = Duration::from_millis(150);
    let (long_lived, short_lived, saved_again, zero) = (key(1), key(2), key(3), key(4));
    for (n, k) in [long_lived, saved_again, zero].iter().enumerate() {
        store
            .save(k, &value(n as u32, 1, 3000), HOUR)
            .await
            .unwrap();
    }
    store
        .save(&short_lived, &value(9, 1, 3000), Duration::from_millis(200))
        .await
        .unwrap();
    store.expire_in(&long_lived, short).await.unwrap();
    store.expire_in(&short_lived, HOUR).await.unwrap();
    store.expire_in(&saved_again, short).await.unwrap();
    store.expire_in(&zero, Duration::ZERO).await.unwrap();
    store
        .save(&saved_again, &value(1, 2, 3000), HOUR)
        .await
        .unwrap();
    let intact = "expire_in leaves the value as it was";
    assert_eq!(
        store.load(&long_lived).await.unwrap(),
        Some(value(0, 1, 3000)),
        "{intact}"
    );
    assert_eq!(
        store.load(&short_lived).await.unwrap(),
        Some(value(9, 1, 3000)),
        "{intact}"
    );
    assert_eq!(
        store.load(&zero).await.unwrap(),
        None,
        "expire_in with a zero TTL removes at once"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.load(&long_lived).await.unwrap(),
        None,
        "expire_in(150 ms) on an entry with an hour left: still there after 500 ms"
    );
    assert_eq!(
        store.load(&short_lived).await.unwrap(),
        None,
        "expire_in(1 hour) lengthened an entry saved for 200 ms"
    );
    assert_eq!(
        store.load(&saved_again).await.unwrap(),
        Some(value(1, 2, 3000)),
        "a save after expire_in is a fresh write with its own TTL"
    );
    assert_len(&*store, counting, 1, "shortened entries are not counted").await;
}

/// `expire_in` on a key never saved, or deleted, is `Ok` and creates nothing.
pub async fn expire_in_a_missing_key_is_a_no_op<S: SessionStore>(store: Arc<S>, counting: bool) {
    store.expire_in(&key(1), HOUR).await.unwrap();
    store.expire_in(&key(1), Duration::ZERO).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    store.save(&key(2), b"deleted", HOUR).await.unwrap();
    store.delete(&key(2)).await.unwrap();
    store.expire_in(&key(2), HOUR).await.unwrap();
    assert_eq!(
        store.load(&key(2)).await.unwrap(),
        None,
        "expire_in brought back a deleted entry"
    );
    assert_len(&*store, counting, 0, "expire_in created an entry").await;
}

/// `save_replacing` stores under the new key as `save` does (value, overwrite, TTL),
/// whether or not the replaced entry exists, and leaves the replaced entry as it was.
pub async fn save_replacing_writes_like_save<S: SessionStore>(store: Arc<S>, counting: bool) {
    let (first, next, later) = (key(1), key(2), key(3));
    store.save(&first, &value(1, 0, 2048), HOUR).await.unwrap();
    store.load(&first).await.unwrap().expect("saved");
    store
        .save_replacing(&next, &value(2, 0, 2048), HOUR, &first)
        .await
        .unwrap();
    assert_eq!(store.load(&next).await.unwrap(), Some(value(2, 0, 2048)));
    assert_eq!(
        store.load(&first).await.unwrap(),
        Some(value(1, 0, 2048)),
        "save_replacing changed the replaced entry"
    );
    store
        .save_replacing(&next, &value(2, 1, 1024), HOUR, &first)
        .await
        .unwrap();
    assert_eq!(store.load(&next).await.unwrap(), Some(value(2, 1, 1024)));
    store
        .save_replacing(&later, &value(3, 0, 512), HOUR, &key(99))
        .await
        .unwrap();
    assert_eq!(
        store.load(&later).await.unwrap(),
        Some(value(3, 0, 512)),
        "a replaced entry that is missing changes nothing"
    );
    store
        .save_replacing(&key(4), b"zero", Duration::ZERO, &later)
        .await
        .unwrap();
    assert_eq!(
        store.load(&key(4)).await.unwrap(),
        None,
        "a zero TTL expires at once"
    );
    assert_len(&*store, counting, 3, "one entry per key").await;
}

/// The store works through the `Arc<dyn SessionStore>` the config holds.
pub async fn works_as_trait_object<S: SessionStore>(store: Arc<S>, _counting: bool) {
    let store: Arc<dyn SessionStore> = store;
    store.save(&key(7), b"dyn", HOUR).await.unwrap();
    assert_eq!(store.load(&key(7)).await.unwrap().unwrap(), b"dyn");
}

/// Writes one `#[test]` per conformance check into a new module, for a store built
/// by an async constructor (see the [`conformance`](crate::store::conformance) docs).
///
/// `store_conformance_tests!(module_name, constructor)`, or with
/// `, counting = false` for a store whose `len` answers `None`. The constructor is
/// evaluated afresh for each test and must yield a [`Setup`](crate::store::conformance::Setup):
/// `(store, guard)` or `Option<(store, guard)>` (`None` skips).
///
/// ```
/// sealed_session::store_conformance_tests!(memory, async {
///     Some((sealed_session::store::MemoryStore::new(), ()))
/// });
/// # fn main() {}
/// ```
#[macro_export]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
macro_rules! store_conformance_tests {
    ($module:ident, $make:expr $(,)?) => {
        $crate::store_conformance_tests!($module, $make, counting = true);
    };
    ($module:ident, $make:expr, counting = $counting:expr $(,)?) => {
        $crate::store_conformance_tests!(@cases $module, $make, $counting,
            missing_key_is_none,
            save_load_delete,
            delete_missing_is_ok,
            keys_differing_in_one_byte_are_distinct,
            overwrite_replaces_value_and_ttl,
            expiry_is_honoured,
            a_huge_ttl_is_accepted,
            concurrent_saves_all_land,
            len_and_clear,
            expire_in_only_shortens,
            expire_in_a_missing_key_is_a_no_op,
            save_replacing_writes_like_save,
            works_as_trait_object
        );
    };
    (@cases $module:ident, $make:expr, $counting:expr, $($case:ident),+) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::store::conformance::run($make, |store| {
                        $crate::store::conformance::$case(
                            store,
                            $counting,
                        )
                    });
                }
            )+
        }
    };
}
