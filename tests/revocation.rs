//! Revocation through the layer: a logout that really logs out (a copied cookie,
//! inline or pointer, opens nothing), log out everywhere across servers, a slow
//! request overlapping a logout, and a revocation backend that is down.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[path = "common/demo.rs"]
mod demo;

#[path = "common/flaky.rs"]
mod flaky;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::routing::get;
use axum::Router;
use demo::{call, Reply};
use flaky::Flaky;
use sealed_session::revocation::{MemoryRevocations, StalePolicy};
use sealed_session::store::{MemoryStore, SessionStore};
use sealed_session::{ErrorKind, Keyring, Session, SessionConfig, SessionLayer};
use serde_json::{json, Value};
use time::OffsetDateTime;

const KEY: [u8; 32] = [0x4D; 32];

fn builder() -> sealed_session::SessionConfigBuilder {
    SessionConfig::builder(Keyring::new([KEY]).unwrap()).secure(false)
}

/// A browser of one cookie.
#[derive(Clone)]
struct Browser {
    app: Router,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: Router) -> Self {
        Browser { app, cookie: None }
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let headers = self
            .cookie
            .iter()
            .map(|c| ("cookie", HeaderValue::from_str(c).unwrap()))
            .collect();
        let r = call(&self.app, method, path, headers, body).await;
        if let Some(pair) = r.set_cookie() {
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        r
    }

    async fn whoami(&mut self) -> Value {
        self.send(Method::GET, "/whoami", None).await.json["user"].clone()
    }
}

async fn replay_after_logout(store: Arc<dyn SessionStore>, cart: u64) {
    let app = server::app(builder().store_arc(store).build().unwrap());
    let mut b = Browser::new(app.clone());
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    if cart > 0 {
        b.send(Method::POST, "/cart", Some(json!({"items": cart})))
            .await;
    }
    let copy = b.clone();
    assert_eq!(b.whoami().await, json!("ada"));
    let r = b.send(Method::POST, "/logout", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"logged_out": true}));
    assert_eq!(b.whoami().await, json!(null));
    // The copy taken before the logout: a fresh session, not ada's.
    let mut copy = copy;
    assert_eq!(
        copy.whoami().await,
        json!(null),
        "a copied cookie survived the logout"
    );
    let r = copy.send(Method::GET, "/session", None).await;
    assert_eq!(r.json, json!({}), "nothing of the old session is served");
}

#[tokio::test]
async fn a_copy_of_an_inline_cookie_opens_nothing_after_logout() {
    replay_after_logout(Arc::new(MemoryStore::new()), 0).await;
}

#[tokio::test]
async fn a_copy_of_a_pointer_cookie_opens_nothing_after_logout() {
    replay_after_logout(Arc::new(MemoryStore::new()), 300).await;
}

#[tokio::test]
async fn the_refusal_says_revoked() {
    let config = builder().build().unwrap();
    let app = server::app(config.clone());
    let mut b = Browser::new(app);
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let copy = b.cookie.clone().unwrap();
    b.send(Method::POST, "/logout", None).await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", copy.parse().unwrap());
    let s = sealed_session::headers::load(&config, &headers)
        .await
        .unwrap();
    assert!(s.is_new());
    assert_eq!(
        s.load_error().map(|e| e.kind()),
        Some(ErrorKind::Revoked),
        "{:?}",
        s.load_error()
    );
}

