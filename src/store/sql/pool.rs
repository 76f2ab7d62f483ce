//! [`SqlPool`]: one bounded sqlx pool (PostgreSQL or SQLite) and the time bound
//! that every SQL-backed table of this crate shares.
//!
//! The session table ([`SqlStore`](super::SqlStore)) runs its statements through
//! [`SqlPool::run`]; a second table (the revocation list) is meant to sit next to
//! it on the same pool, with its own statements and the same timeouts.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use crate::Error;

/// How long one store call (waiting for a connection included) may take by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long opening a connection, or waiting for a free one, may take by default.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections a pool opens at most by default.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// Connections are closed after this long unused (sqlx's default), so an idle
/// application holds no connection open for ever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Pause between attempts to switch a SQLite file to WAL while another process holds it.
#[cfg(feature = "sqlite")]
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Which database a [`SqlPool`] talks to; it decides the SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SqlBackend {
    /// PostgreSQL (feature `postgres`).
    Postgres,
    /// SQLite (feature `sqlite`).
    Sqlite,
}

impl SqlBackend {
    /// A short lowercase name for logs: `"postgres"` or `"sqlite"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SqlBackend::Postgres => "postgres",
            SqlBackend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for SqlBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pool size and time bounds for [`SqlPool::connect_with`]; the defaults fail fast.
///
/// ```
/// use std::time::Duration;
/// use sealed_session::store::SqlOptions;
///
/// let options = SqlOptions::new()
///     .with_max_connections(20)
///     .with_timeout(Duration::from_millis(500));
/// assert_eq!(options.timeout(), Duration::from_millis(500));
/// assert_eq!(options.connect_timeout(), Duration::from_millis(500), "never above the timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlOptions {
    max_connections: u32,
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl SqlOptions {
    /// The defaults: at most 10 connections, 2 s per call, 1 s to get a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the connections the pool opens (at least 1; default 10). Calls beyond
    /// it wait for a free connection, up to the [connect timeout](Self::with_connect_timeout).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Bounds each store call, from asking for a connection to the last row (default 2 s).
    ///
    /// The database enforces it too: PostgreSQL connections get it as their
    /// `statement_timeout`, SQLite connections as their busy timeout, so a statement
    /// stuck behind a lock is cancelled by the server, not left running.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Bounds opening a connection or waiting for a free one (default 1 s, never
    /// above the [timeout](Self::with_timeout)): while the database is down a call
    /// fails after this long.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The bound on getting a connection (at most [`timeout`](Self::timeout)).
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.min(self.timeout)
    }
}

/// The sqlx pool behind a [`SqlPool`], one variant per compiled driver.
#[derive(Clone)]
pub(crate) enum Backend {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// A bounded connection pool to PostgreSQL or SQLite, shared by the SQL-backed tables.
///
/// Built from a URL with [`connect`](Self::connect) (or from a sqlx pool you built,
/// with [`from_postgres`](Self::from_postgres) / [`from_sqlite`](Self::from_sqlite)).
/// Each call through it is bounded by its [timeout](SqlOptions::with_timeout); while
/// the database is unreachable calls fail with [`Error::Store`] within that bound,
/// and the pool opens fresh connections on its own once the database is back (idle
/// connections are checked before use). Cloning is cheap and clones share the pool.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use sealed_session::store::{SqlPool, SqlStore};
///
/// let pool = SqlPool::connect("postgres://app@127.0.0.1:5432/app").await?;
/// let sessions = SqlStore::new(&pool);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqlPool {
    backend: Backend,
    timeout: Duration,
}

