//! The session table: its validated name, its DDL and its statements, per dialect.
//!
//! All SQL text is built here once per store, from a name that [`TableName::new`]
//! has checked to be a plain lowercase identifier, so nothing user-supplied is ever
//! spliced into SQL unchecked and sqlx can cache each prepared statement.

use super::pool::SqlBackend;
use crate::Error;

/// The table name used unless another is set.
pub(crate) const DEFAULT_TABLE: &str = "sealed_sessions";

/// Longest table name accepted: PostgreSQL's identifier limit (63 bytes) minus the
/// `_expires_ms` suffix of the index name.
pub(crate) const MAX_TABLE_LEN: usize = 63 - "_expires_ms".len();

/// Rows one sweep statement deletes at most, so a large backlog never holds one
/// long transaction.
pub(crate) const SWEEP_BATCH: u64 = 1_000;

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
}

/// The SQL a store runs, for one table and one dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    /// One row, one boolean: does the table exist?
    pub(crate) exists: String,
    /// The bound argument of `exists`.
    pub(crate) exists_arg: String,
    /// `CREATE TABLE IF NOT EXISTS ...` then `CREATE INDEX IF NOT EXISTS ...`.
    pub(crate) create: [String; 2],
    /// (id, now) -> at most one row (sealed, valid).
    pub(crate) load: String,
    /// (id) -> deletes the row if it is corrupt.
    pub(crate) delete_corrupt: String,
    /// (id, sealed, expires_ms) -> upsert.
    pub(crate) save: String,
    /// (id).
    pub(crate) delete: String,
    /// (now) -> count of live rows.
    pub(crate) len: String,
    /// Deletes every row of the table.
    pub(crate) clear: String,
    /// (now) -> deletes up to [`SWEEP_BATCH`] expired rows.
    pub(crate) sweep: String,
}

impl Statements {
    pub(crate) fn new(backend: SqlBackend, table: &TableName) -> Self {
        let t = format!("\"{}\"", table.as_str());
        let (p1, p2, p3) = match backend {
            SqlBackend::Postgres => ("$1", "$2", "$3"),
            SqlBackend::Sqlite => ("?1", "?2", "?3"),
        };
        // A row written by this store is always valid; a row a person or another
        // program wrote into a table with looser columns may not be.
        let valid = match backend {
            SqlBackend::Postgres => "(sealed IS NOT NULL AND expires_ms IS NOT NULL)",
            SqlBackend::Sqlite => "(typeof(sealed) = 'blob' AND typeof(expires_ms) = 'integer')",
        };
        let (exists, exists_arg) = match backend {
            SqlBackend::Postgres => ("SELECT to_regclass($1) IS NOT NULL".to_owned(), t.clone()),
            SqlBackend::Sqlite => (
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)"
                    .to_owned(),
                table.as_str().to_owned(),
            ),
        };
        let lock = match backend {
            // Sweepers on several servers skip each other's rows instead of waiting.
            SqlBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            SqlBackend::Sqlite => "",
        };
        Statements {
            exists,
            exists_arg,
            create: ddl(backend, table),
            load: format!(
                "SELECT sealed, {valid} FROM {t} WHERE id = {p1} AND (expires_ms > {p2} OR NOT {valid})"
            ),
            delete_corrupt: format!("DELETE FROM {t} WHERE id = {p1} AND NOT {valid}"),
            save: format!(
                "INSERT INTO {t} (id, sealed, expires_ms) VALUES ({p1}, {p2}, {p3}) \
                 ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, expires_ms = excluded.expires_ms"
            ),
            delete: format!("DELETE FROM {t} WHERE id = {p1}"),
            len: format!("SELECT COUNT(*) FROM {t} WHERE expires_ms > {p1} AND {valid}"),
            clear: format!("DELETE FROM {t}"),
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} \
                 WHERE expires_ms <= {p1} OR expires_ms IS NULL LIMIT {SWEEP_BATCH}{lock})"
            ),
        }
    }
}

/// The two statements that create the table and its expiry index.
pub(crate) fn ddl(backend: SqlBackend, table: &TableName) -> [String; 2] {
    let name = table.as_str();
    let create = match backend {
        SqlBackend::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS \"{name}\" (\n\
             \x20   id BYTEA PRIMARY KEY CHECK (octet_length(id) = 16),\n\
             \x20   sealed BYTEA NOT NULL,\n\
             \x20   expires_ms BIGINT NOT NULL\n\
             )"
        ),
        SqlBackend::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS \"{name}\" (\n\
             \x20   id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),\n\
             \x20   sealed BLOB NOT NULL,\n\
             \x20   expires_ms INTEGER NOT NULL\n\
             ) STRICT, WITHOUT ROWID"
        ),
    };
    let index =
        format!("CREATE INDEX IF NOT EXISTS \"{name}_expires_ms\" ON \"{name}\" (expires_ms)");
    [create, index]
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
    }

    #[test]
    fn statements_use_the_dialect_placeholders() {
        let table = TableName::new("t").unwrap();
        let pg = Statements::new(SqlBackend::Postgres, &table);
        let lite = Statements::new(SqlBackend::Sqlite, &table);
        assert!(pg.save.contains("($1, $2, $3)") && !pg.save.contains('?'));
        assert!(lite.save.contains("(?1, ?2, ?3)") && !lite.save.contains('$'));
        assert!(pg.sweep.ends_with("FOR UPDATE SKIP LOCKED)"));
        assert!(!lite.sweep.contains("FOR UPDATE"));
        assert_eq!(pg.exists_arg, "\"t\"");
        assert_eq!(lite.exists_arg, "t");
    }
}
