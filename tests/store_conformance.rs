//! The public conformance suite (`store_conformance_tests!`, feature `conformance`)
//! run against every store (memory, file, Redis, PostgreSQL, SQLite), plus the
//! checks only one backend has: the memory store's bounds, the file store's
//! restart and sweep, the Redis store's prefixes and its recovery after Redis
//! is killed and restarted. The SQL store's own checks are in `sql_store.rs`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
#[cfg(feature = "conformance")]
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_session::store::{FileStore, SessionStore, StoreKey};
use sealed_session::{store::MemoryStore, Error};

#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

#[cfg(feature = "postgres")]
#[path = "common/postgres_server.rs"]
mod postgres_server;

/// A long TTL for entries that must not expire during a test.
const HOUR: Duration = Duration::from_secs(3600);

fn key(n: u32) -> StoreKey {
    let mut bytes = [0xa5; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    StoreKey::from_bytes(bytes)
}

/// The generic checks (`sealed_session::store::conformance`), one test each, for
/// every store this build has.
#[cfg(feature = "conformance")]
mod conformance {
    use super::*;

    sealed_session::store_conformance_tests!(memory_store, make_memory());
    sealed_session::store_conformance_tests!(file_store, make_file());
    #[cfg(feature = "redis")]
    sealed_session::store_conformance_tests!(redis_store, make_redis());
    #[cfg(feature = "postgres")]
    sealed_session::store_conformance_tests!(postgres_store, make_postgres());
    #[cfg(feature = "sqlite")]
    sealed_session::store_conformance_tests!(sqlite_store, make_sqlite());

    async fn make_memory() -> Option<(MemoryStore, ())> {
        Some((MemoryStore::new(), ()))
    }

    async fn make_file() -> Option<(FileStore, TestDir)> {
        let dir = TestDir::new();
        // A nested path that does not exist yet: `open` creates it.
        let store = FileStore::open(dir.path().join("a/b/sessions"))
            .await
            .unwrap();
        Some((store, dir))
    }

    #[cfg(feature = "redis")]
    async fn make_redis() -> Option<(sealed_session::store::RedisStore, redis_server::RedisServer)>
    {
        let server = redis_server::RedisServer::start()?;
        let store = sealed_session::store::RedisStore::connect(&server.url())
            .await
            .unwrap();
        Some((store, server))
    }

    #[cfg(feature = "postgres")]
    async fn make_postgres() -> Option<(
        sealed_session::store::SqlStore,
        postgres_server::PostgresServer,
    )> {
        let server = postgres_server::PostgresServer::start()?;
        let store = sealed_session::store::SqlStore::connect(&server.url())
            .await
            .unwrap();
        Some((store, server))
    }

    #[cfg(feature = "sqlite")]
    async fn make_sqlite() -> Option<(sealed_session::store::SqlStore, TestDir)> {
        let dir = TestDir::new();
        let url = format!("sqlite:{}", dir.path().join("sessions.db").display());
        let store = sealed_session::store::SqlStore::connect(&url)
            .await
            .unwrap();
        Some((store, dir))
    }
}

/// The suite's own behaviour: `counting = false` for a store whose `len` is `None`,
/// and checks that fail a store that breaks the contract.
#[cfg(feature = "conformance")]
mod suite_itself {
    use super::*;
    use sealed_session::store::conformance;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// Forwards to a memory store, keeping `len` and `clear` at the trait's defaults;
    /// with `ignore_ttl`, it keeps every entry for an hour whatever it is told; `expire_in`
    /// and `save_replacing` can be broken in the ways a store could get them wrong.
    #[derive(Default)]
    struct Countless {
        inner: MemoryStore,
        ignore_ttl: bool,
        expire_in: ExpireIn,
        replacing_overwrites: bool,
    }

    #[derive(Default, Clone, Copy)]
    enum ExpireIn {
        /// Forwards to the memory store.
        #[default]
        Forward,
        /// The trait's default: does nothing.
        Nothing,
        /// Sets the TTL whether it shortens or not, as a plain `EXPIRE` would.
        Set,
        /// Saves the key again with the TTL: lengthens, and brings back deleted entries.
        Resave,
    }

    #[async_trait::async_trait]
    impl SessionStore for Countless {
        async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
            self.inner.load(key).await
        }
        async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
            let ttl = if self.ignore_ttl { HOUR } else { ttl };
            self.inner.save(key, value, ttl).await
        }
        async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
            self.inner.delete(key).await
        }
        async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
            match self.expire_in {
                ExpireIn::Forward => self.inner.expire_in(key, ttl).await,
                ExpireIn::Nothing => Ok(()),
                ExpireIn::Set => match self.inner.load(key).await? {
                    Some(value) => self.inner.save(key, &value, ttl).await,
                    None => Ok(()),
                },
                ExpireIn::Resave => self.inner.save(key, b"resaved", ttl).await,
            }
        }
        async fn save_replacing(
            &self,
            key: &StoreKey,
            value: &[u8],
            ttl: Duration,
            replaced: &StoreKey,
        ) -> Result<(), Error> {
            if self.replacing_overwrites {
                self.inner.save(replaced, value, ttl).await?;
            }
            self.inner.save(key, value, ttl).await
        }
    }

    sealed_session::store_conformance_tests!(
        countless_store,
        async { Some((Countless::default(), ())) },
        counting = false
    );

    /// Runs one check and says whether it passed.
    fn passes<S, F>(store: S, counting: bool, check: fn(Arc<S>, bool) -> F) -> bool
    where
        S: SessionStore,
        F: std::future::Future<Output = ()>,
    {
        catch_unwind(AssertUnwindSafe(|| {
            conformance::run(async { Some((store, ())) }, |s| check(s, counting))
        }))
        .is_ok()
    }

    #[test]
    fn a_store_that_ignores_the_ttl_fails() {
        let broken = || Countless {
            ignore_ttl: true,
            ..Countless::default()
        };
        assert!(!passes(broken(), false, conformance::expiry_is_honoured));
        assert!(!passes(
            broken(),
            false,
            conformance::overwrite_replaces_value_and_ttl
        ));
        assert!(passes(
            Countless::default(),
            false,
            conformance::expiry_is_honoured
        ));
    }

    #[test]
    fn a_store_whose_expire_in_does_not_only_shorten_fails() {
        let with = |expire_in| Countless {
            expire_in,
            ..Countless::default()
        };
        for broken in [ExpireIn::Nothing, ExpireIn::Set, ExpireIn::Resave] {
            assert!(!passes(
                with(broken),
                false,
                conformance::expire_in_only_shortens
            ));
        }
        assert!(!passes(
            with(ExpireIn::Resave),
            false,
            conformance::expire_in_a_missing_key_is_a_no_op
        ));
        assert!(passes(
            with(ExpireIn::Forward),
            false,
            conformance::expire_in_only_shortens
        ));
    }

    #[test]
    fn a_store_whose_save_replacing_touches_the_replaced_entry_fails() {
        let broken = Countless {
            replacing_overwrites: true,
            ..Countless::default()
        };
        assert!(!passes(
            broken,
            false,
            conformance::save_replacing_writes_like_save
        ));
        assert!(passes(
            Countless::default(),
            false,
            conformance::save_replacing_writes_like_save
        ));
    }

    #[test]
    fn counting_must_match_what_len_answers() {
        assert!(!passes(
            Countless::default(),
            true,
            conformance::len_and_clear
        ));
        assert!(!passes(
            MemoryStore::new(),
            false,
            conformance::len_and_clear
        ));
        assert!(passes(MemoryStore::new(), true, conformance::len_and_clear));
    }

    /// A skip (`None`) runs nothing and passes.
    #[test]
    fn none_skips() {
        let mut ran = false;
        conformance::run(async { None::<(MemoryStore, ())> }, |_| {
            ran = true;
            async {}
        });
        assert!(!ran);
    }
}

