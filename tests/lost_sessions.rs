//! "Never lose a session, never bring one back": the defects found when the demo
//! was attacked, each pinned where a user meets it (the demo router, the tower
//! layer, or the http-level API).
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[path = "common/demo.rs"]
mod demo;

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::get;
use axum::Router;
use demo::{call, raw_cookie};
use proptest::prelude::*;
use sealed_session::store::MemoryStore;
use sealed_session::{headers, Keyring, Session, SessionConfig, SessionLayer, Transport};
use serde::Deserialize;
use serde_json::json;

const KEY: [u8; 32] = [0x5E; 32];
const X_SESSION: &str = "x-session";

fn demo_config() -> SessionConfig {
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .secure(false)
        .transport(Transport::CookieOrHeader(HeaderName::from_static(
            X_SESSION,
        )))
        .store(MemoryStore::new())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_neighbour_cookie_with_utf8_or_junk_bytes_never_hides_ours() {
    let app = server::app(demo_config());
    let first = call(&app, Method::GET, "/", vec![], None).await;
    let mut pair = first.set_cookie().unwrap();
    let neighbours: [&[u8]; 4] = [
        "lang=español".as_bytes(),
        b"x=\xff\xfe\x80",
        b"\xc3=1",
        "pref=日本語; theme=dark".as_bytes(),
    ];
    let mut views = 1;
    for neighbour in neighbours {
        for position in 0..3 {
            let mut header = Vec::new();
            match position {
                0 => {
                    header.extend_from_slice(neighbour);
                    header.extend_from_slice(b"; ");
                    header.extend_from_slice(pair.as_bytes());
                }
                1 => {
                    header.extend_from_slice(b"a=1; ");
                    header.extend_from_slice(neighbour);
                    header.extend_from_slice(b"; ");
                    header.extend_from_slice(pair.as_bytes());
                    header.extend_from_slice(b"; z=2");
                }
                _ => {
                    header.extend_from_slice(pair.as_bytes());
                    header.extend_from_slice(b"; ");
                    header.extend_from_slice(neighbour);
                }
            }
            let r = call(
                &app,
                Method::GET,
                "/",
                vec![("cookie", raw_cookie(&header))],
                None,
            )
            .await;
            views += 1;
            assert_eq!(
                r.json,
                json!({ "views": views }),
                "neighbour {:?} at position {position} cost the session",
                String::from_utf8_lossy(neighbour)
            );
            pair = r.set_cookie().unwrap();
        }
    }
    // A whole second Cookie header line of junk next to ours changes nothing either.
    let r = call(
        &app,
        Method::GET,
        "/",
        vec![
            ("cookie", raw_cookie(b"\xff\xff=\xfe")),
            ("cookie", raw_cookie(pair.as_bytes())),
        ],
        None,
    )
    .await;
    assert_eq!(r.json, json!({ "views": views + 1 }));
}

#[derive(Deserialize)]
struct Blob {
    n: usize,
}

/// A router whose `/put?n=N` stores N bytes under "blob" and `/get` reads them back.
fn blob_app(config: SessionConfig) -> Router {
    async fn put(session: Session, Query(b): Query<Blob>) -> String {
        session.insert("blob", &vec![0x05u8; b.n]).unwrap();
        "ok".into()
    }
    async fn read(session: Session) -> String {
        let blob: Option<Vec<u8>> = session.get("blob").unwrap();
        format!("{}", blob.map_or(0, |b| b.len()))
    }
    Router::new()
        .route("/put", get(put))
        .route("/get", get(read))
        .layer(SessionLayer::new(config))
}

fn header_config(transport: Transport, budget: usize) -> SessionConfig {
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .secure(false)
        .no_compression()
        .cookie_budget(budget)
        .transport(transport)
        .build()
        .unwrap()
}

#[tokio::test]
async fn header_values_near_the_budget_are_accepted_on_the_next_request() {
    let x = HeaderName::from_static(X_SESSION);
    for transport in [
        Transport::CookieOrHeader(x.clone()),
        Transport::Header(x.clone()),
    ] {
        let app = blob_app(header_config(transport.clone(), 4093));
        let mut seen = std::collections::BTreeSet::new();
        for n in 2950..3080 {
            let r = call(
                &app,
                Method::GET,
                &format!("/put?n={n}"),
                vec![(X_SESSION, HeaderValue::from_static(""))],
                None,
            )
            .await;
            let Some(value) = r.headers.get(X_SESSION).cloned() else {
                assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "n={n}");
                continue;
            };
            let len = value.len();
            assert!(
                len <= 4093,
                "{transport:?}: wrote {len} bytes over the budget"
            );
            if len < 4080 {
                continue;
            }
            seen.insert(len);
            let back = call(&app, Method::GET, "/get", vec![(X_SESSION, value)], None).await;
            assert_eq!(
                back.json,
                json!(n),
                "{transport:?}: a {len}-byte header value was written, then refused"
            );
        }
        assert!(
            seen.iter().any(|l| (4086..=4093).contains(l)),
            "{transport:?}: the sweep must reach 4086..=4093 (saw {seen:?})"
        );
    }
}

