//! Sessions for tests of your own app: build the cookie (or header) a logged-in
//! client would send, and read back the session a response sets.
//!
//! Everything here goes through the same code as a real request, with the
//! configuration's own keys, random nonces and store, so a forged cookie is exactly
//! what the app would have issued (and a session too big for a cookie really goes
//! to the store). Nothing here weakens anything: it only does what a client that
//! logged in would have done.
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{body::Body, http::{header, Request, StatusCode}, routing::get, Router};
//! use sealed_session::{forge, Keyring, Session, SessionConfig, SessionLayer};
//! use tower::ServiceExt as _;
//!
//! async fn whoami(session: Session) -> Result<String, sealed_session::Error> {
//!     Ok(session.get::<String>("user")?.unwrap_or_default())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = SessionConfig::builder(Keyring::generate()).build()?;
//! let app = Router::new().route("/", get(whoami)).layer(SessionLayer::new(config.clone()));
//!
//! let cookie = forge::cookie(&config, |s| s.insert("user", "ada")).await?;
//! let request = Request::get("/").header(header::COOKIE, cookie).body(Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! // The handler only read: nothing was written back.
//! assert!(matches!(forge::read(&config, response.headers()).await?, forge::Written::Unchanged));
//! # Ok::<(), sealed_session::Error>(()) }).unwrap();
//! # }
//! ```

use std::sync::Arc;

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::{headers, Error, Session, SessionConfig, Transport};

/// What a response did with the session, as [`read`] finds it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Written {
    /// The response wrote no session (nothing changed, or the path is ignored).
    Unchanged,
    /// The response removed it (after [`Session::destroy`]): a removal cookie, or an
    /// empty header.
    Removed,
    /// The session the response set, opened as the client's next request would open it.
    Session(Session),
}

impl Written {
    /// The session, if the response set one.
    pub fn session(self) -> Option<Session> {
        match self {
            Written::Session(s) => Some(s),
            Written::Unchanged | Written::Removed => None,
        }
    }
}

/// The `Cookie` request header value (`name=value`) of a new session that `fill`
/// prepared, sealed for `config` as a response of the app would seal it.
///
/// ```
/// use sealed_session::{forge, Keyring, SessionConfig};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = SessionConfig::builder(Keyring::generate()).build()?;
/// let cookie = forge::cookie(&config, |s| {
///     s.insert("user", "ada")?;
///     s.insert("roles", &["admin"])
/// })
/// .await?;
/// assert!(cookie.to_str().unwrap().starts_with("session="));
/// # Ok::<(), sealed_session::Error>(()) }).unwrap();
/// ```
///
/// # Errors
/// What `fill` returns; [`Error::Config`] when `config` carries sessions only in a
/// header (use [`header`]) or binds a fingerprint (the cookie would depend on the
/// request: load and save with [`headers::load_request`] and [`headers::save`]
/// instead); any error of [`headers::save`] (too big with no store, a store failure).
pub async fn cookie(
    config: &SessionConfig,
    fill: impl FnOnce(&Session) -> Result<(), Error>,
) -> Result<HeaderValue, Error> {
    refuse_fingerprint(config)?;
    if matches!(config.transport(), Transport::Header(_)) {
        return Err(Error::Config(
            "this configuration carries sessions in a header only: use forge::header".into(),
        ));
    }
    let out = seal(config, &HeaderMap::new(), fill).await?;
    let pair = out
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v).ok())
        .find(|c| c.name() == config.cookie_name())
        .map(|c| format!("{}={}", c.name(), c.value_raw().unwrap_or(c.value())))
        .ok_or(Error::InvalidHeader("Set-Cookie"))?;
    HeaderValue::try_from(pair).map_err(|_| Error::InvalidHeader("Cookie"))
}

