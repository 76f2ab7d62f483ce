//! Seal / open cost of a whole session, the way a request pays it, against the
//! peer pipeline other Rust libraries run and against the raw AEAD floor.
//!
//! Contenders (same session data for all of them):
//! - `ours_siv`, `ours_siv_nocomp`, `ours_xchacha`, `ours_xchacha_nocomp`: `Session`
//!   values inserted, then `http::save` into a `HeaderMap` (seal) and `http::load`
//!   from a `Cookie` header (open). Compression on (default threshold) or off.
//! - `codec_only_siv`: `Codec::seal` / `Codec::open` on the session's postcard
//!   plaintext (no session, no headers, no cookie parsing). Labelled: not a request path.
//! - `peer_actix`: actix-session's `CookieSessionStore` pipeline: values JSON-encoded
//!   into a `HashMap<String, String>`, the map `serde_json`-encoded, the `cookie`
//!   crate's `PrivateJar` (AES-256-GCM, key schedule rebuilt per call) add, the
//!   percent-encoded Set-Cookie written into a `HeaderMap`; open parses the Cookie
//!   header (percent-decoding), `PrivateJar::get`, `serde_json` back into the map.
//! - `peer_value`: the same with a `HashMap<String, serde_json::Value>` (what an
//!   axum-extra `PrivateCookieJar` user or tower-sessions' record would serialize):
//!   no double JSON encoding, so smaller and faster than `peer_actix`.
//! - `floor_raw_siv`: raw AES-256-GCM-SIV (prebuilt cipher, fixed nonce, in place)
//!   of the same plaintext bytes ours seals (postcard, uncompressed), with an AAD
//!   of the same length as ours. No encoding, no headers: the floor.
//! - `floor_raw_xchacha`: the same with XChaCha20-Poly1305 (for the `ours_xchacha*` rows).
//!
//! Cookie sizes (bytes of `name=value` as sent) are printed before the benches.
//! Run: `cargo bench -p sealed-session-benches --bench codec` (add `-- --quick` for a fast pass).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::Aes256GcmSiv;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::XChaCha20Poly1305;
use cookie::{Cookie, CookieJar, Key};
use criterion::{criterion_group, criterion_main, Criterion};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealed_session::{headers, Algorithm, Keyring, SameSite, Session, SessionConfig};
use serde::{Deserialize, Serialize};

#[path = "common/mod.rs"]
mod common;
use common::{cookie_request, ready};

const NAME: &str = "session";

// ---------------------------------------------------------------------------
// Session data
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

#[derive(Debug, Clone)]
struct Data {
    user_id: u64,
    username: String,
    roles: Vec<String>,
    csrf: [u8; 32],
    flash: String,
    last_seen: i64,
    cart: Option<Vec<Item>>,
}

fn sku(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..8)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

fn data(cart_items: Option<usize>) -> Data {
    let mut rng = StdRng::seed_from_u64(8);
    let mut csrf = [0u8; 32];
    rng.fill(&mut csrf);
    let username = "alice.martin".to_owned();
    let flash = "Your profile was updated successfully :)".to_owned();
    assert_eq!(username.len(), 12);
    assert_eq!(flash.len(), 40);
    let cart = cart_items.map(|n| {
        (0..n)
            .map(|_| Item {
                sku: sku(&mut rng),
                qty: rng.random_range(1..10),
                price_cents: rng.random_range(99..99_999),
            })
            .collect()
    });
    Data {
        user_id: 4_211_337,
        username,
        roles: vec!["admin".into(), "editor".into(), "billing".into()],
        csrf,
        flash,
        last_seen: 1_763_800_000,
        cart,
    }
}

// ---------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------

fn config(algorithm: Algorithm, compress: bool) -> SessionConfig {
    let keyring = Keyring::new([[0x5a; 32]]).unwrap();
    let b = SessionConfig::builder(keyring).algorithm(algorithm);
    let b = if compress { b } else { b.no_compression() };
    b.build().unwrap()
}