/// A unique temporary directory, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-test-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn assert_store_error(err: &Error) {
    assert!(
        matches!(err, Error::Store { .. }),
        "expected Error::Store, got {err:?}"
    );
    assert!(
        std::error::Error::source(err).is_some(),
        "the cause is kept"
    );
}

// ---- MemoryStore: bounds ----

#[tokio::test]
async fn memory_entry_bound_holds_under_a_flood() {
    let store = MemoryStore::new().with_max_entries(100);
    for n in 0..1_000 {
        store.save(&key(n), b"small", HOUR).await.unwrap();
    }
    let len = store.len().await.unwrap().unwrap();
    assert!(
        (50..=100).contains(&len),
        "{len} entries for a bound of 100"
    );
    // LRU admits new entries: the latest save is there.
    assert_eq!(store.load(&key(999)).await.unwrap().unwrap(), b"small");
}

#[tokio::test]
async fn memory_byte_bound_holds_under_a_flood() {
    let max_bytes = 100 * 1024;
    let store = MemoryStore::new()
        .with_max_entries(1_000_000)
        .with_max_bytes(max_bytes);
    for n in 0..1_000 {
        store.save(&key(n), &[7; 1024], HOUR).await.unwrap();
    }
    assert!(
        store.charged_bytes() <= max_bytes,
        "{} bytes",
        store.charged_bytes()
    );
    let len = store.len().await.unwrap().unwrap();
    // Each entry is charged its value plus 64 bytes of overhead (MemoryStore's docs).
    let per_entry = 1024 + 64;
    assert!(
        len <= max_bytes as usize / per_entry && len > 0,
        "{len} entries"
    );
    assert!(store.load(&key(999)).await.unwrap().is_some());
}

