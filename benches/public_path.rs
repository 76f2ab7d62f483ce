//! The public path as a request uses it, against the peers in the same run.
//!
//! - **write**: a fresh session gets every field with a typed `insert` (and a CSRF
//!   token), then `headers::save` writes the Set-Cookie into a `HeaderMap`.
//! - **read**: `headers::load` from a `Cookie` header, then a typed `get` of every field.
//!
//! Contenders, the same data for all:
//! - `ours`: sealed-session with its default configuration (AES-256-GCM-SIV, cookie).
//! - `private_jar_json`: each field `serde_json::to_value`d into a `HashMap<String,
//!   serde_json::Value>`, the map as JSON in the `cookie` crate's `PrivateJar`
//!   (AES-256-GCM; what axum-extra's `PrivateCookieJar` and actix-session's cookie
//!   store do), percent-encoded into Set-Cookie; read parses the Cookie header,
//!   `PrivateJar::get`, `serde_json` back, then `from_value` per field.
//! - `tower_sessions_memory`: tower-sessions' `Session` on its `MemoryStore`: typed
//!   `insert`s and `save`, the id written as a Set-Cookie; read parses the Cookie
//!   header, loads the record by id and does typed `get`s (what its layer does, minus
//!   the layer).
//! - `floor`: raw AES-256-GCM-SIV (prebuilt cipher, fixed nonce, in place) of the
//!   plaintext ours seals, with base64url as ours encodes it: no session, no
//!   headers, no serialization. What any design must pay.
//!
//! Sessions: `small` (user id, name, 3 roles, CSRF token, a 40-byte flash, a
//! timestamp) and `cart50` (the same plus a 50-item cart). Run:
//! `cargo bench -p sealed-session-benches --bench public_path` (add `-- --quick` for
//! a fast pass); the cookie sizes are printed first as `COOKIE …` lines.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::Aes256GcmSiv;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key, SameSite};
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use rand::RngCore as _;
use sealed_session::SessionConfig;
use tokio::runtime::Runtime;

#[path = "common/mod.rs"]
mod common;
use common::cookie_request;
#[path = "common/public.rs"]
mod public;
use public::{data, ours_config, ours_read, ours_write, Data, Read};

const NAME: &str = "session";

