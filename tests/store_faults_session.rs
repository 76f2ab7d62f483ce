//! "Never bring one back": store faults seen through the demo router and the
//! layer. A write answered 503 never takes effect later; a logout whose store
//! delete failed is not a success; an old pointer cookie opens only the body
//! written with it; regenerate renews the CSRF secret.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[path = "common/demo.rs"]
mod demo;

#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::routing::get;
use axum::Router;
use demo::{call, Reply};
use sealed_session::store::{FileStore, MemoryStore, SessionStore, StoreKey};
use sealed_session::{Error, Keyring, Session, SessionConfig, SessionLayer};
use serde_json::{json, Value};

const KEY: [u8; 32] = [0x6B; 32];

fn config(store: Arc<dyn SessionStore>) -> SessionConfig {
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .secure(false)
        .store_arc(store)
        .build()
        .unwrap()
}

/// A browser of one cookie.
struct Browser {
    app: Router,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: Router) -> Self {
        Browser { app, cookie: None }
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send_with(method, path, body, &[]).await
    }

    async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&'static str, &str)],
    ) -> Reply {
        let mut headers: Vec<(&str, HeaderValue)> = self
            .cookie
            .iter()
            .map(|c| ("cookie", HeaderValue::from_str(c).unwrap()))
            .collect();
        for (k, v) in extra {
            headers.push((k, HeaderValue::from_str(v).unwrap()));
        }
        let r = call(&self.app, method, path, headers, body).await;
        if let Some(pair) = r.set_cookie() {
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        r
    }
}

/// A store that applies a save only after the caller gave up: the save returns a
/// timeout error at once and lands `delay` later (what a stalled Redis or a slow
/// disk does after the request's deadline).
struct Late {
    inner: Arc<dyn SessionStore>,
    delay: Duration,
    late: AtomicBool,
    /// Late saves that landed.
    landed: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl SessionStore for Late {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        self.inner.load(key).await
    }
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        if !self.late.load(Ordering::SeqCst) {
            return self.inner.save(key, value, ttl).await;
        }
        let (inner, key, value, delay) = (self.inner.clone(), *key, value.to_vec(), self.delay);
        let landed = self.landed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.save(&key, &value, ttl).await.unwrap();
            landed.fetch_add(1, Ordering::SeqCst);
        });
        Err(Error::store(
            "save",
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in time"),
        ))
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.inner.delete(key).await
    }
    async fn len(&self) -> Result<Option<usize>, Error> {
        self.inner.len().await
    }
}

/// A big cart (a pointer cookie), then a write that fails and lands later: the
/// client keeps the old cookie, and that cookie never sees the late write.
async fn a_late_write_lands_where_no_cookie_points(inner: Arc<dyn SessionStore>) {
    let late = Arc::new(Late {
        inner: inner.clone(),
        delay: Duration::from_millis(100),
        late: AtomicBool::new(false),
        landed: Default::default(),
    });
    let mut b = Browser::new(server::app(config(late.clone())));
    let r = b
        .send(Method::POST, "/cart", Some(json!({"items": 300})))
        .await;
    assert_eq!(r.json, json!({"items": 300}));
    late.late.store(true, Ordering::SeqCst);
    let r = b
        .send(Method::POST, "/cart", Some(json!({"items": 5})))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.set_cookie().is_none(), "a failed save writes no cookie");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        late.landed.load(Ordering::SeqCst),
        1,
        "the late write landed"
    );
    late.late.store(false, Ordering::SeqCst);
    let r = b.send(Method::GET, "/session", None).await;
    assert_eq!(
        r.json["cart"].as_array().map(Vec::len),
        Some(300),
        "the write the client was told failed took effect later"
    );
}