#[tokio::test]
async fn memory_refuses_a_value_over_its_byte_bound() {
    let store = MemoryStore::new().with_max_bytes(4096);
    let err = store.save(&key(1), &[0; 8192], HOUR).await.unwrap_err();
    assert_store_error(&err);
}

#[tokio::test]
async fn memory_clones_share_entries() {
    let store = MemoryStore::new();
    let clone = store.clone();
    store.save(&key(1), b"shared", HOUR).await.unwrap();
    assert_eq!(clone.load(&key(1)).await.unwrap().unwrap(), b"shared");
}

// ---- FileStore: restart, sweep, foreign files ----

#[tokio::test]
async fn file_store_survives_a_restart() {
    let dir = TestDir::new();
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store.save(&key(1), b"persisted", HOUR).await.unwrap();
        store
            .save(&key(2), b"gone soon", Duration::from_millis(200))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reopened = FileStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.load(&key(1)).await.unwrap().unwrap(), b"persisted");
    assert_eq!(reopened.load(&key(2)).await.unwrap(), None);
    // The expired file was removed by the load.
    assert!(!dir.path().join(key(2).to_string()).exists());
    assert_eq!(reopened.len().await.unwrap(), Some(1));
}

#[tokio::test]
async fn file_sweep_removes_expired_and_leaves_foreign_files() {
    let dir = TestDir::new();
    let store = FileStore::open(dir.path())
        .await
        .unwrap()
        .with_sweep_probability(0, 1);
    for n in 0..3 {
        store
            .save(&key(n), b"expiring", Duration::from_millis(100))
            .await
            .unwrap();
    }
    for n in 10..12 {
        store.save(&key(n), b"live", HOUR).await.unwrap();
    }
    let foreign = [
        "notes.txt",
        "README",
        "0123456789ABCDEF0123456789ABCDEF", // upper case: not a name we write
        "0123456789abcdef0123456789abcdef.bak",
        ".hidden.tmp",
    ];
    for name in foreign {
        std::fs::write(dir.path().join(name), b"not yours").unwrap();
    }
    // Temporary files of ours: one left by a crash long ago, one being written now.
    let stale = dir
        .path()
        .join(format!(".{}.0123456789abcdef.tmp", key(20)));
    let fresh = dir
        .path()
        .join(format!(".{}.fedcba9876543210.tmp", key(21)));
    std::fs::write(&stale, b"half").unwrap();
    std::fs::write(&fresh, b"half").unwrap();
    let old = SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.sweep().await.unwrap(),
        4,
        "3 expired entries + 1 stale temp file"
    );
    assert_eq!(store.sweep().await.unwrap(), 0);

    for name in foreign {
        assert!(dir.path().join(name).exists(), "{name} was touched");
    }
    assert!(fresh.exists() && !stale.exists());
    assert_eq!(store.len().await.unwrap(), Some(2));
    store.clear().await.unwrap();
    assert_eq!(store.len().await.unwrap(), Some(0));
    for name in foreign {
        assert!(dir.path().join(name).exists(), "clear removed {name}");
    }
}

