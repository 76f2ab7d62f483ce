//! Store-backed request cost per backend: an axum `Router` with `SessionLayer`,
//! driven with tower's `oneshot` (as `request.rs`), for a session too big for a
//! cookie (the small session's fields plus a 300-item cart), whose body lives in
//! the store behind a sealed pointer cookie. Checked once at setup: the session
//! loads store-backed, the read writes nothing, the write sets a new cookie.
//!
//! Requests:
//! - `stores/read`: load the pointer, fetch and open the body from the store, typed
//!   `get` of the cart; nothing is written back. Every request carries the same cookie.
//! - `stores/write`: the same, then one item's quantity changes and the cart is
//!   inserted again: the body is sealed into a new store entry (every write gets its
//!   own), the entry it replaces is retired (`expire_in`, 60 s), a new pointer cookie
//!   goes out. Each request carries the cookie the previous response set, as a
//!   browser does.
//!
//! Contenders (each with its default settings unless named):
//! - `inline_cart50`: the reference, the same handlers on a 50-item cart that fits
//!   the cookie, no store;
//! - `memory`: `MemoryStore::new()`;
//! - `memory_cart50` (not a default): `MemoryStore::new()` with the 50-item cart of
//!   `inline_cart50`, sent to the store by a `cookie_budget(512)`: the store path
//!   against the cookie path on the very same data (the other contenders carry six
//!   times the cart, so their ratio to `inline_cart50` includes the bigger value);
//! - `file_fsync`: `FileStore` in a temp dir (fsync of each file and the directory, the default);
//! - `file_nofsync`: the same with `with_fsync(false)`;
//! - `redis`: `RedisStore` on a `redis-server` this bench starts (no persistence);
//! - `postgres`: `SqlStore` on a PostgreSQL this bench starts (the test harness's
//!   server: fsync off, full_page_writes off, so a commit does not wait for the disk);
//! - `sqlite`: `SqlStore` on a SQLite file in a temp dir (WAL, which the store sets;
//!   synchronous FULL, SQLite's default that sqlx keeps: each commit syncs the WAL);
//! - `postgres_noping`, `sqlite_noping` (not defaults): the same databases through a
//!   pool built like `SqlPool::connect` builds it but with sqlx's
//!   `test_before_acquire(false)`, wrapped with `SqlPool::from_postgres` /
//!   `from_sqlite`. sqlx pings every pooled connection before handing it out unless
//!   told not to, so each store call of the default pool costs one more round trip.
//!
//! A server that is not installed skips its contender with a `SKIPPED` line.
//! Printed before the timings: `SIZE` lines (cookie and store entry sizes).
//!
//! Run: `cargo bench -p sealed-session-benches --bench stores` (add `-- --quick` for a fast pass).

#[path = "common/router.rs"]
mod router;
use router::{call, request};

use std::any::Any;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealed_session::store::{FileStore, MemoryStore, RedisStore, SessionStore, SqlPool, SqlStore};
use sealed_session::{Keyring, Session, SessionConfig, SessionLayer};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tokio::runtime::Runtime;

#[path = "common/real_servers.rs"]
mod real_servers;

const CART: &str = "cart";
const WRITES: &str = "writes";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

/// `n` items with 8 random alphanumerics each (fixed seed), as `size_guard.rs`.
fn cart(n: usize) -> Vec<Item> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = StdRng::seed_from_u64(8);
    (0..n)
        .map(|_| Item {
            sku: (0..8)
                .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                .collect(),
            qty: rng.random_range(1..10),
            price_cents: rng.random_range(99..99_999),
        })
        .collect()
}

// --- handlers ---------------------------------------------------------------

/// Puts the session's data in place: the small session's fields and an `items` cart.
async fn fill(UrlPath(items): UrlPath<usize>, session: Session) -> String {
    session.insert("user_id", &4_211_337u64).unwrap();
    session.insert("username", "alice.martin").unwrap();
    session
        .insert("roles", &["admin", "editor", "billing"])
        .unwrap();
    session.csrf_token();
    session.insert("last_seen", &1_763_800_000i64).unwrap();
    session.insert(CART, &cart(items)).unwrap();
    "filled".to_owned()
}

/// Says where the session came from: `<store-backed> <cart length>`.
async fn check(session: Session) -> String {
    let cart: Vec<Item> = session.get(CART).unwrap().unwrap_or_default();
    format!("{} {}", session.is_store_backed(), cart.len())
}

