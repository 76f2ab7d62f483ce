//! Load a [`Session`] from request headers and write it back into response
//! headers, on plain `http` types: no framework needed.
//!
//! Loading never fails because of what the client sent: a bad value gives a
//! fresh session and [`Session::load_error`] says why. The only load error is
//! a store failure for a session whose body lives in the store.
//!
//! ```
//! use http::{header, HeaderMap, HeaderValue};
//! use sealed_session::{http as sessions, Keyring, SessionConfig};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let config = SessionConfig::builder(Keyring::generate()).build()?;
//! let session = sessions::load(&config, &HeaderMap::new()).await?;
//! session.insert("views", &1u32)?;
//! let mut response = HeaderMap::new();
//! sessions::save(&config, &session, &mut response).await?;
//! let set_cookie = response[header::SET_COOKIE].to_str().unwrap();
//! assert!(set_cookie.starts_with("session="));
//!
//! // Next request: the browser sends the cookie back.
//! let pair = set_cookie.split(';').next().unwrap();
//! let mut request = HeaderMap::new();
//! request.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
//! let session = sessions::load(&config, &request).await?;
//! assert_eq!(session.get::<u32>("views")?, Some(1));
//! # Ok::<(), sealed_session::Error>(()) }).unwrap();
//! ```

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};

use crate::config::{Inner, Transport};
use crate::envelope::{self, Body, Meta};
use crate::session::{Origin, SessionId};
use crate::{Codec, Error, Session, SessionConfig};

/// At most this many same-named cookies are tried, bounding the work one request can cause.
pub const MAX_CANDIDATES: usize = 4;

/// Loads the session from a request, using the configured fingerprint over its headers and URI.
///
/// # Errors
/// Only [`Error::Store`]: the request's session lives in the store and the store failed.
pub async fn load_request<B>(
    config: &SessionConfig,
    request: &Request<B>,
) -> Result<Session, Error> {
    load_with(config, request.headers(), request.uri()).await
}

/// Loads the session from request headers (a fingerprint, if configured, sees an empty URI).
///
/// # Errors
/// Only [`Error::Store`]: the request's session lives in the store and the store failed.
pub async fn load(config: &SessionConfig, headers: &HeaderMap) -> Result<Session, Error> {
    load_with(config, headers, &Uri::default()).await
}

pub(crate) async fn load_with(
    config: &SessionConfig,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Session, Error> {
    let inner = &*config.inner;
    let now = inner.clock.unix();
    let (candidates, via_header) = candidates(inner, headers);
    let context = context(inner, headers, uri);
    let mut first_error = None;
    for value in candidates.iter().take(MAX_CANDIDATES) {
        match open_value(inner, &context, value, now).await {
            Ok(session) => {
                session.state().via_header = via_header;
                session.state().context = context;
                return Ok(session);
            }
            Err(e @ Error::Store { .. }) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let brought_one = !candidates.is_empty();
    let session = Session::fresh(now, inner.expiry.next_expiry(now, now), first_error);
    {
        let mut s = session.state();
        s.via_header = via_header;
        s.context = context;
        s.detached = !inner.create_on_missing && !brought_one;
    }
    Ok(session)
}

/// The values to try, in request order, and whether they came from the header transport.
fn candidates<'h>(inner: &Inner, headers: &'h HeaderMap) -> (Vec<&'h str>, bool) {
    let header = match &inner.transport {
        Transport::Cookie => None,
        Transport::Header(h) => Some(h),
        Transport::CookieOrHeader(h) => headers.contains_key(h).then_some(h),
    };
    if let Some(h) = header {
        let values = headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        return (values, true);
    }
    let mut values = Vec::new();
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == inner.cookie_name {
                if let Some(v) = cookie.value_raw() {
                    values.push(v);
                }
            }
        }
    }
    (values, false)
}

fn context(inner: &Inner, headers: &HeaderMap, uri: &Uri) -> Vec<u8> {
    let mut ctx = inner.cookie_name.as_bytes().to_vec();
    if let Some(f) = &inner.fingerprint {
        ctx.push(0x01);
        ctx.extend(f(headers, uri));
    }
    ctx
}