/// Seals a session holding `n` bytes with `config` and returns what the response carries.
async fn written(
    config: &SessionConfig,
    n: usize,
    via_header: bool,
) -> Option<(String, HeaderMap)> {
    let mut request = HeaderMap::new();
    if via_header {
        request.insert(X_SESSION, HeaderValue::from_static(""));
    }
    let s = headers::load(config, &request).await.unwrap();
    s.insert("blob", &vec![7u8; n]).unwrap();
    let mut out = HeaderMap::new();
    headers::save(config, &s, &mut out).await.ok()?;
    let value = match out.get(X_SESSION) {
        Some(v) => v.to_str().unwrap().to_owned(),
        None => {
            let sc = out.get("set-cookie")?.to_str().unwrap();
            sc.split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned()
        }
    };
    Some((value, out))
}

/// The request headers that carry `value` the way it was written.
fn carrying(config_name: &str, value: &str, via_header: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    if via_header {
        h.insert(X_SESSION, HeaderValue::from_str(value).unwrap());
    } else {
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("{config_name}={value}")).unwrap(),
        );
    }
    h
}

#[tokio::test]
async fn a_lower_budget_or_a_transport_switch_keeps_the_cookies_already_out_there() {
    let x = HeaderName::from_static(X_SESSION);
    // Written under the default budget near its top...
    let before = header_config(Transport::Cookie, 4093);
    let (value, _) = written(&before, 2950, false).await.unwrap();
    assert!(value.len() > 3900, "{}", value.len());
    // ...then the budget is lowered in a deploy: the cookie still opens.
    let after = header_config(Transport::Cookie, 1024);
    let s = headers::load(&after, &carrying("session", &value, false))
        .await
        .unwrap();
    assert!(s.load_error().is_none(), "{:?}", s.load_error());
    assert_eq!(
        s.get::<Vec<u8>>("blob").unwrap().map(|b| b.len()),
        Some(2950)
    );

    // Header-only clients, then the app also accepts cookies: their values still open.
    let header_only = header_config(Transport::Header(x.clone()), 4093);
    // The largest session a header-only config writes: over the 4085 bytes that a
    // cookie named "session" leaves for its value.
    let mut n = 3100;
    let value = loop {
        if let Some((value, _)) = written(&header_only, n, true).await {
            break value;
        }
        n -= 1;
    };
    assert!(value.len() > 4085, "{}", value.len());
    let both = header_config(Transport::CookieOrHeader(x), 4093);
    let s = headers::load(&both, &carrying("session", &value, true))
        .await
        .unwrap();
    assert!(s.load_error().is_none(), "{:?}", s.load_error());
    assert_eq!(s.get::<Vec<u8>>("blob").unwrap().map(|b| b.len()), Some(n));
}