/// A session as a handler leaves it: loaded (fresh) for this config, values inserted.
fn ours_session(cfg: &SessionConfig, d: &Data) -> Session {
    let s = ready(headers::load(cfg, &HeaderMap::new())).unwrap();
    s.insert("user_id", &d.user_id).unwrap();
    s.insert("username", &d.username).unwrap();
    s.insert("roles", &d.roles).unwrap();
    s.csrf_token(); // 32 random bytes, kept in the envelope header
    s.flash("notice", &d.flash).unwrap();
    s.insert("last_seen", &d.last_seen).unwrap();
    if let Some(cart) = &d.cart {
        s.insert("cart", cart).unwrap();
    }
    s
}

fn ours_seal(cfg: &SessionConfig, s: &Session) -> HeaderMap {
    s.save(); // the session is unchanged after the first save: force the write
    let mut out = HeaderMap::new();
    ready(headers::save(cfg, s, &mut out)).unwrap();
    out
}

fn ours_open(cfg: &SessionConfig, request: &HeaderMap) -> Session {
    ready(headers::load(cfg, request)).unwrap()
}

fn pair_len(response: &HeaderMap) -> usize {
    let set_cookie = response[SET_COOKIE].to_str().unwrap();
    set_cookie.split(';').next().unwrap().len()
}

// ---------------------------------------------------------------------------
// Peer: serde_json + cookie's PrivateJar
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum PeerFlavor {
    /// actix-session: `HashMap<String, String>` of JSON-encoded values.
    Actix,
    /// `HashMap<String, serde_json::Value>`.
    Value,
}

enum PeerMap {
    Actix(HashMap<String, String>),
    Value(HashMap<String, serde_json::Value>),
}

fn peer_map(flavor: PeerFlavor, d: &Data) -> PeerMap {
    let mut v: Vec<(&str, serde_json::Value)> = vec![
        ("user_id", serde_json::json!(d.user_id)),
        ("username", serde_json::json!(d.username)),
        ("roles", serde_json::json!(d.roles)),
        (
            "csrf_token",
            serde_json::json!(URL_SAFE_NO_PAD.encode(d.csrf)),
        ),
        ("_flash", serde_json::json!({ "notice": d.flash })),
        ("last_seen", serde_json::json!(d.last_seen)),
    ];
    if let Some(cart) = &d.cart {
        v.push(("cart", serde_json::to_value(cart).unwrap()));
    }
    match flavor {
        PeerFlavor::Actix => PeerMap::Actix(
            v.into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::to_string(&v).unwrap()))
                .collect(),
        ),
        PeerFlavor::Value => {
            PeerMap::Value(v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }
    }
}

fn peer_seal(key: &Key, map: &PeerMap) -> HeaderMap {
    let json = match map {
        PeerMap::Actix(m) => serde_json::to_string(m).unwrap(),
        PeerMap::Value(m) => serde_json::to_string(m).unwrap(),
    };
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
        // actix-web and axum-extra both write `cookie.encoded()`.
        out.append(
            SET_COOKIE,
            HeaderValue::from_str(&c.encoded().to_string()).unwrap(),
        );
    }
    out
}

fn peer_open(key: &Key, flavor: PeerFlavor, request: &HeaderMap) -> PeerMap {
    let mut jar = CookieJar::new();
    for header in request.get_all(COOKIE) {
        let text = header.to_str().unwrap();
        for c in Cookie::split_parse_encoded(text).flatten() {
            jar.add_original(c.into_owned());
        }
    }
    let c = jar.private(key).get(NAME).expect("peer cookie opens");
    match flavor {
        PeerFlavor::Actix => PeerMap::Actix(serde_json::from_str(c.value()).unwrap()),
        PeerFlavor::Value => PeerMap::Value(serde_json::from_str(c.value()).unwrap()),
    }
}

// ---------------------------------------------------------------------------
// Floor: raw AES-256-GCM-SIV
// ---------------------------------------------------------------------------

struct Floor<C: AeadInOut> {
    cipher: C,
    nonce: aes_gcm_siv::aead::Nonce<C>,
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    buf: Vec<u8>,
}