/// AAD context of a store entry: the cookie name, a 0 byte (never in a cookie name), the id.
fn store_context(inner: &Inner, id: &[u8; 16]) -> Vec<u8> {
    let mut ctx = inner.cookie_name.as_bytes().to_vec();
    ctx.push(0x00);
    ctx.extend_from_slice(id);
    ctx
}

async fn open_value(
    inner: &Inner,
    context: &[u8],
    value: &str,
    now: i64,
) -> Result<Session, Error> {
    let codec = &inner.codec;
    let raw = codec.decode_text(value)?;
    let opened = codec.open_raw(context, &raw)?;
    let (meta, body) = envelope::decode(codec, &opened.plaintext, opened.header.compressed)?;
    if now >= meta.expires_at {
        return Err(Error::Expired {
            expired_at: meta.expires_at,
        });
    }
    if !opened.header.pointer {
        let session = Session::loaded(
            meta,
            body.unwrap_or_default(),
            Origin::Inline,
            opened.old_key,
        );
        session.state().source = Some(value.to_owned());
        return Ok(session);
    }
    let store = inner.store.as_ref().ok_or(Error::MissingInStore)?;
    let key = SessionId::from_bytes(meta.id).store_key();
    let stored = store.load(&key).await?.ok_or(Error::MissingInStore)?;
    let body = open_store_body(codec, &store_context(inner, &meta.id), &stored)?;
    let session = Session::loaded(meta, body.0, Origin::Pointer, opened.old_key || body.1);
    session.state().source = Some(value.to_owned());
    Ok(session)
}

/// Opens one sealed value as the session it holds (fetching the body for a pointer),
/// with the configured cookie name as context (no fingerprint). For tools and tests.
///
/// # Errors
/// Any open error, [`Error::Expired`], [`Error::MissingInStore`], [`Error::Store`].
pub async fn open(config: &SessionConfig, value: &str) -> Result<Session, Error> {
    let inner = &*config.inner;
    let context = inner.cookie_name.as_bytes().to_vec();
    let session = open_value(inner, &context, value.trim(), inner.clock.unix()).await?;
    session.state().context = context;
    Ok(session)
}

/// What an opened session value says about itself; see [`describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Description {
    /// The wire header (version, algorithm, flags, key id).
    pub header: crate::Header,
    /// True when a key other than the primary opened it.
    pub old_key: bool,
    /// The session id.
    pub id: SessionId,
    /// Creation time.
    pub created_at: time::OffsetDateTime,
    /// Last write.
    pub last_activity: time::OffsetDateTime,
    /// Expiry recorded in the envelope.
    pub expires_at: time::OffsetDateTime,
    /// True when the expiry has passed by the config's clock.
    pub expired: bool,
    /// True when a CSRF token was issued (the token itself is never shown).
    pub has_csrf_token: bool,
    /// Each value's key and encoded size; `None` for a pointer (the body is in the store).
    pub entries: Option<Vec<(String, usize)>>,
    /// Each pending flash entry's key and encoded size; `None` for a pointer.
    pub flash: Option<Vec<(String, usize)>>,
}

/// Opens a value and describes it without touching any store and without failing on expiry.
///
/// # Errors
/// Any open error (malformed, version, flags, unknown key id, authentication, limits).
pub fn describe(config: &SessionConfig, value: &str) -> Result<Description, Error> {
    let inner = &*config.inner;
    let codec = &inner.codec;
    let raw = codec.decode_text(value.trim())?;
    let opened = codec.open_raw(inner.cookie_name.as_bytes(), &raw)?;
    let (meta, body) = envelope::decode(codec, &opened.plaintext, opened.header.compressed)?;
    let sizes = |m: &std::collections::BTreeMap<String, Vec<u8>>| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect::<Vec<_>>()
    };
    let body = (!opened.header.pointer).then(|| body.unwrap_or_default());
    let at = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    Ok(Description {
        header: opened.header,
        old_key: opened.old_key,
        id: SessionId::from_bytes(meta.id),
        created_at: at(meta.created),
        last_activity: at(meta.last_active),
        expires_at: at(meta.expires_at),
        expired: inner.clock.unix() >= meta.expires_at,
        has_csrf_token: meta.csrf.is_some(),
        entries: body.as_ref().map(|b| sizes(&b.values)),
        flash: body.as_ref().map(|b| sizes(&b.flash)),
    })
}

