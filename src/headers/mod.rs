//! Load a [`Session`] from request headers and write it back into response
//! headers, on plain `http` types: no framework needed.
//!
//! Loading never fails because of what the client sent: a bad value gives a
//! fresh session and [`Session::load_error`] says why. The only load errors are
//! a store failure for a session whose body lives in the store, and
//! [`load`] given a configuration with a fingerprint (use [`load_request`]).
//!
//! These functions do what they are asked on any request: the configuration's
//! [`ignore_path`](crate::SessionConfigBuilder::ignore_path) list is applied by
//! [`SessionLayer`](crate::SessionLayer) only. Without the layer, check
//! [`SessionConfig::is_ignored_path`] before loading if you want the same rule.
//!
//! ```
//! use http::{header, HeaderMap, HeaderValue};
//! use sealed_session::{headers, Keyring, SessionConfig};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = SessionConfig::builder(Keyring::generate()).build()?;
//! let session = headers::load(&config, &HeaderMap::new()).await?;
//! session.insert("views", &1u32)?;
//! let mut response = HeaderMap::new();
//! headers::save(&config, &session, &mut response).await?;
//! let set_cookie = response[header::SET_COOKIE].to_str().unwrap();
//! assert!(set_cookie.starts_with("session="));
//!
//! // Next request: the browser sends the cookie back.
//! let pair = set_cookie.split(';').next().unwrap();
//! let mut request = HeaderMap::new();
//! request.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
//! let session = headers::load(&config, &request).await?;
//! assert_eq!(session.get::<u32>("views")?, Some(1));
//! # Ok::<(), sealed_session::Error>(()) }).unwrap();
//! ```

use http::{HeaderMap, Request, Uri};

use crate::{Error, Session, SessionConfig};

mod load;
mod read;
mod save;
mod write;

pub(crate) use load::{fetch_body, start_load, unseal, LoadStep, Unsealed};
#[cfg(feature = "tower")]
pub(crate) use load::{log_refused, start_load_lazy};
pub(crate) use save::{start_save, SaveStep};

/// Loads the session from a request, using the configured fingerprint over its headers and URI.
///
/// # Errors
/// [`Error::Store`]: the request's session lives in the store and the store failed;
/// [`Error::RevocationUnavailable`]: its session has a subject and the revocation
/// list is staler than allowed.
pub async fn load_request<B>(
    config: &SessionConfig,
    request: &Request<B>,
) -> Result<Session, Error> {
    load_with(config, request.headers(), request.uri()).await
}

/// Loads the session from request headers.
///
/// A configuration with a [fingerprint](crate::SessionConfigBuilder::fingerprint) is
/// refused: the fingerprint sees the request URI, which this function does not have,
/// so a session would silently open here and not in the layer (or the other way
/// round). Use [`load_request`] for such a configuration.
///
/// # Errors
/// As [`load_request`], and [`Error::Config`] when the configuration has a fingerprint.
pub async fn load(config: &SessionConfig, headers: &HeaderMap) -> Result<Session, Error> {
    if config.fingerprint().is_some() {
        return Err(Error::Config(
            "this configuration has a fingerprint, which sees the request URI: \
             load with headers::load_request (or SessionLayer), not headers::load"
                .into(),
        ));
    }
    load_with(config, headers, &Uri::default()).await
}

async fn load_with(
    config: &SessionConfig,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Session, Error> {
    match start_load(config, headers, uri) {
        LoadStep::Done(session) => Ok(session),
        LoadStep::FetchBody(fetch) => fetch.finish(config, headers).await,
        LoadStep::Refused(e) => Err(e),
    }
}

/// Re-reads the session as it was loaded or last saved, dropping unsaved changes
/// (for a store-backed session the body is fetched from the store again).
///
/// # Errors
/// [`Error::Store`] if the store fails; [`Error::Expired`] if the session has expired
/// since; [`Error::MissingInStore`] if its store entry is gone. A session that came
/// with no value is reset to empty.
pub async fn reload(config: &SessionConfig, session: &Session) -> Result<(), Error> {
    load::reload(config, session).await
}

/// Writes the session into response headers as the rules say: Set-Cookie (or the
/// header) only when it changed, a renewal is due, an old key opened it, or a save
/// was forced; a removal cookie after destroy.
///
/// A body over the cookie budget goes to the store and the cookie carries a sealed
/// pointer; when it shrinks back it returns to the cookie and the store entry goes.
///
/// # Errors
/// [`Error::TooLarge`] when the session does not fit the budget and no store is
/// configured; [`Error::Store`] when the store fails. In both cases nothing is
/// written to `headers`: the client keeps its previous session.
pub async fn save(
    config: &SessionConfig,
    session: &Session,
    headers: &mut HeaderMap,
) -> Result<(), Error> {
    match start_save(config, session, headers)? {
        SaveStep::Done => Ok(()),
        SaveStep::Store(work) => work.finish(config, session, headers).await,
    }
}
