//! Sessions through plain `http` headers: the request/response rules.

#[path = "common/browser.rs"]
mod browser;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use browser::{cookie_pair, noise, request, set_cookies, with_cookie, ManualClock};
use http::{HeaderMap, HeaderName, HeaderValue};
use sealed_session::headers::{load, reload, save};
use sealed_session::{Error, Expiry, Keyring, SameSite, SessionConfig, Transport};

const T0: i64 = 1_800_000_000;
const K1: [u8; 32] = [1; 32];
const K2: [u8; 32] = [2; 32];

fn config(clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap()
}

#[tokio::test]
async fn set_then_get_across_two_requests() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (s1, out) = request(&cfg, None, |s| s.insert("user", "ada").unwrap()).await;
    assert!(s1.is_new());
    let set = set_cookies(&out);
    assert_eq!(set.len(), 1);
    let c = &set[0];
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    assert!(
        !c.contains("Max-Age"),
        "browser-session cookie by default: {c}"
    );
    let pair = cookie_pair(&out).unwrap();
    let (s2, _) = request(&cfg, Some(&pair), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    })
    .await;
    assert!(!s2.is_new());
    assert_eq!(s1.id(), s2.id());
}

#[tokio::test]
async fn unchanged_session_emits_no_set_cookie() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |_| {}).await;
    assert!(
        set_cookies(&out).is_empty(),
        "an empty new session writes nothing"
    );
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    clock.advance(60);
    let (_, out) = request(&cfg, Some(&pair), |s| {
        let _ = s.get::<u8>("a");
        s.insert("a", &1u8).unwrap(); // same value: no change
    })
    .await;
    assert!(set_cookies(&out).is_empty());
}

