//! The demo server's contract, driven in-process through axum with tower's oneshot,
//! plus the layer's behaviour on faults, ignored paths and fingerprints.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, Request, Response, StatusCode};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use sealed_session::forge::{self, Written};
use sealed_session::store::{SessionStore, StoreKey};
use sealed_session::{
    inspect, store::MemoryStore, Error, ErrorKind, Keyring, Session, SessionConfig, SessionLayer,
    Transport,
};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const OLD: [u8; 32] = [0x0A; 32];
const NEW: [u8; 32] = [0x0B; 32];

fn config(keys: &[[u8; 32]], store: Arc<dyn SessionStore>) -> SessionConfig {
    SessionConfig::builder(Keyring::new(keys).unwrap())
        .secure(false)
        .transport(Transport::CookieOrHeader(HeaderName::from_static(
            "x-session",
        )))
        .store_arc(store)
        .build()
        .unwrap()
}

/// A browser of one cookie against a router.
struct Client {
    app: Router,
    cookie: Option<String>,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Client {
    fn new(app: Router) -> Self {
        Client { app, cookie: None }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res: Response<Body> = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        if let Some(sc) = headers.get(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let pair = sc.split(';').next().unwrap().to_owned();
            self.cookie = if sc.contains("Max-Age=0") {
                None
            } else {
                Some(pair)
            };
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }

    fn value(&self) -> &str {
        self.cookie.as_deref().unwrap().split_once('=').unwrap().1
    }
}

/// `n` cart items with random SKUs, as the demo's POST /cart makes them.
fn cart(n: usize) -> Vec<server::Item> {
    use rand::distr::{Alphanumeric, SampleString as _};
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..n)
        .map(|_| server::Item {
            sku: Alphanumeric.sample_string(&mut rng, 8),
            qty: rng.random_range(1..=9),
            price: rng.random_range(100..100_000),
        })
        .collect()
}

/// The session a reply wrote, opened as the next request would.
async fn written(cfg: &SessionConfig, reply: &Reply) -> Session {
    forge::read(cfg, &reply.headers)
        .await
        .unwrap()
        .session()
        .expect("the reply set a session")
}

#[tokio::test]
async fn every_route_of_the_contract_over_cookies() {
    let cfg = config(&[OLD], Arc::new(MemoryStore::new()));
    let mut c = Client::new(server::app(cfg.clone()));
    for n in 1..=3 {
        let r = c.get("/").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json, json!({"views": n}));
    }
    let before = inspect::describe(&cfg, c.value()).unwrap().id;
    let r = c.post("/login", json!({"user": "ada"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let session = written(&cfg, &r).await;
    assert_ne!(before, session.id(), "login regenerates the session id");
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
    let r = c.get("/session").await;
    assert_eq!(r.json, json!({"views": 3, "user": "ada"}));

    // Flash: once.
    c.post("/flash", json!({"message": "one"})).await;
    c.post("/flash", json!({"message": "two"})).await;
    assert_eq!(
        c.get("/flash").await.json,
        json!({"messages": ["one", "two"]})
    );
    assert_eq!(c.get("/flash").await.json, json!({"messages": []}));

    // CSRF.
    let token = c.get("/csrf").await.json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.send("POST", "/transfer", None, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.send("POST", "/transfer", None, &[("x-csrf-token", "nope")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = c
        .send("POST", "/transfer", None, &[("x-csrf-token", &token)])
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Logout removes the cookie.
    let r = c.post("/logout", json!({})).await;
    assert!(matches!(
        forge::read(&cfg, &r.headers).await.unwrap(),
        Written::Removed
    ));
    assert!(c.cookie.is_none());
    assert_eq!(c.get("/session").await.json, json!({}));
}

#[tokio::test]
async fn a_300_item_cart_moves_to_the_store_and_back() {
    let store = Arc::new(MemoryStore::new());
    let cfg = config(&[OLD], store.clone());
    let mut c = Client::new(server::app(cfg.clone()));
    c.get("/").await;
    let r = c.post("/cart", json!({"items": 300})).await;
    assert_eq!(r.json, json!({"items": 300}));
    assert!(c.cookie.as_ref().unwrap().len() <= 4093);
    let d = inspect::describe(&cfg, c.value()).unwrap();
    assert!(d.header.pointer, "300 items do not fit a cookie");
    assert_eq!(store.len().await.unwrap(), Some(1));
    let cart = c.get("/session").await.json["cart"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(cart.len(), 300);
    let skus: std::collections::HashSet<&str> =
        cart.iter().map(|i| i["sku"].as_str().unwrap()).collect();
    assert_eq!(skus.len(), 300, "distinct items");
    for item in &cart {
        assert_eq!(item["sku"].as_str().unwrap().len(), 8);
        assert!((1..=9).contains(&item["qty"].as_u64().unwrap()));
    }
    c.post("/logout", json!({})).await;
    assert_eq!(
        store.len().await.unwrap(),
        Some(0),
        "logout deletes the store entry"
    );
}

#[tokio::test]
async fn x_session_header_transport() {
    let cfg = config(&[OLD], Arc::new(MemoryStore::new()));
    let mut c = Client::new(server::app(cfg));
    let r = c.send("GET", "/", None, &[("x-session", "")]).await;
    assert_eq!(r.json, json!({"views": 1}));
    assert!(
        r.headers.get(header::SET_COOKIE).is_none(),
        "header mode sets no cookie"
    );
    let token = r.headers["x-session"].to_str().unwrap().to_owned();
    let r = c.send("GET", "/", None, &[("x-session", &token)]).await;
    assert_eq!(r.json, json!({"views": 2}));
    let token = r.headers["x-session"].to_str().unwrap().to_owned();
    let r = c
        .send("GET", "/session", None, &[("x-session", &token)])
        .await;
    assert_eq!(r.json, json!({"views": 2}));
    assert!(r.headers.get("x-session").is_none(), "unchanged: no header");
    let r = c
        .send("POST", "/logout", None, &[("x-session", &token)])
        .await;
    assert_eq!(
        r.headers["x-session"], "",
        "logout answers an empty X-Session"
    );
    assert!(c.cookie.is_none());
}

#[tokio::test]
async fn tampered_cookie_gives_a_fresh_session_and_200() {
    let cfg = config(&[OLD], Arc::new(MemoryStore::new()));
    let mut c = Client::new(server::app(cfg));
    c.get("/").await;
    c.get("/").await;
    let mut raw = URL_SAFE_NO_PAD.decode(c.value()).unwrap();
    raw[10] ^= 0x40;
    c.cookie = Some(format!("session={}", URL_SAFE_NO_PAD.encode(raw)));
    let r = c.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"views": 1}));
    for junk in [
        "session=",
        "session=!!!",
        "session=AQAAAAAA",
        "a=b; session=%ff%fe",
    ] {
        c.cookie = Some(junk.to_owned());
        assert_eq!(c.get("/").await.json, json!({"views": 1}), "{junk}");
    }
}

#[tokio::test]
async fn a_rotated_server_accepts_old_cookies_and_reseals_them() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let old_cfg = config(&[OLD], store.clone());
    let rotated = config(&[NEW, OLD], store);
    let mut c = Client::new(server::app(rotated.clone()));
    // A session from before the rotation, too big for a cookie: it lives in the store.
    let cart = cart(300);
    let cookie = forge::cookie(&old_cfg, |s| {
        s.insert("views", &1u64)?;
        s.insert("cart", &cart)
    })
    .await
    .unwrap();
    c.cookie = Some(cookie.to_str().unwrap().to_owned());
    assert!(
        inspect::describe(&old_cfg, c.value())
            .unwrap()
            .header
            .pointer
    );
    let r = c.get("/session").await;
    assert_eq!(r.json["cart"].as_array().unwrap().len(), 300);
    assert!(
        r.headers.get(header::SET_COOKIE).is_some(),
        "re-sealed though unchanged"
    );
    let d = inspect::describe(&rotated, c.value()).unwrap();
    assert_eq!(d.header.key_id, rotated.codec().keyring().primary_key_id());
    assert!(!d.old_key);
    assert_eq!(c.get("/").await.json, json!({"views": 2}));
}

#[tokio::test]
async fn missing_layer_is_a_500_that_says_so() {
    async fn handler(_s: Session) -> &'static str {
        "unreachable"
    }
    let app = Router::new().route("/", get(handler));
    let mut c = Client::new(app);
    let r = c.get("/").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.json.as_str().unwrap().contains("SessionLayer"),
        "{}",
        r.json
    );
}

/// A store that can go down and counts its calls.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl SessionStore for Flaky {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("load", std::io::Error::other("down")));
        }
        self.inner.load(key).await
    }
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("save", std::io::Error::other("down")));
        }
        self.inner.save(key, value, ttl).await
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn store_down_is_503_for_store_sessions_only() {
    let flaky = Arc::new(Flaky::default());
    let cfg = config(&[OLD], flaky.clone());
    let mut big = Client::new(server::app(cfg.clone()));
    big.post("/cart", json!({"items": 300})).await;
    let mut small = Client::new(server::app(cfg));
    small.get("/").await;
    flaky.down.store(true, Ordering::SeqCst);
    let r = big.get("/session").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json["error"].as_str().unwrap().contains("store"),
        "{}",
        r.json
    );
    assert_eq!(
        small.get("/").await.json,
        json!({"views": 2}),
        "inline sessions keep working"
    );
    let before = small.cookie.clone();
    let r = small.post("/cart", json!({"items": 300})).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a save that needs the store"
    );
    assert_eq!(small.cookie, before, "nothing claimed saved");
    flaky.down.store(false, Ordering::SeqCst);
    assert_eq!(
        big.get("/session").await.json["cart"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
}

#[tokio::test]
async fn ignored_paths_cost_no_session_work() {
    let flaky = Arc::new(Flaky::default());
    let cfg = SessionConfig::builder(Keyring::new([OLD]).unwrap())
        .store_arc(flaky.clone())
        .ignore_path("/health")
        .ignore_path("/static/*")
        .build()
        .unwrap();
    assert!(cfg.is_ignored_path("/static/app.css"));
    assert!(!cfg.is_ignored_path("/healthz"));
    async fn big(session: Session) -> &'static str {
        let blob: Vec<u8> = (0..8000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        session.insert("blob", &blob).unwrap();
        "stored"
    }
    let app = Router::new()
        .route("/", get(big))
        .route("/health", get(|| async { "ok" }))
        .route("/static/{file}", get(|| async { "css" }))
        .layer(SessionLayer::new(cfg));
    let mut c = Client::new(app);
    c.get("/").await;
    assert!(c.cookie.is_some());
    let calls = flaky.calls.load(Ordering::SeqCst);
    assert!(calls > 0);
    for path in ["/health", "/static/app.css"] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get(header::SET_COOKIE).is_none(), "{path}");
    }
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        calls,
        "the store was never called"
    );
}

