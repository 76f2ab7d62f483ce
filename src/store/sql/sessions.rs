//! The session table: its DDL and the statements [`SqlStore`](super::SqlStore)
//! runs, per dialect, built once per store from a checked [`TableName`].

use super::pool::SqlBackend;
use super::table::TableName;

/// The table name used unless another is set.
pub(crate) const DEFAULT_TABLE: &str = "sealed_sessions";

/// Rows one sweep statement deletes at most, so a large backlog never holds one
/// long transaction.
pub(crate) const SWEEP_BATCH: u64 = 1_000;

/// The SQL a store runs, for one table and one dialect.
#[derive(Debug)]
pub(crate) struct Statements {
    /// (id, now) -> at most one row (sealed, valid).
    pub(crate) load: String,
    /// (id) -> deletes the row if it is corrupt.
    pub(crate) delete_corrupt: String,
    /// (id, sealed, expires_ms) -> upsert.
    pub(crate) save: String,
    /// (id).
    pub(crate) delete: String,
    /// (id, expires_ms) -> brings a live, well-formed row's expiry forward to expires_ms.
    pub(crate) expire_in: String,
    /// (now) -> count of live rows.
    pub(crate) len: String,
    /// Deletes every row of the table.
    pub(crate) clear: String,
    /// (now) -> deletes up to [`SWEEP_BATCH`] expired rows.
    pub(crate) sweep: String,
}

impl Statements {
    pub(crate) fn new(backend: SqlBackend, table: &TableName) -> Self {
        let t = table.quoted();
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
        let lock = match backend {
            // Sweepers on several servers skip each other's rows instead of waiting.
            SqlBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            SqlBackend::Sqlite => "",
        };
        Statements {
            load: format!(
                "SELECT sealed, {valid} FROM {t} WHERE id = {p1} AND (expires_ms > {p2} OR NOT {valid})"
            ),
            delete_corrupt: format!("DELETE FROM {t} WHERE id = {p1} AND NOT {valid}"),
            save: format!(
                "INSERT INTO {t} (id, sealed, expires_ms) VALUES ({p1}, {p2}, {p3}) \
                 ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, expires_ms = excluded.expires_ms"
            ),
            delete: format!("DELETE FROM {t} WHERE id = {p1}"),
            // `expires_ms = LEAST/MIN(expires_ms, new)`, written as a condition so a row
            // that expires sooner anyway is not written at all; an expired row stays so.
            expire_in: format!(
                "UPDATE {t} SET expires_ms = {p2} WHERE id = {p1} AND expires_ms > {p2} AND {valid}"
            ),
            len: format!("SELECT COUNT(*) FROM {t} WHERE expires_ms > {p1} AND {valid}"),
            clear: format!("DELETE FROM {t}"),
            sweep: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} \
                 WHERE expires_ms <= {p1} OR expires_ms IS NULL LIMIT {SWEEP_BATCH}{lock})"
            ),
        }
    }
}

/// The statements that create the session table and its expiry index.
pub(crate) fn ddl(backend: SqlBackend, table: &TableName) -> Vec<String> {
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
    vec![create, index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_use_the_dialect_placeholders() {
        let table = TableName::new("t").unwrap();
        let pg = Statements::new(SqlBackend::Postgres, &table);
        let lite = Statements::new(SqlBackend::Sqlite, &table);
        assert!(pg.save.contains("($1, $2, $3)") && !pg.save.contains('?'));
        assert!(lite.save.contains("(?1, ?2, ?3)") && !lite.save.contains('$'));
        assert!(pg.sweep.ends_with("FOR UPDATE SKIP LOCKED)"));
        assert!(pg
            .expire_in
            .contains("expires_ms = $2 WHERE id = $1 AND expires_ms > $2"));
        assert!(lite
            .expire_in
            .contains("expires_ms = ?2 WHERE id = ?1 AND expires_ms > ?2"));
        assert!(!lite.sweep.contains("FOR UPDATE"));
    }
}
