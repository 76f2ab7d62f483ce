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
use crate::envelope::{self, Body};
use crate::session::{Loaded, Origin, SessionId, Source};
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
    let found = candidates(inner, headers);
    let context = fingerprint_context(inner, headers, uri);
    let aad = context.as_deref().unwrap_or(inner.cookie_name.as_bytes());
    let mut first_error = None;
    for value in found.tried() {
        match open_value(inner, aad, value, now).await {
            Ok(loaded) => return Ok(Session::loaded(loaded, found.via_header, context)),
            Err(e @ Error::Store { .. }) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let session = Session::fresh(now, inner.expiry.next_expiry(now, now), first_error);
    {
        let mut s = session.state();
        s.via_header = found.via_header;
        s.context = context;
        s.detached = !inner.create_on_missing && !found.any;
    }
    Ok(session)
}

/// The values a request brought, in request order: at most [`MAX_CANDIDATES`] of
/// them are kept (on the stack) and tried.
struct Candidates<'h> {
    values: [&'h str; MAX_CANDIDATES],
    len: usize,
    /// The request brought at least one value.
    any: bool,
    /// They came in the header transport.
    via_header: bool,
}

impl<'h> Candidates<'h> {
    /// Keeps `value` if there is room; returns false once full.
    fn push(&mut self, value: &'h str) -> bool {
        self.any = true;
        if self.len < MAX_CANDIDATES {
            self.values[self.len] = value;
            self.len += 1;
        }
        self.len < MAX_CANDIDATES
    }

    fn tried(&self) -> &[&'h str] {
        &self.values[..self.len]
    }
}

/// The values to try, in request order, and whether they came from the header transport.
fn candidates<'h>(inner: &Inner, headers: &'h HeaderMap) -> Candidates<'h> {
    let header = match &inner.transport {
        Transport::Cookie => None,
        Transport::Header(h) => Some(h),
        Transport::CookieOrHeader(h) => headers.contains_key(h).then_some(h),
    };
    let mut found = Candidates {
        values: [""; MAX_CANDIDATES],
        len: 0,
        any: false,
        via_header: header.is_some(),
    };
    if let Some(h) = header {
        let values = headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        for v in values {
            if !found.push(v) {
                break;
            }
        }
        return found;
    }
    'headers: for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for value in cookie_values(text, &inner.cookie_name) {
            if !found.push(value) {
                break 'headers;
            }
        }
    }
    found
}