fn transport(kind: u8) -> (Transport, bool) {
    let x = HeaderName::from_static(X_SESSION);
    match kind % 4 {
        0 => (Transport::Cookie, false),
        1 => (Transport::Header(x), true),
        2 => (Transport::CookieOrHeader(x), true),
        _ => (Transport::CookieOrHeader(x), false),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever `save` writes, `load` opens: every transport and carrier, every
    /// budget a config accepts, sizes on both sides of the budget, with and without
    /// a store.
    #[test]
    fn whatever_save_writes_load_opens(
        kind in 0u8..4,
        budget in 256usize..=4093,
        near in any::<bool>(),
        delta in 0usize..64,
        anywhere in 0usize..5000,
        with_store in any::<bool>(),
        name_len in 1usize..=24,
    ) {
        let (transport, via_header) = transport(kind);
        // Half the cases land the value within a few bytes of the budget.
        let n = if near { (budget * 3 / 4).saturating_sub(110) + delta } else { anywhere };
        let name: String = "c".repeat(name_len);
        let mut builder = SessionConfig::builder(Keyring::new([KEY]).unwrap())
            .cookie_name(name.clone())
            .no_compression()
            .cookie_budget(budget)
            .transport(transport);
        if with_store {
            builder = builder.store(MemoryStore::new());
        }
        let config = builder.build().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let Some((value, _)) = written(&config, n, via_header).await else {
                // Only a session too big for the budget without a store may fail to save.
                prop_assert!(!with_store, "a save with a store failed");
                return Ok(());
            };
            let s = headers::load(&config, &carrying(&name, &value, via_header)).await.unwrap();
            prop_assert!(s.load_error().is_none(), "written then refused: {:?}", s.load_error());
            prop_assert_eq!(s.get::<Vec<u8>>("blob").unwrap().map(|b| b.len()), Some(n));
            Ok(())
        })?;
    }
}

#[test]
fn configs_that_would_lose_sessions_are_build_errors() {
    let b = || SessionConfig::builder(Keyring::new([KEY]).unwrap());
    let cases: Vec<(sealed_session::SessionConfigBuilder, &str)> = vec![
        // Every save would fail (500) and destroy would write no removal cookie.
        (b().path("/app\r\nSet-Cookie: x=1"), "control characters"),
        (b().path("/a\nb"), "control characters"),
        (b().path("/a\0b"), "control characters"),
        (b().domain("example.com\r"), "not valid"),
        // Browsers match the prefixes case-insensitively.
        (
            b().cookie_name("__host-s").domain("example.com"),
            "__Host- prefix",
        ),
        (b().cookie_name("__HOST-s").path("/app"), "__Host- prefix"),
        (
            b().cookie_name("__secure-s").secure(false),
            "__Secure- prefix",
        ),
        // Browsers drop larger cookies without a word.
        (b().cookie_budget(100_000), "over the 4096 bytes"),
        (b().cookie_budget(4097), "over the 4096 bytes"),
        // Every session would expire at once.
        (
            b().expiry(sealed_session::Expiry::absolute(std::time::Duration::ZERO)),
            "lifetime is zero",
        ),
        (
            b().expiry(sealed_session::Expiry::idle(std::time::Duration::ZERO)),
            "idle timeout is zero",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), sealed_session::ErrorKind::Config, "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{err} lacks {expected:?}"
        );
    }
    assert!(b().cookie_budget(4096).build().is_ok());
}

/// 32-byte big-endian counters whose key ids collide (a birthday search): 0x16cf and
/// 0x27c0b under the default purpose; 0x71ed and 0x21064 only under purpose "csrf".
fn counter(n: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[28..].copy_from_slice(&n.to_be_bytes());
    s
}

#[test]
fn colliding_key_ids_are_errors_that_say_what_to_do_never_panics() {
    let err = Keyring::new([counter(0x16cf), counter(0x27c0b)]).unwrap_err();
    assert!(err.to_string().contains("generate another secret"), "{err}");
    assert!(!err.to_string().contains("repeats"), "{err}");
    let ring = Keyring::new([counter(0x71ed), counter(0x21064)]).unwrap();
    let err = SessionConfig::builder(ring)
        .purpose("csrf")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), sealed_session::ErrorKind::InvalidKey, "{err:?}");
    assert!(err.to_string().contains("generate another secret"), "{err}");
}