#[tokio::test]
async fn flash_is_visible_exactly_once_and_can_be_kept() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| {
        s.flash("notice", "saved").unwrap();
        s.flash("other", &3u8).unwrap();
        assert_eq!(
            s.get_flash::<String>("notice").unwrap(),
            None,
            "flash is for the next request"
        );
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, Some(&pair), |s| {
        assert_eq!(
            s.get_flash::<String>("notice").unwrap().as_deref(),
            Some("saved")
        );
        s.keep(&["other"]);
    })
    .await;
    let pair = cookie_pair(&out).expect("reading flash rewrites the cookie");
    let (_, out) = request(&cfg, Some(&pair), |s| {
        assert_eq!(s.get_flash::<String>("notice").unwrap(), None, "shown once");
        assert_eq!(
            s.get_flash::<u8>("other").unwrap(),
            Some(3),
            "kept one more request"
        );
        s.reflash();
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, Some(&pair), |s| {
        assert_eq!(
            s.get_flash::<u8>("other").unwrap(),
            Some(3),
            "reflash keeps all"
        );
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    request(&cfg, Some(&pair), |s| {
        assert_eq!(s.get_flash::<u8>("other").unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn csrf_token_survives_and_verifies() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let mut token = String::new();
    let (_, out) = request(&cfg, None, |s| token = s.csrf_token()).await;
    let pair = cookie_pair(&out).expect("issuing a token saves the session");
    request(&cfg, Some(&pair), |s| {
        assert!(s.verify_csrf_token(&token));
        assert!(!s.verify_csrf_token("wrong"));
        let mut other = URL_SAFE_NO_PAD.decode(&token).unwrap();
        other[0] ^= 1;
        assert!(!s.verify_csrf_token(&URL_SAFE_NO_PAD.encode(other)));
    })
    .await;
}

#[tokio::test]
async fn regenerate_changes_the_id_and_keeps_data() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (s1, out) = request(&cfg, None, |s| s.insert("cart", &vec![1u8, 2]).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let (s2, out) = request(&cfg, Some(&pair), |s| {
        s.insert("user", "ada").unwrap();
        s.regenerate();
    })
    .await;
    assert_ne!(s1.id(), s2.id());
    let pair = cookie_pair(&out).unwrap();
    let (s3, _) = request(&cfg, Some(&pair), |s| {
        assert_eq!(s.get::<Vec<u8>>("cart").unwrap(), Some(vec![1, 2]));
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    })
    .await;
    assert_eq!(s2.id(), s3.id());
}

#[tokio::test]
async fn destroy_writes_a_removal_cookie_with_the_same_path_and_domain() {
    let clock = ManualClock::new(T0);
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .path("/app")
        .domain("example.com")
        .build()
        .unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("user", "ada").unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, Some(&pair), |s| s.destroy()).await;
    let removal = &set_cookies(&out)[0];
    assert!(removal.starts_with("session=;"), "{removal}");
    for attr in ["Max-Age=0", "Path=/app", "Domain=example.com"] {
        assert!(removal.contains(attr), "{attr} missing in {removal}");
    }
    // Destroying a session that never reached the client writes nothing.
    let (_, out) = request(&cfg, None, |s| s.destroy()).await;
    assert!(set_cookies(&out).is_empty());
}

#[tokio::test]
async fn idle_renewal_only_past_the_threshold() {
    let clock = ManualClock::new(T0);
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .expiry(
            Expiry::idle(Duration::from_secs(3600)).with_renew_threshold(Duration::from_secs(600)),
        )
        .build()
        .unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    let c = &set_cookies(&out)[0];
    assert!(c.contains("Max-Age=3600"), "{c}");
    let pair = cookie_pair(&out).unwrap();
    clock.advance(2999); // 601 s left: no renewal yet
    let (_, out) = request(&cfg, Some(&pair), |_| {}).await;
    assert!(set_cookies(&out).is_empty(), "renewed too early");
    clock.advance(2); // 599 s left
    let (s, out) = request(&cfg, Some(&pair), |_| {}).await;
    let renewed = cookie_pair(&out).expect("renewal past the threshold");
    assert!(set_cookies(&out)[0].contains("Max-Age=3600"));
    assert_eq!(s.expires_at().unix_timestamp(), clock.now() + 3600);
    clock.advance(3000); // the old cookie has expired; the renewed one has not
    let (old, _) = request(&cfg, Some(&pair), |_| {}).await;
    assert!(matches!(
        old.load_error().as_deref(),
        Some(Error::Expired { .. })
    ));
    let (new, _) = request(&cfg, Some(&renewed), |_| {}).await;
    assert!(new.load_error().is_none());
    assert_eq!(new.get::<u8>("a").unwrap(), Some(1));
}

#[tokio::test]
async fn absolute_limit_and_expired_cookie_gives_a_fresh_session() {
    let clock = ManualClock::new(T0);
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .expiry(Expiry::absolute(Duration::from_secs(100)))
        .build()
        .unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    clock.advance(99);
    let (s, _) = request(&cfg, Some(&pair), |_| {}).await;
    assert_eq!(s.get::<u8>("a").unwrap(), Some(1));
    clock.advance(1);
    let (s, _) = request(&cfg, Some(&pair), |_| {}).await;
    assert!(s.is_new() && s.is_empty());
    assert!(
        matches!(s.load_error().as_deref(), Some(Error::Expired { expired_at }) if *expired_at == T0 + 100)
    );
}

#[tokio::test]
async fn old_key_cookie_is_resealed_under_the_primary() {
    let clock = ManualClock::new(T0);
    let old = config(&clock);
    let (_, out) = request(&old, None, |s| s.insert("a", &1u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let rotated = SessionConfig::builder(Keyring::new([K2, K1]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap();
    let (s, out) = request(&rotated, Some(&pair), |_| {}).await;
    assert!(s.opened_with_old_key());
    assert_eq!(s.get::<u8>("a").unwrap(), Some(1));
    let new_pair = cookie_pair(&out).expect("re-sealed even though unchanged");
    let value = new_pair.split_once('=').unwrap().1;
    let header = sealed_session::inspect::header(value).unwrap().header;
    assert_eq!(header.key_id, rotated.codec().keyring().primary_key_id());
    let (s, out) = request(&rotated, Some(&new_pair), |_| {}).await;
    assert!(!s.opened_with_old_key());
    assert!(set_cookies(&out).is_empty());
}

#[tokio::test]
async fn header_transport_round_trip() {
    let clock = ManualClock::new(T0);
    let name = HeaderName::from_static("x-session");
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .transport(Transport::CookieOrHeader(name.clone()))
        .build()
        .unwrap();
    let mut req = HeaderMap::new();
    req.insert(&name, HeaderValue::from_static(""));
    let s = load(&cfg, &req).await.unwrap();
    s.insert("n", &1u32).unwrap();
    let mut out = HeaderMap::new();
    save(&cfg, &s, &mut out).await.unwrap();
    assert!(set_cookies(&out).is_empty(), "header mode sets no cookie");
    let token = out[&name].clone();
    assert!(!token.is_empty());

    let mut req = HeaderMap::new();
    req.insert(&name, token.clone());
    let s = load(&cfg, &req).await.unwrap();
    assert_eq!(s.get::<u32>("n").unwrap(), Some(1));
    let mut out = HeaderMap::new();
    save(&cfg, &s, &mut out).await.unwrap();
    assert!(out.get(&name).is_none(), "unchanged: no header");
    s.destroy();
    save(&cfg, &s, &mut out).await.unwrap();
    assert_eq!(out[&name], "", "logout answers an empty header");

    // Without the header, the cookie transport is used.
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("n", &2u32).unwrap();
    let mut out = HeaderMap::new();
    save(&cfg, &s, &mut out).await.unwrap();
    assert!(out.get(&name).is_none());
    assert_eq!(set_cookies(&out).len(), 1);

    // Header-only transport ignores cookies.
    let only = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .transport(Transport::Header(name.clone()))
        .build()
        .unwrap();
    let s = load(&only, &with_cookie(&cookie_pair(&out).unwrap()))
        .await
        .unwrap();
    assert!(s.is_new());
}

#[test]
fn each_attribute_validation_error() {
    let b = || SessionConfig::builder(Keyring::new([K1]).unwrap());
    let cases: Vec<(sealed_session::SessionConfigBuilder, &str)> = vec![
        (
            b().cookie_name("__Host-s").secure(false),
            "__Host- prefix requires Secure",
        ),
        (
            b().cookie_name("__Host-s").path("/app"),
            "__Host- prefix requires Path=/",
        ),
        (
            b().cookie_name("__Host-s").domain("example.com"),
            "__Host- prefix forbids a Domain",
        ),
        (
            b().cookie_name("__Secure-s").secure(false),
            "__Secure- prefix requires Secure",
        ),
        (
            b().same_site(SameSite::None).secure(false),
            "SameSite=None requires Secure",
        ),
        (b().cookie_name("bad name"), "HTTP token"),
        (b().cookie_name(""), "HTTP token"),
        (b().cookie_budget(100), "under the 256-byte minimum"),
        (b().path("app"), "must start with /"),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(
            err.to_string().contains(expected),
            "{err} lacks {expected:?}"
        );
    }
    assert!(b().cookie_name("__Host-s").build().is_ok());
    assert!(b().same_site(SameSite::None).build().is_ok());
}

#[tokio::test]
async fn our_cookie_among_fifty_others_and_garbage() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| s.insert("a", &7u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let mut header = String::new();
    for i in 0..25 {
        header.push_str(&format!("c{i}=v{i}; "));
    }
    header.push_str("junk;;; =novalue; session=; session=AAAA; ");
    header.push_str(&pair);
    header.push_str("; ");
    for i in 25..50 {
        header.push_str(&format!("c{i}=\"quoted {i}\"; "));
    }
    let mut req = HeaderMap::new();
    req.append(
        http::header::COOKIE,
        HeaderValue::from_static("other=1; session=garbage"),
    );
    req.append(
        http::header::COOKIE,
        HeaderValue::from_bytes(b"session=\xff\xfe; x=\x80").unwrap(),
    );
    req.append(
        http::header::COOKIE,
        HeaderValue::from_str(&header).unwrap(),
    );
    let s = load(&cfg, &req).await.unwrap();
    assert!(s.load_error().is_none(), "{:?}", s.load_error());
    assert_eq!(s.get::<u8>("a").unwrap(), Some(7));
}

#[tokio::test]
async fn bad_values_give_a_fresh_session_with_the_reason() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| s.insert("a", &7u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let value = pair.split_once('=').unwrap().1;
    let mut raw = URL_SAFE_NO_PAD.decode(value).unwrap();
    let n = raw.len();
    raw[n / 2] ^= 0x20;
    let tampered = format!("session={}", URL_SAFE_NO_PAD.encode(&raw));
    let mut v2 = URL_SAFE_NO_PAD.decode(value).unwrap();
    v2[0] = 9;
    let other_version = format!("session={}", URL_SAFE_NO_PAD.encode(&v2));
    let other_key = {
        let cfg2 = SessionConfig::builder(Keyring::new([K2]).unwrap())
            .build()
            .unwrap();
        let (_, out) = request(&cfg2, None, |s| s.insert("a", &7u8).unwrap()).await;
        cookie_pair(&out).unwrap()
    };
    let cases = [
        ("session=%%%".to_owned(), "malformed"),
        ("session=AQ".to_owned(), "malformed"),
        (tampered, "authentication"),
        (other_version, "unsupported_version"),
        (other_key, "unknown_key_id"),
        (format!("session={}", "A".repeat(5000)), "too_large"),
    ];
    for (cookie, kind) in cases {
        let (s, out) = request(&cfg, Some(&cookie), |_| {}).await;
        assert!(s.is_new() && s.is_empty());
        assert_eq!(
            s.load_error().map(|e| e.kind().as_str()),
            Some(kind),
            "{cookie:.40}"
        );
        assert!(set_cookies(&out).is_empty());
    }
}

#[tokio::test]
async fn duplicate_names_take_the_first_that_opens() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| s.insert("which", "first").unwrap()).await;
    let first = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("which", "second").unwrap()).await;
    let second = cookie_pair(&out).unwrap();
    let header = format!("session=bogus; {first}; {second}");
    let (s, _) = request(&cfg, Some(&header), |_| {}).await;
    assert_eq!(s.get::<String>("which").unwrap().as_deref(), Some("first"));
}

#[tokio::test]
async fn cookie_over_the_budget_is_refused_before_decryption() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    // Over what a browser keeps (4096 bytes of name=value): refused before decoding.
    let big = format!("session={}", "A".repeat(4089));
    let (s, _) = request(&cfg, Some(&big), |_| {}).await;
    assert!(matches!(
        s.load_error().as_deref(),
        Some(Error::TooLarge {
            size: 4097,
            limit: 4096,
            ..
        })
    ));
}

#[tokio::test]
async fn too_big_without_a_store_is_an_error_not_a_dropped_cookie() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    let noise = noise(6000, 7);
    s.insert("blob", &noise).unwrap();
    let mut out = HeaderMap::new();
    let err = save(&cfg, &s, &mut out).await.unwrap_err();
    match err {
        Error::TooLarge { size, limit, .. } => {
            assert!(size > 4093);
            assert_eq!(limit, 4093);
        }
        other => panic!("{other:?}"),
    }
    assert!(out.is_empty(), "nothing written");
    assert!(s.is_changed(), "still unsaved");
}

#[tokio::test]
async fn create_on_missing_false_saves_only_on_request() {
    let clock = ManualClock::new(T0);
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .create_on_missing(false)
        .build()
        .unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    assert!(set_cookies(&out).is_empty());
    let (_, out) = request(&cfg, None, |s| {
        s.insert("a", &1u8).unwrap();
        s.save();
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    // An existing session is loaded and saved as usual.
    let (_, out) = request(&cfg, Some(&pair), |s| s.insert("a", &2u8).unwrap()).await;
    assert!(cookie_pair(&out).is_some());
}

#[tokio::test]
async fn always_save_touch_and_forced_save_reissue() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let (_, out) = request(&cfg, Some(&pair), |s| s.touch()).await;
    assert!(cookie_pair(&out).is_some(), "touch re-issues");
    let (_, out) = request(&cfg, Some(&pair), |s| s.save()).await;
    assert!(cookie_pair(&out).is_some(), "save() forces a write");
    let rolling = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .clock(clock.clock())
        .always_save(true)
        .build()
        .unwrap();
    clock.advance(10);
    let (s, out) = request(&rolling, Some(&pair), |_| {}).await;
    assert!(
        cookie_pair(&out).is_some(),
        "always_save re-issues every response"
    );
    assert_eq!(s.last_activity().unix_timestamp(), T0 + 10);
}

#[tokio::test]
async fn reload_drops_unsaved_changes() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let (_, out) = request(&cfg, None, |s| s.insert("a", &1u8).unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    let s = load(&cfg, &with_cookie(&pair)).await.unwrap();
    s.insert("a", &2u8).unwrap();
    s.insert("b", &3u8).unwrap();
    reload(&cfg, &s).await.unwrap();
    assert_eq!(s.get::<u8>("a").unwrap(), Some(1));
    assert!(!s.contains("b"));
    assert!(!s.is_changed());
}

/// The Set-Cookie is built in one buffer from attributes formatted once at config
/// time; it must stay byte-for-byte what the `cookie` crate renders for the same cookie.
#[tokio::test]
async fn set_cookie_text_is_the_cookie_crates_rendering() {
    let clock = ManualClock::new(T0);
    /// path, domain, secure, http_only, same_site, absolute expiry in seconds
    type Case = (
        &'static str,
        Option<&'static str>,
        bool,
        bool,
        SameSite,
        Option<u64>,
    );
    let cases: [Case; 5] = [
        ("/", None, true, true, SameSite::Lax, None),
        (
            "/app",
            Some("example.com"),
            true,
            false,
            SameSite::Strict,
            None,
        ),
        ("/", None, true, true, SameSite::None, Some(3600)),
        (
            "/a/b",
            Some("sub.example.com"),
            false,
            true,
            SameSite::Lax,
            Some(60),
        ),
        (
            "/",
            Some("example.com"),
            true,
            true,
            SameSite::Strict,
            Some(86_400),
        ),
    ];
    for (path, domain, secure, http_only, same_site, ttl) in cases {
        let mut b = SessionConfig::builder(Keyring::new([K1]).unwrap())
            .clock(clock.clock())
            .path(path)
            .secure(secure)
            .http_only(http_only)
            .same_site(same_site);
        if let Some(d) = domain {
            b = b.domain(d);
        }
        if let Some(ttl) = ttl {
            b = b.expiry(Expiry::absolute(Duration::from_secs(ttl)));
        }
        let cfg = b.build().unwrap();
        let (_, out) = request(&cfg, None, |s| s.insert("user", "ada").unwrap()).await;
        let written = &set_cookies(&out)[0];
        let pair = cookie_pair(&out).unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        let mut expected = cookie::Cookie::build((name, value))
            .path(path)
            .secure(secure)
            .http_only(http_only)
            .same_site(same_site)
            .build();
        if let Some(d) = domain {
            expected.set_domain(d);
        }
        if let Some(ttl) = ttl {
            expected.set_max_age(time::Duration::seconds(ttl as i64));
        }
        assert_eq!(written, &expected.to_string());
    }
}

/// A fingerprint that binds the session to the tenant in the URI's first path segment.
fn tenant_config() -> SessionConfig {
    SessionConfig::builder(Keyring::new([K1]).unwrap())
        .fingerprint(|_, uri| {
            uri.path()
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .as_bytes()
                .to_vec()
        })
        .build()
        .unwrap()
}

fn get(uri: &str, cookie: Option<&str>) -> http::Request<()> {
    let mut request = http::Request::get(uri);
    if let Some(c) = cookie {
        request = request.header(http::header::COOKIE, c);
    }
    request.body(()).unwrap()
}

#[tokio::test]
async fn load_without_a_uri_refuses_a_fingerprint_that_needs_one() {
    let cfg = tenant_config();
    // headers::load has no URI: it would silently bind to an empty one, so it refuses.
    let err = load(&cfg, &HeaderMap::new()).await.unwrap_err();
    assert_eq!(err.kind(), sealed_session::ErrorKind::Config);
    assert!(err.to_string().contains("load_request"), "{err}");

    // load_request sees the URI: the cookie opens for its tenant and only there.
    let session = sealed_session::headers::load_request(&cfg, &get("/acme/home", None))
        .await
        .unwrap();
    session.insert("user", "ada").unwrap();
    let mut out = HeaderMap::new();
    save(&cfg, &session, &mut out).await.unwrap();
    let pair = cookie_pair(&out).unwrap();
    let same = sealed_session::headers::load_request(&cfg, &get("/acme/cart", Some(&pair)))
        .await
        .unwrap();
    assert_eq!(same.get::<String>("user").unwrap().as_deref(), Some("ada"));
    let other = sealed_session::headers::load_request(&cfg, &get("/globex/cart", Some(&pair)))
        .await
        .unwrap();
    assert!(other.is_new(), "replayed under another tenant");
    assert_eq!(
        other.load_error().unwrap().kind(),
        sealed_session::ErrorKind::Authentication
    );
}

#[tokio::test]
async fn ignore_path_is_applied_by_the_layer_only() {
    let cfg = SessionConfig::builder(Keyring::new([K1]).unwrap())
        .ignore_path("/health")
        .build()
        .unwrap();
    let (_, out) = request(&cfg, None, |s| s.insert("user", "ada").unwrap()).await;
    let pair = cookie_pair(&out).unwrap();
    // The bare API loads whatever it is given, on any path; the caller decides.
    let health = get("/health", Some(&pair));
    assert!(cfg.is_ignored_path(health.uri().path()));
    let session = sealed_session::headers::load_request(&cfg, &health)
        .await
        .unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
}