#[tokio::test]
async fn fingerprint_mismatch_gives_a_fresh_session() {
    let cfg = SessionConfig::builder(Keyring::new([OLD]).unwrap())
        .fingerprint(|headers, _uri| {
            headers
                .get(header::USER_AGENT)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default()
        })
        .build()
        .unwrap();
    let mut c = Client::new(server::app(cfg));
    c.send("GET", "/", None, &[("user-agent", "firefox")]).await;
    let r = c.send("GET", "/", None, &[("user-agent", "firefox")]).await;
    assert_eq!(r.json, json!({"views": 2}));
    let r = c.send("GET", "/", None, &[("user-agent", "curl")]).await;
    assert_eq!(r.json, json!({"views": 1}), "replayed from another context");
}

#[tokio::test]
async fn a_forged_login_reaches_a_logged_in_route() {
    let cfg = config(&[OLD], Arc::new(MemoryStore::new()));
    let mut c = Client::new(server::app(cfg.clone()));
    let cookie = forge::cookie(&cfg, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    c.cookie = Some(cookie.to_str().unwrap().to_owned());
    assert_eq!(c.get("/session").await.json, json!({"user": "ada"}));
    let r = c.get("/").await;
    assert_eq!(
        written(&cfg, &r).await.get::<u64>("views").unwrap(),
        Some(1)
    );

    // The same for an API client in header mode.
    let token = forge::header(&cfg, |s| s.insert("user", "grace"))
        .await
        .unwrap();
    let r = c
        .send(
            "GET",
            "/session",
            None,
            &[("x-session", token.to_str().unwrap())],
        )
        .await;
    assert_eq!(r.json, json!({"user": "grace"}));
}

#[tokio::test]
async fn a_handler_can_return_the_crates_error() {
    // A value written as a u64 and read as a bool: a Serialization error.
    async fn wrong_type(session: Session) -> Result<String, Error> {
        Ok(session.get::<bool>("views")?.unwrap_or(false).to_string())
    }
    async fn store_down() -> Result<&'static str, Error> {
        Err(Error::store(
            "load",
            std::io::Error::other("db-7.internal:5432 refused the connection"),
        ))
    }
    let cfg = config(&[OLD], Arc::new(MemoryStore::new()));
    let app = Router::new()
        .route("/wrong", get(wrong_type))
        .route("/down", get(store_down))
        .layer(SessionLayer::new(cfg.clone()));
    let mut c = Client::new(app);
    let cookie = forge::cookie(&cfg, |s| s.insert("views", &5u64))
        .await
        .unwrap();
    c.cookie = Some(cookie.to_str().unwrap().to_owned());
    let r = c.get("/wrong").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json,
        json!("Internal Server Error"),
        "no internals in the body"
    );
    let r = c.get("/down").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json,
        json!("Service Unavailable"),
        "the cause does not leak"
    );

    // The kind rides along for an outer middleware that wants to render a body.
    let res = axum::response::IntoResponse::into_response(Error::store(
        "save",
        std::io::Error::other("x"),
    ));
    assert_eq!(res.extensions().get::<ErrorKind>(), Some(&ErrorKind::Store));
}

