//! The size guard: sessions over the cookie budget move to the store and back.

#[path = "common/browser.rs"]
mod browser;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use browser::{cookie_pair, noise, request, set_cookies, with_cookie, ManualClock};
use http::HeaderMap;
use sealed_session::headers::{load, save};
use sealed_session::store::{FileStore, SessionStore, StoreKey};
use sealed_session::{store::MemoryStore, Error, Keyring, Session, SessionConfig};

const T0: i64 = 1_800_000_000;
const BUDGET: usize = 4093;

fn config(store: Arc<dyn SessionStore>, clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new([[7u8; 32]]).unwrap())
        .clock(clock.clock())
        .store_arc(store)
        .build()
        .unwrap()
}

/// Wraps a store and keeps the set of entries that are neither deleted nor retired:
/// the ones a cookie currently points at. Retired entries (replaced by a newer write)
/// are told to expire after a short grace, and recorded with that grace.
struct Recording {
    inner: Arc<dyn SessionStore>,
    current: std::sync::Mutex<std::collections::HashSet<StoreKey>>,
    retired: std::sync::Mutex<Vec<(StoreKey, Duration)>>,
}

impl Recording {
    fn new(inner: Arc<dyn SessionStore>) -> Self {
        Recording {
            inner,
            current: Default::default(),
            retired: Default::default(),
        }
    }

    fn current(&self) -> usize {
        self.current.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl SessionStore for Recording {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        self.inner.save(key, value, ttl).await?;
        self.current.lock().unwrap().insert(*key);
        Ok(())
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.inner.delete(key).await?;
        self.current.lock().unwrap().remove(key);
        Ok(())
    }
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        self.inner.expire_in(key, ttl).await?;
        self.current.lock().unwrap().remove(key);
        self.retired.lock().unwrap().push((*key, ttl));
        Ok(())
    }
}

async fn grow_and_shrink(store: Arc<dyn SessionStore>) {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Recording::new(store));
    let cfg = config(store.clone(), &clock);
    let (_, out) = request(&cfg, None, |s| s.insert("blob", &noise(100, 1)).unwrap()).await;
    let mut pair = cookie_pair(&out).unwrap();
    let mut sizes: Vec<usize> = (1..=20).map(|k| k * 1000).collect();
    sizes.extend((0..20).rev().map(|k| k * 1000 + 100));
    let mut went_to_store = false;
    for (step, size) in sizes.into_iter().enumerate() {
        let data = noise(size, step as u64 + 2);
        let (s, out) = request(&cfg, Some(&pair), |s| {
            assert!(
                s.load_error().is_none(),
                "step {step}: {:?}",
                s.load_error()
            );
            s.insert("blob", &data).unwrap();
        })
        .await;
        pair = cookie_pair(&out).unwrap_or_else(|| panic!("step {step}: no cookie"));
        assert!(
            pair.len() <= BUDGET,
            "step {step}: cookie {} bytes",
            pair.len()
        );
        let (check, _) = request(&cfg, Some(&pair), |_| {}).await;
        assert_eq!(
            check
                .get::<serde_bytes::ByteBuf>("blob")
                .unwrap()
                .as_deref(),
            Some(&*data),
            "step {step}"
        );
        // Every write of a big session goes to a fresh entry; the one it replaces is
        // retired (it expires after a short grace, for requests still in flight).
        let stored = store.current();
        if s.is_store_backed() {
            went_to_store = true;
            assert_eq!(stored, 1, "step {step}: one current entry for the session");
        } else {
            assert_eq!(
                stored, 0,
                "step {step}: inline session leaves no current entry"
            );
        }
        // 3000 bytes of noise seal to ~4.1 KB: just over the budget.
        assert_eq!(
            s.is_store_backed(),
            size >= 3000,
            "step {step}: size {size}"
        );
    }
    assert!(went_to_store);
    let retired = store.retired.lock().unwrap();
    assert!(!retired.is_empty());
    assert!(
        retired
            .iter()
            .all(|(_, grace)| *grace <= Duration::from_secs(60)),
        "{retired:?}"
    );
}