/// The read request: a typed get of the cart.
async fn read(session: Session) -> String {
    let cart: Vec<Item> = session.get(CART).unwrap().unwrap_or_default();
    cart.len().to_string()
}

/// The write request: one item's quantity changes, the cart is written back.
async fn write(session: Session) -> String {
    let mut cart: Vec<Item> = session.get(CART).unwrap().expect("a cart");
    let writes = session.get::<u64>(WRITES).unwrap().unwrap_or(0) + 1;
    let i = writes as usize % cart.len();
    let item = &mut cart[i];
    item.qty = item.qty % 9 + 1;
    session.insert(CART, &cart).unwrap();
    session.insert(WRITES, &writes).unwrap();
    cart.len().to_string()
}

fn router(config: SessionConfig) -> Router {
    Router::new()
        .route("/fill/{items}", get(fill))
        .route("/check", get(check))
        .route("/read", get(read))
        .route("/write", get(write))
        .layer(SessionLayer::new(config))
}

// --- driving ----------------------------------------------------------------

/// The Cookie header a browser sends back for a response's Set-Cookie.
fn next_cookie(headers: &HeaderMap) -> Option<HeaderValue> {
    let set_cookie = headers.get(SET_COOKIE)?.to_str().unwrap();
    let pair = set_cookie.split(';').next().unwrap();
    Some(HeaderValue::from_str(pair).unwrap())
}

// --- contenders -------------------------------------------------------------

struct Contender {
    name: &'static str,
    router: Router,
    items: usize,
    /// Whether the session is expected to live in the store (checked at setup).
    store_backed: bool,
    /// What must live as long as the contender: a temp dir, a server.
    _keep: Box<dyn Any>,
    /// A FileStore's directory, to report its entry files.
    dir: Option<std::path::PathBuf>,
}

fn keyring() -> Keyring {
    Keyring::new([[0x5a; 32]]).unwrap()
}

fn with_store(store: impl SessionStore) -> SessionConfig {
    SessionConfig::builder(keyring())
        .store(store)
        .build()
        .unwrap()
}

fn contender(
    name: &'static str,
    items: usize,
    config: SessionConfig,
    keep: impl Any,
    dir: Option<&Path>,
) -> Contender {
    Contender {
        name,
        router: router(config),
        items,
        store_backed: items > 50,
        _keep: Box::new(keep),
        dir: dir.map(Path::to_path_buf),
    }
}

async fn contenders() -> Vec<Contender> {
    let mut all = vec![
        contender(
            "inline_cart50",
            50,
            SessionConfig::builder(keyring()).build().unwrap(),
            (),
            None,
        ),
        contender("memory", 300, with_store(MemoryStore::new()), (), None),
        Contender {
            store_backed: true,
            ..contender(
                "memory_cart50",
                50,
                SessionConfig::builder(keyring())
                    .store(MemoryStore::new())
                    .cookie_budget(512)
                    .build()
                    .unwrap(),
                (),
                None,
            )
        },
    ];
    for (name, fsync) in [("file_fsync", true), ("file_nofsync", false)] {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).await.unwrap().with_fsync(fsync);
        let path = dir.path().to_path_buf();
        all.push(contender(name, 300, with_store(store), dir, Some(&path)));
    }
    if let Some(server) = real_servers::redis("stores/redis") {
        let store = RedisStore::connect(&server.url()).await.unwrap();
        all.push(contender("redis", 300, with_store(store), server, None));
    }
    if let Some(server) = real_servers::postgres("stores/postgres") {
        let store = SqlStore::connect(&server.url()).await.unwrap();
        store.migrate().await.unwrap();
        all.push(contender("postgres", 300, with_store(store), (), None));
        let pool = noping_postgres(&server.url()).await;
        let store = SqlStore::new(&pool).with_table("sessions_noping").unwrap();
        store.migrate().await.unwrap();
        all.push(contender(
            "postgres_noping",
            300,
            with_store(store),
            server,
            None,
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("sessions.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    all.push(contender("sqlite", 300, with_store(store), (), None));
    let url = format!("sqlite:{}", dir.path().join("noping.db").display());
    let store = SqlStore::new(&noping_sqlite(&url).await);
    store.migrate().await.unwrap();
    all.push(contender(
        "sqlite_noping",
        300,
        with_store(store),
        dir,
        None,
    ));
    all
}

/// The pool `SqlPool::connect` builds for PostgreSQL (same bounds and timeouts), but
/// without sqlx's `test_before_acquire` (a ping before each use of a pooled
/// connection, on by default): what a user can build and wrap with `from_postgres`.
async fn noping_postgres(url: &str) -> SqlPool {
    let connect = PgConnectOptions::from_str(url)
        .unwrap()
        .options([("statement_timeout", "2000")]);
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(1))
        .idle_timeout(Duration::from_secs(600))
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .unwrap();
    SqlPool::from_postgres(pool)
}

/// The same for SQLite: the file created if missing, WAL, a 2 s busy timeout.
async fn noping_sqlite(url: &str) -> SqlPool {
    let connect = SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(2))
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(10)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(1))
        .idle_timeout(Duration::from_secs(600))
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .unwrap();
    SqlPool::from_sqlite(pool)
}

