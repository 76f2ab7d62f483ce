//! The demo app on the SQL stores, against a real PostgreSQL and real SQLite
//! files: 503 for store-backed sessions while PostgreSQL is stopped or stuck behind
//! a lock (inline sessions unaffected) and recovery without restarting the app; a
//! read-only SQLite file (reads work, writes are 503); two apps, and two demo
//! server processes, on one database serving the same sessions.
#![cfg(all(feature = "axum", any(feature = "postgres", feature = "sqlite")))]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[cfg(feature = "postgres")]
#[path = "common/postgres_server.rs"]
mod postgres_server;

#[path = "common/demo_process.rs"]
mod demo_process;

#[path = "common/revocation_across.rs"]
mod revocation_across_processes;
use revocation_across_processes::revocation_across;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use sealed_session::store::{SessionStore, SqlOptions, SqlPool, SqlStore};
use sealed_session::{Keyring, SessionConfig, Transport};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const KEY: [u8; 32] = [0x5c; 32];

/// Short bounds, so a stopped or stuck database answers 503 quickly.
fn quick() -> SqlOptions {
    SqlOptions::new()
        .with_timeout(Duration::from_millis(600))
        .with_connect_timeout(Duration::from_millis(300))
}

/// How long a request may take to answer 503 while the store is down or stuck.
const FAIL_BOUND: Duration = Duration::from_millis(1_500);

fn config(store: SqlStore) -> SessionConfig {
    let store: Arc<dyn SessionStore> = Arc::new(store);
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .secure(false)
        .transport(Transport::CookieOrHeader(HeaderName::from_static(
            "x-session",
        )))
        .store_arc(store)
        .build()
        .unwrap()
}

async fn sql_app(url: &str) -> (Router, SessionConfig) {
    let store = SqlStore::new(&SqlPool::connect_with(url, quick()).await.unwrap());
    let config = config(store);
    (server::app(config.clone()), config)
}

/// A browser of one cookie against a router.
struct Client {
    app: Router,
    cookie: Option<String>,
}