fn open_store_body(codec: &Codec, context: &[u8], stored: &[u8]) -> Result<(Body, bool), Error> {
    let opened = codec.open_raw(context, stored)?;
    if opened.header.pointer {
        return Err(Error::Authentication);
    }
    let body = envelope::decode_body(codec, &opened.plaintext, opened.header.compressed)?;
    Ok((body, opened.old_key))
}

/// Re-reads the session from the value it was loaded from, dropping unsaved changes
/// (for a store-backed session the body is fetched from the store again).
///
/// # Errors
/// [`Error::Store`] if the store fails; any open error if the value no longer opens
/// (expired, key removed). A session that came with no value is reset to empty.
pub async fn reload(config: &SessionConfig, session: &Session) -> Result<(), Error> {
    let inner = &*config.inner;
    let (source, context) = {
        let s = session.state();
        (s.source.clone(), s.context.clone())
    };
    let now = inner.clock.unix();
    let fresh = match source {
        Some(value) => open_value(inner, &context, &value, now).await?,
        None => Session::fresh(now, inner.expiry.next_expiry(now, now), None),
    };
    session.replace_from(&fresh);
    Ok(())
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
    let inner = &*config.inner;
    let now = inner.clock.unix();
    let (meta, meta_bytes, body_bytes, origin, loaded_id, context, via_header) =
        match plan_save(inner, session, now)? {
            Plan::Nothing => return Ok(()),
            Plan::Destroy {
                had_value,
                via_header,
                pointer_id,
            } => {
                if had_value {
                    write_removal(inner, via_header, headers);
                }
                if let Some(id) = pointer_id {
                    delete_quietly(inner, &id).await;
                }
                return Ok(());
            }
            Plan::Write {
                meta,
                meta_bytes,
                body_bytes,
                origin,
                loaded_id,
                context,
                via_header,
            } => (
                meta, meta_bytes, body_bytes, origin, loaded_id, context, via_header,
            ),
        };
    let codec = &inner.codec;
    let ttl = meta.expires_at.saturating_sub(now).max(1);
    let prepared = codec.prepare_body(&body_bytes)?;
    let inline_len = codec.sealed_text_len(meta_bytes.len() + prepared.bytes.len());
    let size = value_size(inner, inline_len, via_header);
    let (value, new_origin) = if size <= inner.budget {
        let raw = codec.seal_prepared(&context, &meta_bytes, &prepared, false, None)?;
        (Codec::encode_text(&raw), Origin::Inline)
    } else {
        let Some(store) = &inner.store else {
            return Err(Error::TooLarge {
                what: "session cookie (and no store is configured to hold the body)",
                size,
                limit: inner.budget,
            });
        };
        // The store gets the body sealed again, bound to this session id.
        let sealed_body =
            codec.seal_prepared(&store_context(inner, &meta.id), &[], &prepared, false, None)?;
        let key = SessionId::from_bytes(meta.id).store_key();
        store
            .save(
                &key,
                &sealed_body,
                std::time::Duration::from_secs(ttl as u64),
            )
            .await?;
        let pointer =
            Codec::encode_text(&codec.seal_raw(&context, &meta_bytes, &[], true, None)?);
        let size = value_size(inner, pointer.len(), via_header);
        if size > inner.budget {
            return Err(Error::TooLarge {
                what: "pointer cookie",
                size,
                limit: inner.budget,
            });
        }
        (pointer, Origin::Pointer)
    };
    write_value(inner, &value, via_header, Some(ttl), headers)?;
    // The old store entry goes when the body left the store or moved to a new id.
    if origin == Origin::Pointer && (new_origin == Origin::Inline || loaded_id != meta.id) {
        delete_quietly(inner, &loaded_id).await;
    }
    let mut s = session.state();
    s.origin = new_origin;
    s.loaded_id = meta.id;
    s.changed = false;
    s.force_save = false;
    s.touched = false;
    s.needs_reseal = false;
    s.source = Some(value);
    Ok(())
}

enum Plan {
    Nothing,
    Destroy {
        had_value: bool,
        via_header: bool,
        pointer_id: Option<[u8; 16]>,
    },
    Write {
        meta: Meta,
        meta_bytes: Vec<u8>,
        body_bytes: Vec<u8>,
        origin: Origin,
        loaded_id: [u8; 16],
        context: Vec<u8>,
        via_header: bool,
    },
}

