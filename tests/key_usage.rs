//! Key usage through a rotation: opens and last-seen per key id, and the WARN for a
//! retired key at most once per key id per minute.
#![cfg(feature = "axum")]

#[path = "common/browser.rs"]
mod browser;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use browser::ManualClock;
use sealed_session::{forge, ErrorKind, Keyring, Session, SessionConfig, SessionLayer};
use tower::ServiceExt as _;

const T0: i64 = 1_800_000_000;
const OLD: [u8; 32] = [0x0A; 32];
const NEW: [u8; 32] = [0x0B; 32];

fn config(keys: &[[u8; 32]], clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new(keys).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap()
}

/// A router whose handler only reads: any Set-Cookie is the layer's re-seal.
fn app(config: &SessionConfig) -> Router {
    async fn read(session: Session) -> String {
        let error = session.load_error().map(|e| e.kind().as_str().to_owned());
        format!("{:?} {:?}", session.get::<String>("user").unwrap(), error)
    }
    Router::new()
        .route("/", get(read))
        .layer(SessionLayer::new(config.clone()))
}

/// Sends `cookie`; returns the body and the new `name=value`, if one was set.
async fn send(app: &Router, cookie: &str) -> (String, Option<String>) {
    let request = Request::get("/")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), set)
}

/// (opens, last_seen unix) of `key_id` in `config`'s usage.
fn usage(config: &SessionConfig, key_id: u32) -> (u64, Option<i64>) {
    let found = config
        .key_usage()
        .into_iter()
        .find(|k| k.key_id == key_id)
        .expect("the key is in the ring");
    (found.opens, found.last_seen.map(|t| t.unix_timestamp()))
}

#[tokio::test]
async fn opens_are_counted_per_key_through_a_rotation() {
    let clock = ManualClock::new(T0);
    let before = config(&[OLD], &clock);
    let old_id = before.codec().keyring().primary_key_id();
    let cookie = forge::cookie(&before, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    let cookie = cookie.to_str().unwrap().to_owned();

    let rotated = config(&[NEW, OLD], &clock);
    let new_id = rotated.codec().keyring().primary_key_id();
    let keys = rotated.key_usage();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].primary && keys[0].key_id == new_id);
    assert!(!keys[1].primary && keys[1].key_id == old_id);
    assert_eq!(usage(&rotated, old_id), (0, None));

    // The old cookie opens under the old key and is re-sealed under the new one.
    let app = app(&rotated);
    let (body, resealed) = send(&app, &cookie).await;
    assert_eq!(body, "Some(\"ada\") None");
    let resealed = resealed.expect("an old-key cookie is re-sealed though unchanged");
    assert_eq!(usage(&rotated, old_id), (1, Some(T0)));
    assert_eq!(usage(&rotated, new_id), (0, None));

    // The next request brings the re-sealed cookie: the new key counts.
    clock.advance(10);
    let (body, set) = send(&app, &resealed).await;
    assert_eq!(body, "Some(\"ada\") None");
    assert!(
        set.is_none(),
        "a primary-key cookie that did not change is not re-sent"
    );
    assert_eq!(usage(&rotated, new_id), (1, Some(T0 + 10)));
    assert_eq!(
        usage(&rotated, old_id),
        (1, Some(T0)),
        "old key: no new opens"
    );

    // A clone of the configuration (the layer holds one) shares the counters.
    assert_eq!(rotated.clone().key_usage(), rotated.key_usage());

    // Expired values are not counted: they would not have kept anyone signed in.
    clock.advance(8 * 86_400);
    let (body, _) = send(&app, &resealed).await;
    assert_eq!(body, "None Some(\"expired\")");
    assert_eq!(usage(&rotated, new_id), (1, Some(T0 + 10)));
}

/// Log lines written by the test's subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Lines at `level` that name `key_id`.
    fn count(&self, level: &str, key_id: u32) -> usize {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        let id = format!("key_id={key_id:08x}");
        text.lines()
            .filter(|l| l.contains(&format!(" {level} ")) && l.contains(&id))
            .count()
    }
}

#[tokio::test]
async fn a_retired_key_warns_once_per_key_id_per_minute() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(T0);
    let before = config(&[OLD], &clock);
    let old_id = before.codec().keyring().primary_key_id();
    let cookie = forge::cookie(&before, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    let cookie = cookie.to_str().unwrap().to_owned();
    let other = config(&[[0x0C; 32]], &clock);
    let other_id = other.codec().keyring().primary_key_id();
    let other_cookie = forge::cookie(&other, |s| s.insert("user", "eve"))
        .await
        .unwrap();

    // OLD is retired: only NEW is left.
    let retired = config(&[NEW], &clock);
    let app = app(&retired);
    for _ in 0..3 {
        let (body, _) = send(&app, &cookie).await;
        assert_eq!(
            body,
            format!("None Some({:?})", ErrorKind::UnknownKeyId.as_str())
        );
    }
    assert_eq!(
        capture.count("WARN", old_id),
        1,
        "once per key id per minute"
    );
    assert_eq!(capture.count("DEBUG", old_id), 2, "the rest at DEBUG");
    send(&app, other_cookie.to_str().unwrap()).await;
    assert_eq!(
        capture.count("WARN", other_id),
        1,
        "each key id has its own minute"
    );

    clock.advance(59);
    send(&app, &cookie).await;
    assert_eq!(capture.count("WARN", old_id), 1);
    clock.advance(1);
    send(&app, &cookie).await;
    assert_eq!(
        capture.count("WARN", old_id),
        2,
        "a minute later it warns again"
    );
}
