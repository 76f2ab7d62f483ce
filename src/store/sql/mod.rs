//! [`SqlStore`]: session bodies in one table of PostgreSQL (feature `postgres`)
//! or SQLite (feature `sqlite`), on [sqlx](https://docs.rs/sqlx).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::Row as _;

use super::{SessionStore, StoreKey};
use crate::Error;

mod pool;
mod table;

pub use pool::{SqlBackend, SqlOptions, SqlPool};

use pool::Backend;
use table::{Statements, TableName, DEFAULT_TABLE, SWEEP_BATCH};

/// Default chance that a save starts a background sweep: 2 in 100 (as the file store).
const DEFAULT_SWEEP_PROBABILITY: (u32, u32) = (2, 100);

/// Advisory-lock class that serializes this crate's `CREATE TABLE`s on PostgreSQL
/// (the second key is the table name's hash): concurrent `CREATE TABLE IF NOT
/// EXISTS` of one table can otherwise fail on PostgreSQL's catalog unique index.
#[cfg(feature = "postgres")]
const PG_LOCK_CLASS: i32 = 0x5e55_1011;

/// Runs the same code against whichever sqlx pool is compiled in; each arm is
/// type-checked for its own driver.
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => $body,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($pool) => $body,
        }
    };
}

/// A store that keeps entries as rows of one table in PostgreSQL or SQLite.
///
/// PostgreSQL serves any number of application servers; SQLite is embedded, and
/// several processes on one machine may share its file (WAL mode, busy timeout).
/// The table ([schema](Self#schema)) is created on first use; expired rows never
/// load (the query checks the expiry) and are deleted by a sweep that runs in the
/// background after a save with a small probability (2 in 100 by default, see
/// [`with_sweep_probability`](Self::with_sweep_probability)), or on demand with
/// [`sweep`](Self::sweep). A row that is not a well-formed entry (only possible in
/// a table created with looser columns than the schema) loads as missing and is
/// removed. [`len`](SessionStore::len) and [`clear`](SessionStore::clear) touch
/// only this store's table.
///
/// Every call is bounded by the pool's [timeout](SqlOptions::with_timeout) (2 s by
/// default, enforced by the database too): a database that is down or a statement
/// stuck behind a lock gives [`Error::Store`] in bounded time, never a hang, and the
/// same store works again once the database is back. A call that fails never
/// reports `Ok`; a write that timed out may still land afterwards (the database
/// may have committed it just as the call gave up).
///
/// Cloning is cheap and clones share the pool and the configuration.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use std::time::Duration;
/// use sealed_session::store::{SessionStore, SqlStore, StoreKey};
///
/// let store = SqlStore::connect("sqlite:/var/lib/myapp/sessions.db").await?;
/// let key = StoreKey::from_bytes([7; 16]);
/// store.save(&key, b"ciphertext", Duration::from_secs(600)).await?;
/// assert_eq!(store.load(&key).await?.as_deref(), Some(&b"ciphertext"[..]));
/// # Ok(())
/// # }
/// ```
///
/// # Schema
/// The store creates its table the first time it is used (or when you call
/// [`SqlStore::migrate`]); a DBA who prefers to create it, and to give the
/// application's role only `SELECT, INSERT, UPDATE, DELETE` on it, runs exactly
/// this (for the default table name `sealed_sessions`; [`SqlStore::ddl`] prints it
/// for another name). The store only checks that the table exists before its first
/// query, so it then needs no `CREATE` privilege.
///
/// PostgreSQL:
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sealed_sessions" (
///     id BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),
///     sealed BYTEA NOT NULL,
///     expires_ms BIGINT NOT NULL
/// );
/// CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_ms" ON "sealed_sessions" (expires_ms);
/// ```
///
/// SQLite (3.37 or later, for `STRICT`; the bundled one is):
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sealed_sessions" (
///     id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
///     sealed BLOB NOT NULL,
///     expires_ms INTEGER NOT NULL
/// ) STRICT, WITHOUT ROWID;
/// CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_ms" ON "sealed_sessions" (expires_ms);
/// ```
///
/// `id` is the 16-byte [`StoreKey`], `sealed` the ciphertext the size guard hands
/// over (the store never sees a session in the clear), `expires_ms` the expiry in
/// unix milliseconds by the application server's clock. The index serves the sweep.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlPool,
    table: TableName,
    sql: Statements,
    /// Sweep after a save with probability `sweep_numerator / sweep_denominator`.
    sweep_numerator: u32,
    sweep_denominator: u32,
    /// Set once the table is known to exist; cleared when a query says it is gone.
    ready: AtomicBool,
    /// Held while checking for (and creating) the table, so one call does it.
    preparing: tokio::sync::Mutex<()>,
    /// Set while a background sweep runs, so sweeps do not pile up.
    sweeping: AtomicBool,
}