/// Decides what `save` must do and encodes the envelope, under the session lock and
/// without awaiting (encoding here spares cloning the data out of the lock).
fn plan_save(inner: &Inner, session: &Session, now: i64) -> Result<Plan, Error> {
    let mut s = session.state();
    if s.detached && !s.force_save {
        if s.changed {
            tracing::debug!(
                "session not saved: the request brought none and create_on_missing is off"
            );
        }
        return Ok(Plan::Nothing);
    }
    if s.destroyed {
        let plan = Plan::Destroy {
            had_value: s.origin != Origin::Fresh,
            via_header: s.via_header,
            pointer_id: (s.origin == Origin::Pointer).then_some(s.loaded_id),
        };
        s.origin = Origin::Fresh;
        s.changed = false;
        s.destroyed = false;
        s.source = None;
        return Ok(plan);
    }
    let renew = s.touched || inner.always_save || inner.expiry.renewal_due(&s.meta, now);
    let write = s.changed || s.force_save || s.needs_reseal || (renew && s.origin != Origin::Fresh);
    if !write {
        return Ok(Plan::Nothing);
    }
    s.meta.last_active = now;
    s.meta.expires_at = inner.expiry.next_expiry(s.meta.created, now);
    Ok(Plan::Write {
        meta_bytes: s.meta.encode()?,
        body_bytes: s.body.encode()?,
        meta: s.meta.clone(),
        origin: s.origin,
        loaded_id: s.loaded_id,
        context: s.context.clone(),
        via_header: s.via_header,
    })
}

/// Bytes a value of `value_len` takes: `name=value` for a cookie, the value for a header.
fn value_size(inner: &Inner, value_len: usize, via_header: bool) -> usize {
    if via_header {
        value_len
    } else {
        inner.cookie_name.len() + 1 + value_len
    }
}

async fn delete_quietly(inner: &Inner, id: &[u8; 16]) {
    if let Some(store) = &inner.store {
        let key = SessionId::from_bytes(*id).store_key();
        if let Err(e) = store.delete(&key).await {
            // The cookie no longer points at it; it expires with its TTL.
            tracing::warn!(error = %e, "could not delete a stale session store entry; it will expire");
        }
    }
}

fn header_name(inner: &Inner) -> Option<&HeaderName> {
    match &inner.transport {
        Transport::Cookie => None,
        Transport::Header(h) | Transport::CookieOrHeader(h) => Some(h),
    }
}

fn write_value(
    inner: &Inner,
    value: &str,
    via_header: bool,
    ttl: Option<i64>,
    headers: &mut HeaderMap,
) -> Result<(), Error> {
    if via_header {
        if let Some(h) = header_name(inner) {
            let v = HeaderValue::from_str(value).map_err(|_| Error::Malformed("header value"))?;
            headers.insert(h.clone(), v);
            return Ok(());
        }
    }
    let mut cookie = base_cookie(inner, value);
    if inner.expiry.is_persistent() {
        if let Some(ttl) = ttl {
            cookie.set_max_age(time::Duration::seconds(ttl));
        }
    }
    let v = HeaderValue::from_str(&cookie.to_string()).map_err(|_| Error::Malformed("cookie"))?;
    headers.append(SET_COOKIE, v);
    Ok(())
}

fn write_removal(inner: &Inner, via_header: bool, headers: &mut HeaderMap) {
    if via_header {
        if let Some(h) = header_name(inner) {
            headers.insert(h.clone(), HeaderValue::from_static(""));
            return;
        }
    }
    let mut cookie = base_cookie(inner, "");
    cookie.make_removal();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, v);
    }
}

fn base_cookie<'a>(inner: &'a Inner, value: &'a str) -> Cookie<'a> {
    let mut cookie = Cookie::build((inner.cookie_name.as_str(), value))
        .path(inner.path.as_str())
        .secure(inner.secure)
        .http_only(inner.http_only)
        .same_site(inner.same_site)
        .build();
    if let Some(d) = &inner.domain {
        cookie.set_domain(d.as_str());
    }
    cookie
}
