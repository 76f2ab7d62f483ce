//! The SQL store's own checks, against a real SQLite file and a real PostgreSQL
//! (started by the test): table creation, its name, sweeps, corrupt rows, one
//! table only, and the faults: a database that stops, a statement stuck behind a
//! lock, a read-only file, two pools (two processes) on one database. The generic
//! store checks run in `store_conformance.rs`.
#![cfg(any(feature = "postgres", feature = "sqlite"))]

use std::time::{Duration, Instant};

use sealed_session::store::{SessionStore, SqlOptions, SqlStore, StoreKey};
use sealed_session::{Error, ErrorKind};

#[cfg(feature = "postgres")]
#[path = "common/postgres_server.rs"]
mod postgres_server;

/// A long TTL for entries that must not expire during a test.
const HOUR: Duration = Duration::from_secs(3600);

/// Short bounds, so fault tests fail fast.
fn quick() -> SqlOptions {
    SqlOptions::new()
        .with_timeout(Duration::from_millis(600))
        .with_connect_timeout(Duration::from_millis(300))
}

fn key(n: u32) -> StoreKey {
    let mut bytes = [0x5a; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    StoreKey::from_bytes(bytes)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assert_store_error(err: &Error, op: &str) {
    assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
    assert!(
        std::error::Error::source(err).is_some(),
        "the cause is kept: {err:?}"
    );
    assert!(err.to_string().contains(op), "{err} names {op}");
}

/// Awaits `work`, asserting it ends (with anything) within `bound`; returns its output.
async fn within<T>(bound: Duration, what: &str, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(bound * 3, work)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let took = started.elapsed();
    assert!(took <= bound, "{what} took {took:?}, over {bound:?}");
    out
}

#[test]
fn bad_table_names_are_config_errors() {
    for bad in [
        "",
        "Sessions",
        "a;b",
        "x\" OR 1=1",
        "public.sessions",
        "9lives",
    ] {
        let err = SqlStore::ddl(sealed_session::store::SqlBackend::Sqlite, bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sealed_session::store::SqlPool;
    use sqlx::sqlite::SqlitePool;

    struct Db {
        dir: tempfile::TempDir,
    }

    impl Db {
        fn new() -> Db {
            Db {
                dir: tempfile::Builder::new()
                    .prefix("sealed-session-sqlite-")
                    .tempdir()
                    .unwrap(),
            }
        }

        fn path(&self) -> std::path::PathBuf {
            self.dir.path().join("sessions.db")
        }

        fn url(&self) -> String {
            format!("sqlite:{}", self.path().display())
        }

        async fn store(&self) -> SqlStore {
            SqlStore::new(&SqlPool::connect_with(&self.url(), quick()).await.unwrap())
        }

        /// A plain sqlx pool on the same file, for what a DBA or another program does.
        async fn raw(&self) -> SqlitePool {
            SqlitePool::connect(&format!("{}?mode=rwc", self.url()))
                .await
                .unwrap()
        }
    }

    async fn tables(raw: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name",
        )
        .fetch_all(raw)
        .await
        .unwrap()
    }

    async fn rows(raw: &SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(raw)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_table_is_created_on_first_use_in_wal_mode() {
        let db = Db::new();
        let store = db.store().await;
        assert!(db.path().exists(), "connect creates the file");
        let raw = db.raw().await;
        assert!(tables(&raw).await.is_empty(), "nothing before first use");
        assert_eq!(store.load(&key(1)).await.unwrap(), None);
        assert_eq!(
            tables(&raw).await,
            ["sealed_sessions", "sealed_sessions_expires_ms"]
        );
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.save(&key(1), b"v", HOUR).await.unwrap();
        assert_eq!(rows(&raw, "sealed_sessions").await, 1);
        assert!(format!("{store:?}").contains("Sqlite"), "{store:?}");
    }

    #[tokio::test]
    async fn len_clear_and_sweep_touch_only_their_own_table() {
        let db = Db::new();
        // No lottery sweeps: the test counts what each sweep removes.
        let a = db
            .store()
            .await
            .with_table("app_a")
            .unwrap()
            .with_sweep_probability(0, 1);
        let b = db
            .store()
            .await
            .with_table("app_b")
            .unwrap()
            .with_sweep_probability(0, 1);
        assert_eq!(a.table(), "app_a");
        let raw = db.raw().await;
        sqlx::query("CREATE TABLE notes (id BLOB, expires_ms INTEGER)")
            .execute(&raw)
            .await
            .unwrap();
        sqlx::query("INSERT INTO notes VALUES (x'00', 0), (x'01', 0)")
            .execute(&raw)
            .await
            .unwrap();
        a.save(&key(1), b"a1", HOUR).await.unwrap();
        a.save(&key(2), b"a2", Duration::from_millis(50))
            .await
            .unwrap();
        b.save(&key(1), b"b1", HOUR).await.unwrap();
        b.save(&key(2), b"b2", Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(b.load(&key(1)).await.unwrap().unwrap(), b"b1");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(a.sweep().await.unwrap(), 1);
        assert_eq!(
            rows(&raw, "app_b").await,
            2,
            "b's expired row is b's to sweep"
        );
        a.clear().await.unwrap();
        assert_eq!(a.len().await.unwrap(), Some(0));
        assert_eq!(b.len().await.unwrap(), Some(1));
        assert_eq!(b.load(&key(1)).await.unwrap().unwrap(), b"b1");
        assert_eq!(
            rows(&raw, "notes").await,
            2,
            "a foreign table is left alone"
        );
    }

    #[tokio::test]
    async fn expired_rows_never_load_and_the_sweep_deletes_them_in_batches() {
        let db = Db::new();
        let store = db.store().await.with_sweep_probability(0, 1);
        store.migrate().await.unwrap();
        let raw = db.raw().await;
        // More expired rows than one sweep batch (1,000), written as another program would.
        let mut tx = raw.begin().await.unwrap();
        for n in 0..2_345u32 {
            sqlx::query("INSERT INTO sealed_sessions VALUES (?1, x'00', ?2)")
                .bind(key(n).as_bytes().as_slice())
                .bind(now_ms() - 1)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        store.save(&key(9_999), b"live", HOUR).await.unwrap();
        assert_eq!(
            store.load(&key(7)).await.unwrap(),
            None,
            "expired in the query"
        );
        assert_eq!(store.len().await.unwrap(), Some(1));
        assert_eq!(
            rows(&raw, "sealed_sessions").await,
            2_346,
            "a load deletes nothing"
        );
        assert_eq!(store.sweep().await.unwrap(), 2_345);
        assert_eq!(store.sweep().await.unwrap(), 0);
        assert_eq!(store.load(&key(9_999)).await.unwrap().unwrap(), b"live");
    }

    #[tokio::test]
    async fn a_save_runs_the_sweep_lottery() {
        let db = Db::new();
        let store = db.store().await.with_sweep_probability(1, 1);
        store
            .save(&key(1), b"old", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.save(&key(2), b"new", HOUR).await.unwrap();
        let raw = db.raw().await;
        let started = Instant::now();
        while rows(&raw, "sealed_sessions").await != 1 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the background sweep did not remove the expired row"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.load(&key(2)).await.unwrap().unwrap(), b"new");

        let never = db
            .store()
            .await
            .with_table("never")
            .unwrap()
            .with_sweep_probability(0, 1);
        never
            .save(&key(1), b"old", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for n in 2..30 {
            never.save(&key(n), b"new", HOUR).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            rows(&raw, "never").await,
            29,
            "a probability of 0 never sweeps"
        );
    }

    #[tokio::test]
    async fn corrupt_rows_read_as_missing_and_are_removed() {
        let db = Db::new();
        let raw = db.raw().await;
        // A DBA's table with looser columns than the documented schema.
        sqlx::query("CREATE TABLE sealed_sessions (id BLOB PRIMARY KEY, sealed, expires_ms)")
            .execute(&raw)
            .await
            .unwrap();
        let future = now_ms() + 3_600_000;
        let bad: [(u32, &str); 4] = [
            (1, "'text, not bytes'"),
            (2, "NULL"),
            (3, "x'00'"), // with a text expiry, below
            (4, "42"),
        ];
        for (n, sealed) in bad {
            let expiry = if n == 3 {
                "'soon'".to_owned()
            } else {
                future.to_string()
            };
            sqlx::query(&format!(
                "INSERT INTO sealed_sessions VALUES (?1, {sealed}, {expiry})"
            ))
            .bind(key(n).as_bytes().as_slice())
            .execute(&raw)
            .await
            .unwrap();
        }
        let store = db.store().await;
        store.save(&key(9), b"good", HOUR).await.unwrap();
        assert_eq!(
            store.len().await.unwrap(),
            Some(1),
            "corrupt rows are not counted"
        );
        // `expire_in` writes no expiry into a corrupt row (row 3's bytes would then load).
        for (n, _) in bad {
            store.expire_in(&key(n), HOUR).await.unwrap();
        }
        for (n, _) in bad {
            assert_eq!(store.load(&key(n)).await.unwrap(), None, "row {n}");
        }
        assert_eq!(
            rows(&raw, "sealed_sessions").await,
            1,
            "the corrupt rows are gone"
        );
        assert_eq!(store.load(&key(9)).await.unwrap().unwrap(), b"good");
    }

    /// A trigger that silently drops writes: the save is an error, never `Ok`.
    #[tokio::test]
    async fn a_write_the_database_swallows_is_an_error() {
        let db = Db::new();
        let store = db.store().await;
        store.migrate().await.unwrap();
        sqlx::raw_sql(
            "CREATE TRIGGER swallow BEFORE INSERT ON sealed_sessions \
             BEGIN SELECT RAISE(IGNORE); END;",
        )
        .execute(&db.raw().await)
        .await
        .unwrap();
        let err = store.save(&key(1), b"v", HOUR).await.unwrap_err();
        assert_store_error(&err, "save");
        assert_eq!(store.load(&key(1)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_dropped_table_is_created_again() {
        let db = Db::new();
        let store = db.store().await;
        store.save(&key(1), b"v", HOUR).await.unwrap();
        sqlx::query("DROP TABLE sealed_sessions")
            .execute(&db.raw().await)
            .await
            .unwrap();
        // The call that meets the missing table fails; the next one recreates it.
        let err = store.save(&key(2), b"v", HOUR).await.unwrap_err();
        assert_store_error(&err, "save");
        store.save(&key(2), b"v", HOUR).await.unwrap();
        assert_eq!(store.load(&key(2)).await.unwrap().unwrap(), b"v");
    }

    /// Two pools on one file are what two processes are: they see each other's
    /// writes, and writes from both at once all land (WAL, busy timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_file_share_entries_and_write_at_once() {
        let db = Db::new();
        // The default bounds (2 s): SQLite serializes writers, each commit syncs the file.
        let a = SqlStore::connect(&db.url()).await.unwrap();
        let b = SqlStore::connect(&db.url()).await.unwrap();
        a.save(&key(1), b"from a", HOUR).await.unwrap();
        assert_eq!(b.load(&key(1)).await.unwrap().unwrap(), b"from a");
        b.save(&key(1), b"from b", HOUR).await.unwrap();
        assert_eq!(a.load(&key(1)).await.unwrap().unwrap(), b"from b");
        let mut tasks = Vec::new();
        for n in 0..80u32 {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store.save(&key(100 + n), &n.to_be_bytes(), HOUR).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for n in 0..80u32 {
            let reader = if n % 2 == 0 { &b } else { &a };
            assert_eq!(
                reader.load(&key(100 + n)).await.unwrap().unwrap(),
                n.to_be_bytes()
            );
        }
        assert_eq!(a.len().await.unwrap(), Some(81));
    }

    /// A file the store may only read: reads work, every write fails fast with a
    /// store error, and nothing is reported saved.
    #[tokio::test]
    async fn a_read_only_file_serves_reads_and_refuses_writes() {
        let db = Db::new();
        let writer = db.store().await;
        writer.save(&key(1), b"kept", HOUR).await.unwrap();
        let reader = read_only_store(&db).await;
        assert_eq!(reader.load(&key(1)).await.unwrap().unwrap(), b"kept");
        assert_eq!(reader.len().await.unwrap(), Some(1));
        let err = within(
            Duration::from_secs(1),
            "a read-only save",
            reader.save(&key(2), b"x", HOUR),
        )
        .await
        .unwrap_err();
        assert_store_error(&err, "save");
        let err = reader.delete(&key(1)).await.unwrap_err();
        assert_store_error(&err, "delete");
        let err = reader.expire_in(&key(1), Duration::ZERO).await.unwrap_err();
        assert_store_error(&err, "expire_in");
        assert_eq!(
            writer.load(&key(2)).await.unwrap(),
            None,
            "nothing was written"
        );
        assert_eq!(reader.load(&key(1)).await.unwrap().unwrap(), b"kept");
    }

    /// A store on `db`'s file that cannot write it: the file made read-only (when not
    /// root), or opened read-only (as root, whom file modes do not stop).
    async fn read_only_store(db: &Db) -> SqlStore {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let url = if root {
            format!("{}?mode=ro", db.url())
        } else {
            std::fs::set_permissions(db.path(), std::fs::Permissions::from_mode(0o444)).unwrap();
            db.url()
        };
        SqlStore::new(&SqlPool::connect_with(&url, quick()).await.unwrap())
    }

    #[tokio::test]
    async fn a_path_that_cannot_be_a_database_fails_to_connect() {
        let db = Db::new();
        let err = SqlPool::connect(&format!("sqlite:{}", db.dir.path().display()))
            .await
            .unwrap_err();
        assert_store_error(&err, "connect");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use postgres_server::PostgresServer;
    use sealed_session::store::SqlPool;
    use sqlx::postgres::PgPool;

    async fn store(server: &PostgresServer) -> SqlStore {
        SqlStore::new(&SqlPool::connect_with(&server.url(), quick()).await.unwrap())
    }

    async fn raw(server: &PostgresServer) -> PgPool {
        PgPool::connect(&server.url()).await.unwrap()
    }

    async fn rows(raw: &PgPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(raw)
            .await
            .unwrap()
    }

    /// Retries `attempt` until it gives `Ok`, for at most `bound`.
    async fn eventually<T, F, Fut>(bound: Duration, what: &str, mut attempt: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let started = Instant::now();
        loop {
            match attempt().await {
                Ok(v) => return v,
                Err(e) if started.elapsed() > bound => panic!("{what}: still failing: {e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn first_use_from_many_pools_at_once_creates_the_table_once() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let mut stores = Vec::new();
        for _ in 0..6 {
            stores.push(store(&server).await);
        }
        let mut tasks = Vec::new();
        for (n, store) in stores.iter().enumerate() {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.save(&key(n as u32), b"v", HOUR).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(stores[0].len().await.unwrap(), Some(6));
        let raw = raw(&server).await;
        let index: bool =
            sqlx::query_scalar("SELECT to_regclass('sealed_sessions_expires_ms') IS NOT NULL")
                .fetch_one(&raw)
                .await
                .unwrap();
        assert!(index, "the expiry index exists");
    }

    /// A DBA creates the table from the documented DDL and grants the application's
    /// role only row access: the store works without any CREATE privilege.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dba_created_table_needs_only_row_privileges() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let raw = raw(&server).await;
        let ddl =
            SqlStore::ddl(sealed_session::store::SqlBackend::Postgres, "app_sessions").unwrap();
        sqlx::raw_sql(&ddl).execute(&raw).await.unwrap();
        sqlx::raw_sql(
            "CREATE ROLE app LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON app_sessions TO app;",
        )
        .execute(&raw)
        .await
        .unwrap();
        let url = format!("postgres://app@127.0.0.1:{}/postgres", server.port());
        let store = SqlStore::new(&SqlPool::connect_with(&url, quick()).await.unwrap())
            .with_table("app_sessions")
            .unwrap();
        store.save(&key(1), b"v", HOUR).await.unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"v");
        assert_eq!(store.len().await.unwrap(), Some(1));
        assert_eq!(store.sweep().await.unwrap(), 0);
        store.delete(&key(1)).await.unwrap();
        store.clear().await.unwrap();
        // Creating is what the role may not do: migrate says so.
        let err = store.migrate().await.unwrap_err();
        assert_store_error(&err, "migrate");
        // And a store on a table nobody created cannot make it: a clear error.
        let missing = SqlStore::new(&SqlPool::connect_with(&url, quick()).await.unwrap());
        assert_store_error(&missing.load(&key(1)).await.unwrap_err(), "load");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_rows_read_as_missing_and_are_removed() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let store = store(&server).await;
        store.migrate().await.unwrap();
        let raw = raw(&server).await;
        // A looser table than the documented one lets broken rows in.
        sqlx::raw_sql(
            "ALTER TABLE sealed_sessions ALTER COLUMN sealed DROP NOT NULL, \
             ALTER COLUMN expires_ms DROP NOT NULL",
        )
        .execute(&raw)
        .await
        .unwrap();
        for (n, sealed, expires) in [
            (1u32, None, Some(now_ms() + 3_600_000)),
            (2, Some(vec![1u8]), None),
        ] {
            sqlx::query("INSERT INTO sealed_sessions VALUES ($1, $2, $3)")
                .bind(key(n).as_bytes().as_slice())
                .bind(sealed)
                .bind(expires)
                .execute(&raw)
                .await
                .unwrap();
        }
        store.save(&key(9), b"good", HOUR).await.unwrap();
        assert_eq!(store.len().await.unwrap(), Some(1));
        // `expire_in` writes no expiry into a corrupt row (row 2's byte would then load).
        for n in [1, 2] {
            store.expire_in(&key(n), HOUR).await.unwrap();
        }
        assert_eq!(store.load(&key(1)).await.unwrap(), None);
        assert_eq!(store.load(&key(2)).await.unwrap(), None);
        assert_eq!(
            rows(&raw, "sealed_sessions").await,
            1,
            "the corrupt rows are gone"
        );
        assert_eq!(store.load(&key(9)).await.unwrap().unwrap(), b"good");
    }

    /// A trigger that silently drops writes: the save is an error, never `Ok`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_the_database_swallows_is_an_error() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let store = store(&server).await;
        store.save(&key(1), b"kept", HOUR).await.unwrap();
        sqlx::raw_sql(
            "CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; \
             CREATE TRIGGER swallow BEFORE INSERT OR UPDATE ON sealed_sessions \
             FOR EACH ROW EXECUTE FUNCTION swallow();",
        )
        .execute(&raw(&server).await)
        .await
        .unwrap();
        for n in [1, 2] {
            let err = store.save(&key(n), b"new", HOUR).await.unwrap_err();
            assert_store_error(&err, "save");
        }
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"kept");
        assert_eq!(store.load(&key(2)).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn len_clear_and_sweep_touch_only_their_own_table() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        // No lottery sweeps: the test counts what each sweep removes.
        let a = store(&server).await.with_sweep_probability(0, 1);
        let b = store(&server)
            .await
            .with_table("other_app")
            .unwrap()
            .with_sweep_probability(0, 1);
        let raw = raw(&server).await;
        sqlx::raw_sql("CREATE TABLE notes (id BYTEA, expires_ms BIGINT); INSERT INTO notes VALUES ('\\x00', 0);")
            .execute(&raw)
            .await
            .unwrap();
        a.migrate().await.unwrap();
        // More expired rows than one sweep batch, and one live row.
        sqlx::query(
            "INSERT INTO sealed_sessions SELECT decode(lpad(to_hex(n), 32, '0'), 'hex'), '\\x00', $1 \
             FROM generate_series(1, 2345) AS n",
        )
        .bind(now_ms() - 1)
        .execute(&raw)
        .await
        .unwrap();
        a.save(&key(1), b"live", HOUR).await.unwrap();
        b.save(&key(1), b"b", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(a.len().await.unwrap(), Some(1));
        assert_eq!(a.sweep().await.unwrap(), 2_345);
        assert_eq!(
            rows(&raw, "other_app").await,
            1,
            "b's expired row is b's to sweep"
        );
        a.clear().await.unwrap();
        assert_eq!(rows(&raw, "sealed_sessions").await, 0);
        assert_eq!(rows(&raw, "other_app").await, 1);
        assert_eq!(rows(&raw, "notes").await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_debug_output_and_errors_hold_no_password() {
        let Some(mut server) = PostgresServer::start() else {
            return;
        };
        // Trust authentication accepts any password.
        let url = format!(
            "postgres://postgres:hunter2secret@127.0.0.1:{}/postgres",
            server.port()
        );
        let pool = SqlPool::connect_with(&url, quick()).await.unwrap();
        let store = SqlStore::new(&pool);
        let shown = format!("{pool:?} {store:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        server.stop_immediate();
        let err = store.load(&key(1)).await.unwrap_err();
        let mut text = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            text.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connecting_to_nothing_fails_fast() {
        let Some(mut server) = PostgresServer::start() else {
            return;
        };
        server.stop_immediate();
        let err = within(
            Duration::from_secs(1),
            "connect",
            SqlPool::connect_with(&server.url(), quick()),
        )
        .await
        .unwrap_err();
        assert_store_error(&err, "connect");
    }

    /// Another connection holds a row lock in an open transaction: the store's write
    /// of that row waits, and gives up in bounded time; once the lock goes, the same
    /// store (and the same connections) work again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_stuck_behind_a_lock_fails_in_bounded_time() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let store = store(&server).await;
        store.save(&key(1), b"before", HOUR).await.unwrap();
        let raw = raw(&server).await;
        let mut locker = raw.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM sealed_sessions WHERE id = $1 FOR UPDATE")
            .bind(key(1).as_bytes().as_slice())
            .execute(&mut *locker)
            .await
            .unwrap();
        for op in ["save", "delete", "expire_in"] {
            let call = async {
                match op {
                    "save" => store.save(&key(1), b"during", HOUR).await,
                    "delete" => store.delete(&key(1)).await,
                    _ => store.expire_in(&key(1), Duration::ZERO).await,
                }
            };
            let err = within(Duration::from_secs(1), op, call).await.unwrap_err();
            assert_store_error(&err, op);
        }
        // Other rows are not held up, and reads never wait for a row lock.
        store.save(&key(2), b"other", HOUR).await.unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"before");
        locker.rollback().await.unwrap();
        store.save(&key(1), b"after", HOUR).await.unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"after");

        // A lock on the whole table stops reads too: they give up in bounded time.
        let mut locker = raw.begin().await.unwrap();
        sqlx::query("LOCK TABLE sealed_sessions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await
            .unwrap();
        let err = within(Duration::from_secs(1), "load", store.load(&key(1)))
            .await
            .unwrap_err();
        assert_store_error(&err, "load");
        locker.rollback().await.unwrap();
        assert_eq!(store.load(&key(1)).await.unwrap().unwrap(), b"after");
        // The server cancelled the abandoned statements too: no backend of the store
        // is left waiting on a lock.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        .fetch_one(&raw)
        .await
        .unwrap();
        assert_eq!(waiting, 0);
    }

    /// PostgreSQL stops (as in a crash) while the store serves: every call fails fast
    /// with a store error; once it is back, the same store works again and what was
    /// committed before the stop is still there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_store_recovers_after_postgres_stops_and_starts() {
        let Some(mut server) = PostgresServer::start() else {
            return;
        };
        let store = store(&server).await;
        store.save(&key(1), b"before", HOUR).await.unwrap();
        server.stop_immediate();
        for op in ["save", "load", "delete", "len"] {
            let call = async {
                match op {
                    "save" => store.save(&key(2), b"during", HOUR).await,
                    "load" => store.load(&key(1)).await.map(drop),
                    "delete" => store.delete(&key(1)).await,
                    _ => store.len().await.map(drop),
                }
            };
            let err = within(Duration::from_secs(1), op, call).await.unwrap_err();
            assert_store_error(&err, op);
        }
        server.start_again();
        let first = key(1);
        let before = eventually(Duration::from_secs(10), "load after restart", || {
            store.load(&first)
        })
        .await;
        assert_eq!(before.unwrap(), b"before");
        assert_eq!(
            store.load(&key(2)).await.unwrap(),
            None,
            "the failed save never landed"
        );
        store.save(&key(3), b"after", HOUR).await.unwrap();
        assert_eq!(store.load(&key(3)).await.unwrap().unwrap(), b"after");
    }

    /// Two pools (two processes) on one database serve the same entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_pools_share_entries() {
        let Some(server) = PostgresServer::start() else {
            return;
        };
        let a = store(&server).await;
        let b = store(&server).await;
        a.save(&key(1), b"from a", HOUR).await.unwrap();
        assert_eq!(b.load(&key(1)).await.unwrap().unwrap(), b"from a");
        b.save(&key(1), b"from b", HOUR).await.unwrap();
        assert_eq!(a.load(&key(1)).await.unwrap().unwrap(), b"from b");
        b.delete(&key(1)).await.unwrap();
        assert_eq!(a.load(&key(1)).await.unwrap(), None);
    }
}
