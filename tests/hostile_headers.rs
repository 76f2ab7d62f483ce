//! Hostile headers through the layer: a Cookie header of 100,000 junk cookies is a
//! bounded scan that still finds ours among the first ones, and a flood of forged
//! cookies, or of sessions under a changed fingerprint, writes one WARN line a
//! minute (the rest at DEBUG), not one per request.
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
use sealed_session::{forge, FingerprintMode, Keyring, Session, SessionConfig, SessionLayer};
use tower::ServiceExt as _;

const T0: i64 = 1_800_000_000;
const KEY: [u8; 32] = [0x4D; 32];

fn config(clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap()
}

fn app(config: &SessionConfig) -> Router {
    async fn read(session: Session) -> String {
        format!("{:?}", session.get::<String>("user").unwrap())
    }
    Router::new()
        .route("/", get(read))
        .layer(SessionLayer::new(config.clone()))
}

async fn send(app: &Router, cookie: &str, user_agent: &str) -> String {
    let request = Request::get("/")
        .header(header::COOKIE, cookie)
        .header(header::USER_AGENT, user_agent)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
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
    /// Installs a DEBUG subscriber for this thread; keep the guard alive.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Lines at `level` that contain `text`.
    fn lines(&self, level: &str, text: &str) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!(" {level} ")) && l.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn a_hundred_thousand_junk_cookies_after_ours_do_not_hide_it() {
    let clock = ManualClock::new(T0);
    let config = config(&clock);
    let ours = forge::cookie(&config, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    let ours = ours.to_str().unwrap();
    let junk = "a=; ".repeat(100_000);
    let app = app(&config);
    assert_eq!(
        send(&app, &format!("{ours}; {junk}"), "ua").await,
        "Some(\"ada\")"
    );
    assert_eq!(
        send(&app, &format!("x=1; y=2; {ours}; {junk}"), "ua").await,
        "Some(\"ada\")"
    );
    // Past the scan's bound it is not looked for: a fresh session, not a 500 or a stall.
    assert_eq!(send(&app, &format!("{junk}{ours}"), "ua").await, "None");
}

#[tokio::test]
async fn a_flood_of_forged_cookies_warns_once_a_minute() {
    let capture = Capture::default();
    let _guard = capture.install();
    let clock = ManualClock::new(T0);
    let config = config(&clock);
    let genuine = forge::cookie(&config, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    let (name, value) = genuine.to_str().unwrap().split_once('=').unwrap();
    // The genuine value with one character changed: it fails authentication.
    let mut forged = value.as_bytes().to_vec();
    let last = forged.len() - 5;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = format!("{name}={}", String::from_utf8(forged).unwrap());
    let app = app(&config);

    for _ in 0..500 {
        assert_eq!(send(&app, &forged, "ua").await, "None");
    }
    let refused = "session value refused";
    assert_eq!(
        capture.lines("WARN", refused).len(),
        1,
        "one WARN for 500 forged cookies"
    );
    assert_eq!(
        capture.lines("DEBUG", refused).len(),
        499,
        "the rest at DEBUG"
    );

    clock.advance(59);
    send(&app, &forged, "ua").await;
    assert_eq!(capture.lines("WARN", refused).len(), 1);
    clock.advance(1);
    send(&app, &forged, "ua").await;
    let warns = capture.lines("WARN", refused);
    assert_eq!(warns.len(), 2, "a minute later it warns again");
    assert!(
        warns[1].contains("left_out=500"),
        "the WARN counts what it left out: {}",
        warns[1]
    );
    // The genuine cookie still opens all along.
    assert_eq!(
        send(&app, genuine.to_str().unwrap(), "ua").await,
        "Some(\"ada\")"
    );
}

#[tokio::test]
async fn a_changed_fingerprint_in_log_only_mode_warns_once_a_minute() {
    let capture = Capture::default();
    let _guard = capture.install();
    let clock = ManualClock::new(T0);
    let config = SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .clock(clock.clock())
        .fingerprint(|headers, _| {
            headers
                .get(header::USER_AGENT)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default()
        })
        .fingerprint_mode(FingerprintMode::LogOnly)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert("user", "ada").unwrap();
            }),
        )
        .route(
            "/",
            get(|session: Session| async move {
                format!("{:?}", session.get::<String>("user").unwrap())
            }),
        )
        .layer(SessionLayer::new(config));
    let login = Request::get("/login")
        .header(header::USER_AGENT, "phone")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(login).await.unwrap();
    let cookie = browser::cookie_pair(response.headers()).expect("a session cookie");

    for i in 0..100 {
        // Log-only: it opens under another User-Agent all the same.
        assert_eq!(
            send(&app, &cookie, &format!("laptop {i}")).await,
            "Some(\"ada\")"
        );
    }
    let changed = "another request fingerprint";
    assert_eq!(capture.lines("WARN", changed).len(), 1);
    assert_eq!(capture.lines("DEBUG", changed).len(), 99);
    clock.advance(60);
    send(&app, &cookie, "laptop").await;
    let warns = capture.lines("WARN", changed);
    assert_eq!(warns.len(), 2);
    assert!(warns[1].contains("left_out=99"), "{}", warns[1]);
}