/// A router-wide middleware that takes `Option<Session>`: it counts hits when there is
/// a session and says in a header whether it saw one.
async fn count_hits(
    session: Option<Session>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let saw = session.is_some();
    if let Some(s) = &session {
        let hits = s.get_or("hits", 0u64).unwrap() + 1;
        s.insert("hits", &hits).unwrap();
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "x-saw-session",
        if saw { "yes" } else { "no" }.parse().unwrap(),
    );
    response
}

/// Outside the layer: records whether the response already carries the Set-Cookie.
async fn outside(
    session: Option<Session>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    assert!(
        session.is_none(),
        "outside the layer there is no session yet"
    );
    let mut response = next.run(request).await;
    let written = response.headers().contains_key(header::SET_COOKIE);
    response.headers_mut().insert(
        "x-outside-saw-cookie",
        if written { "yes" } else { "no" }.parse().unwrap(),
    );
    response
}

#[tokio::test]
async fn optional_session_in_router_wide_middleware_works_on_ignored_paths() {
    let cfg = SessionConfig::builder(Keyring::new([OLD]).unwrap())
        .ignore_path("/health")
        .build()
        .unwrap();
    async fn maybe(session: Option<Session>) -> &'static str {
        if session.is_some() {
            "with"
        } else {
            "without"
        }
    }
    let app = Router::new()
        .route("/", get(maybe))
        .route("/health", get(maybe))
        .layer(axum::middleware::from_fn(count_hits))
        .layer(SessionLayer::new(cfg.clone()))
        .layer(axum::middleware::from_fn(outside));
    let mut c = Client::new(app);

    let r = c.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!("with"));
    assert_eq!(r.headers["x-saw-session"], "yes");
    assert_eq!(
        r.headers["x-outside-saw-cookie"], "yes",
        "saved before it leaves the layer"
    );
    assert_eq!(written(&cfg, &r).await.get::<u64>("hits").unwrap(), Some(1));
    let r = c.get("/").await;
    assert_eq!(written(&cfg, &r).await.get::<u64>("hits").unwrap(), Some(2));

    let r = c.get("/health").await;
    assert_eq!(r.status, StatusCode::OK, "no 500 on an ignored path");
    assert_eq!(r.json, json!("without"));
    assert_eq!(r.headers["x-saw-session"], "no");
    assert!(r.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn optional_session_without_the_layer_is_none() {
    async fn maybe(session: Option<Session>) -> &'static str {
        if session.is_some() {
            "with"
        } else {
            "without"
        }
    }
    let mut c = Client::new(Router::new().route("/", get(maybe)));
    let r = c.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!("without"));
}