#[tokio::test]
async fn grows_to_20kb_and_back_with_memory_store() {
    grow_and_shrink(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn grows_to_20kb_and_back_with_file_store() {
    let dir = std::env::temp_dir().join(format!("sealed-session-guard-{}", std::process::id()));
    let store = FileStore::open(&dir).await.unwrap();
    grow_and_shrink(Arc::new(store)).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Where the pointer cookie `pair` (`name=value`) keeps its body in the store.
fn entry_key(cfg: &SessionConfig, pair: &str) -> StoreKey {
    let value = pair.split_once('=').unwrap().1;
    sealed_session::inspect::describe(cfg, value)
        .unwrap()
        .store_key
        .expect("a pointer cookie")
}

async fn big_session(cfg: &SessionConfig, seed: u64) -> (Session, String) {
    let (s, out) = request(cfg, None, |s| s.insert("blob", &noise(8000, seed)).unwrap()).await;
    assert!(s.is_store_backed());
    (s, cookie_pair(&out).unwrap())
}

#[tokio::test]
async fn tampered_pointer_cookie_is_rejected() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    let cfg = config(store, &clock);
    let (_, pair) = big_session(&cfg, 3).await;
    let value = pair.split_once('=').unwrap().1;
    let raw = URL_SAFE_NO_PAD.decode(value).unwrap();
    for i in 0..raw.len() {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        let cookie = format!("session={}", URL_SAFE_NO_PAD.encode(&t));
        let (s, _) = request(&cfg, Some(&cookie), |_| {}).await;
        assert!(s.is_new() && s.is_empty(), "byte {i}");
        assert!(s.load_error().is_some());
    }
}

#[tokio::test]
async fn an_entry_copied_to_another_id_does_not_open() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemoryStore::new());
    let cfg = config(store.clone(), &clock);
    let (_, pair_a) = big_session(&cfg, 4).await;
    let (_, pair_b) = big_session(&cfg, 5).await;
    let key_a = entry_key(&cfg, &pair_a);
    let key_b = entry_key(&cfg, &pair_b);
    let entry_a = store.load(&key_a).await.unwrap().unwrap();
    store
        .save(&key_b, &entry_a, Duration::from_secs(600))
        .await
        .unwrap();
    let (s, _) = request(&cfg, Some(&pair_b), |_| {}).await;
    assert!(s.is_new());
    assert!(matches!(
        s.load_error().as_deref(),
        Some(Error::Authentication)
    ));
}

#[tokio::test]
async fn regenerate_moves_the_entry_and_destroy_deletes_it() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Recording::new(Arc::new(MemoryStore::new())));
    let cfg = config(store.clone(), &clock);
    let (_, pair) = big_session(&cfg, 6).await;
    let old_key: StoreKey = entry_key(&cfg, &pair);
    let (_, out) = request(&cfg, Some(&pair), |s| s.regenerate()).await;
    let new_key = entry_key(&cfg, &cookie_pair(&out).unwrap());
    assert_ne!(old_key, new_key);
    assert_eq!(
        store.retired.lock().unwrap().first().map(|(k, _)| *k),
        Some(old_key),
        "the entry of the old id is retired"
    );
    assert!(
        store.load(&new_key).await.unwrap().is_some(),
        "entry under the new id"
    );
    assert_eq!(store.current(), 1);
    let pair = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, Some(&pair), |s| s.destroy()).await;
    assert!(set_cookies(&out)[0].contains("Max-Age=0"));
    assert!(
        store.load(&new_key).await.unwrap().is_none(),
        "destroy deletes at once"
    );
    assert_eq!(store.current(), 0);
}

fn ttl_of_last_write(store: &Flaky) -> u64 {
    store.last_ttl.lock().unwrap().unwrap().as_secs()
}

#[tokio::test]
async fn store_ttl_follows_the_session_and_a_missing_entry_gives_a_fresh_session() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Flaky::default());
    let cfg = config(store.clone(), &clock);
    let (s, pair) = big_session(&cfg, 8).await;
    // The default policy: 24 h idle within 7 days; the entry lives exactly as long.
    let ttl = |s: &Session| (s.expires_at().unix_timestamp() - clock.now()) as u64;
    assert_eq!(ttl(&s), 24 * 3600);
    assert_eq!(
        *store.last_ttl.lock().unwrap(),
        Some(Duration::from_secs(ttl(&s)))
    );
    // A write every 20 h renews the idle expiry, and the entry's TTL with it, until the
    // absolute limit (7 days from creation) caps both.
    let mut pair = pair;
    for step in 1..=8 {
        clock.advance(20 * 3600);
        let expected = (24 * 3600).min(7 * 24 * 3600 - step * 20 * 3600);
        let (s, out) = request(&cfg, Some(&pair), |s| {
            s.insert("seen", &clock.now()).unwrap()
        })
        .await;
        assert!(s.is_store_backed());
        assert_eq!(ttl(&s), expected);
        assert_eq!(
            *store.last_ttl.lock().unwrap(),
            Some(Duration::from_secs(expected))
        );
        pair = cookie_pair(&out).unwrap();
    }
    assert_eq!(
        ttl_of_last_write(&store),
        8 * 3600,
        "capped by the absolute limit"
    );
    let pair = {
        let (_, out) = request(&cfg, Some(&pair), |s| s.insert("x", &1u8).unwrap()).await;
        cookie_pair(&out).unwrap()
    };
    store.delete(&entry_key(&cfg, &pair)).await.unwrap();
    let (s, _) = request(&cfg, Some(&pair), |_| {}).await;
    assert!(s.is_new());
    assert!(matches!(
        s.load_error().as_deref(),
        Some(Error::MissingInStore)
    ));
}

