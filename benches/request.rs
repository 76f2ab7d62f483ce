//! Per-request cost of a session layer, in process: an axum `Router` with a
//! counter handler, driven with tower's `oneshot` (router built once, cloned per
//! request), through
//! - `ours`: `sealed_session::SessionLayer` (default config: AES-256-GCM-SIV, cookie),
//! - `tower_sessions`: tower-sessions 0.15 `SessionManagerLayer` + its `MemoryStore`,
//! - `none`: the same router with no session layer (the handler bumps an atomic).
//!
//! Two requests, each carrying the valid cookie a setup request obtained:
//! - `write`: the handler reads the counter and writes counter + 1 (a Set-Cookie goes out),
//! - `read`: the handler only reads the counter (nothing is written back).
//!
//! The response body is collected in every case. `codec_reference/*` measures our
//! `http::load` + `http::save` of the very same counter session with no router, so
//! the layer's own overhead (ours − none) can be compared with the codec work.
//!
//! Run: `cargo bench -p sealed-session-benches --bench request` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt as _;
use sealed_session::{headers, Keyring, SessionConfig, SessionLayer};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const COUNTER: &str = "counter";

// --- handlers ---------------------------------------------------------------

async fn ours_write(session: sealed_session::Session) -> String {
    let n: u64 = session.get(COUNTER).unwrap().unwrap_or(0);
    session.insert(COUNTER, &(n + 1)).unwrap();
    n.to_string()
}

async fn ours_read(session: sealed_session::Session) -> String {
    let n: u64 = session.get(COUNTER).unwrap().unwrap_or(0);
    n.to_string()
}

async fn ts_write(session: tower_sessions::Session) -> String {
    let n: u64 = session.get(COUNTER).await.unwrap().unwrap_or(0);
    session.insert(COUNTER, n + 1).await.unwrap();
    n.to_string()
}

async fn ts_read(session: tower_sessions::Session) -> String {
    let n: u64 = session.get(COUNTER).await.unwrap().unwrap_or(0);
    n.to_string()
}

static PLAIN: AtomicU64 = AtomicU64::new(0);

async fn none_write() -> String {
    PLAIN.fetch_add(1, Ordering::Relaxed).to_string()
}

async fn none_read() -> String {
    PLAIN.load(Ordering::Relaxed).to_string()
}

// --- routers ----------------------------------------------------------------

fn ours_config() -> SessionConfig {
    SessionConfig::builder(Keyring::new([[0x5a; 32]]).unwrap())
        .build()
        .unwrap()
}

fn ours_router() -> Router {
    Router::new()
        .route("/write", get(ours_write))
        .route("/read", get(ours_read))
        .layer(SessionLayer::new(ours_config()))
}

fn ts_router() -> Router {
    let store = tower_sessions::MemoryStore::default();
    Router::new()
        .route("/write", get(ts_write))
        .route("/read", get(ts_read))
        .layer(tower_sessions::SessionManagerLayer::new(store))
}

fn none_router() -> Router {
    Router::new()
        .route("/write", get(none_write))
        .route("/read", get(none_read))
}

// --- driving ----------------------------------------------------------------

fn request(path: &str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut b = Request::builder().uri(path).header("host", "example.com");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c.clone());
    }
    b.body(Body::empty()).unwrap()
}

/// One request through a clone of the router; the body is collected.
async fn call(router: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, axum::body::Bytes) {
    let response = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// Sends a setup request (it writes the counter) and returns the Cookie header to carry.
fn setup_cookie(rt: &Runtime, router: &Router) -> Option<HeaderValue> {
    let (status, headers, _) = rt.block_on(call(router, request("/write", None)));
    assert_eq!(status, StatusCode::OK);
    headers.get(SET_COOKIE).map(|sc| {
        let pair = sc.to_str().unwrap().split(';').next().unwrap();
        HeaderValue::from_str(pair).unwrap()
    })
}

fn request_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let contenders = [
        ("ours", ours_router()),
        ("tower_sessions", ts_router()),
        ("none", none_router()),
    ];
    let prepared: Vec<_> = contenders
        .into_iter()
        .map(|(name, router)| {
            let cookie = setup_cookie(&rt, &router);
            if name != "none" {
                let cookie = cookie.as_ref().expect("session layers set a cookie");
                println!("COOKIE {name} {} bytes", cookie.len());
                // The carried cookie must really be read back: the counter is 1.
                let (_, h, body) = rt.block_on(call(&router, request("/read", Some(cookie))));
                assert_eq!(&body[..], b"1", "{name} must load its session");
                assert!(h.get(SET_COOKIE).is_none(), "{name}: a read writes nothing");
                let (_, h, _) = rt.block_on(call(&router, request("/write", Some(cookie))));
                assert!(h.get(SET_COOKIE).is_some(), "{name}: a write sets a cookie");
            }
            (name, router, cookie)
        })
        .collect();

    for op in ["write", "read"] {
        let mut g = c.benchmark_group(format!("request/{op}"));
        for (name, router, cookie) in &prepared {
            let path = format!("/{op}");
            g.bench_function(*name, |b| {
                b.iter(|| rt.block_on(call(router, request(&path, cookie.as_ref()))))
            });
        }
        g.finish();
    }

    // Our codec work for the same counter session, no router: what the layer must pay at least.
    let cfg = ours_config();
    let (_, _, cookie) = &prepared[0];
    let mut req = HeaderMap::new();
    req.insert(COOKIE, cookie.clone().unwrap());
    let mut g = c.benchmark_group("codec_reference");
    g.bench_function("load_modify_save", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = headers::load(&cfg, black_box(&req)).await.unwrap();
                let n: u64 = s.get(COUNTER).unwrap().unwrap_or(0);
                s.insert(COUNTER, &(n + 1)).unwrap();
                let mut out = HeaderMap::new();
                headers::save(&cfg, &s, &mut out).await.unwrap();
                out
            })
        })
    });
    g.bench_function("load_read", |b| {
        b.iter(|| {
            rt.block_on(async {
                let s = headers::load(&cfg, black_box(&req)).await.unwrap();
                let n: u64 = s.get(COUNTER).unwrap().unwrap_or(0);
                let mut out = HeaderMap::new();
                headers::save(&cfg, &s, &mut out).await.unwrap();
                (n, out)
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = request_benches
}
criterion_main!(benches);
