//! The demo server; its HTTP contract is examples/README.md.
//!
//! ```text
//! cargo run --example server                      # 127.0.0.1:3000, in-memory store
//! ADDR=127.0.0.1:8080 SESSION_SECURE=0 SESSION_KEYS=new,old SESSION_STORE=file:/tmp/sessions cargo run --example server
//! ```
//! Env: `ADDR`; `SESSION_KEYS` (comma-separated base64 secrets, newest first; generated
//! if unset); `SESSION_STORE` = `memory` | `none` | `redis://host:port` (needs
//! `--features redis`) | `file:DIR` | `postgres://user@host:port/db` (needs
//! `--features postgres`) | `sqlite:PATH` (needs `--features sqlite`);
//! `SESSION_SECURE=0` for plain-http cookies in local use; `SESSION_IDLE` /
//! `SESSION_ABSOLUTE` (seconds) for the idle timeout and the absolute limit, which
//! also bind sessions issued before.

use std::time::Duration;

use axum::extract::Json;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use sealed_session::revocation::FileRevocations;
use sealed_session::store::{FileStore, MemoryStore};
use sealed_session::{
    ErrorKind, Expiry, Keyring, Session, SessionConfig, SessionExpiry, SessionLayer, Transport,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One cart line; distinct by its random SKU.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
    pub price: u64,
}

/// Most items one POST /cart may add (bounds the work of one request).
const MAX_ITEMS_PER_REQUEST: u64 = 5_000;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sealed_session=info".into()),
        )
        .init();
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        // A store that cannot connect says why only in its causes.
        let mut cause = e.source();
        while let Some(c) = cause {
            eprintln!("  caused by: {c}");
            cause = c.source();
        }
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let keyring = match std::env::var("SESSION_KEYS") {
        Ok(keys) if !keys.trim().is_empty() => Keyring::from_base64(&keys)?,
        _ => {
            eprintln!(
                "SESSION_KEYS is not set: generated a random key; sessions will not survive a restart \
                 (make one with `cargo run --example keys`)"
            );
            Keyring::generate()
        }
    };
    let secure = std::env::var("SESSION_SECURE").map_or(true, |v| v != "0");
    let builder =
        SessionConfig::builder(keyring)
            .secure(secure)
            .transport(Transport::CookieOrHeader(HeaderName::from_static(
                "x-session",
            )));
    let builder = with_limits_from_env(builder)?;
    let config = with_store_from_env(builder).await?.build()?;
    // A new process knows every revocation before it serves its first request.
    config.sync_revocations().await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(config)).await?;
    Ok(())
}

/// How long a "remember me" session lasts.
pub const REMEMBER: Duration = Duration::from_secs(30 * 24 * 3600);

/// The expiry rules: a browser-session cookie by default (24 h idle, 7 days), up to
/// 30 days for "remember me"; `SESSION_IDLE` and `SESSION_ABSOLUTE` (seconds) set the
/// idle timeout and the absolute limit, and are ceilings for every session, also
/// those issued before (a lowered limit ends them sooner).
fn with_limits_from_env(
    builder: sealed_session::SessionConfigBuilder,
) -> Result<sealed_session::SessionConfigBuilder, Box<dyn std::error::Error>> {
    let seconds = |name: &str| -> Result<Option<Duration>, Box<dyn std::error::Error>> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => {
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={v:?}: expected a number of seconds"))?;
                Ok(Some(Duration::from_secs(n)))
            }
            _ => Ok(None),
        }
    };
    let idle = seconds("SESSION_IDLE")?;
    let absolute = seconds("SESSION_ABSOLUTE")?;
    Ok(limits(builder, idle, absolute))
}

/// The demo's expiry rules for an idle timeout and absolute limit (defaults when `None`).
pub fn limits(
    builder: sealed_session::SessionConfigBuilder,
    idle: Option<Duration>,
    absolute: Option<Duration>,
) -> sealed_session::SessionConfigBuilder {
    let mut policy = Expiry::browser_session();
    if let Some(idle) = idle {
        policy = policy
            .with_idle_timeout(Some(idle))
            .with_renew_threshold(idle / 2);
    }
    if let Some(absolute) = absolute {
        policy = policy.with_absolute_limit(absolute);
    }
    let mut builder = builder
        .expiry(policy)
        .max_lifetime(absolute.unwrap_or(REMEMBER));
    if let Some(idle) = idle {
        builder = builder.max_idle(idle);
    }
    builder
}

