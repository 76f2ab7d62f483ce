//! The demo server; its HTTP contract is examples/README.md.
//!
//! ```text
//! cargo run --example server                      # 127.0.0.1:3000, in-memory store
//! ADDR=127.0.0.1:8080 SESSION_SECURE=0 SESSION_KEYS=new,old SESSION_STORE=file:/tmp/sessions cargo run --example server
//! ```
//! Env: `ADDR`; `SESSION_KEYS` (comma-separated base64 secrets, newest first; generated
//! if unset); `SESSION_STORE` = `memory` | `redis://host:port` (needs `--features redis`)
//! | `file:DIR`; `SESSION_SECURE=0` for plain-http cookies in local use.

use std::sync::Arc;

use axum::extract::Json;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use sealed_session::store::{FileStore, SessionStore};
use sealed_session::{
    store::MemoryStore, ErrorKind, Keyring, Session, SessionConfig, SessionLayer, Transport,
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
    let store = store_from_env().await?;
    let secure = std::env::var("SESSION_SECURE").map_or(true, |v| v != "0");
    let config = SessionConfig::builder(keyring)
        .secure(secure)
        .transport(Transport::CookieOrHeader(HeaderName::from_static(
            "x-session",
        )))
        .store_arc(store)
        .build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(config)).await?;
    Ok(())
}

async fn store_from_env() -> Result<Arc<dyn SessionStore>, Box<dyn std::error::Error>> {
    let spec = std::env::var("SESSION_STORE").unwrap_or_else(|_| "memory".into());
    if spec == "memory" || spec.is_empty() {
        return Ok(Arc::new(MemoryStore::default()));
    }
    if let Some(dir) = spec.strip_prefix("file:") {
        return Ok(Arc::new(FileStore::open(dir).await?));
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        #[cfg(feature = "redis")]
        {
            let store = sealed_session::store::RedisStore::connect(&spec).await?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "redis"))]
        return Err("SESSION_STORE=redis://… needs the redis feature: cargo run --features redis --example server".into());
    }
    Err(format!("SESSION_STORE={spec:?}: expected memory, redis://host:port or file:DIR").into())
}

/// The demo router; `pub` so tests can drive the very same app in-process.
pub fn app(config: SessionConfig) -> Router {
    Router::new()
        .route("/", get(views))
        .route("/session", get(whole_session))
        .route("/login", post(login))
        .route("/logout", post(logout))
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
    let message = if kind == ErrorKind::Store {
        "session store unavailable, try again later"
    } else {
        "the session could not be saved"
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

/// A session value that does not decode is a server bug, not the client's: 500 with a reason.
fn internal(e: sealed_session::Error) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

async fn views(session: Session) -> Result<Json<Value>, Response> {
    let views = session.get_or("views", 0u64).map_err(internal)? + 1;
    session.insert("views", &views).map_err(internal)?;
    Ok(Json(json!({ "views": views })))
}

async fn whole_session(session: Session) -> Result<Json<Value>, Response> {
    let mut data = serde_json::Map::new();
    if let Some(v) = session.get::<u64>("views").map_err(internal)? {
        data.insert("views".into(), json!(v));
    }
    if let Some(u) = session.get::<String>("user").map_err(internal)? {
        data.insert("user".into(), json!(u));
    }
    if let Some(c) = session.get::<Vec<Item>>("cart").map_err(internal)? {
        data.insert("cart".into(), json!(c));
    }
    Ok(Json(Value::Object(data)))
}

#[derive(Deserialize)]
struct Login {
    user: String,
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
    session.regenerate();
    Ok(Json(json!({ "user": login.user })))
}

async fn logout(session: Session) -> Json<Value> {
    session.destroy();
    Json(json!({ "logged_out": true }))
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
    let mut cart: Vec<Item> = session.get_or_default("cart").map_err(internal)?;
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
        .map_err(internal)?
        .unwrap_or_default();
    messages.push(flash.message);
    session.flash("messages", &messages).map_err(internal)?;
    Ok(Json(json!({ "queued": messages.len() })))
}

async fn read_flash(session: Session) -> Result<Json<Value>, Response> {
    let messages: Vec<String> = session
        .get_flash("messages")
        .map_err(internal)?
        .unwrap_or_default();
    Ok(Json(json!({ "messages": messages })))
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