#[tokio::test]
async fn logout_everywhere_reaches_every_device_on_every_server_sharing_the_backend() {
    let shared = MemoryRevocations::new();
    let server = |shared: &MemoryRevocations| {
        builder()
            .store(MemoryStore::new())
            .revocation(shared.clone())
            .revocation_sync_interval(Duration::from_millis(50))
            .build()
            .unwrap()
    };
    let (x, y) = (server(&shared), server(&shared));
    x.sync_revocations().await.unwrap();
    y.sync_revocations().await.unwrap();
    let (app_x, app_y) = (server::app(x.clone()), server::app(y.clone()));
    let mut laptop = Browser::new(app_x.clone());
    let mut phone = Browser::new(app_y.clone());
    let mut other = Browser::new(app_y.clone());
    laptop
        .send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    phone
        .send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    other
        .send(Method::POST, "/login", Some(json!({"user": "bob"})))
        .await;
    // Not logged in: 401.
    let r = Browser::new(app_x.clone())
        .send(Method::POST, "/logout-all", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = laptop.send(Method::POST, "/logout-all", None).await;
    assert_eq!(r.json, json!({"revoked": true}));
    assert_eq!(laptop.whoami().await, json!(null));
    // Within the sync interval, server y refuses ada's phone too; bob stays.
    let started = std::time::Instant::now();
    loop {
        if phone.whoami().await == json!(null) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the revocation did not reach the other server within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(other.whoami().await, json!("bob"));
    // Ada logs in again afterwards: that session stands.
    phone
        .send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    assert_eq!(phone.whoami().await, json!("ada"));
    // And the admin API does the same from outside any session.
    x.revoke_subject("bob").await.unwrap();
    y.sync_revocations().await.unwrap();
    assert_eq!(other.whoami().await, json!(null));
}

#[tokio::test]
async fn a_slow_request_that_loaded_before_a_logout_cannot_bring_the_session_back() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let config = builder().build().unwrap();
    // A route that holds its request until the test lets it go.
    let slow_app = Router::new()
        .route(
            "/slow",
            get({
                let gate = gate.clone();
                move |session: Session| {
                    let gate = gate.clone();
                    async move {
                        gate.notified().await;
                        session.insert("touched", &true).unwrap();
                        "done"
                    }
                }
            }),
        )
        .layer(SessionLayer::new(config.clone()));
    let mut b = Browser::new(server::app(config.clone()));
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let before = b.cookie.clone().unwrap();
    // The slow request loads the session now...
    let mut slow = Browser::new(slow_app);
    slow.cookie = Some(before);
    let pending = tokio::spawn(async move {
        let r = slow.send(Method::GET, "/slow", None).await;
        (r, slow.cookie)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...the logout happens meanwhile...
    let r = b.send(Method::POST, "/logout", None).await;
    assert_eq!(r.json, json!({"logged_out": true}));
    // ...and the slow request finishes after it, writing its cookie.
    gate.notify_one();
    let (r, written) = pending.await.unwrap();
    assert_eq!(r.json, json!("done"));
    let mut late = Browser::new(server::app(config));
    late.cookie = written;
    assert_eq!(
        late.whoami().await,
        json!(null),
        "a request that overlapped the logout brought the session back"
    );
}

fn flaky_app(backend: &Flaky, policy: StalePolicy) -> (SessionConfig, Router) {
    let config = builder()
        .revocation(backend.clone())
        .revocation_sync_interval(Duration::from_millis(30))
        .revocation_max_staleness(Duration::from_millis(200))
        .revocation_stale_policy(policy)
        .build()
        .unwrap();
    (config.clone(), server::app(config))
}

#[tokio::test]
async fn a_logout_that_could_not_be_recorded_is_a_503_and_the_session_stays() {
    let backend = Flaky::default();
    let (config, app) = flaky_app(&backend, StalePolicy::FailClosed);
    config.sync_revocations().await.unwrap();
    let mut b = Browser::new(app);
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    backend.down.store(true, Ordering::SeqCst);
    let r = b.send(Method::POST, "/logout", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.json);
    assert!(
        r.set_cookie().is_none(),
        "no removal cookie for a logout that did not happen"
    );
    let r = b.send(Method::POST, "/logout-all", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    backend.down.store(false, Ordering::SeqCst);
    config.sync_revocations().await.unwrap();
    assert_eq!(b.whoami().await, json!("ada"), "nothing was logged out");
    let r = b.send(Method::POST, "/logout", None).await;
    assert_eq!(r.json, json!({"logged_out": true}));
}

#[tokio::test]
async fn a_stale_replica_fails_closed_for_logged_in_sessions_and_recovers() {
    let backend = Flaky::default();
    let (config, app) = flaky_app(&backend, StalePolicy::FailClosed);
    config.sync_revocations().await.unwrap();
    let mut ada = Browser::new(app.clone());
    ada.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let mut anonymous = Browser::new(app);
    anonymous.send(Method::GET, "/", None).await;
    backend.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = ada.send(Method::GET, "/whoami", None).await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a subject session was served stale"
    );
    assert!(config.revocation_status().stale_for.unwrap() > Duration::from_millis(200));
    let r = anonymous.send(Method::GET, "/", None).await;
    assert_eq!(
        r.json,
        json!({"views": 2}),
        "sessions without a subject keep working"
    );
    // The backend comes back: the background sync recovers without a restart.
    backend.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ada.whoami().await, json!("ada"));
}

#[tokio::test]
async fn a_stale_replica_may_be_configured_to_keep_serving() {
    let backend = Flaky::default();
    let (config, app) = flaky_app(&backend, StalePolicy::Serve);
    config.sync_revocations().await.unwrap();
    let mut ada = Browser::new(app);
    ada.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    backend.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ada.whoami().await, json!("ada"));
}

#[tokio::test]
async fn a_cutoff_ends_everything_issued_before_it() {
    let old = builder().build().unwrap();
    let mut b = Browser::new(server::app(old));
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let cutoff = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let after = builder().revoke_issued_before(cutoff).build().unwrap();
    b.app = server::app(after.clone());
    assert_eq!(b.whoami().await, json!(null), "issued before the cutoff");
    // New sessions (created after the cutoff) are fine.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut fresh = Browser::new(server::app(after));
    fresh
        .send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    assert_eq!(fresh.whoami().await, json!("ada"));
}

#[tokio::test]
async fn revoking_a_subject_covers_sessions_that_sealed_it_under_an_old_key() {
    const OLD: [u8; 32] = [0x01; 32];
    let before = SessionConfig::builder(Keyring::new([OLD]).unwrap())
        .secure(false)
        .build()
        .unwrap();
    let mut b = Browser::new(server::app(before));
    b.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    // Keys rotate; the session (and its subject hash) is from the old key.
    let rotated = SessionConfig::builder(Keyring::new([KEY, OLD]).unwrap())
        .secure(false)
        .build()
        .unwrap();
    b.app = server::app(rotated.clone());
    assert_eq!(b.whoami().await, json!("ada"));
    rotated.revoke_subject("ada").await.unwrap();
    assert_eq!(b.whoami().await, json!(null));
}

/// A server started after a logout knows it before it serves its first request:
/// `sync_revocations` at startup reads the whole list, so a copied cookie (of a single
/// logout, or of a logout everywhere) opens nothing there.
#[tokio::test]
async fn a_server_started_after_a_logout_refuses_the_copied_cookie() {
    let shared = MemoryRevocations::new();
    let server = |shared: &MemoryRevocations| {
        builder()
            .store(MemoryStore::new())
            .revocation(shared.clone())
            .build()
            .unwrap()
    };
    let first = server(&shared);
    first.sync_revocations().await.unwrap();
    let app = server::app(first);
    let mut ada = Browser::new(app.clone());
    ada.send(Method::POST, "/login", Some(json!({"user": "ada"})))
        .await;
    let ada_copy = ada.clone();
    assert_eq!(
        ada.send(Method::POST, "/logout", None).await.json,
        json!({"logged_out": true})
    );
    let mut bo = Browser::new(app.clone());
    bo.send(Method::POST, "/login", Some(json!({"user": "bo"})))
        .await;
    let bo_copy = bo.clone();
    assert_eq!(
        bo.send(Method::POST, "/logout-all", None).await.json,
        json!({"revoked": true})
    );

    // Started afterwards, with the same keys and the same revocation backend.
    let late = server(&shared);
    late.sync_revocations().await.unwrap();
    let late_app = server::app(late);
    for (who, copy) in [("ada", ada_copy), ("bo", bo_copy)] {
        let mut copy = Browser {
            app: late_app.clone(),
            cookie: copy.cookie,
        };
        assert_eq!(
            copy.whoami().await,
            json!(null),
            "{who}'s copied cookie opened on a server started after the logout"
        );
    }
}