impl<C: AeadInOut + KeyInit> Floor<C> {
    fn new(plaintext: Vec<u8>) -> Self {
        // Same AAD length as ours: 6 header bytes + purpose "session" + cookie name "session".
        let aad = [&[1u8, 0, 1, 2, 3, 4][..], b"session", NAME.as_bytes()].concat();
        let nonce = vec![7u8; aes_gcm_siv::aead::Nonce::<C>::default().len()];
        Floor {
            cipher: C::new_from_slice(&[0x5a; 32]).unwrap(),
            nonce: aes_gcm_siv::aead::Nonce::<C>::try_from(&nonce[..]).unwrap(),
            aad,
            buf: Vec::with_capacity(plaintext.len()),
            plaintext,
        }
    }

    fn seal(&mut self) -> aes_gcm_siv::aead::Tag<C> {
        self.buf.clear();
        self.buf.extend_from_slice(&self.plaintext);
        self.cipher
            .encrypt_inout_detached(&self.nonce, &self.aad, self.buf.as_mut_slice().into())
            .unwrap()
    }

    fn open(&mut self, tag: &aes_gcm_siv::aead::Tag<C>) {
        self.cipher
            .decrypt_inout_detached(&self.nonce, &self.aad, self.buf.as_mut_slice().into(), tag)
            .unwrap();
    }
}

// ---------------------------------------------------------------------------
// Benches
// ---------------------------------------------------------------------------

const OURS: [(&str, Algorithm, bool); 4] = [
    ("ours_siv", Algorithm::Aes256GcmSiv, true),
    ("ours_siv_nocomp", Algorithm::Aes256GcmSiv, false),
    ("ours_xchacha", Algorithm::XChaCha20Poly1305, true),
    ("ours_xchacha_nocomp", Algorithm::XChaCha20Poly1305, false),
];

const PEERS: [(&str, PeerFlavor); 2] = [
    ("peer_actix", PeerFlavor::Actix),
    ("peer_value", PeerFlavor::Value),
];

/// The postcard plaintext ours seals (meta || body, uncompressed), recovered by opening
/// an uncompressed cookie with the codec (its AAD context is the cookie name).
fn our_plaintext(d: &Data) -> Vec<u8> {
    let cfg = config(Algorithm::Aes256GcmSiv, false);
    let s = ours_session(&cfg, d);
    let response = ours_seal(&cfg, &s);
    let set_cookie = response[SET_COOKIE].to_str().unwrap();
    let value = set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    cfg.codec().open(NAME, value).unwrap().plaintext
}

fn report_sizes(label: &str, d: &Data) {
    let plain = our_plaintext(d);
    println!("SIZE {label} postcard_plaintext {} bytes", plain.len());
    for (name, alg, compress) in OURS {
        let cfg = config(alg, compress);
        let response = ours_seal(&cfg, &ours_session(&cfg, d));
        let inspect = sealed_session::inspect::header(
            response[SET_COOKIE]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1,
        )
        .unwrap();
        println!(
            "SIZE {label} {name} name=value {} bytes (sealed plaintext {} bytes, compressed={}) fits_4096={}",
            pair_len(&response),
            inspect.ciphertext_len,
            inspect.header.compressed,
            pair_len(&response) <= 4096
        );
    }
    let key = Key::from(&[0x5a; 64]);
    for (name, flavor) in PEERS {
        let map = peer_map(flavor, d);
        let json_len = match &map {
            PeerMap::Actix(m) => serde_json::to_string(m).unwrap().len(),
            PeerMap::Value(m) => serde_json::to_string(m).unwrap().len(),
        };
        // The percent-encoded length depends on the random nonce ('+', '/' and '='
        // become three bytes each), so report the spread over many seals.
        let mut lens: Vec<usize> = (0..501).map(|_| pair_len(&peer_seal(&key, &map))).collect();
        lens.sort_unstable();
        println!(
            "SIZE {label} {name} name=value min {} median {} max {} bytes over 501 seals (json {} bytes) fits_4096={}",
            lens[0],
            lens[250],
            lens[500],
            json_len,
            lens[500] <= 4096
        );
    }
}