#[tokio::test]
async fn file_save_runs_the_sweep_lottery() {
    let dir = TestDir::new();
    let store = FileStore::open(dir.path())
        .await
        .unwrap()
        .with_sweep_probability(1, 1);
    store
        .save(&key(1), b"old", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.save(&key(2), b"new", HOUR).await.unwrap();
    let expired = dir.path().join(key(1).to_string());
    for _ in 0..100 {
        if !expired.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !expired.exists(),
        "the background sweep removed the expired file"
    );
    assert!(dir.path().join(key(2).to_string()).exists());
}

#[tokio::test]
async fn file_corrupt_entry_reads_as_missing_and_is_removed() {
    // What a crash with fsync off leaves must not give that user a 503 forever
    // (issue "Never lose a session", item 8): it reads as missing and goes.
    let dir = TestDir::new();
    let store = FileStore::open(dir.path()).await.unwrap();
    let path = dir.path().join(key(1).to_string());
    for garbage in [&b""[..], b"garbage", b"sss1\0\0\0"] {
        std::fs::write(&path, garbage).unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap(), None, "{garbage:?}");
        assert!(!path.exists(), "{garbage:?}: the corrupt file is removed");
    }
    assert_eq!(store.len().await.unwrap(), Some(0));
}

#[tokio::test]
async fn file_store_recreates_a_removed_directory() {
    let dir = TestDir::new();
    let path = dir.path().join("sessions");
    let store = FileStore::open(&path).await.unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    store.save(&key(1), b"again", HOUR).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"again");
}

#[tokio::test]
async fn file_open_on_a_file_fails() {
    let dir = TestDir::new();
    let path = dir.path().join("plain-file");
    std::fs::write(&path, b"x").unwrap();
    let err = FileStore::open(&path).await.unwrap_err();
    assert_store_error(&err);
}