/// The store from `SESSION_STORE`, and the revocation list on the same backend, so
/// servers sharing a store share logouts too: `memory` (this process only), `none`
/// (no store: a session too big for a cookie answers 500 and the old cookie is
/// kept), `file:DIR`, `redis://…`, `postgres://…`, `sqlite:PATH`.
async fn with_store_from_env(
    builder: sealed_session::SessionConfigBuilder,
) -> Result<sealed_session::SessionConfigBuilder, Box<dyn std::error::Error>> {
    let spec = std::env::var("SESSION_STORE").unwrap_or_else(|_| "memory".into());
    if spec == "memory" || spec.is_empty() {
        return Ok(builder.store(MemoryStore::default()));
    }
    if spec == "none" {
        return Ok(builder);
    }
    if let Some(dir) = spec.strip_prefix("file:") {
        let revocations =
            FileRevocations::open(std::path::Path::new(dir).join("revocations")).await?;
        return Ok(builder
            .store(FileStore::open(dir).await?)
            .revocation(revocations));
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        #[cfg(feature = "redis")]
        {
            let store = sealed_session::store::RedisStore::connect(&spec).await?;
            let revocations = sealed_session::revocation::RedisRevocations::connect(&spec).await?;
            return Ok(builder.store(store).revocation(revocations));
        }
        #[cfg(not(feature = "redis"))]
        return Err("SESSION_STORE=redis://… needs the redis feature: cargo run --features redis --example server".into());
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return with_sql(builder, &spec).await;
        #[cfg(not(feature = "postgres"))]
        return Err("SESSION_STORE=postgres://… needs the postgres feature: cargo run --features postgres --example server".into());
    }
    if spec.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return with_sql(builder, &spec).await;
        #[cfg(not(feature = "sqlite"))]
        return Err("SESSION_STORE=sqlite:… needs the sqlite feature: cargo run --features sqlite --example server".into());
    }
    Err(format!(
        "SESSION_STORE={spec:?}: expected memory, none, redis://host:port, file:DIR, \
         postgres://user@host:port/db or sqlite:PATH"
    )
    .into())
}

/// A SQL store and the revocation table on one pool.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
async fn with_sql(
    builder: sealed_session::SessionConfigBuilder,
    url: &str,
) -> Result<sealed_session::SessionConfigBuilder, Box<dyn std::error::Error>> {
    let pool = sealed_session::store::SqlPool::connect(url).await?;
    Ok(builder
        .store(sealed_session::store::SqlStore::new(&pool))
        .revocation(sealed_session::revocation::SqlRevocations::new(&pool)))
}

/// The demo router; `pub` so tests can drive the very same app in-process.
pub fn app(config: SessionConfig) -> Router {
    Router::new()
        .route("/", get(views))
        .route("/session", get(whole_session))
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/cart", post(add_to_cart))
        .route("/flash", post(add_flash).get(read_flash))
        .route("/csrf", get(csrf))
        .route("/transfer", post(transfer))
        .layer(SessionLayer::new(config))
        // Outside the session layer: its own error answers (store down, a session that
        // could not be saved) have an empty body and carry the ErrorKind; give them JSON.
        .layer(axum::middleware::map_response(json_session_errors))
}