#[tokio::test]
async fn a_late_write_never_takes_effect_memory_store() {
    a_late_write_lands_where_no_cookie_points(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn a_late_write_never_takes_effect_file_store() {
    let dir = std::env::temp_dir().join(format!("sealed-session-late-{}", std::process::id()));
    let store = FileStore::open(&dir).await.unwrap();
    a_late_write_lands_where_no_cookie_points(Arc::new(store)).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a raw command against the test server.
#[cfg(feature = "redis")]
async fn redis_cmd(url: &str, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

/// How many SET commands the server has executed.
#[cfg(feature = "redis")]
async fn set_calls(url: &str) -> u64 {
    let info = match redis_cmd(url, &["INFO", "commandstats"]).await {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO answered {other:?}"),
    };
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answered_503_while_redis_is_paused_never_takes_effect() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = sealed_session::store::RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let store: Arc<dyn SessionStore> = Arc::new(store);
    let mut b = Browser::new(server::app(config(store.clone())));
    let r = b
        .send(Method::POST, "/cart", Some(json!({"items": 300})))
        .await;
    assert_eq!(r.json, json!({"items": 300}));
    let before = set_calls(&server.url()).await;
    // Writes stall for 1.5 s: the request's SET is sent, the deadline passes.
    redis_cmd(&server.url(), &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    let r = b
        .send(Method::POST, "/cart", Some(json!({"items": 5})))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.set_cookie().is_none());
    // Redis resumes and applies the SET it had queued.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        set_calls(&server.url()).await,
        before + 1,
        "the late SET landed"
    );
    let r = b.send(Method::GET, "/session", None).await;
    assert_eq!(
        r.json["cart"].as_array().map(Vec::len),
        Some(300),
        "the write answered 503 changed the session after all"
    );
}

/// A store whose deletes fail (a read-only mount, a Redis user without writes).
struct NoDelete(Arc<dyn SessionStore>);

#[async_trait::async_trait]
impl SessionStore for NoDelete {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        self.0.load(key).await
    }
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        self.0.save(key, value, ttl).await
    }
    async fn delete(&self, _: &StoreKey) -> Result<(), Error> {
        Err(Error::store(
            "delete",
            std::io::Error::new(std::io::ErrorKind::ReadOnlyFilesystem, "read-only"),
        ))
    }
}

/// Logs in with a big cart, then logs out while the store cannot delete.
async fn logout_with_a_store_that_cannot_delete(
    store: Arc<dyn SessionStore>,
    refuse: impl AsyncFnOnce(),
) {
    let mut b = Browser::new(server::app(config(store)));
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    b.send(Method::POST, "/cart", Some(json!({"items": 300})))
        .await;
    let logged_in = b.cookie.clone().unwrap();
    refuse().await;
    let r = b.send(Method::POST, "/logout", None).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a logout whose store delete failed answered {}",
        r.status
    );
    assert!(
        r.set_cookie().is_none(),
        "no removal cookie for a failed logout"
    );
    assert_eq!(b.cookie.as_deref(), Some(logged_in.as_str()));
}

#[tokio::test]
async fn logout_is_not_a_success_when_the_store_cannot_delete() {
    logout_with_a_store_that_cannot_delete(
        Arc::new(NoDelete(Arc::new(MemoryStore::new()))),
        async || {},
    )
    .await;
}

/// A directory nothing can be written to, not even by root: a read-only tmpfs
/// mount for root, permissions for anyone else. Unmounted and removed on drop.
struct ReadOnlyDir {
    path: std::path::PathBuf,
    mounted: bool,
}

impl ReadOnlyDir {
    fn new(tag: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("sealed-session-ro-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        ReadOnlyDir {
            path,
            mounted: false,
        }
    }