impl SqlPool {
    /// Connects with [`SqlOptions::default`]; see [`connect_with`](Self::connect_with).
    ///
    /// # Errors
    /// As [`connect_with`](Self::connect_with).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// Connects to `url` and opens one connection to prove it works:
    /// `postgres://user[:password]@host:port/db` (or `postgresql://`, feature
    /// `postgres`; without TLS), or `sqlite:PATH` (feature `sqlite`; the file is
    /// created if missing, switched to WAL, and waits for other processes' locks
    /// up to the timeout, so several processes can share it; `?mode=ro` opens it
    /// read-only; an in-memory database is refused, as it would not keep entries).
    ///
    /// # Errors
    /// [`Error::Config`] for a URL scheme this build cannot serve (naming the feature
    /// to enable) or an in-memory SQLite database; [`Error::Store`] when the URL is
    /// invalid or the database cannot be reached within the
    /// [connect timeout](SqlOptions::with_connect_timeout).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use sealed_session::{store::SqlPool, ErrorKind};
    /// let err = SqlPool::connect("mysql://db/app").await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// # }
    /// ```
    pub async fn connect_with(url: &str, options: SqlOptions) -> Result<Self, Error> {
        let lower = url.get(..11).unwrap_or(url).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql:") {
            return connect_postgres(url, options).await;
        }
        if lower.starts_with("sqlite:") {
            return connect_sqlite(url, options).await;
        }
        Err(Error::Config(
            "database URL must start with postgres:// (or postgresql://) or sqlite:".into(),
        ))
    }

    /// Wraps a PostgreSQL pool you built yourself, bounding each call by 2 s (see
    /// [`with_timeout`](Self::with_timeout)). Give the pool an `acquire_timeout` and
    /// a server-side `statement_timeout` yourself: [`connect_with`](Self::connect_with)
    /// sets both.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn from_postgres(pool: sqlx::PgPool) -> Self {
        SqlPool {
            backend: Backend::Postgres(pool),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Wraps a SQLite pool you built yourself, bounding each call by 2 s (see
    /// [`with_timeout`](Self::with_timeout)). Give its connections a busy timeout
    /// and WAL mode yourself when several processes share the file.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn from_sqlite(pool: sqlx::SqlitePool) -> Self {
        SqlPool {
            backend: Backend::Sqlite(pool),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the bound on each call made through this handle (its clones made
    /// afterwards keep it); the database-side timeouts set at connect stay as they were.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The database this pool talks to.
    pub fn backend(&self) -> SqlBackend {
        match self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => SqlBackend::Postgres,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => SqlBackend::Sqlite,
        }
    }

    /// The bound on each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Closes every connection; later calls fail with [`Error::Store`].
    pub async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => pool.close().await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => pool.close().await,
        }
    }

    pub(crate) fn inner(&self) -> &Backend {
        &self.backend
    }

    /// Runs `work` (one store operation: its statements and any lazy set-up) within
    /// the pool's timeout; a timeout is [`Error::Store`] with an `io::ErrorKind::TimedOut` cause.
    pub(crate) async fn run<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::store(
                op,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer from {} within {:?}",
                        self.backend(),
                        self.timeout
                    ),
                ),
            )),
        }
    }
}

impl fmt::Debug for SqlPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sqlx's own Debug would print the connect options, password included.
        f.debug_struct("SqlPool")
            .field("backend", &self.backend())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The error for a database URL this build has no driver for.
