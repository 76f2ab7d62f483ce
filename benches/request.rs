//! Per-request cost of a session layer, in process: an axum `Router` with a
//! counter handler, driven with tower's `oneshot` (router built once, cloned per
//! request), through
//! - `ours`: `sealed_session::SessionLayer` (default config: AES-256-GCM-SIV, cookie),
//! - `tower_sessions`: tower-sessions 0.15 `SessionManagerLayer` + its `MemoryStore`,
//! - `tower_sessions_redis`: tower-sessions 0.14 `SessionManagerLayer` +
//!   tower-sessions-redis-store 0.16 `RedisStore` (the newest Redis store; it
//!   implements tower-sessions-core 0.14) on one fred `Client` (one multiplexed
//!   connection, as our `RedisStore`) to a `redis-server` this bench starts on
//!   127.0.0.1 (no persistence); skipped with a `SKIPPED` line when it cannot start,
//! - `none`: the same router with no session layer (the handler bumps an atomic).
//!
//! Groups, each carrying the valid cookie a setup request obtained:
//! - `request/write`: the handler reads the counter and writes counter + 1 (a Set-Cookie goes out),
//! - `request/read`: the handler only reads the counter (nothing is written back),
//! - `request/untouched`: a handler that takes no session extractor at all (it
//!   returns the atomic's value), `ours` through our `SessionLayer` with our valid
//!   cookie, `none` the same handler with no layer and the same Cookie header: what
//!   the layer costs a route that never looks at the session.
//!
//! The contenders of a group run interleaved in one criterion group, so their
//! ratios come from one run. The response body is collected in every case.
//! `codec_reference/*` measures our `headers::load` + `headers::save` of the very
//! same counter session with no router, so the layer's own overhead (ours − none)
//! can be compared with the codec work.
//!
//! Run: `cargo bench -p sealed-session-benches --bench request` (add `-- --quick` for a fast pass).

#[path = "common/router.rs"]
mod router;
use router::{call, request};

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use sealed_session::{headers, Keyring, SessionConfig, SessionLayer};
use tokio::runtime::Runtime;
use tower_sessions_redis_store::fred::prelude::{
    Builder as FredBuilder, ClientLike as _, Config as FredConfig,
};

#[path = "common/real_servers.rs"]
mod real_servers;

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

async fn ts_redis_write(session: tower_sessions_014::Session) -> String {
    let n: u64 = session.get(COUNTER).await.unwrap().unwrap_or(0);
    session.insert(COUNTER, n + 1).await.unwrap();
    n.to_string()
}

async fn ts_redis_read(session: tower_sessions_014::Session) -> String {
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

/// The `untouched` handler: no session extractor, with or without a layer around it.
async fn untouched() -> String {
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
        .route("/untouched", get(untouched))
        .layer(SessionLayer::new(ours_config()))
}

fn ts_router() -> Router {
    let store = tower_sessions::MemoryStore::default();
    Router::new()
        .route("/write", get(ts_write))
        .route("/read", get(ts_read))
        .layer(tower_sessions::SessionManagerLayer::new(store))
}

/// tower-sessions 0.14 with its Redis store, on one fred client (one multiplexed
/// connection) to `url`.
async fn ts_redis_router(url: &str) -> Router {
    let client = FredBuilder::from_config(FredConfig::from_url(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let store = tower_sessions_redis_store::RedisStore::new(client);
    Router::new()
        .route("/write", get(ts_redis_write))
        .route("/read", get(ts_redis_read))
        .layer(tower_sessions_014::SessionManagerLayer::new(store))
}

fn none_router() -> Router {
    Router::new()
        .route("/write", get(none_write))
        .route("/read", get(none_read))
        .route("/untouched", get(untouched))
}

// --- driving ----------------------------------------------------------------

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
    // Kept until the benches are done: the server the Redis contender talks to.
    let redis = real_servers::redis("request/tower_sessions_redis");
    let mut contenders = vec![("ours", ours_router()), ("tower_sessions", ts_router())];
    if let Some(server) = &redis {
        contenders.push((
            "tower_sessions_redis",
            rt.block_on(ts_redis_router(&server.url())),
        ));
    }
    contenders.push(("none", none_router()));
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

    // A route that never takes the session: through our layer with our valid cookie,
    // and the same handler with no layer, sent the same Cookie header.
    let (_, ours, ours_cookie) = &prepared[0];
    let (_, none, _) = prepared.last().unwrap();
    let (status, h, body) = rt.block_on(call(ours, request("/untouched", ours_cookie.as_ref())));
    assert_eq!(status, StatusCode::OK, "ours: untouched");
    assert!(
        h.get(SET_COOKIE).is_none(),
        "ours: an untouched session writes nothing"
    );
    let (status, _, body_none) =
        rt.block_on(call(none, request("/untouched", ours_cookie.as_ref())));
    assert!(
        status == StatusCode::OK && body == body_none,
        "none: untouched"
    );
    let mut g = c.benchmark_group("request/untouched");
    for (name, router) in [("ours", ours), ("none", none)] {
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(call(router, request("/untouched", ours_cookie.as_ref()))))
        });
    }
    g.finish();

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
