//! [`SqlRevocations`]: the revocation list as a table next to the session table,
//! on the same [`SqlPool`].
//!
//! # Schema
//! PostgreSQL:
//! ```sql
//! CREATE TABLE IF NOT EXISTS "sealed_revocations" (
//!     seq BIGSERIAL PRIMARY KEY,
//!     record BYTEA NOT NULL,
//!     until_s BIGINT NOT NULL,
//!     at_ms BIGINT NOT NULL DEFAULT ((extract(epoch from clock_timestamp()) * 1000)::bigint)
//! );
//! CREATE INDEX IF NOT EXISTS "sealed_revocations_at_ms" ON "sealed_revocations" (at_ms);
//! ```
//! SQLite:
//! ```sql
//! CREATE TABLE IF NOT EXISTS "sealed_revocations" (
//!     seq INTEGER PRIMARY KEY AUTOINCREMENT,
//!     record BLOB NOT NULL,
//!     until_s INTEGER NOT NULL,
//!     at_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
//! );
//! CREATE INDEX IF NOT EXISTS "sealed_revocations_at_ms" ON "sealed_revocations" (at_ms);
//! ```
//! `at_ms` is the database's own clock at insert. A reader asks for the rows since
//! the newest `at_ms` it saw, minus [`OVERLAP_MS`]: a row committed after a later
//! one (PostgreSQL sequences do not follow commit order) is still read, and a row
//! read twice does no harm.

use super::pool::SqlPool;
use super::table::{LazyTable, TableName};
use super::SqlBackend;
use crate::revocation::RevocationBackend;
use crate::Error;

/// The table name.
const TABLE: &str = "sealed_revocations";

/// How far back each read reaches past the newest row it saw, in milliseconds: longer
/// than any transaction the pool's timeout lets run.
const OVERLAP_MS: i64 = 10_000;

/// The revocation list in a table of PostgreSQL or SQLite (features `postgres`,
/// `sqlite`), sharing the session store's pool. Expired rows are deleted on one
/// append in 32. Cloning is cheap and clones share the pool.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use sealed_session::revocation::SqlRevocations;
/// use sealed_session::store::{SqlPool, SqlStore};
/// use sealed_session::{Keyring, SessionConfig};
/// let pool = SqlPool::connect("postgres://app@127.0.0.1:5432/app").await?;
/// let config = SessionConfig::builder(Keyring::generate())
///     .store(SqlStore::new(&pool))
///     .revocation(SqlRevocations::new(&pool))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlRevocations {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    pool: SqlPool,
    table: LazyTable,
    append: String,
    read: String,
    sweep: String,
}

impl SqlRevocations {
    /// The revocation table (`sealed_revocations`, created on first use) on `pool`.
    pub fn new(pool: &SqlPool) -> Self {
        let backend = pool.backend();
        let name = TableName::new(TABLE).expect("a valid table name");
        let t = name.quoted();
        let (p1, p2) = match backend {
            SqlBackend::Postgres => ("$1", "$2"),
            SqlBackend::Sqlite => ("?1", "?2"),
        };
        SqlRevocations {
            inner: std::sync::Arc::new(Inner {
                append: format!("INSERT INTO {t} (record, until_s) VALUES ({p1}, {p2})"),
                read: format!(
                    "SELECT record, at_ms FROM {t} WHERE at_ms >= {p1} AND until_s > {p2} ORDER BY seq"
                ),
                sweep: format!("DELETE FROM {t} WHERE until_s <= {p1}"),
                table: LazyTable::new(backend, name, ddl(backend)),
                pool: pool.clone(),
            }),
        }
    }
}

/// The statements that create the table and its index.
fn ddl(backend: SqlBackend) -> Vec<String> {
    let create = match backend {
        SqlBackend::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS \"{TABLE}\" (seq BIGSERIAL PRIMARY KEY, record BYTEA NOT NULL, \
             until_s BIGINT NOT NULL, at_ms BIGINT NOT NULL DEFAULT \
             ((extract(epoch from clock_timestamp()) * 1000)::bigint))"
        ),
        SqlBackend::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS \"{TABLE}\" (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
             record BLOB NOT NULL, until_s INTEGER NOT NULL, at_ms INTEGER NOT NULL DEFAULT \
             (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)))"
        ),
    };
    vec![
        create,
        format!("CREATE INDEX IF NOT EXISTS \"{TABLE}_at_ms\" ON \"{TABLE}\" (at_ms)"),
    ]
}

impl std::fmt::Debug for SqlRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlRevocations")
            .field("table", &TABLE)
            .field("pool", &self.inner.pool)
            .finish()
    }
}

#[async_trait::async_trait]
impl RevocationBackend for SqlRevocations {
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error> {
        let inner = &self.inner;
        inner
            .pool
            .run("revoke", async {
                inner.table.prepare(&inner.pool, "revoke").await?;
                let written = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query(&inner.append)
                        .bind(record)
                        .bind(until)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
                .map_err(|e| inner.table.failed("revoke", e))?;
                if written == 0 {
                    return Err(Error::store(
                        "revoke",
                        "the database reported no row written",
                    ));
                }
                if rand::random::<u8>().is_multiple_of(32) {
                    let now = crate::revocation::unix_now();
                    let swept = on_pool!(inner.pool.inner(), pool => {
                        sqlx::query(&inner.sweep).bind(now).execute(pool).await.map(drop)
                    });
                    if let Err(error) = swept {
                        tracing::debug!(%error, "could not delete expired revocations");
                    }
                }
                Ok(())
            })
            .await
    }

    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error> {
        let inner = &self.inner;
        let newest_seen = cursor.map_or(i64::MIN, |c| i64::try_from(c).unwrap_or(i64::MAX));
        let from = newest_seen.saturating_sub(OVERLAP_MS);
        inner
            .pool
            .run("sync revocations", async {
                inner.table.prepare(&inner.pool, "sync revocations").await?;
                let rows: Vec<(Vec<u8>, i64)> = on_pool!(inner.pool.inner(), pool => {
                    sqlx::query_as(&inner.read)
                        .bind(from)
                        .bind(crate::revocation::unix_now())
                        .fetch_all(pool)
                        .await
                })
                .map_err(|e| inner.table.failed("sync revocations", e))?;
                let newest = rows
                    .iter()
                    .map(|(_, at)| *at)
                    .max()
                    .unwrap_or(newest_seen)
                    .max(newest_seen)
                    .max(0);
                let records = rows.into_iter().map(|(r, _)| r).collect();
                Ok((records, u128::try_from(newest).unwrap_or(0)))
            })
            .await
    }
}