/// Fills a new session and returns the cookie that carries it.
fn fill_session(rt: &Runtime, c: &Contender) -> HeaderValue {
    let (status, headers, _) = rt.block_on(call(
        &c.router,
        request(&format!("/fill/{}", c.items), None),
    ));
    assert_eq!(status, StatusCode::OK, "{}: fill", c.name);
    next_cookie(&headers).expect("a filled session sets a cookie")
}

/// The size of the one entry file in a FileStore directory (just after a fill).
fn entry_file_size(dir: &Path) -> Option<u64> {
    let mut sizes = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let first = sizes.next()?;
    sizes.next().is_none().then_some(first)
}

fn entry_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn stores_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let all = rt.block_on(contenders());

    // Two sessions per contender: one only read (its entry is never replaced), one
    // written (each write replaces the entry the previous one made).
    let prepared: Vec<_> = all
        .iter()
        .map(|c| {
            let read_cookie = fill_session(&rt, c);
            let pointer = c.store_backed;
            let (_, h, body) = rt.block_on(call(&c.router, request("/check", Some(&read_cookie))));
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                format!("{pointer} {}", c.items),
                "{}: store-backed must be {pointer}",
                c.name
            );
            assert!(
                h.get(SET_COOKIE).is_none(),
                "{}: a read writes nothing",
                c.name
            );
            let entry = c.dir.as_deref().and_then(entry_file_size);
            println!(
                "SIZE {} cookie name=value {} bytes (store-backed: {pointer}){}",
                c.name,
                read_cookie.len(),
                entry.map_or(String::new(), |n| format!(", store entry file {n} bytes")),
            );
            let write_cookie = fill_session(&rt, c);
            let (status, h, _) =
                rt.block_on(call(&c.router, request("/write", Some(&write_cookie))));
            assert_eq!(status, StatusCode::OK, "{}: write", c.name);
            let write_cookie = next_cookie(&h).expect("a write sets a cookie");
            assert_ne!(write_cookie, read_cookie);
            (read_cookie, write_cookie)
        })
        .collect();

    let mut g = c.benchmark_group("stores/read");
    for (c, (cookie, _)) in all.iter().zip(&prepared) {
        let expect = c.items.to_string();
        g.bench_function(c.name, |b| {
            b.iter(|| {
                let (status, _, body) =
                    rt.block_on(call(&c.router, request("/read", Some(cookie))));
                assert!(
                    status == StatusCode::OK && body == expect.as_bytes(),
                    "{}: read",
                    c.name
                );
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("stores/write");
    for (c, (_, cookie)) in all.iter().zip(&prepared) {
        let expect = c.items.to_string();
        let mut cookie = cookie.clone();
        g.bench_function(c.name, |b| {
            b.iter(|| {
                let (status, h, body) =
                    rt.block_on(call(&c.router, request("/write", Some(&cookie))));
                assert!(
                    status == StatusCode::OK && body == expect.as_bytes(),
                    "{}: write",
                    c.name
                );
                cookie = next_cookie(&h).expect("a write sets a cookie");
            })
        });
    }
    g.finish();

    for c in &all {
        if let Some(dir) = &c.dir {
            println!(
                "FILES {}: {} files in the store directory after the run",
                c.name,
                entry_files(dir)
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = stores_benches
}
criterion_main!(benches);
