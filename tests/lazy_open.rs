//! The layer opens a session only when the handler touches it (or the response must
//! write it): through the demo router, a request for a route that never takes the
//! session (here a 404) decrypts nothing and writes nothing, and loses nothing.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[path = "common/demo.rs"]
mod demo;

#[path = "common/flaky.rs"]
mod flaky;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::Router;
use demo::{call, Reply};
use flaky::Flaky;
use sealed_session::revocation::StalePolicy;
use sealed_session::{Keyring, SessionConfig};
use serde_json::{json, Value};

const OLD: [u8; 32] = [0x3A; 32];
const NEW: [u8; 32] = [0x3B; 32];

fn config(keys: &[[u8; 32]]) -> SessionConfig {
    SessionConfig::builder(Keyring::new(keys).unwrap())
        .secure(false)
        .build()
        .unwrap()
}

/// Sends `cookie` (if any) to `app`.
async fn send(
    app: &Router,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let headers = cookie
        .iter()
        .map(|c| ("cookie", HeaderValue::from_str(c).unwrap()))
        .collect();
    call(app, method, path, headers, body).await
}

/// How many values `config` opened under `key_id`.
fn opens(config: &SessionConfig, key_id: u32) -> u64 {
    config
        .key_usage()
        .into_iter()
        .find(|k| k.key_id == key_id)
        .expect("the key is in the ring")
        .opens
}

#[tokio::test]
async fn a_request_that_never_touches_the_session_opens_and_writes_nothing() {
    let config = config(&[NEW]);
    let key = config.codec().keyring().primary_key_id();
    let app = server::app(config.clone());
    let login = send(
        &app,
        Method::POST,
        "/login",
        None,
        Some(json!({"user": "ada"})),
    )
    .await;
    let cookie = login.set_cookie().expect("login sets the session cookie");
    let before = opens(&config, key);

    let r = send(&app, Method::GET, "/favicon.ico", Some(&cookie), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.set_cookie(), None, "an untouched session writes nothing");
    assert_eq!(
        opens(&config, key),
        before,
        "an untouched session was opened"
    );

    let r = send(&app, Method::GET, "/whoami", Some(&cookie), None).await;
    assert_eq!(r.json, json!({"user": "ada"}), "the session is still whole");
    assert_eq!(
        opens(&config, key),
        before + 1,
        "a touched session opens once"
    );
}

#[tokio::test]
async fn flash_waits_for_the_request_that_reads_the_session() {
    let app = server::app(config(&[NEW]));
    let r = send(
        &app,
        Method::POST,
        "/flash",
        None,
        Some(json!({"message": "saved"})),
    )
    .await;
    let cookie = r.set_cookie().expect("a flash is written");
    let r = send(&app, Method::GET, "/static/app.js", Some(&cookie), None).await;
    assert_eq!(r.set_cookie(), None);
    let r = send(&app, Method::GET, "/flash", Some(&cookie), None).await;
    assert_eq!(
        r.json,
        json!({"messages": ["saved"]}),
        "an untouched request consumed the flash"
    );
}

#[tokio::test]
async fn a_value_under_an_old_key_is_resealed_even_when_untouched() {
    let before = config(&[OLD]);
    let old = send(
        &server::app(before),
        Method::POST,
        "/login",
        None,
        Some(json!({"user": "ada"})),
    )
    .await
    .set_cookie()
    .unwrap();
    let rotated = config(&[NEW, OLD]);
    let new_id = rotated.codec().keyring().primary_key_id();
    let app = server::app(rotated.clone());

    let r = send(&app, Method::GET, "/favicon.ico", Some(&old), None).await;
    let resealed = r
        .set_cookie()
        .expect("the rotation re-seals without a handler touching the session");
    assert_ne!(resealed, old);
    let at_new = opens(&rotated, new_id);
    let r = send(&app, Method::GET, "/whoami", Some(&resealed), None).await;
    assert_eq!(r.json, json!({"user": "ada"}));
    assert_eq!(
        opens(&rotated, new_id),
        at_new + 1,
        "the re-sealed value is under the new primary"
    );
}

/// A config on `backend` that refuses subject sessions once the list is 200 ms stale,
/// synced once.
async fn fail_closed(backend: &Flaky) -> SessionConfig {
    let config = SessionConfig::builder(Keyring::new([NEW]).unwrap())
        .secure(false)
        .revocation(backend.clone())
        .revocation_sync_interval(Duration::from_millis(30))
        .revocation_max_staleness(Duration::from_millis(200))
        .revocation_stale_policy(StalePolicy::FailClosed)
        .build()
        .unwrap();
    config.sync_revocations().await.unwrap();
    config
}

#[tokio::test]
async fn a_stale_revocation_list_still_refuses_an_untouched_logged_in_request() {
    let backend = Flaky::default();
    let config = fail_closed(&backend).await;
    let app = server::app(config);
    let cookie = send(
        &app,
        Method::POST,
        "/login",
        None,
        Some(json!({"user": "ada"})),
    )
    .await
    .set_cookie()
    .unwrap();
    backend.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = send(&app, Method::GET, "/favicon.ico", Some(&cookie), None).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a logged-in session was let through unchecked while the list is stale"
    );
}

/// The list goes stale while a request waits before touching its session (the layer
/// saw it fresh and deferred the open): the request answers 503 as an eager open
/// would have, and writes nothing over the logged-in cookie, which works again once
/// the list syncs.
#[tokio::test]
async fn a_list_that_goes_stale_before_the_handler_touches_the_session_keeps_the_cookie() {
    use axum::routing::get;
    use sealed_session::{Session, SessionLayer};

    async fn login(session: Session) -> &'static str {
        session.set_subject("ada");
        session.insert("user", "ada").unwrap();
        "in"
    }
    async fn slow(session: Session) -> String {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The handler writes to whatever session it got: it must not replace ada's.
        session.insert("visited", &true).unwrap();
        format!("{:?}", session.get::<String>("user").unwrap())
    }
    async fn whoami(session: Session) -> String {
        format!("{:?}", session.get::<String>("user").unwrap())
    }

    let backend = Flaky::default();
    let config = fail_closed(&backend).await;
    let app = Router::new()
        .route("/login", get(login))
        .route("/slow", get(slow))
        .route("/whoami", get(whoami))
        .layer(SessionLayer::new(config));
    let cookie = send(&app, Method::GET, "/login", None, None)
        .await
        .set_cookie()
        .unwrap();

    let slow = {
        let (app, cookie) = (app.clone(), cookie.clone());
        tokio::spawn(async move { send(&app, Method::GET, "/slow", Some(&cookie), None).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    backend.down.store(true, Ordering::SeqCst);
    let r = slow.await.unwrap();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert_eq!(r.set_cookie(), None, "the logged-in cookie was overwritten");

    backend.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = send(&app, Method::GET, "/whoami", Some(&cookie), None).await;
    assert_eq!(r.json, json!("Some(\"ada\")"), "the session survived");
}