#[cfg(unix)]
#[tokio::test]
async fn file_entries_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let store = FileStore::open(dir.path()).await.unwrap();
    store.save(&key(1), b"secret", HOUR).await.unwrap();
    let mode = std::fs::metadata(dir.path().join(key(1).to_string()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
}

// ---- RedisStore: prefixes, faults ----

#[cfg(feature = "redis")]
mod redis_only {
    use super::*;
    use redis_server::RedisServer;
    use sealed_session::store::RedisStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prefixes_keep_stores_and_foreign_keys_apart() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let a = RedisStore::connect(&server.url())
            .await
            .unwrap()
            .with_prefix("app-a:");
        let b = RedisStore::connect(&server.url())
            .await
            .unwrap()
            .with_prefix("app*[b]:");
        assert!(format!("{a:?}").contains(r#"prefix: "app-a:""#), "{a:?}");
        a.save(&key(1), b"from a", HOUR).await.unwrap();
        b.save(&key(1), b"from b", HOUR).await.unwrap();
        b.save(&key(2), b"from b", HOUR).await.unwrap();

        // Keys nobody's store wrote, under and outside the prefixes.
        let client = redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        for foreign in ["app-a:settings", "other:thing", "app-axxxx"] {
            redis::cmd("SET")
                .arg(foreign)
                .arg("keep me")
                .exec_async(&mut conn)
                .await
                .unwrap();
        }

        assert_eq!(a.load(&key(1)).await.unwrap().unwrap(), b"from a");
        assert_eq!(a.len().await.unwrap(), Some(1));
        assert_eq!(b.len().await.unwrap(), Some(2));
        let ttl: i64 = redis::cmd("PTTL")
            .arg(format!("app-a:{}", key(1)))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((3_500_000..=3_600_000).contains(&ttl), "PTTL {ttl}");

        b.clear().await.unwrap();
        assert_eq!(b.len().await.unwrap(), Some(0));
        assert_eq!(a.load(&key(1)).await.unwrap().unwrap(), b"from a");
        let size: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
        assert_eq!(size, 4, "a's entry and the 3 foreign keys remain");
    }

    /// `expire_in` on what the conformance suite cannot set up through the trait: a key
    /// without a TTL gets one, a TTL is only ever shortened (as Redis reports it), the
    /// value is untouched, and a missing key is not created.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expire_in_sets_shortens_or_leaves_the_redis_ttl() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let client = redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let name = |n: u32| format!("sealed-session:{}", key(n));
        // A key someone set without a TTL.
        redis::cmd("SET")
            .arg(name(1))
            .arg(&b"no ttl\xff"[..])
            .exec_async(&mut conn)
            .await
            .unwrap();
        let pttl = |n: u32| {
            let mut conn = conn.clone();
            async move {
                redis::cmd("PTTL")
                    .arg(name(n))
                    .query_async::<i64>(&mut conn)
                    .await
                    .unwrap()
            }
        };
        store.save(&key(2), b"an hour", HOUR).await.unwrap();
        store
            .save(&key(3), b"a minute", Duration::from_secs(60))
            .await
            .unwrap();

        store
            .expire_in(&key(1), Duration::from_secs(30))
            .await
            .unwrap();
        store
            .expire_in(&key(2), Duration::from_secs(30))
            .await
            .unwrap();
        store.expire_in(&key(3), HOUR).await.unwrap();
        store.expire_in(&key(4), HOUR).await.unwrap();
        assert!(
            (29_000..=30_000).contains(&pttl(1).await),
            "a key without TTL gets one"
        );
        assert!((29_000..=30_000).contains(&pttl(2).await), "shortened");
        assert!(
            (58_000..=60_000).contains(&pttl(3).await),
            "never lengthened"
        );
        assert_eq!(pttl(4).await, -2, "a missing key is not created");
        assert_eq!(
            store.load(&key(1)).await.unwrap().as_deref(),
            Some(&b"no ttl\xff"[..])
        );
        assert_eq!(
            store.load(&key(2)).await.unwrap().as_deref(),
            Some(&b"an hour"[..])
        );
        // A TTL too long for Redis to add to its clock is capped, not refused.
        store.expire_in(&key(1), Duration::MAX).await.unwrap();
        assert!((29_000..=30_000).contains(&pttl(1).await));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clear_walks_many_pages() {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let store = RedisStore::connect(&server.url()).await.unwrap();
        for n in 0..1_234 {
            store.save(&key(n), b"v", HOUR).await.unwrap();
        }
        assert_eq!(store.len().await.unwrap(), Some(1_234));
        store.clear().await.unwrap();
        assert_eq!(store.len().await.unwrap(), Some(0));
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_redis_gives_an_error_not_a_hang() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let store = RedisStore::connect(&server.url()).await.unwrap();
        store.save(&key(1), b"before", HOUR).await.unwrap();

        server.set_frozen(true);
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(5), store.load(&key(1)))
            .await
            .expect("load hung while redis was frozen");
        assert_store_error(&result.unwrap_err());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "took {took:?} to fail");

        server.set_frozen(false);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), store.load(&key(1))).await {
                Ok(Ok(Some(v))) => {
                    assert_eq!(v, b"before");
                    break;
                }
                other if std::time::Instant::now() > deadline => {
                    panic!("store did not recover after redis thawed: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_to_nothing_fails_fast() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        server.kill();
        let started = std::time::Instant::now();
        let result =
            tokio::time::timeout(Duration::from_secs(5), RedisStore::connect(&server.url())).await;
        let err = result.expect("connect gave up in time").unwrap_err();
        assert_store_error(&err);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_redis_being_killed_and_restarted() {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        let store = RedisStore::connect(&server.url()).await.unwrap();
        store.save(&key(1), b"before", HOUR).await.unwrap();

        server.kill();
        for op in ["save", "load"] {
            let call = async {
                match op {
                    "save" => store.save(&key(2), b"during", HOUR).await,
                    _ => store.load(&key(1)).await.map(|_| ()),
                }
            };
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .unwrap_or_else(|_| panic!("{op} hung while redis was down"));
            let err = result.expect_err("redis is down");
            assert_store_error(&err);
            assert!(err.to_string().contains(op), "{err}");
            let took = started.elapsed();
            assert!(took < Duration::from_secs(3), "{op} took {took:?} to fail");
            println!(
                "{op} failed after {took:?}: {err}: {:?}",
                std::error::Error::source(&err)
            );
        }

        // Same port, empty server (no persistence); the same store must recover.
        server.restart();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let attempt = async {
                store.save(&key(3), b"after", HOUR).await?;
                store.load(&key(3)).await
            };
            match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                Ok(Ok(Some(v))) if v == b"after" => break,
                other if std::time::Instant::now() > deadline => {
                    panic!("store did not recover after redis restarted: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert_eq!(
            store.load(&key(1)).await.unwrap(),
            None,
            "the restarted redis is empty"
        );
    }
}

#[test]
fn distinct_test_keys() {
    let keys: HashSet<StoreKey> = (0..2_000).map(key).collect();
    assert_eq!(keys.len(), 2_000);
}
