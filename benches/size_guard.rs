//! Per-request cost of the size guard: a session too big for a cookie (the small
//! session's fields plus a 300-item cart) whose body lives in the embedded
//! `MemoryStore` behind a sealed pointer cookie, against inline sessions, all
//! through `headers::load` + `headers::save` (what the layer runs around a handler).
//!
//! Variants (every config has a `MemoryStore`):
//! - `cart300_pointer`: default 4093-byte budget, so the body spills to the store.
//! - `cart50_inline`: a 50-item cart that fits the default budget.
//!
//! (A budget over the 4096 bytes browsers keep is a config error, so a 300-item
//! session can no longer be kept inline for comparison.)
//!
//! Operations: `read` = load + save (nothing changed, nothing written);
//! `write` = load + one value changed + save (reseal, store write for the pointer).
//!
//! Run: `cargo bench -p sealed-session-benches --bench size_guard` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealed_session::{headers, store::MemoryStore, Keyring, Session, SessionConfig};
use serde::{Deserialize, Serialize};

#[path = "common/mod.rs"]
mod common;
use common::ready;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

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

fn keyring() -> Keyring {
    Keyring::new([[0x5a; 32]]).unwrap()
}

fn with_store() -> SessionConfig {
    SessionConfig::builder(keyring())
        .store(MemoryStore::new())
        .build()
        .unwrap()
}

/// Builds the session, saves it once, and returns the Cookie header a browser sends back.
fn setup(cfg: &SessionConfig, items: usize) -> HeaderMap {
    let s = ready(headers::load(cfg, &HeaderMap::new())).unwrap();
    s.insert("user_id", &4_211_337u64).unwrap();
    s.insert("username", "alice.martin").unwrap();
    s.insert("roles", &vec!["admin", "editor", "billing"])
        .unwrap();
    s.csrf_token();
    s.insert("last_seen", &1_763_800_000i64).unwrap();
    s.insert("cart", &cart(items)).unwrap();
    let mut out = HeaderMap::new();
    ready(headers::save(cfg, &s, &mut out)).unwrap();
    let pair = out[SET_COOKIE].to_str().unwrap().split(';').next().unwrap();
    let mut request = HeaderMap::new();
    request.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    request
}

fn request_cycle(cfg: &SessionConfig, request: &HeaderMap, change: Option<i64>) -> HeaderMap {
    let s: Session = ready(headers::load(cfg, request)).unwrap();
    if let Some(v) = change {
        s.insert("last_seen", &v).unwrap();
    }
    let mut out = HeaderMap::new();
    ready(headers::save(cfg, &s, &mut out)).unwrap();
    out
}

fn size_guard_benches(c: &mut Criterion) {
    let variants = [
        ("cart300_pointer", with_store(), 300, true),
        ("cart50_inline", with_store(), 50, false),
    ];
    let prepared: Vec<_> = variants
        .into_iter()
        .map(|(name, cfg, items, pointer)| {
            let request = setup(&cfg, items);
            let s = ready(headers::load(&cfg, &request)).unwrap();
            assert!(s.load_error().is_none() && !s.is_new(), "{name} must load");
            assert_eq!(s.is_store_backed(), pointer, "{name}: pointer={pointer}");
            assert_eq!(s.get::<Vec<Item>>("cart").unwrap().unwrap().len(), items);
            println!(
                "SIZE {name} cookie name=value {} bytes (store-backed: {pointer})",
                request[COOKIE].len()
            );
            (name, cfg, request)
        })
        .collect();

    for op in ["read", "write"] {
        let mut g = c.benchmark_group(format!("size_guard/{op}"));
        for (name, cfg, request) in &prepared {
            let mut i = 0i64;
            g.bench_function(*name, |b| {
                b.iter(|| {
                    i += 1;
                    let change = (op == "write").then_some(1_763_800_000 + i);
                    request_cycle(cfg, black_box(request), change)
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = size_guard_benches
}
criterion_main!(benches);
