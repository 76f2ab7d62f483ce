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

use std::sync::Arc;

use crate::config::{Inner, Transport};
use crate::envelope::{self, Body, Meta};
use crate::session::{Loaded, Origin, SessionId, Source};
use crate::store::SessionStore;
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
    match load_now(config, headers, uri) {
        LoadNow::Done(session) => Ok(session),
        LoadNow::NeedsStore(resume) => resume.run(config, headers).await,
    }
}

/// The part of a load that needs no store.
pub(crate) enum LoadNow {
    /// The session, loaded without the store (most requests).
    Done(Session),
    /// A value is a pointer: its body must come from the store.
    NeedsStore(Resume),
}

/// Where a load stopped for the store: the opened pointer and what came before it.
pub(crate) struct Resume {
    now: i64,
    context: Option<Vec<u8>>,
    /// Index of the pointer among the request's candidate values.
    index: usize,
    pointer: Pointer,
    first_error: Option<Error>,
}

/// [`load_with`] up to the first value that needs the store: then it stops, so the
/// layer boxes a future only for those requests, and [`Resume::run`] goes on from
/// there without opening anything again.
pub(crate) fn load_now(config: &SessionConfig, headers: &HeaderMap, uri: &Uri) -> LoadNow {
    let inner = &*config.inner;
    let (now, found, context) = begin(inner, headers, uri);
    let aad = context.as_deref().unwrap_or(inner.cookie_name.as_bytes());
    let mut first_error = None;
    for (index, value) in found.tried().iter().enumerate() {
        match open_now(inner, aad, value, now) {
            Ok(Step::Inline(loaded)) => {
                return LoadNow::Done(Session::loaded(loaded, found.via_header, context))
            }
            Ok(Step::Pointer(pointer)) => {
                return LoadNow::NeedsStore(Resume {
                    now,
                    context,
                    index,
                    pointer,
                    first_error,
                })
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    LoadNow::Done(fresh(inner, now, &found, context, first_error))
}

impl Resume {
    /// Fetches the pointer's body; if that entry is gone or does not open, tries the
    /// request's remaining values, awaiting the store as needed.
    ///
    /// # Errors
    /// Only [`Error::Store`].
    pub(crate) async fn run(
        self,
        config: &SessionConfig,
        headers: &HeaderMap,
    ) -> Result<Session, Error> {
        let inner = &*config.inner;
        let Resume {
            now,
            context,
            index,
            pointer,
            mut first_error,
        } = self;
        let found = candidates(inner, headers);
        let aad = context.as_deref().unwrap_or(inner.cookie_name.as_bytes());
        let mut next = Some(Ok(Step::Pointer(pointer)));
        let mut rest = found.tried().iter().skip(index + 1);
        while let Some(step) = next.take() {
            let loaded = match step {
                Ok(Step::Inline(loaded)) => Ok(loaded),
                Ok(Step::Pointer(pointer)) => fetch_body(inner, pointer).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(loaded) => return Ok(Session::loaded(loaded, found.via_header, context)),
                Err(e @ Error::Store { .. }) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            next = rest.next().map(|value| open_now(inner, aad, value, now));
        }
        Ok(fresh(inner, now, &found, context, first_error))
    }
}

/// What every load starts from: the time, the values to try, the fingerprint context.
fn begin<'h>(
    inner: &Inner,
    headers: &'h HeaderMap,
    uri: &Uri,
) -> (i64, Candidates<'h>, Option<Vec<u8>>) {
    let now = inner.clock.unix();
    (
        now,
        candidates(inner, headers),
        fingerprint_context(inner, headers, uri),
    )
}

/// The fresh session a request gets when none of its values opened.
fn fresh(
    inner: &Inner,
    now: i64,
    found: &Candidates<'_>,
    context: Option<Vec<u8>>,
    first_error: Option<Error>,
) -> Session {
    let session = Session::fresh(now, inner.expiry.next_expiry(now, now), first_error);
    {
        let mut s = session.state();
        s.via_header = found.via_header;
        s.context = context;
        s.detached = !inner.create_on_missing && !found.any;
    }
    session
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
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == inner.cookie_name {
                if let Some(v) = cookie.value_raw() {
                    if !found.push(v) {
                        break 'headers;
                    }
                }
            }
        }
    }
    found
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

/// What a value holds once opened without the store.
enum Step {
    /// The whole session.
    Inline(Loaded),
    /// A pointer: the body is in the store.
    Pointer(Pointer),
}

/// An opened pointer value, waiting for its body.
struct Pointer {
    meta: Meta,
    source: Source,
}

/// Decodes, authenticates and decrypts a value, then [`step`]s it.
fn open_now(inner: &Inner, aad: &[u8], value: &str, now: i64) -> Result<Step, Error> {
    let codec = &inner.codec;
    let raw = codec.decode_text(value)?;
    let opened = codec.open_raw(aad, raw)?;
    let source = Source {
        plaintext: opened.plaintext,
        compressed: opened.header.compressed,
        pointer: opened.header.pointer,
        old_key: opened.old_key,
    };
    step(inner, source, now)
}

/// Decodes an authenticated plaintext and checks its expiry.
fn step(inner: &Inner, source: Source, now: i64) -> Result<Step, Error> {
    let (meta, body) = envelope::decode(&inner.codec, &source.plaintext, source.compressed)?;
    if now >= meta.expires_at {
        return Err(Error::Expired {
            expired_at: meta.expires_at,
        });
    }
    if source.pointer {
        return Ok(Step::Pointer(Pointer { meta, source }));
    }
    Ok(Step::Inline(Loaded {
        meta,
        body: body.unwrap_or_default(),
        origin: Origin::Inline,
        old_key: source.old_key,
        source,
    }))
}

/// Fetches and opens the body a pointer refers to.
async fn fetch_body(inner: &Inner, pointer: Pointer) -> Result<Loaded, Error> {
    let Pointer { meta, source } = pointer;
    let store = inner.store.as_ref().ok_or(Error::MissingInStore)?;
    let key = SessionId::from_bytes(meta.id).store_key();
    let stored = store.load(&key).await?.ok_or(Error::MissingInStore)?;
    let (body, body_old_key) =
        open_store_body(&inner.codec, &store_context(inner, &meta.id), stored)?;
    Ok(Loaded {
        meta,
        body,
        origin: Origin::Pointer,
        old_key: source.old_key || body_old_key,
        source,
    })
}

/// Decodes an authenticated plaintext into a session, fetching a pointer's body.
async fn from_source(inner: &Inner, source: Source, now: i64) -> Result<Loaded, Error> {
    match step(inner, source, now)? {
        Step::Inline(loaded) => Ok(loaded),
        Step::Pointer(pointer) => fetch_body(inner, pointer).await,
    }
}

async fn open_value(inner: &Inner, aad: &[u8], value: &str, now: i64) -> Result<Loaded, Error> {
    match open_now(inner, aad, value, now)? {
        Step::Inline(loaded) => Ok(loaded),
        Step::Pointer(pointer) => fetch_body(inner, pointer).await,
    }
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
    match save_now(config, session, headers)? {
        None => Ok(()),
        Some(work) => work.run(config, session, headers).await,
    }
}

/// Store work a save leaves once everything that needs no store is done.
pub(crate) enum StoreWork {
    /// Delete an entry nothing points at any more (after destroy, or after the body
    /// moved back into the cookie or to a new id).
    Delete([u8; 16]),
    /// Put the body in the store, then send the pointer.
    Pointer(Box<PointerWrite>),
}

pub(crate) struct PointerWrite {
    store: Arc<dyn SessionStore>,
    id: [u8; 16],
    /// The body sealed for the store, bound to the session id.
    sealed_body: Vec<u8>,
    /// The sealed pointer value.
    pointer: Vec<u8>,
    ttl: i64,
    via_header: bool,
    /// The entry the session had under another id, deleted once the pointer is out.
    stale: Option<[u8; 16]>,
    /// `postcard(Meta)` (the pointer's plaintext), kept for `reload`.
    meta_bytes: Vec<u8>,
}

impl StoreWork {
    /// Does the store part of a save.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails to take the body: then nothing is written
    /// to `headers` and the session stays unsaved.
    pub(crate) async fn run(
        self,
        config: &SessionConfig,
        session: &Session,
        headers: &mut HeaderMap,
    ) -> Result<(), Error> {
        let inner = &*config.inner;
        let write = match self {
            StoreWork::Delete(id) => {
                delete_quietly(inner, &id).await;
                return Ok(());
            }
            StoreWork::Pointer(write) => write,
        };
        let key = SessionId::from_bytes(write.id).store_key();
        let ttl = std::time::Duration::from_secs(write.ttl as u64);
        write.store.save(&key, &write.sealed_body, ttl).await?;
        write_value(inner, &write.pointer, write.via_header, write.ttl, headers)?;
        if let Some(stale) = write.stale {
            delete_quietly(inner, &stale).await;
        }
        let mut s = session.state();
        s.saved(
            Origin::Pointer,
            write.id,
            Source {
                plaintext: write.meta_bytes,
                compressed: false,
                pointer: true,
                old_key: false,
            },
        );
        Ok(())
    }
}

/// Everything [`save`] does that needs no store; the rest comes back as [`StoreWork`].
///
/// # Errors
/// As [`save`]; nothing is written to `headers` then.
pub(crate) fn save_now(
    config: &SessionConfig,
    session: &Session,
    headers: &mut HeaderMap,
) -> Result<Option<StoreWork>, Error> {
    let inner = &*config.inner;
    let now = inner.clock.unix();
    let write = match plan_save(inner, session, now)? {
        Plan::Nothing => return Ok(None),
        Plan::Destroy {
            had_value,
            via_header,
            pointer_id,
        } => {
            if had_value {
                write_removal(inner, via_header, headers);
            }
            return Ok(pointer_id.map(StoreWork::Delete));
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
    if size <= inner.budget {
        let raw = codec.seal_prepared(aad, meta_bytes, &prepared, false, None)?;
        write_value(inner, &raw, via_header, ttl, headers)?;
        session.state().saved(
            Origin::Inline,
            id,
            Source {
                plaintext,
                compressed: false,
                pointer: false,
                old_key: false,
            },
        );
        // The body left the store: its entry goes.
        return Ok((origin == Origin::Pointer).then_some(StoreWork::Delete(loaded_id)));
    }
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
    drop(prepared);
    plaintext.truncate(meta_len);
    Ok(Some(StoreWork::Pointer(Box::new(PointerWrite {
        store: Arc::clone(store),
        id,
        sealed_body,
        pointer,
        ttl,
        via_header,
        stale: (origin == Origin::Pointer && loaded_id != id).then_some(loaded_id),
        meta_bytes: plaintext,
    }))))
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
            let mut text = Vec::with_capacity(text_len);
            Codec::encode_text_into(raw, &mut text);
            let v = HeaderValue::try_from(text).map_err(|_| Error::Malformed("header value"))?;
            headers.insert(h.clone(), v);
            return Ok(());
        }
    }
    let name = inner.cookie_name.as_bytes();
    let attributes = inner.cookie_attributes.as_bytes();
    let mut text = Vec::with_capacity(name.len() + 1 + text_len + attributes.len() + 32);
    text.extend_from_slice(name);
    text.push(b'=');
    Codec::encode_text_into(raw, &mut text);
    text.extend_from_slice(attributes);
    if inner.expiry.is_persistent() {
        // The cookie crate writes Max-Age right after Path/Domain, where the attributes end.
        use std::io::Write as _;
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