/// The value of the configured session header (e.g. `X-Session`) of a new session
/// that `fill` prepared, for API-client tests.
///
/// # Errors
/// What `fill` returns; [`Error::Config`] when `config` uses cookies only, or binds a
/// fingerprint (see [`cookie()`]); any error of [`headers::save`].
pub async fn header(
    config: &SessionConfig,
    fill: impl FnOnce(&Session) -> Result<(), Error>,
) -> Result<HeaderValue, Error> {
    refuse_fingerprint(config)?;
    let Some(name) = config.transport().header() else {
        return Err(Error::Config(
            "this configuration carries sessions in a cookie: use forge::cookie".into(),
        ));
    };
    // An empty header starts a session that travels in the header.
    let mut request = HeaderMap::new();
    request.insert(name.clone(), HeaderValue::from_static(""));
    let out = seal(config, &request, fill).await?;
    out.get(name)
        .cloned()
        .ok_or(Error::InvalidHeader("session"))
}

/// Reads back the session a response wrote (its `Set-Cookie`, or the configured
/// header), opening it as the client's next request would.
///
/// ```
/// use http::HeaderMap;
/// use sealed_session::{forge, headers, Keyring, SessionConfig};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = SessionConfig::builder(Keyring::generate()).build()?;
/// let session = headers::load(&config, &HeaderMap::new()).await?;
/// session.insert("user", "ada")?;
/// let mut response = HeaderMap::new();
/// headers::save(&config, &session, &mut response).await?;
///
/// let written = forge::read(&config, &response).await?.session().expect("a session was set");
/// assert_eq!(written.get::<String>("user")?.as_deref(), Some("ada"));
/// # Ok::<(), sealed_session::Error>(()) }).unwrap();
/// ```
///
/// # Errors
/// Why the written value does not open (it never should: a test failure worth
/// reading), e.g. [`Error::Authentication`] for another configuration's keys;
/// [`Error::Store`] or [`Error::MissingInStore`] for a store-backed session whose
/// body cannot be read; [`Error::Config`] when `config` binds a fingerprint.
pub async fn read(config: &SessionConfig, response: &HeaderMap) -> Result<Written, Error> {
    refuse_fingerprint(config)?;
    let mut request = HeaderMap::new();
    if let Some(name) = config.transport().header() {
        if let Some(value) = response.get(name) {
            if value.as_bytes().iter().all(u8::is_ascii_whitespace) {
                return Ok(Written::Removed);
            }
            request.insert(name.clone(), value.clone());
        }
    }
    if request.is_empty() {
        let ours = response
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| Cookie::parse(v).ok())
            .rfind(|c| c.name() == config.cookie_name());
        let Some(ours) = ours else {
            return Ok(Written::Unchanged);
        };
        let removal = ours
            .max_age()
            .is_some_and(|age| age.is_zero() || age.is_negative());
        let value = ours.value_raw().unwrap_or(ours.value());
        if removal || value.is_empty() {
            return Ok(Written::Removed);
        }
        let pair = format!("{}={value}", ours.name());
        let pair = HeaderValue::try_from(pair).map_err(|_| Error::InvalidHeader("Cookie"))?;
        request.insert(COOKIE, pair);
    }
    let session = headers::load(config, &request).await?;
    if let Some(refused) = session.load_error() {
        // The session (the only other holder) goes first, so the error can be handed back.
        drop(session);
        return Err(Arc::try_unwrap(refused).unwrap_or_else(|shared| {
            Error::Config(format!("the response's session did not open: {shared}"))
        }));
    }
    Ok(Written::Session(session))
}

/// A fresh session loaded from `request`, filled, forced out and saved: the response headers.
async fn seal(
    config: &SessionConfig,
    request: &HeaderMap,
    fill: impl FnOnce(&Session) -> Result<(), Error>,
) -> Result<HeaderMap, Error> {
    let session = headers::load(config, request).await?;
    fill(&session)?;
    session.save();
    let mut out = HeaderMap::new();
    headers::save(config, &session, &mut out).await?;
    Ok(out)
}

fn refuse_fingerprint(config: &SessionConfig) -> Result<(), Error> {
    if config.fingerprint().is_some() {
        return Err(Error::Config(
            "this configuration binds a fingerprint, so a session depends on the request: \
             load and save it with headers::load_request and headers::save in the test"
                .into(),
        ));
    }
    Ok(())
}