impl Client {
    fn new(app: &Router) -> Self {
        Client {
            app: app.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        if let Some(sc) = res.headers().get(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            self.cookie = Some(sc.split(';').next().unwrap().to_owned());
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }

    async fn get(&mut self, path: &str) -> (StatusCode, Value) {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send("POST", path, Some(body)).await
    }

    /// A request that must answer 503 within [`FAIL_BOUND`] and leave the cookie as it was.
    async fn expect_503(&mut self, method: &str, path: &str, body: Option<Value>) {
        let before = self.cookie.clone();
        let started = Instant::now();
        let (status, json) = self.send(method, path, body).await;
        let took = started.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {json}"
        );
        assert_eq!(json["reason"], "store", "{json}");
        assert!(
            took <= FAIL_BOUND,
            "{method} {path} took {took:?} to answer 503"
        );
        assert_eq!(self.cookie, before, "nothing claimed saved");
    }

    fn is_pointer(&self, config: &SessionConfig) -> bool {
        let value = self.cookie.as_deref().unwrap().split_once('=').unwrap().1;
        sealed_session::inspect::describe(config, value)
            .unwrap()
            .header
            .pointer
    }
}

fn cart_len(json: &Value) -> usize {
    json["cart"].as_array().map_or(0, Vec::len)
}

/// A session too big for a cookie (300 items, in the store) and a small one (inline).
async fn big_and_small(app: &Router, config: &SessionConfig) -> (Client, Client) {
    let mut big = Client::new(app);
    assert_eq!(
        big.post("/cart", json!({"items": 300})).await.0,
        StatusCode::OK
    );
    assert!(big.is_pointer(config), "300 items live in the store");
    let mut small = Client::new(app);
    assert_eq!(small.get("/").await, (StatusCode::OK, json!({"views": 1})));
    assert!(!small.is_pointer(config));
    (big, small)
}

/// Two apps (two processes' worth: separate pools and configs, the same keys) on
/// one database: a session made on one is served, and changed, on the other.
async fn two_apps_serve_the_same_sessions(url: &str) {
    let (a, config) = sql_app(url).await;
    let (b, _) = sql_app(url).await;
    let mut c = Client::new(&a);
    c.post("/login", json!({"user": "ada"})).await;
    assert_eq!(
        c.post("/cart", json!({"items": 300})).await.0,
        StatusCode::OK
    );
    assert!(c.is_pointer(&config));
    c.app = b.clone();
    let (status, json) = c.get("/session").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((cart_len(&json), &json["user"]), (300, &json!("ada")));
    assert_eq!(
        c.post("/cart", json!({"items": 5})).await.1,
        json!({"items": 305})
    );
    c.app = a;
    assert_eq!(cart_len(&c.get("/session").await.1), 305);
    c.post("/logout", json!({})).await;
    c.app = b;
    assert_eq!(c.get("/session").await.1, json!({}));
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use postgres_server::PostgresServer;

    /// PostgreSQL stopped while serving: 503 for store-backed sessions, fast; inline
    /// sessions keep working; once it is back the same app serves them again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_postgres_is_503_for_store_sessions_and_the_app_recovers() {
        let Some(mut db) = PostgresServer::start() else {
            return;
        };
        let (app, config) = sql_app(&db.url()).await;
        let (mut big, mut small) = big_and_small(&app, &config).await;

        db.stop_immediate();
        big.expect_503("GET", "/session", None).await;
        big.expect_503("POST", "/cart", Some(json!({"items": 1})))
            .await;
        assert_eq!(small.get("/").await, (StatusCode::OK, json!({"views": 2})));
        // A save that needs the store fails and keeps the old cookie.
        small
            .expect_503("POST", "/cart", Some(json!({"items": 300})))
            .await;
        assert_eq!(small.get("/").await.1, json!({"views": 3}), "inline still");

        db.start_again();
        let started = Instant::now();
        loop {
            let (status, json) = big.get("/session").await;
            if status == StatusCode::OK {
                assert_eq!(cart_len(&json), 300, "the session outlived the outage");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no recovery: {status} {json}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            small.post("/cart", json!({"items": 300})).await.0,
            StatusCode::OK
        );
        assert!(small.is_pointer(&config));
        assert_eq!(cart_len(&small.get("/session").await.1), 300);
    }

    /// A statement that hangs (the table locked by another connection in an open
    /// transaction): bounded time, then 503; inline sessions unaffected; the lock
    /// gone, the same app serves the session.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_stuck_behind_a_lock_is_a_bounded_503() {
        let Some(db) = PostgresServer::start() else {
            return;
        };
        let (app, config) = sql_app(&db.url()).await;
        let (mut big, mut small) = big_and_small(&app, &config).await;
        let raw = sqlx::PgPool::connect(&db.url()).await.unwrap();
        let mut locker = raw.begin().await.unwrap();
        sqlx::query("LOCK TABLE sealed_sessions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *locker)
            .await
            .unwrap();
        big.expect_503("GET", "/session", None).await;
        big.expect_503("POST", "/cart", Some(json!({"items": 1})))
            .await;
        assert_eq!(small.get("/").await, (StatusCode::OK, json!({"views": 2})));
        locker.rollback().await.unwrap();
        let (status, json) = big.get("/session").await;
        assert_eq!((status, cart_len(&json)), (StatusCode::OK, 300));
        assert_eq!(
            big.post("/cart", json!({"items": 1})).await.1,
            json!({"items": 301})
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_apps_on_one_postgres_serve_the_same_sessions() {
        let Some(db) = PostgresServer::start() else {
            return;
        };
        two_apps_serve_the_same_sessions(&db.url()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_demo_processes_on_one_postgres_serve_the_same_sessions() {
        let Some(db) = PostgresServer::start() else {
            return;
        };
        super::processes::share_sessions(&db.url()).await;
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    fn temp() -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::Builder::new()
            .prefix("sealed-session-sqlite-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("sessions.db");
        let url = format!("sqlite:{}", path.display());
        (dir, path, url)
    }

    /// A file the app may only read: store-backed sessions are served, a write that
    /// needs the store is 503 and keeps the old cookie, inline sessions work.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_only_file_serves_reads_and_answers_503_to_writes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (_dir, path, url) = temp();
        let (writer, config) = sql_app(&url).await;
        let (mut big, _) = big_and_small(&writer, &config).await;
        // Root ignores file modes: open the file read-only instead.
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let read_only_url = if root {
            format!("{url}?mode=ro")
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            url.clone()
        };
        let (reader, _) = sql_app(&read_only_url).await;
        big.app = reader.clone();
        let (status, json) = big.get("/session").await;
        assert_eq!((status, cart_len(&json)), (StatusCode::OK, 300));
        big.expect_503("POST", "/cart", Some(json!({"items": 1})))
            .await;
        let mut small = Client::new(&reader);
        assert_eq!(small.get("/").await, (StatusCode::OK, json!({"views": 1})));
        small
            .expect_503("POST", "/cart", Some(json!({"items": 300})))
            .await;
        big.app = writer;
        assert_eq!(
            cart_len(&big.get("/session").await.1),
            300,
            "nothing changed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_apps_on_one_sqlite_file_serve_the_same_sessions() {
        let (_dir, _, url) = temp();
        two_apps_serve_the_same_sessions(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_demo_processes_on_one_sqlite_file_serve_the_same_sessions() {
        let (_dir, _, url) = temp();
        super::processes::share_sessions(&url).await;
    }
}

/// Two demo server processes (`examples/server.rs`) with one `SESSION_STORE`.
mod processes {
    use serde_json::json;

    use super::demo_process::{Browser, Server, KEYS};

    /// A session made on one server process is served, and changed, by the other;
    /// a logout on one holds on the other within 2 s.
    pub(super) async fn share_sessions(store: &str) {
        let one = Server::start(KEYS, store, &[]);
        let two = Server::start(KEYS, store, &[]);
        let mut b = Browser::default();
        let r = b
            .call(&one, "POST", "/cart", Some(json!({"items": 300})))
            .await;
        assert_eq!((r.status, r.json), (200, json!({"items": 300})));
        assert!(
            sealed_session::inspect::header(&b.value())
                .unwrap()
                .header
                .pointer,
            "the cart lives in the store"
        );
        let r = b.call(&two, "GET", "/session", None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["cart"].as_array().unwrap().len(), 300);
        let r = b
            .call(&two, "POST", "/cart", Some(json!({"items": 2})))
            .await;
        assert_eq!(r.json, json!({"items": 302}));
        let r = b.call(&one, "GET", "/session", None).await;
        assert_eq!(r.json["cart"].as_array().unwrap().len(), 302);
        super::revocation_across(&one, &two, b).await;
    }
}