/// A store that fails on demand, to prove nothing is reported saved that was not.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
    /// The TTL of the last save.
    last_ttl: std::sync::Mutex<Option<Duration>>,
}

#[async_trait::async_trait]
impl SessionStore for Flaky {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store(
                "load",
                std::io::Error::other("connection refused"),
            ));
        }
        self.inner.load(key).await
    }
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store(
                "save",
                std::io::Error::other("connection refused"),
            ));
        }
        *self.last_ttl.lock().unwrap() = Some(ttl);
        self.inner.save(key, value, ttl).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn store_failure_is_an_error_with_its_cause_and_writes_nothing() {
    let clock = ManualClock::new(T0);
    let flaky = Arc::new(Flaky::default());
    let cfg = config(flaky.clone(), &clock);
    let (_, pair) = big_session(&cfg, 9).await;
    flaky.down.store(true, Ordering::SeqCst);
    // Loading a pointer session needs the store.
    let err = load(&cfg, &with_cookie(&pair)).await.unwrap_err();
    assert!(matches!(err, Error::Store { op: "load", .. }));
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("connection refused"), "{cause}");
    // Saving a big session needs the store: error, no Set-Cookie.
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("blob", &noise(9000, 10)).unwrap();
    let mut out = HeaderMap::new();
    let err = save(&cfg, &s, &mut out).await.unwrap_err();
    assert!(matches!(err, Error::Store { op: "save", .. }));
    assert!(out.is_empty());
    // Inline sessions keep working while the store is down.
    let (small, out) = request(&cfg, None, |s| s.insert("n", &1u8).unwrap()).await;
    assert!(!small.is_store_backed());
    assert!(cookie_pair(&out).is_some());
}

/// A pointer whose store entry is gone does not end the load: the request's next
/// value of the same name is tried, as for any value that does not open.
#[tokio::test]
async fn after_a_dangling_pointer_the_next_value_is_tried() {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let cfg = config(store.clone(), &clock);
    let (_, dangling) = big_session(&cfg, 11).await;
    store.delete(&entry_key(&cfg, &dangling)).await.unwrap();
    let (big, pointer) = big_session(&cfg, 12).await;
    let (small, out) = request(&cfg, None, |s| s.insert("n", &5u8).unwrap()).await;
    let inline = cookie_pair(&out).unwrap();

    let (s, _) = request(&cfg, Some(&format!("{dangling}; {inline}")), |_| {}).await;
    assert_eq!(s.id(), small.id());
    assert_eq!(s.get::<u8>("n").unwrap(), Some(5));

    let (s, _) = request(
        &cfg,
        Some(&format!("{dangling}; {pointer}; {inline}")),
        |_| {},
    )
    .await;
    assert_eq!(s.id(), big.id(), "the second pointer's body is fetched");
    assert_eq!(
        s.get::<serde_bytes::ByteBuf>("blob")
            .unwrap()
            .map(|b| b.len()),
        Some(8000)
    );

    let (s, _) = request(&cfg, Some(&dangling), |_| {}).await;
    assert!(s.is_new());
    assert!(matches!(
        s.load_error().as_deref(),
        Some(Error::MissingInStore)
    ));
}

/// The cap on a store-backed body is `max_store_body`, not the 64 KiB that bounds
/// what a cookie may decompress to: a 100 KB session is stored and read back, and a
/// session over `max_store_body` is an error naming that cap that keeps the old one.
#[tokio::test]
async fn store_bodies_are_capped_by_max_store_body_not_by_max_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(FileStore::open(dir.path()).await.unwrap());
    let clock = ManualClock::new(T0);
    let cfg = SessionConfig::builder(Keyring::new([[7u8; 32]]).unwrap())
        .clock(clock.clock())
        .store_arc(store)
        .max_store_body(120_000)
        .build()
        .unwrap();
    let big = noise(100_000, 3);
    let (s, out) = request(&cfg, None, |s| s.insert("blob", &big).unwrap()).await;
    assert!(s.is_store_backed());
    let pair = cookie_pair(&out).expect("a pointer cookie");
    let back = load(&cfg, &with_cookie(&pair)).await.unwrap();
    assert_eq!(
        back.get::<serde_bytes::ByteBuf>("blob").unwrap().as_ref(),
        Some(&big),
        "a 100 KB store-backed session reads back whole"
    );

    let session = load(&cfg, &with_cookie(&pair)).await.unwrap();
    session.insert("blob", &noise(150_000, 4)).unwrap();
    let mut out = HeaderMap::new();
    let err = save(&cfg, &session, &mut out).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "max_store_body",
                limit: 120_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_store_body"), "{err}");
    assert!(
        out.is_empty(),
        "nothing is written for a session that was not saved"
    );
    let kept = load(&cfg, &with_cookie(&pair)).await.unwrap();
    assert_eq!(
        kept.get::<serde_bytes::ByteBuf>("blob").unwrap().as_ref(),
        Some(&big),
        "the previous session is kept"
    );
}