/// Gives the session layer's error answers a JSON body, like every other route.
async fn json_session_errors(response: Response) -> Response {
    let Some(kind) = response.extensions().get::<ErrorKind>().copied() else {
        return response;
    };
    let message = match kind {
        ErrorKind::Store => "session store unavailable, try again later",
        ErrorKind::RevocationUnavailable => "the revocation list is out of date, try again later",
        _ => "the session could not be saved",
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    (
        parts,
        Json(json!({ "error": message, "reason": kind.as_str() })),
    )
        .into_response()
}

/// A value that cannot be stored is a server bug: 500 with a reason.
fn internal(e: sealed_session::Error) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

/// Reads `key`; a value that no longer decodes as `T` (a deploy changed the type
/// incompatibly) is logged and dropped, so the user keeps the rest of the session
/// and gets a 200, not a 500, on every request until it expires.
fn read_or_reset<T: serde::de::DeserializeOwned>(session: &Session, key: &str) -> Option<T> {
    match session.get(key) {
        Ok(value) => value,
        Err(e) => {
            tracing::warn!(error = %e, key, "session value no longer decodes; it is reset");
            session.remove(key);
            None
        }
    }
}

async fn views(session: Session) -> Result<Json<Value>, Response> {
    let views = read_or_reset::<u64>(&session, "views").unwrap_or(0) + 1;
    session.insert("views", &views).map_err(internal)?;
    Ok(Json(json!({ "views": views })))
}

async fn whole_session(session: Session) -> Json<Value> {
    let mut data = serde_json::Map::new();
    if let Some(v) = read_or_reset::<u64>(&session, "views") {
        data.insert("views".into(), json!(v));
    }
    if let Some(u) = read_or_reset::<String>(&session, "user") {
        data.insert("user".into(), json!(u));
    }
    if let Some(c) = read_or_reset::<Vec<Item>>(&session, "cart") {
        data.insert("cart".into(), json!(c));
    }
    Json(Value::Object(data))
}

#[derive(Deserialize)]
struct Login {
    user: String,
    #[serde(default)]
    remember: bool,
}

async fn login(session: Session, Json(login): Json<Login>) -> Result<Json<Value>, Response> {
    if login.user.is_empty() || login.user.len() > 256 {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "user must be 1-256 bytes"})),
        )
            .into_response());
    }
    session.insert("user", &login.user).map_err(internal)?;
    // A new id and CSRF secret: whoever knew the pre-login ones knows nothing now.
    session.regenerate();
    session.set_subject(&login.user);
    session.set_expiry(if login.remember {
        SessionExpiry::Absolute(REMEMBER)
    } else {
        SessionExpiry::BrowserSession
    });
    Ok(Json(json!({ "user": login.user })))
}

async fn whoami(session: Session) -> Json<Value> {
    Json(json!({ "user": read_or_reset::<String>(&session, "user") }))
}

/// Ends the session and revokes it, so a copy of the cookie opens nothing, on any
/// server sharing the store. If the revocation cannot be recorded the layer answers
/// 503 instead of this body: the client is never told it logged out when it did not.
async fn logout(session: Session) -> Json<Value> {
    session.destroy();
    Json(json!({ "logged_out": true }))
}

/// Revokes every session of the logged-in user, on every device and server; 401
/// without a login. As for logout, a revocation that cannot be recorded is a 503.
async fn logout_all(session: Session) -> Response {
    let Some(user) = read_or_reset::<String>(&session, "user") else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not logged in"})),
        )
            .into_response();
    };
    session.log_out_everywhere(&user);
    Json(json!({ "revoked": true })).into_response()
}

#[derive(Deserialize)]
struct AddItems {
    items: u64,
}

async fn add_to_cart(session: Session, Json(add): Json<AddItems>) -> Result<Json<Value>, Response> {
    if add.items > MAX_ITEMS_PER_REQUEST {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("at most {MAX_ITEMS_PER_REQUEST} items per request")})),
        )
            .into_response());
    }
    let mut cart: Vec<Item> = read_or_reset(&session, "cart").unwrap_or_default();
    let mut rng = rand::rng();
    for _ in 0..add.items {
        cart.push(Item {
            sku: Alphanumeric.sample_string(&mut rng, 8),
            qty: rng.random_range(1..=9),
            price: rng.random_range(100..=99_999),
        });
    }
    session.insert("cart", &cart).map_err(internal)?;
    Ok(Json(json!({ "items": cart.len() })))
}

#[derive(Deserialize)]
struct FlashMessage {
    message: String,
}

async fn add_flash(
    session: Session,
    Json(flash): Json<FlashMessage>,
) -> Result<Json<Value>, Response> {
    // Messages flashed by earlier requests that nobody read yet stay queued.
    let mut messages: Vec<String> = session
        .get_flash("messages")
        .ok()
        .flatten()
        .unwrap_or_default();
    messages.push(flash.message);
    session.flash("messages", &messages).map_err(internal)?;
    Ok(Json(json!({ "queued": messages.len() })))
}

async fn read_flash(session: Session) -> Json<Value> {
    // Flash data lives one request: one that no longer decodes is simply dropped.
    let messages: Vec<String> = session
        .get_flash("messages")
        .ok()
        .flatten()
        .unwrap_or_default();
    Json(json!({ "messages": messages }))
}

async fn csrf(session: Session) -> Json<Value> {
    Json(json!({ "token": session.csrf_token() }))
}

async fn transfer(session: Session, headers: HeaderMap) -> Response {
    let submitted = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !session.verify_csrf_token(submitted) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "missing or wrong X-CSRF-Token"})),
        )
            .into_response();
    }
    Json(json!({ "ok": true })).into_response()
}