    /// Makes the directory read-only, keeping what is in it.
    fn freeze(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        if !root {
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o555)).unwrap();
            return;
        }
        // Root ignores permissions: remount the directory read-only via a bind mount.
        let bind = std::process::Command::new("mount")
            .args(["--bind"])
            .arg(&self.path)
            .arg(&self.path)
            .status();
        assert!(
            bind.is_ok_and(|s| s.success()),
            "as root, this test needs `mount --bind` to make a directory read-only"
        );
        self.mounted = true;
        let ro = std::process::Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(ro.success(), "remount read-only failed");
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[tokio::test]
async fn logout_on_a_read_only_file_store_is_not_a_success() {
    let mut dir = ReadOnlyDir::new("logout");
    let store = FileStore::open(&dir.path).await.unwrap();
    let frozen = &mut dir;
    logout_with_a_store_that_cannot_delete(Arc::new(store), async || frozen.freeze()).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_against_a_redis_that_refuses_writes_is_not_a_success() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let store = sealed_session::store::RedisStore::connect(&server.url())
        .await
        .unwrap();
    let url = server.url();
    logout_with_a_store_that_cannot_delete(Arc::new(store), async || {
        redis_cmd(&url, &["ACL", "SETUSER", "default", "-@write"]).await;
    })
    .await;
}

#[tokio::test]
async fn regenerate_renews_the_csrf_secret() {
    let mut b = Browser::new(server::app(config(Arc::new(MemoryStore::new()))));
    let before = b.send(Method::GET, "/csrf", None).await.json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let after = b.send(Method::GET, "/csrf", None).await.json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        before, after,
        "a fixated attacker would know the token after login"
    );
    let r = b
        .send_with(
            Method::POST,
            "/transfer",
            None,
            &[("x-csrf-token", &before)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b
        .send_with(Method::POST, "/transfer", None, &[("x-csrf-token", &after)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// `/big` stores a 6 KB blob and `x`; `/next` sets `x` to 2 and renews the CSRF
/// token; `/look` shows `x` and whether the given token verifies.
fn pointer_app(store: Arc<dyn SessionStore>) -> Router {
    async fn big(session: Session) -> String {
        // Incompressible, so the session must live in the store behind a pointer.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..6000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        session
            .insert("blob", &serde_bytes::ByteBuf::from(noise))
            .unwrap();
        session.insert("x", &1u8).unwrap();
        session.csrf_token()
    }
    async fn next(session: Session) -> String {
        session.insert("x", &2u8).unwrap();
        session.regenerate_csrf_token()
    }
    async fn look(session: Session, headers: axum::http::HeaderMap) -> axum::Json<Value> {
        let token = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        axum::Json(json!({
            "x": session.get::<u8>("x").unwrap(),
            "verifies": session.verify_csrf_token(token),
        }))
    }
    Router::new()
        .route("/big", get(big))
        .route("/next", get(next))
        .route("/look", get(look))
        .layer(SessionLayer::new(config(store)))
}

#[tokio::test]
async fn an_old_pointer_cookie_opens_only_the_body_written_with_it() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut b = Browser::new(pointer_app(store.clone()));
    let r = b.send(Method::GET, "/big", None).await;
    let old_token = r.json.as_str().unwrap().to_owned();
    let old_cookie = b.cookie.clone().unwrap();
    let value = old_cookie.split_once('=').unwrap().1;
    assert!(
        sealed_session::inspect::header(value)
            .unwrap()
            .header
            .pointer,
        "the session must live in the store for this test"
    );
    let r = b.send(Method::GET, "/next", None).await;
    let new_token = r.json.as_str().unwrap().to_owned();
    assert_ne!(old_token, new_token);
    // The current cookie: the new body and the new token.
    let r = b
        .send_with(Method::GET, "/look", None, &[("x-csrf-token", &new_token)])
        .await;
    assert_eq!(r.json, json!({"x": 2, "verifies": true}));
    // A copy of the old pointer cookie must not pair its old meta (old token) with
    // the new body: it sees the body that was written with it, or nothing.
    let mut replay = Browser::new(b.app.clone());
    replay.cookie = Some(old_cookie);
    let r = replay
        .send_with(Method::GET, "/look", None, &[("x-csrf-token", &old_token)])
        .await;
    assert_ne!(
        r.json["x"],
        json!(2),
        "an old pointer opened the new body with its old meta: {}",
        r.json
    );
}
