//! What every table of this crate on a [`SqlPool`] shares: a name that is safe to
//! put in SQL, and creation on first use ([`LazyTable`]).
//!
//! The session table ([`SqlStore`](super::SqlStore)) is one; a second table (the
//! revocation list) gets its own [`LazyTable`] with its own DDL on the same pool.

use std::sync::atomic::{AtomicBool, Ordering};

use super::pool::{Backend, SqlBackend, SqlPool};
use crate::Error;

/// Advisory-lock class that serializes this crate's `CREATE TABLE`s on PostgreSQL
/// (the second key is the table name's hash): concurrent `CREATE TABLE IF NOT
/// EXISTS` of one table can otherwise fail on PostgreSQL's catalog unique index.
#[cfg(feature = "postgres")]
const PG_LOCK_CLASS: i32 = 0x5e55_1011;

/// Longest name accepted: PostgreSQL's identifier limit (63 bytes) minus room for
/// an index-name suffix such as `_expires_ms`.
pub(crate) const MAX_TABLE_LEN: usize = 63 - "_expires_ms".len();

/// A table name that is safe to put in SQL: `[a-z_][a-z0-9_]*`, at most [`MAX_TABLE_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName(String);

impl TableName {
    /// Checks `name`.
    ///
    /// Lowercase only, because PostgreSQL folds unquoted names to lowercase: a DBA's
    /// `CREATE TABLE My_Sessions` makes `my_sessions`, and the name here must match it.
    pub(crate) fn new(name: &str) -> Result<Self, Error> {
        let mut bytes = name.bytes();
        let starts_well = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if starts_well && rest_ok && name.len() <= MAX_TABLE_LEN {
            Ok(TableName(name.to_owned()))
        } else {
            Err(Error::Config(format!(
                "table name {name:?} is not a plain SQL identifier: use a-z, 0-9 and _, \
                 not starting with a digit, at most {MAX_TABLE_LEN} bytes"
            )))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted for SQL (`"name"`); quoting is safe, the name has no quote.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

/// A table created on first use: before its first statement, a store checks that it
/// exists and runs its DDL only when it does not, so a role without `CREATE` works
/// on a table a DBA made.
#[derive(Debug)]
pub(crate) struct LazyTable {
    name: TableName,
    /// One row, one boolean: does the table exist? Its argument is `exists_arg`.
    exists: &'static str,
    exists_arg: String,
    /// `CREATE ... IF NOT EXISTS` statements, run in order.
    create: Vec<String>,
    /// Set once the table is known to exist; cleared when a query says it is gone.
    ready: AtomicBool,
    /// Held while checking for (and creating) the table, so one call does it.
    preparing: tokio::sync::Mutex<()>,
}

impl LazyTable {
    pub(crate) fn new(backend: SqlBackend, name: TableName, create: Vec<String>) -> Self {
        let (exists, exists_arg) = match backend {
            SqlBackend::Postgres => ("SELECT to_regclass($1) IS NOT NULL", name.quoted()),
            SqlBackend::Sqlite => (
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                name.as_str().to_owned(),
            ),
        };
        LazyTable {
            name,
            exists,
            exists_arg,
            create,
            ready: AtomicBool::new(false),
            preparing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn name(&self) -> &TableName {
        &self.name
    }

    /// Makes sure the table exists; errors say `op`.
    pub(crate) async fn prepare(&self, pool: &SqlPool, op: &'static str) -> Result<(), Error> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.preparing.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let exists = on_pool!(pool.inner(), p => {
            sqlx::query_scalar::<_, bool>(self.exists)
                .bind(self.exists_arg.as_str())
                .fetch_one(p)
                .await
        })
        .map_err(|e| Error::store(op, e))?;
        if !exists {
            self.run_ddl(pool, op).await?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs the DDL whether or not the table exists (safe from several processes at once).
    pub(crate) async fn migrate(&self, pool: &SqlPool, op: &'static str) -> Result<(), Error> {
        let _one = self.preparing.lock().await;
        self.run_ddl(pool, op).await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Maps a statement's error, and forgets that the table exists when the database
    /// says it does not (someone dropped it): the next call creates it again.
    pub(crate) fn failed(&self, op: &'static str, e: sqlx::Error) -> Error {
        if is_missing_table(&e) {
            self.ready.store(false, Ordering::Release);
        }
        Error::store(op, e)
    }

    async fn run_ddl(&self, pool: &SqlPool, op: &'static str) -> Result<(), Error> {
        let failed = |e| Error::store(op, e);
        match pool.inner() {
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                let mut tx = p.begin().await.map_err(failed)?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind(PG_LOCK_CLASS)
                    .bind(self.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
                for statement in &self.create {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed)?;
                }
                tx.commit().await.map_err(failed)?;
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(p) => {
                // Each statement is atomic and idempotent; SQLite's file lock orders
                // two processes creating at once.
                for statement in &self.create {
                    sqlx::query(statement).execute(p).await.map_err(failed)?;
                }
            }
        }
        tracing::debug!(table = self.name.as_str(), backend = %pool.backend(), "sql table ready");
        Ok(())
    }
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
    fn table_names() {
        for good in ["sealed_sessions", "_x", "a1", &"a".repeat(MAX_TABLE_LEN)] {
            assert_eq!(TableName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "1abc",
            "Sessions",
            "a-b",
            "a b",
            "x\"; DROP TABLE y; --",
            "schema.table",
            "é",
            &"a".repeat(MAX_TABLE_LEN + 1),
        ] {
            let err = TableName::new(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad:?}");
        }
        assert_eq!(MAX_TABLE_LEN + "_expires_ms".len(), 63);
        assert_eq!(TableName::new("t").unwrap().quoted(), "\"t\"");
    }

    #[test]
    fn the_existence_check_names_the_table_per_dialect() {
        let pg = LazyTable::new(SqlBackend::Postgres, TableName::new("t").unwrap(), vec![]);
        let lite = LazyTable::new(SqlBackend::Sqlite, TableName::new("t").unwrap(), vec![]);
        assert_eq!(
            (pg.exists_arg.as_str(), lite.exists_arg.as_str()),
            ("\"t\"", "t")
        );
        assert!(pg.exists.contains("$1") && lite.exists.contains("?1"));
    }
}