fn bench_session(c: &mut Criterion, label: &str, d: &Data) {
    report_sizes(label, d);

    // Prepare every contender once, outside the timings.
    let ours: Vec<_> = OURS
        .iter()
        .map(|&(name, alg, compress)| {
            let cfg = config(alg, compress);
            let session = ours_session(&cfg, d);
            let request = cookie_request(&ours_seal(&cfg, &session));
            assert!(!ours_open(&cfg, &request).is_new(), "{name} must open");
            (name, cfg, session, request)
        })
        .collect();
    let key = Key::from(&[0x5a; 64]);
    let peers: Vec<_> = PEERS
        .iter()
        .map(|&(name, flavor)| {
            let map = peer_map(flavor, d);
            let request = cookie_request(&peer_seal(&key, &map));
            peer_open(&key, flavor, &request);
            (name, flavor, map, request)
        })
        .collect();
    let plaintext = our_plaintext(d);
    let codec_cfg = config(Algorithm::Aes256GcmSiv, true);
    let codec = codec_cfg.codec().clone();
    let codec_text = codec.seal(NAME, &plaintext).unwrap();
    let mut floor = Floor::<Aes256GcmSiv>::new(plaintext.clone());
    let mut floor_x = Floor::<XChaCha20Poly1305>::new(plaintext.clone());

    // seal
    {
        let mut g = c.benchmark_group(format!("{label}/seal"));
        for (name, cfg, session, _) in &ours {
            g.bench_function(*name, |b| b.iter(|| ours_seal(cfg, session)));
        }
        for (name, _, map, _) in &peers {
            g.bench_function(*name, |b| b.iter(|| peer_seal(&key, map)));
        }
        g.bench_function("codec_only_siv", |b| {
            b.iter(|| codec.seal(NAME, black_box(&plaintext)).unwrap())
        });
        g.bench_function("floor_raw_siv", |b| b.iter(|| floor.seal()));
        g.bench_function("floor_raw_xchacha", |b| b.iter(|| floor_x.seal()));
        g.finish();
    }
    // open
    {
        let mut g = c.benchmark_group(format!("{label}/open"));
        for (name, cfg, _, request) in &ours {
            g.bench_function(*name, |b| b.iter(|| ours_open(cfg, black_box(request))));
        }
        for (name, flavor, _, request) in &peers {
            g.bench_function(*name, |b| {
                b.iter(|| peer_open(&key, *flavor, black_box(request)))
            });
        }
        g.bench_function("codec_only_siv", |b| {
            b.iter(|| codec.open(NAME, black_box(&codec_text)).unwrap())
        });
        let tag = floor.seal();
        let sealed = floor.buf.clone();
        g.bench_function("floor_raw_siv", |b| {
            b.iter(|| {
                floor.buf.clear();
                floor.buf.extend_from_slice(&sealed);
                floor.open(&tag)
            })
        });
        let tag_x = floor_x.seal();
        let sealed_x = floor_x.buf.clone();
        g.bench_function("floor_raw_xchacha", |b| {
            b.iter(|| {
                floor_x.buf.clear();
                floor_x.buf.extend_from_slice(&sealed_x);
                floor_x.open(&tag_x)
            })
        });
        g.finish();
    }
    // seal + open: the response's Set-Cookie becomes the next request's Cookie header
    {
        let mut g = c.benchmark_group(format!("{label}/seal_open"));
        for (name, cfg, session, _) in &ours {
            g.bench_function(*name, |b| {
                b.iter(|| ours_open(cfg, &cookie_request(&ours_seal(cfg, session))))
            });
        }
        for (name, flavor, map, _) in &peers {
            g.bench_function(*name, |b| {
                b.iter(|| peer_open(&key, *flavor, &cookie_request(&peer_seal(&key, map))))
            });
        }
        g.bench_function("codec_only_siv", |b| {
            b.iter(|| {
                let text = codec.seal(NAME, black_box(&plaintext)).unwrap();
                codec.open(NAME, &text).unwrap()
            })
        });
        g.bench_function("floor_raw_siv", |b| {
            b.iter(|| {
                let tag = floor.seal();
                floor.open(&tag)
            })
        });
        g.bench_function("floor_raw_xchacha", |b| {
            b.iter(|| {
                let tag = floor_x.seal();
                floor_x.open(&tag)
            })
        });
        g.finish();
    }
}

fn codec_benches(c: &mut Criterion) {
    bench_session(c, "small", &data(None));
    bench_session(c, "cart50", &data(Some(50)));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec_benches
}
criterion_main!(benches);