fn pair_len(response: &HeaderMap) -> usize {
    response[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .len()
}

// --- cookie's PrivateJar + serde_json --------------------------------------------

fn jar_write(key: &Key, d: &Data) -> HeaderMap {
    let mut csrf = [0u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    let mut map: HashMap<String, serde_json::Value> = HashMap::new();
    map.insert("user_id".into(), serde_json::to_value(d.user_id).unwrap());
    map.insert(
        "username".into(),
        serde_json::to_value(&d.username).unwrap(),
    );
    map.insert("roles".into(), serde_json::to_value(&d.roles).unwrap());
    map.insert(
        "csrf".into(),
        serde_json::Value::String(URL_SAFE_NO_PAD.encode(csrf)),
    );
    map.insert(
        "_flash".into(),
        serde_json::json!({ "notice": serde_json::to_value(&d.flash).unwrap() }),
    );
    map.insert(
        "last_seen".into(),
        serde_json::to_value(d.last_seen).unwrap(),
    );
    if let Some(cart) = &d.cart {
        map.insert("cart".into(), serde_json::to_value(cart).unwrap());
    }
    let json = serde_json::to_string(&map).unwrap();
    let mut jar = CookieJar::new();
    jar.private_mut(key).add(
        Cookie::build((NAME, json))
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Lax),
    );
    let mut out = HeaderMap::new();
    for c in jar.delta() {
        out.append(
            SET_COOKIE,
            HeaderValue::from_str(&c.encoded().to_string()).unwrap(),
        );
    }
    out
}

fn jar_read(key: &Key, request: &HeaderMap) -> Read {
    let mut jar = CookieJar::new();
    for header in request.get_all(COOKIE) {
        for c in Cookie::split_parse_encoded(header.to_str().unwrap()).flatten() {
            jar.add_original(c.into_owned());
        }
    }
    let c = jar.private(key).get(NAME).expect("the jar's cookie opens");
    let mut map: HashMap<String, serde_json::Value> = serde_json::from_str(c.value()).unwrap();
    let mut take = |k: &str| map.remove(k).unwrap_or(serde_json::Value::Null);
    let flash: HashMap<String, String> = serde_json::from_value(take("_flash")).unwrap();
    Read {
        user_id: serde_json::from_value(take("user_id")).unwrap(),
        username: serde_json::from_value(take("username")).unwrap(),
        roles: serde_json::from_value(take("roles")).unwrap(),
        csrf: serde_json::from_value(take("csrf")).unwrap(),
        flash: flash.get("notice").cloned(),
        last_seen: serde_json::from_value(take("last_seen")).unwrap(),
        cart: serde_json::from_value(take("cart")).unwrap(),
    }
}

// --- tower-sessions + MemoryStore --------------------------------------------------

type TsStore = Arc<tower_sessions::MemoryStore>;

async fn ts_write(store: &TsStore, d: &Data) -> (HeaderMap, tower_sessions::session::Id) {
    let mut csrf = [0u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    let s = tower_sessions::Session::new(None, store.clone(), None);
    s.insert("user_id", d.user_id).await.unwrap();
    s.insert("username", &d.username).await.unwrap();
    s.insert("roles", &d.roles).await.unwrap();
    s.insert("csrf", URL_SAFE_NO_PAD.encode(csrf))
        .await
        .unwrap();
    s.insert("flash", &d.flash).await.unwrap();
    s.insert("last_seen", d.last_seen).await.unwrap();
    if let Some(cart) = &d.cart {
        s.insert("cart", cart).await.unwrap();
    }
    s.save().await.unwrap();
    let id = s.id().expect("saved");
    let cookie = Cookie::build((NAME, id.to_string()))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax);
    let mut out = HeaderMap::new();
    out.append(
        SET_COOKIE,
        HeaderValue::from_str(&cookie.to_string()).unwrap(),
    );
    (out, id)
}

/// Times `iters` runs of `f` (each makes a tower-sessions record), then deletes the
/// records outside the timing so the store does not grow through the run.
fn ts_timed<F>(rt: &Runtime, store: &TsStore, iters: u64, mut f: F) -> Duration
where
    F: AsyncFnMut() -> tower_sessions::session::Id,
{
    use tower_sessions::SessionStore as _;
    rt.block_on(async {
        let mut ids = Vec::with_capacity(iters as usize);
        let started = std::time::Instant::now();
        for _ in 0..iters {
            ids.push(f().await);
        }
        let took = started.elapsed();
        for id in ids {
            store.delete(&id).await.unwrap();
        }
        took
    })
}

async fn ts_read(store: &TsStore, request: &HeaderMap) -> Read {
    let header = request[COOKIE].to_str().unwrap();
    let id = Cookie::split_parse(header)
        .flatten()
        .find(|c| c.name() == NAME)
        .and_then(|c| c.value().parse().ok());
    let s = tower_sessions::Session::new(id, store.clone(), None);
    Read {
        user_id: s.get("user_id").await.unwrap().unwrap(),
        username: s.get("username").await.unwrap().unwrap(),
        roles: s.get("roles").await.unwrap().unwrap(),
        csrf: s.get("csrf").await.unwrap().unwrap(),
        flash: s.get("flash").await.unwrap(),
        last_seen: s.get("last_seen").await.unwrap().unwrap(),
        cart: s.get("cart").await.unwrap(),
    }
}

// --- floor ---------------------------------------------------------------------

/// Raw AEAD of ours' plaintext with base64url: seal+encode, decode+open.
struct Floor {
    cipher: Aes256GcmSiv,
    nonce: aes_gcm_siv::Nonce,
    aad: Vec<u8>,
    plaintext: Vec<u8>,
}

impl Floor {
    fn new(plaintext: Vec<u8>) -> Self {
        // The same AAD length as ours: 6 header bytes, purpose "session", cookie name.
        let aad = [&[2u8, 0, 1, 2, 3, 4][..], b"session", NAME.as_bytes()].concat();
        Floor {
            cipher: Aes256GcmSiv::new_from_slice(&[0x5a; 32]).unwrap(),
            nonce: aes_gcm_siv::Nonce::from([7u8; 12]),
            aad,
            plaintext,
        }
    }

    fn seal(&self) -> String {
        let mut buf = self.plaintext.clone();
        let tag = self
            .cipher
            .encrypt_inout_detached(&self.nonce, &self.aad, buf.as_mut_slice().into())
            .unwrap();
        buf.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(&buf)
    }

    fn open(&self, text: &str) -> Vec<u8> {
        let mut buf = URL_SAFE_NO_PAD.decode(text).unwrap();
        let at = buf.len() - 16;
        let tag = aes_gcm_siv::Tag::try_from(&buf[at..]).unwrap();
        buf.truncate(at);
        self.cipher
            .decrypt_inout_detached(&self.nonce, &self.aad, buf.as_mut_slice().into(), &tag)
            .unwrap();
        buf
    }
}

/// The plaintext ours seals for `d` (what the floor encrypts).
fn our_plaintext(cfg: &SessionConfig, d: &Data) -> Vec<u8> {
    let response = ours_write(cfg, d);
    let value = response[SET_COOKIE].to_str().unwrap();
    let value = value.split(';').next().unwrap().split_once('=').unwrap().1;
    cfg.codec().open(NAME, value).unwrap().plaintext
}

// --- benches ---------------------------------------------------------------------

fn public_path(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let cfg = ours_config();
    let key = Key::from(&[0x5a; 64]);
    let store: TsStore = Arc::new(tower_sessions::MemoryStore::default());

    for (label, d) in [("small", data(None)), ("cart50", data(Some(50)))] {
        // Every contender's cookie, checked to read back what was written.
        let ours_req = cookie_request(&ours_write(&cfg, &d));
        let jar_req = cookie_request(&jar_write(&key, &d));
        let ts_req = cookie_request(&rt.block_on(ts_write(&store, &d)).0);
        let ours = ours_read(&cfg, &ours_req);
        assert_eq!(ours.username, d.username);
        assert_eq!(ours.cart, d.cart);
        assert_eq!(ours.flash.as_deref(), Some(d.flash.as_str()));
        assert_eq!(jar_read(&key, &jar_req).cart, d.cart);
        assert_eq!(rt.block_on(ts_read(&store, &ts_req)).cart, d.cart);
        let floor = Floor::new(our_plaintext(&cfg, &d));
        let floor_text = floor.seal();
        assert_eq!(floor.open(&floor_text), floor.plaintext);
        println!(
            "COOKIE {label}: ours {} bytes of name=value, private_jar_json {}, tower_sessions {} (the data in its store), floor {}",
            pair_len(&ours_write(&cfg, &d)),
            pair_len(&jar_write(&key, &d)),
            pair_len(&rt.block_on(ts_write(&store, &d)).0),
            NAME.len() + 1 + floor_text.len()
        );

        let mut g = c.benchmark_group(format!("{label}/write"));
        g.bench_function("ours", |b| b.iter(|| ours_write(&cfg, black_box(&d))));
        g.bench_function("private_jar_json", |b| {
            b.iter(|| jar_write(&key, black_box(&d)))
        });
        g.bench_function("tower_sessions_memory", |b| {
            b.iter_custom(|iters| {
                ts_timed(&rt, &store, iters, async || {
                    ts_write(&store, black_box(&d)).await.1
                })
            })
        });
        g.bench_function("floor", |b| b.iter(|| floor.seal()));
        g.finish();

        let mut g = c.benchmark_group(format!("{label}/read"));
        g.bench_function("ours", |b| b.iter(|| ours_read(&cfg, black_box(&ours_req))));
        g.bench_function("private_jar_json", |b| {
            b.iter(|| jar_read(&key, black_box(&jar_req)))
        });
        g.bench_function("tower_sessions_memory", |b| {
            b.iter(|| rt.block_on(ts_read(&store, black_box(&ts_req))))
        });
        g.bench_function("floor", |b| b.iter(|| floor.open(black_box(&floor_text))));
        g.finish();

        let mut g = c.benchmark_group(format!("{label}/write_read"));
        g.bench_function("ours", |b| {
            b.iter(|| ours_read(&cfg, &cookie_request(&ours_write(&cfg, black_box(&d)))))
        });
        g.bench_function("private_jar_json", |b| {
            b.iter(|| jar_read(&key, &cookie_request(&jar_write(&key, black_box(&d)))))
        });
        g.bench_function("tower_sessions_memory", |b| {
            b.iter_custom(|iters| {
                ts_timed(&rt, &store, iters, async || {
                    let (response, id) = ts_write(&store, black_box(&d)).await;
                    black_box(ts_read(&store, &cookie_request(&response)).await);
                    id
                })
            })
        });
        g.bench_function("floor", |b| b.iter(|| floor.open(&floor.seal())));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = public_path
}
criterion_main!(benches);