#[allow(dead_code)] // unused when both drivers are compiled in
fn needs_feature(scheme: &str, feature: &str) -> Error {
    Error::Config(format!(
        "a {scheme} database URL needs the `{feature}` feature of sealed-session"
    ))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str, options: SqlOptions) -> Result<SqlPool, Error> {
    use std::str::FromStr as _;

    let connect = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(|e| Error::store("connect", e))?
        .options([(
            "statement_timeout",
            options.timeout().as_millis().max(1).to_string(),
        )]);
    let opening = sqlx::postgres::PgPoolOptions::new()
        .max_connections(options.max_connections())
        .min_connections(0)
        .acquire_timeout(options.connect_timeout())
        .idle_timeout(IDLE_TIMEOUT)
        .connect_with(connect);
    let pool = SqlPool {
        backend: connect_deadline(options, opening)
            .await
            .map(Backend::Postgres)?,
        timeout: options.timeout(),
    };
    Ok(pool)
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str, _options: SqlOptions) -> Result<SqlPool, Error> {
    Err(needs_feature("postgres://", "postgres"))
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str, options: SqlOptions) -> Result<SqlPool, Error> {
    use std::str::FromStr as _;

    if is_sqlite_memory(url) {
        return Err(Error::Config(
            "an in-memory SQLite database vanishes when the pool closes its connections: \
             give sqlite: a file path, or use MemoryStore"
                .into(),
        ));
    }
    let connect = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::store("connect", e))?
        .create_if_missing(true)
        .busy_timeout(options.timeout());
    let opening = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(options.max_connections())
        .min_connections(0)
        .acquire_timeout(options.connect_timeout())
        .idle_timeout(IDLE_TIMEOUT)
        .connect_with(connect);
    let pool = connect_deadline(options, opening).await?;
    let deadline = tokio::time::Instant::now() + options.timeout();
    switch_to_wal(&pool, deadline).await?;
    Ok(SqlPool {
        backend: Backend::Sqlite(pool),
        timeout: options.timeout(),
    })
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_url: &str, _options: SqlOptions) -> Result<SqlPool, Error> {
    Err(needs_feature("sqlite:", "sqlite"))
}

/// Awaits a pool's first connection for at most the connect timeout (plus a margin
/// for sqlx's own, identical, bound).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
async fn connect_deadline<P>(
    options: SqlOptions,
    opening: impl Future<Output = Result<P, sqlx::Error>>,
) -> Result<P, Error> {
    let bound = options.connect_timeout() + Duration::from_millis(100);
    match tokio::time::timeout(bound, opening).await {
        Ok(result) => result.map_err(|e| Error::store("connect", e)),
        Err(_) => Err(Error::store(
            "connect",
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("could not connect within {:?}", options.connect_timeout()),
            ),
        )),
    }
}

/// Puts the database file in WAL mode (it stays so: later connections inherit it),
/// so readers in one process never wait for a writer in another. Switching needs a
/// moment of exclusive access that SQLite's busy timeout does not wait for, so a
/// busy file is retried until `deadline`. A read-only or in-memory database keeps
/// its mode: the store still reads from it.
#[cfg(feature = "sqlite")]
async fn switch_to_wal(
    pool: &sqlx::SqlitePool,
    deadline: tokio::time::Instant,
) -> Result<(), Error> {
    loop {
        let attempt = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await;
        match attempt {
            Ok(mode) => {
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::debug!(%mode, "sqlite database is not in WAL mode");
                }
                return Ok(());
            }
            Err(e) if is_sqlite_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(WAL_RETRY_PAUSE).await;
            }
            Err(e) if is_sqlite_busy(&e) => return Err(Error::store("connect", e)),
            Err(e) => {
                tracing::warn!(error = %e, "sqlite database could not be switched to WAL mode");
                return Ok(());
            }
        }
    }
}

/// `sqlite::memory:`, `sqlite:file:x?mode=memory` and the like.
#[cfg(feature = "sqlite")]
fn is_sqlite_memory(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.contains(":memory:") || lower.contains("mode=memory")
}

/// SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_clamp_and_default() {
        let options = SqlOptions::new();
        assert_eq!(options.max_connections(), 10);
        assert_eq!(options.timeout(), Duration::from_secs(2));
        assert_eq!(options.connect_timeout(), Duration::from_secs(1));
        let options = options
            .with_max_connections(0)
            .with_timeout(Duration::from_millis(300))
            .with_connect_timeout(Duration::from_secs(5));
        assert_eq!(options.max_connections(), 1);
        assert_eq!(options.connect_timeout(), Duration::from_millis(300));
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn in_memory_sqlite_is_refused() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:file:x?mode=memory&cache=shared",
        ] {
            let err = SqlPool::connect(url).await.unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn unknown_schemes_are_config_errors() {
        for url in ["mysql://x/y", "", "redis://127.0.0.1/", "sqlit:x"] {
            let err = SqlPool::connect(url).await.unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{url}: {err}");
        }
    }
}