impl SqlStore {
    /// Connects to `url` with [`SqlOptions::default`] and uses the table
    /// `sealed_sessions`; see [`SqlPool::connect_with`] for the URLs.
    ///
    /// # Errors
    /// As [`SqlPool::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Ok(SqlStore::new(&SqlPool::connect(url).await?))
    }

    /// A store on `pool`, in the table `sealed_sessions` (see [`with_table`](Self::with_table)).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// use std::time::Duration;
    /// use sealed_session::store::{SqlOptions, SqlPool, SqlStore};
    ///
    /// let options = SqlOptions::new().with_max_connections(20).with_timeout(Duration::from_secs(1));
    /// let pool = SqlPool::connect_with("postgres://app@db.internal:5432/app", options).await?;
    /// let store = SqlStore::new(&pool).with_table("myapp_sessions")?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: &SqlPool) -> Self {
        let table = TableName::new(DEFAULT_TABLE).expect("the default table name is valid");
        Self::build(pool.clone(), table, DEFAULT_SWEEP_PROBABILITY)
    }

    /// Keeps entries in the table `name` instead of `sealed_sessions`: a plain
    /// lowercase SQL identifier (`a-z`, `0-9`, `_`, not starting with a digit, at
    /// most 52 bytes). Give each application sharing a database its own table:
    /// `clear` empties it.
    ///
    /// Call it right after [`new`](Self::new); clones made before keep the old table.
    ///
    /// # Errors
    /// [`Error::Config`] for any other name (nothing is ever spliced into SQL unchecked).
    pub fn with_table(self, name: &str) -> Result<Self, Error> {
        let table = TableName::new(name)?;
        let inner = &self.inner;
        Ok(Self::build(
            inner.pool.clone(),
            table,
            (inner.sweep_numerator, inner.sweep_denominator),
        ))
    }

    /// Sets the chance that a save starts a background sweep of expired rows to
    /// `numerator / denominator`. A numerator (or denominator) of 0 turns automatic
    /// sweeps off; a numerator at or above the denominator sweeps after every save.
    ///
    /// Call it right after [`new`](Self::new); clones made before keep their setting.
    pub fn with_sweep_probability(self, numerator: u32, denominator: u32) -> Self {
        let inner = &self.inner;
        Self::build(
            inner.pool.clone(),
            inner.table.clone(),
            (numerator.min(denominator), denominator.max(1)),
        )
    }

    fn build(pool: SqlPool, table: TableName, sweep: (u32, u32)) -> Self {
        let sql = Statements::new(pool.backend(), &table);
        SqlStore {
            inner: Arc::new(Inner {
                pool,
                table,
                sql,
                sweep_numerator: sweep.0,
                sweep_denominator: sweep.1,
                ready: AtomicBool::new(false),
                preparing: tokio::sync::Mutex::new(()),
                sweeping: AtomicBool::new(false),
            }),
        }
    }

    /// The pool this store runs on (to put another table next to it).
    pub fn pool(&self) -> &SqlPool {
        &self.inner.pool
    }

    /// The table this store keeps its entries in.
    pub fn table(&self) -> &str {
        self.inner.table.as_str()
    }

    /// The statements that create the table `table` and its index for `backend`,
    /// separated by `;` and a newline: the [schema](Self#schema) for another table name.
    ///
    /// # Errors
    /// [`Error::Config`] for a table name [`with_table`](Self::with_table) refuses.
    ///
    /// ```
    /// use sealed_session::store::{SqlBackend, SqlStore};
    /// let ddl = SqlStore::ddl(SqlBackend::Postgres, "myapp_sessions")?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS \"myapp_sessions\" ("));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    pub fn ddl(backend: SqlBackend, table: &str) -> Result<String, Error> {
        let [create, index] = table::ddl(backend, &TableName::new(table)?);
        Ok(format!("{create};\n{index};\n"))
    }

    /// Creates the table and its index if they do not exist (safe to run from several
    /// processes at once). Stores do this on first use; call it at start-up to fail early.
    ///
    /// # Errors
    /// [`Error::Store`] when the database is unreachable or refuses (no privilege to
    /// create tables: then let a DBA run the [schema](Self#schema)).
    pub async fn migrate(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("migrate", async {
                let _one = inner.preparing.lock().await;
                inner.create().await?;
                inner.ready.store(true, Ordering::Release);
                Ok(())
            })
            .await
    }

    /// Deletes expired rows (in batches of 1,000) and returns how many it deleted.
    ///
    /// # Errors
    /// [`Error::Store`] when a batch fails; rows deleted by earlier batches stay deleted.
    pub async fn sweep(&self) -> Result<usize, Error> {
        self.inner.sweep_all().await
    }

    /// Starts a background sweep with the configured probability, unless one runs.
    fn maybe_sweep(&self) {
        let inner = &self.inner;
        if inner.sweep_numerator == 0
            || !rand::rng().random_ratio(inner.sweep_numerator, inner.sweep_denominator)
            || inner.sweeping.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = Arc::clone(inner);
        tokio::spawn(async move {
            match inner.sweep_all().await {
                Ok(removed) => {
                    tracing::debug!(removed, table = inner.table.as_str(), "sql store sweep")
                }
                Err(error) => {
                    tracing::warn!(%error, source = ?std::error::Error::source(&error), "sql store sweep failed")
                }
            }
            inner.sweeping.store(false, Ordering::Release);
        });
    }
}

