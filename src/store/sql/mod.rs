//! [`SqlStore`]: session bodies in one table of PostgreSQL (feature `postgres`)
//! or SQLite (feature `sqlite`), on [sqlx](https://docs.rs/sqlx).
//!
//! Layout: `pool` is the bounded pool and its timeouts ([`SqlPool`]), `table` what
//! every table on it shares (a checked name, creation on first use), `sessions` the
//! session table's DDL and statements. Another table (the revocation list) adds its
//! own module next to `sessions`, on the same pool.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::Row as _;

use super::{SessionStore, StoreKey};
use crate::Error;

/// Runs the same code against whichever sqlx pool is compiled in; each arm is
/// type-checked for its own driver. Defined before the modules that use it.
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "postgres")]
            $crate::store::sql::pool::Backend::Postgres($pool) => $body,
            #[cfg(feature = "sqlite")]
            $crate::store::sql::pool::Backend::Sqlite($pool) => $body,
        }
    };
}

mod pool;
pub(crate) mod revocations;
mod sessions;
mod table;

pub use pool::{SqlBackend, SqlOptions, SqlPool};

use sessions::{Statements, DEFAULT_TABLE, SWEEP_BATCH};
use table::{LazyTable, TableName};

/// Default chance that a save starts a background sweep: 2 in 100 (as the file store).
const DEFAULT_SWEEP_PROBABILITY: (u32, u32) = (2, 100);

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
    table: LazyTable,
    sql: Statements,
    /// Sweep after a save with probability `sweep_numerator / sweep_denominator`.
    sweep_numerator: u32,
    sweep_denominator: u32,
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
            inner.table.name().clone(),
            (numerator.min(denominator), denominator.max(1)),
        )
    }

    fn build(pool: SqlPool, table: TableName, sweep: (u32, u32)) -> Self {
        let backend = pool.backend();
        SqlStore {
            inner: Arc::new(Inner {
                sql: Statements::new(backend, &table),
                table: LazyTable::new(backend, table.clone(), sessions::ddl(backend, &table)),
                pool,
                sweep_numerator: sweep.0,
                sweep_denominator: sweep.1,
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
        self.inner.table.name().as_str()
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
        let statements = sessions::ddl(backend, &TableName::new(table)?);
        Ok(statements.iter().map(|s| format!("{s};\n")).collect())
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
            .run("migrate", inner.table.migrate(&inner.pool, "migrate"))
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
                    tracing::debug!(
                        removed,
                        table = inner.table.name().as_str(),
                        "sql store sweep"
                    )
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
    async fn sweep_all(&self) -> Result<usize, Error> {
        let mut removed = 0usize;
        loop {
            let batch = self
                .pool
                .run("sweep", async {
                    self.table.prepare(&self.pool, "sweep").await?;
                    let done = on_pool!(self.pool.inner(), pool => {
                        sqlx::query(&self.sql.sweep)
                            .bind(now_ms())
                            .execute(pool)
                            .await
                            .map(|r| r.rows_affected())
                    });
                    done.map_err(|e| self.table.failed("sweep", e))
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
            .field("table", &inner.table.name().as_str())
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
                inner.table.prepare(&inner.pool, "load").await?;
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
                .map_err(|e| inner.table.failed("load", e))?;
                match row {
                    None => Ok(None),
                    Some(Some(sealed)) => Ok(Some(sealed)),
                    Some(None) => {
                        // Not a well-formed entry: it reads as missing, and goes.
                        let removed = on_pool!(inner.pool.inner(), pool => {
                            sqlx::query(&inner.sql.delete_corrupt).bind(id).execute(pool).await.map(drop)
                        });
                        match removed {
                            Ok(()) => tracing::warn!(table = inner.table.name().as_str(), "sql store removed a corrupt row"),
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
                inner.table.prepare(&inner.pool, "save").await?;
                let written = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.save)
                        .bind(id)
                        .bind(value)
                        .bind(now_ms().saturating_add(ttl_ms))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
                .map_err(|e| inner.table.failed("save", e))?;
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
                inner.table.prepare(&inner.pool, "delete").await?;
                on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.delete).bind(id).execute(pool).await.map(drop)
                })
                .map_err(|e| inner.table.failed("delete", e))
            })
            .await
    }

    /// Brings the row's expiry forward to `ttl` from now when that is sooner (one
    /// `UPDATE ... WHERE expires_ms > new`, the same as `SET expires_ms =
    /// LEAST(expires_ms, new)`), under the pool's timeout; a missing, expired or corrupt
    /// row is left as it is.
    ///
    /// # Errors
    /// [`Error::Store`] when the database is unreachable, refuses the write (a read-only
    /// SQLite file) or does not answer within the [timeout](SqlOptions::with_timeout).
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        let inner = &self.inner;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let until = now_ms().saturating_add(ttl_ms);
        let id = key.as_bytes().as_slice();
        inner
            .pool
            .run("expire_in", async {
                inner.table.prepare(&inner.pool, "expire_in").await?;
                on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.expire_in)
                        .bind(id)
                        .bind(until)
                        .execute(pool)
                        .await
                        .map(drop)
                })
                .map_err(|e| inner.table.failed("expire_in", e))
            })
            .await
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("len", async {
                inner.table.prepare(&inner.pool, "len").await?;
                let count = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query_scalar::<_, i64>(&inner.sql.len)
                        .bind(now_ms())
                        .fetch_one(pool)
                        .await
                })
                .map_err(|e| inner.table.failed("len", e))?;
                Ok(Some(usize::try_from(count).unwrap_or(0)))
            })
            .await
    }

    async fn clear(&self) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("clear", async {
                inner.table.prepare(&inner.pool, "clear").await?;
                on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.sql.clear).execute(pool).await.map(drop)
                })
                .map_err(|e| inner.table.failed("clear", e))
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