/// The values of the cookies called `name` in a `Cookie` request header, in order.
///
/// This is what `cookie::Cookie::split_parse(text)` followed by a name filter and
/// `value_raw()` yields (a test holds the two equal on arbitrary input), without
/// building a whole `Cookie` (with its attribute fields) per pair: in callgrind that
/// took 11% of the instructions of loading a small session.
fn cookie_values<'t, 'n>(
    text: &'t str,
    name: &'n str,
) -> impl Iterator<Item = &'t str> + use<'t, 'n> {
    text.split(';').filter_map(move |pair| {
        let (n, v) = pair.split_once('=')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// The AAD context when a fingerprint is configured: cookie name, 0x01, fingerprint.
/// Without one the context is the cookie name, borrowed from the config.
fn fingerprint_context(inner: &Inner, headers: &HeaderMap, uri: &Uri) -> Option<Vec<u8>> {
    let f = inner.fingerprint.as_ref()?;
    let mut ctx = inner.cookie_name.as_bytes().to_vec();
    ctx.push(0x01);
    ctx.extend(f(headers, uri));
    Some(ctx)
}

/// AAD context of a store entry: the cookie name, a 0 byte (never in a cookie name), the id.
fn store_context(inner: &Inner, id: &[u8; 16]) -> Vec<u8> {
    let mut ctx = inner.cookie_name.as_bytes().to_vec();
    ctx.push(0x00);
    ctx.extend_from_slice(id);
    ctx
}

async fn open_value(inner: &Inner, aad: &[u8], value: &str, now: i64) -> Result<Loaded, Error> {
    let codec = &inner.codec;
    let raw = codec.decode_text(value)?;
    let opened = codec.open_raw(aad, raw)?;
    let source = Source {
        plaintext: opened.plaintext,
        compressed: opened.header.compressed,
        pointer: opened.header.pointer,
        old_key: opened.old_key,
    };
    from_source(inner, source, now).await
}

/// Decodes an authenticated plaintext into a session, checking expiry and fetching
/// the body from the store for a pointer.
async fn from_source(inner: &Inner, source: Source, now: i64) -> Result<Loaded, Error> {
    let codec = &inner.codec;
    let (meta, body) = envelope::decode(codec, &source.plaintext, source.compressed)?;
    if now >= meta.expires_at {
        return Err(Error::Expired {
            expired_at: meta.expires_at,
        });
    }
    if !source.pointer {
        return Ok(Loaded {
            meta,
            body: body.unwrap_or_default(),
            origin: Origin::Inline,
            old_key: source.old_key,
            source,
        });
    }
    let store = inner.store.as_ref().ok_or(Error::MissingInStore)?;
    let key = SessionId::from_bytes(meta.id).store_key();
    let stored = store.load(&key).await?.ok_or(Error::MissingInStore)?;
    let (body, body_old_key) = open_store_body(codec, &store_context(inner, &meta.id), stored)?;
    Ok(Loaded {
        meta,
        body,
        origin: Origin::Pointer,
        old_key: source.old_key || body_old_key,
        source,
    })
}

/// Opens one sealed value as the session it holds (fetching the body for a pointer),
/// with the configured cookie name as context (no fingerprint). For tools and tests.
///
/// # Errors
/// Any open error, [`Error::Expired`], [`Error::MissingInStore`], [`Error::Store`].
pub async fn open(config: &SessionConfig, value: &str) -> Result<Session, Error> {
    let inner = &*config.inner;
    let aad = inner.cookie_name.as_bytes();
    let loaded = open_value(inner, aad, value.trim(), inner.clock.unix()).await?;
    Ok(Session::loaded(loaded, false, None))
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
    let opened = codec.open_raw(inner.cookie_name.as_bytes(), raw)?;
    let (meta, body) = envelope::decode(codec, &opened.plaintext, opened.header.compressed)?;
    let sizes = |m: &crate::map::ValueMap| {
        m.iter()
            .map(|(k, v)| (k.to_owned(), v.len()))
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

fn open_store_body(codec: &Codec, context: &[u8], stored: Vec<u8>) -> Result<(Body, bool), Error> {
    let opened = codec.open_raw(context, stored)?;
    if opened.header.pointer {
        return Err(Error::Authentication);
    }
    let body = envelope::decode_body(codec, &opened.plaintext, opened.header.compressed)?;
    Ok((body, opened.old_key))
}

/// Re-reads the session as it was loaded or last saved, dropping unsaved changes
/// (for a store-backed session the body is fetched from the store again).
///
/// # Errors
/// [`Error::Store`] if the store fails; [`Error::Expired`] if the session has expired
/// since; [`Error::MissingInStore`] if its store entry is gone. A session that came
/// with no value is reset to empty.
pub async fn reload(config: &SessionConfig, session: &Session) -> Result<(), Error> {
    let inner = &*config.inner;
    let source = session.state().source.clone();
    let now = inner.clock.unix();
    let fresh = match source {
        Some(source) => Session::loaded(from_source(inner, source, now).await?, false, None),
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
    let write = match plan_save(inner, session, now)? {
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
        Plan::Write(write) => write,
    };
    let WritePlan {
        id,
        expires_at,
        mut plaintext,
        meta_len,
        origin,
        loaded_id,
        context,
        via_header,
    } = write;
    let codec = &inner.codec;
    let aad = context.as_deref().unwrap_or(inner.cookie_name.as_bytes());
    let ttl = expires_at.saturating_sub(now).max(1);
    let (meta_bytes, body_bytes) = plaintext.split_at(meta_len);
    let prepared = codec.prepare_body(body_bytes)?;
    let inline_len = codec.sealed_text_len(meta_len + prepared.bytes.len());
    let size = value_size(inner, inline_len, via_header);
    let new_origin = if size <= inner.budget {
        let raw = codec.seal_prepared(aad, meta_bytes, &prepared, false, None)?;
        write_value(inner, &raw, via_header, ttl, headers)?;
        Origin::Inline
    } else {
        let Some(store) = &inner.store else {
            return Err(Error::TooLarge {
                what: "session cookie (and no store is configured to hold the body)",
                size,
                limit: inner.budget,
            });
        };
        let pointer = codec.seal_raw(aad, meta_bytes, &[], true, None)?;
        let size = value_size(inner, Codec::text_len(pointer.len()), via_header);
        if size > inner.budget {
            return Err(Error::TooLarge {
                what: "pointer cookie",
                size,
                limit: inner.budget,
            });
        }
        // The store gets the body sealed again, bound to this session id.
        let sealed_body =
            codec.seal_prepared(&store_context(inner, &id), &[], &prepared, false, None)?;
        let key = SessionId::from_bytes(id).store_key();
        store
            .save(
                &key,
                &sealed_body,
                std::time::Duration::from_secs(ttl as u64),
            )
            .await?;
        write_value(inner, &pointer, via_header, ttl, headers)?;
        Origin::Pointer
    };
    // The old store entry goes when the body left the store or moved to a new id.
    if origin == Origin::Pointer && (new_origin == Origin::Inline || loaded_id != id) {
        delete_quietly(inner, &loaded_id).await;
    }
    if new_origin == Origin::Pointer {
        plaintext.truncate(meta_len);
    }
    let mut s = session.state();
    s.origin = new_origin;
    s.loaded_id = id;
    s.changed = false;
    s.force_save = false;
    s.touched = false;
    s.needs_reseal = false;
    s.source = Some(Source {
        plaintext,
        compressed: false,
        pointer: new_origin == Origin::Pointer,
        old_key: false,
    });
    Ok(())
}

enum Plan {
    Nothing,
    Destroy {
        had_value: bool,
        via_header: bool,
        pointer_id: Option<[u8; 16]>,
    },
    Write(WritePlan),
}

/// What `save` seals, taken out of the session lock.
struct WritePlan {
    id: [u8; 16],
    expires_at: i64,
    /// `postcard(Meta) || postcard(Body)`, uncompressed.
    plaintext: Vec<u8>,
    /// Where the body starts in `plaintext`.
    meta_len: usize,
    origin: Origin,
    loaded_id: [u8; 16],
    context: Option<Vec<u8>>,
    via_header: bool,
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
    let (plaintext, meta_len) = envelope::encode(&s.meta, &s.body)?;
    Ok(Plan::Write(WritePlan {
        id: s.meta.id,
        expires_at: s.meta.expires_at,
        plaintext,
        meta_len,
        origin: s.origin,
        loaded_id: s.loaded_id,
        context: s.context.clone(),
        via_header: s.via_header,
    }))
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

/// Writes a sealed value as the header, or as a Set-Cookie built in one buffer:
/// `name=` + base64url + the attributes formatted once at config time + `Max-Age`.
fn write_value(
    inner: &Inner,
    raw: &[u8],
    via_header: bool,
    ttl: i64,
    headers: &mut HeaderMap,
) -> Result<(), Error> {
    let text_len = Codec::text_len(raw.len());
    if via_header {
        if let Some(h) = header_name(inner) {
            let mut text = String::with_capacity(text_len);
            Codec::encode_text_into(raw, &mut text);
            let v = HeaderValue::try_from(text).map_err(|_| Error::Malformed("header value"))?;
            headers.insert(h.clone(), v);
            return Ok(());
        }
    }
    let persistent = inner.expiry.is_persistent();
    let mut text = String::with_capacity(
        inner.cookie_name.len() + 1 + text_len + inner.cookie_attributes.len() + 32,
    );
    text.push_str(&inner.cookie_name);
    text.push('=');
    Codec::encode_text_into(raw, &mut text);
    text.push_str(&inner.cookie_attributes);
    if persistent {
        // The cookie crate writes Max-Age right after Path/Domain, where the attributes end.
        use std::fmt::Write as _;
        let _ = write!(text, "; Max-Age={ttl}");
    }
    let v = HeaderValue::try_from(text).map_err(|_| Error::Malformed("cookie"))?;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::cookie_values;

    proptest! {
        /// Same values as the `cookie` crate finds, on headers full of near misses.
        #[test]
        fn cookie_values_match_the_cookie_crate(
            text in r#"((session|sess|sessions| session |\tsession|x|)( ?= ?| |)[a-z0-9= "\t_-]{0,6}(;|; |;;| ;)?){0,8}"#
        ) {
            let ours: Vec<&str> = cookie_values(&text, "session").collect();
            let theirs: Vec<&str> = cookie::Cookie::split_parse(text.as_str())
                .flatten()
                .filter(|c| c.name() == "session")
                .map(|c| c.value_raw().unwrap())
                .collect();
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn cookie_values_examples() {
        let all = |t| cookie_values(t, "session").collect::<Vec<_>>();
        assert_eq!(all("session=abc"), ["abc"]);
        assert_eq!(all("a=1; session=abc; b=2;session= def "), ["abc", "def"]);
        assert_eq!(all("sessions=x; session; =y; session=a=b"), ["a=b"]);
        assert_eq!(all(""), Vec::<&str>::new());
    }
}