impl Inner {
    /// Makes sure the table exists before the first query: checks, and creates it
    /// only when missing (so a role without `CREATE` works on a DBA's table).
    async fn prepare(&self, op: &'static str) -> Result<(), Error> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.preparing.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let exists = on_pool!(self.pool.inner(), pool => {
            sqlx::query_scalar::<_, bool>(&self.sql.exists)
                .bind(self.sql.exists_arg.as_str())
                .fetch_one(pool)
                .await
        })
        .map_err(|e| Error::store(op, e))?;
        if !exists {
            self.create().await.map_err(|e| match e {
                Error::Store { source, .. } => Error::Store { op, source },
                other => other,
            })?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs the DDL.
    async fn create(&self) -> Result<(), Error> {
        let failed = |e| Error::store("migrate", e);
        let [create, index] = &self.sql.create;
        match self.pool.inner() {
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(failed)?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(PG_LOCK_CLASS)
                    .bind(self.table.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                sqlx::query(create)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                sqlx::query(index).execute(&mut *tx).await.map_err(failed)?;
                tx.commit().await.map_err(failed)?;
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => {
                // Each statement is atomic and idempotent; SQLite's file lock orders
                // two processes creating at once.
                sqlx::query(create).execute(pool).await.map_err(failed)?;
                sqlx::query(index).execute(pool).await.map_err(failed)?;
            }
        }
        tracing::debug!(table = self.table.as_str(), backend = %self.pool.backend(), "sql store table ready");
        Ok(())
    }

    /// Maps a query's error, and forgets that the table exists when the database
    /// says it does not (someone dropped it): the next call creates it again.
    fn failed(&self, op: &'static str, e: sqlx::Error) -> Error {
        if is_missing_table(&e) {
            self.ready.store(false, Ordering::Release);
        }
        Error::store(op, e)
    }

    async fn sweep_all(&self) -> Result<usize, Error> {
        let mut removed = 0usize;
        loop {
            let batch = self
                .pool
                .run("sweep", async {
                    self.prepare("sweep").await?;
                    let done = on_pool!(self.pool.inner(), pool => {
                        sqlx::query(&self.sql.sweep)
                            .bind(now_ms())
                            .execute(pool)
                            .await
                            .map(|r| r.rows_affected())
                    });
                    done.map_err(|e| self.failed("sweep", e))
                })
                .await?;
            removed = removed.saturating_add(usize::try_from(batch).unwrap_or(usize::MAX));
            if batch < SWEEP_BATCH {
                return Ok(removed);
            }
        }
    }
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("SqlStore")
            .field("backend", &inner.pool.backend())
            .field("table", &inner.table.as_str())
            .field("timeout", &inner.pool.timeout())
            .field(
                "sweep_probability",
                &(inner.sweep_numerator, inner.sweep_denominator),
            )
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for SqlStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        let inner = &self.inner;
        let id = key.as_bytes().as_slice();
        inner
            .pool
            .run("load", async {
                inner.prepare("load").await?;
                let row = on_pool!(inner.pool.inner(), pool => {
                    match sqlx::query(&inner.sql.load)
                        .bind(id)
                        .bind(now_ms())
                        .fetch_optional(pool)
                        .await
                    {
                        Ok(Some(row)) => match row.try_get::<bool, _>(1) {
                            Ok(true) => row.try_get::<Vec<u8>, _>(0).map(|v| Some(Some(v))),
                            Ok(false) => Ok(Some(None)),
                            Err(e) => Err(e),
                        },
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| inner.failed("load", e))?;
                match row {
                    None => Ok(None),
                    Some(Some(sealed)) => Ok(Some(sealed)),
                    Some(None) => {
                        // Not a well-formed entry: it reads as missing, and goes.
                        let removed = on_pool!(inner.pool.inner(), pool => {
                            sqlx::query(&inner.sql.delete_corrupt).bind(id).execute(pool).await.map(drop)
                        });
                        match removed {
                            Ok(_) => tracing::warn!(table = inner.table.as_str(), "sql store removed a corrupt row"),
                            Err(error) => tracing::warn!(%error, "sql store could not remove a corrupt row"),
                        }
                        Ok(None)
                    }
                }
            })
            .await
    }

    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        if ttl.is_zero() {
            // An entry that expires at once is a deleted one.
            return self.delete(key).await;
        }
        let inner = &self.inner;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let id = key.as_bytes().as_slice();
        inner
            .pool
            .run("save", async {
                inner.prepare("save").await?;
                let written = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.save)
                        .bind(id)
                        .bind(value)
                        .bind(now_ms().saturating_add(ttl_ms))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
                .map_err(|e| inner.failed("save", e))?;
                if written == 0 {
                    // Something (a trigger, a rule) swallowed the write: it did not happen.
                    return Err(Error::store("save", "the database reported no row written"));
                }
                Ok(())
            })
            .await?;
        self.maybe_sweep();
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        let inner = &self.inner;
        let id = key.as_bytes().as_slice();
        inner
            .pool
            .run("delete", async {
                inner.prepare("delete").await?;
                on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.delete).bind(id).execute(pool).await.map(drop)
                })
                .map_err(|e| inner.failed("delete", e))
            })
            .await
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("len", async {
                inner.prepare("len").await?;
                let count = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query_scalar::<_, i64>(&inner.sql.len)
                        .bind(now_ms())
                        .fetch_one(pool)
                        .await
                })
                .map_err(|e| inner.failed("len", e))?;
                Ok(Some(usize::try_from(count).unwrap_or(0)))
            })
            .await
    }

    async fn clear(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("clear", async {
                inner.prepare("clear").await?;
                on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.clear).execute(pool).await.map(drop)
                })
                .map_err(|e| inner.failed("clear", e))
            })
            .await
    }
}

/// Unix time in milliseconds by this machine's clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The database says the table does not exist (PostgreSQL `42P01`, SQLite "no such table").
fn is_missing_table(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    match db.code().as_deref() {
        Some("42P01") => true,
        Some("1") => db.message().starts_with("no such table"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_schema_is_the_one_created() {
        let docs: String = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("/// "))
            .collect::<Vec<_>>()
            .join("\n");
        for backend in [SqlBackend::Postgres, SqlBackend::Sqlite] {
            let ddl = SqlStore::ddl(backend, DEFAULT_TABLE).unwrap();
            assert!(
                docs.contains(ddl.trim_end()),
                "the SqlStore docs must show, exactly:\n{ddl}"
            );
        }
    }

    #[test]
    fn ddl_refuses_bad_names() {
        let err = SqlStore::ddl(SqlBackend::Sqlite, "a;b").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
    }
}
