//! Loading: try the request's values in order, open the first that authenticates
//! and has not expired, and fetch a pointer's body from the store.
//!
//! Most requests never need the store, so loading is split: [`start_load`] does
//! everything that needs none and stops at the first pointer; [`BodyFetch::finish`]
//! goes on from there without opening anything twice.

use http::{HeaderMap, Uri};
use sha2::{Digest, Sha256};

use super::read::{candidates, fingerprint_context, Candidates};
use crate::config::FingerprintMode;
use crate::envelope::{self, Contents, Meta, FINGERPRINT_TAG_LEN};
use crate::guard;
use crate::id::Entry;
use crate::session::{Admission, Arrival, Carrier, Loaded, Residence, Snapshot, State};
use crate::{codec, Error, Session, SessionConfig, SessionId};

/// Where a load stands once everything that needs no store is done.
pub(crate) enum LoadStep {
    /// The session, loaded without the store (most requests).
    Done(Session),
    /// A value is a pointer: its body must come from the store.
    FetchBody(Box<BodyFetch>),
    /// The request cannot be served now: the revocation list is too stale to tell
    /// whether its session was revoked ([`Error::RevocationUnavailable`]).
    Refused(Error),
}

/// A load stopped at a pointer: the opened pointer and what came before it.
pub(crate) struct BodyFetch {
    now: i64,
    request: Request,
    /// Index of the pointer among the request's candidate values.
    index: usize,
    pointer: PointerMeta,
    first_error: Option<Error>,
}

/// What a value holds once unsealed without the store.
pub(crate) enum Unsealed {
    /// The whole session.
    Whole(Loaded),
    /// A pointer: the body is in the store.
    Pointer(PointerMeta),
}

/// An opened pointer value, waiting for its body.
pub(crate) struct PointerMeta {
    meta: Meta,
    entry: Entry,
    snapshot: Snapshot,
}

/// What a load takes from the request besides the values: the AAD context of a
/// strict fingerprint, the tag of a logged one, whether it counts as activity.
struct Request {
    context: Option<Vec<u8>>,
    fingerprint: Option<[u8; FINGERPRINT_TAG_LEN]>,
    passive: bool,
}

impl Request {
    fn of(config: &SessionConfig, headers: &HeaderMap, uri: &Uri) -> Self {
        let fingerprint = fingerprint_context(config, headers, uri);
        let (context, fingerprint) = match config.fingerprint_mode() {
            FingerprintMode::LogOnly => (None, fingerprint.map(|f| tag(&f))),
            _ => (fingerprint, None),
        };
        Request {
            context,
            fingerprint,
            passive: config.is_passive_path(uri.path()),
        }
    }

    /// The AAD context: the fingerprint's, or the cookie name.
    fn aad<'a>(&'a self, config: &'a SessionConfig) -> &'a [u8] {
        self.context
            .as_deref()
            .unwrap_or(config.cookie_name().as_bytes())
    }

    /// The session a value opened to, with what the request brings.
    fn session(self, config: &SessionConfig, carrier: Carrier, loaded: Loaded) -> Session {
        Session::from_state(self.state(config, carrier, loaded))
    }

    /// The state of the session a value opened to.
    fn state(self, config: &SessionConfig, carrier: Carrier, loaded: Loaded) -> State {
        let changed = match (self.fingerprint, loaded.meta.fingerprint) {
            (Some(now), Some(then)) => now != then,
            _ => false,
        };
        if changed {
            // Any client can cause it (a copied cookie, a new IP): WARN once a minute.
            match config
                .warnings()
                .fingerprint_changed
                .warn_now(config.clock().unix())
            {
                Some(left_out) => tracing::warn!(
                    session_fingerprint_changed = true,
                    left_out,
                    "session opened under another request fingerprint than it was written with \
                     (reported once a minute; left_out: how many more since the last report)"
                ),
                None => tracing::debug!(
                    session_fingerprint_changed = true,
                    "session opened under another request fingerprint than it was written with"
                ),
            }
        }
        let mut arrival = Arrival::loaded(carrier, self.context, loaded.old_key)
            .with_fingerprint(self.fingerprint);
        arrival.fingerprint_changed = changed;
        let mut state = State::loaded(loaded, arrival);
        if self.passive {
            state.set_passive();
        }
        state
    }

    /// The fresh session a request gets when none of its values opened.
    fn fresh(
        self,
        config: &SessionConfig,
        now: i64,
        found: &Candidates<'_>,
        first_error: Option<Error>,
    ) -> Session {
        Session::from_state(self.fresh_state(config, now, found.any, found.carrier, first_error))
    }

    /// The state of a fresh session (`any`: the request brought a value).
    fn fresh_state(
        self,
        config: &SessionConfig,
        now: i64,
        any: bool,
        carrier: Carrier,
        first_error: Option<Error>,
    ) -> State {
        let admission = if !config.creates_on_missing() && !any {
            Admission::Detached
        } else {
            Admission::Normal
        };
        let expires_at = config
            .rules()
            .next_expiry(envelope::Policy::Default, now, now);
        let arrival =
            Arrival::fresh(carrier, self.context, first_error).with_fingerprint(self.fingerprint);
        let mut state = State::fresh(
            Meta::new(SessionId::random(), now, expires_at),
            arrival,
            admission,
        );
        if self.passive {
            state.set_passive();
        }
        state
    }
}

/// The fingerprint tag sealed in log-only mode: the first 8 bytes of its SHA-256
/// (inside the sealed meta, so only the server sees it).
fn tag(fingerprint: &[u8]) -> [u8; FINGERPRINT_TAG_LEN] {
    let digest = Sha256::digest(fingerprint);
    let mut tag = [0u8; FINGERPRINT_TAG_LEN];
    tag.copy_from_slice(&digest[..FINGERPRINT_TAG_LEN]);
    tag
}

/// Loads up to the first value that needs the store, then stops.
pub(crate) fn start_load(config: &SessionConfig, headers: &HeaderMap, uri: &Uri) -> LoadStep {
    config.revocations().ensure_syncing();
    let now = config.clock().unix();
    let found = candidates(config, headers);
    let request = Request::of(config, headers, uri);
    let mut first_error = None;
    for (index, value) in found.values().iter().enumerate() {
        match unseal(config, found.carrier, request.aad(config), value, now) {
            Ok(Unsealed::Whole(loaded)) => {
                return LoadStep::Done(request.session(config, found.carrier, loaded));
            }
            Ok(Unsealed::Pointer(pointer)) => {
                return LoadStep::FetchBody(Box::new(BodyFetch {
                    now,
                    request,
                    index,
                    pointer,
                    first_error,
                }))
            }
            Err(e @ Error::RevocationUnavailable { .. }) => return LoadStep::Refused(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    LoadStep::Done(request.fresh(config, now, &found, first_error))
}

/// Like [`start_load`], but defers opening when every value of the request is
/// inline by its clear header: the session opens when the handler first touches it,
/// and a request whose handler never does costs no decryption at all. Pointers are
/// still fetched before the handler (the store round trip overlaps nothing later),
/// and while the revocation list is too stale to check a session, values are opened
/// first, so a refusal is still a 503. Refused values are logged here.
#[cfg(feature = "tower")]
pub(crate) fn start_load_lazy(config: &SessionConfig, headers: &HeaderMap, uri: &Uri) -> LoadStep {
    let found = candidates(config, headers);
    if found.any && !config.revocations().refuses_stale_now() {
        if let Some(pending) = Pending::defer(config, headers, uri, &found) {
            config.revocations().ensure_syncing();
            let deferred = crate::session::Deferred {
                opens_at_response: pending.opens_at_response(),
                open: Box::new(move || pending.open()),
            };
            return LoadStep::Done(Session::pending(deferred));
        }
    }
    let step = start_load(config, headers, uri);
    if let LoadStep::Done(session) = &step {
        if let Some(e) = session.load_error() {
            log_refused(config, &e);
        }
    }
    step
}

/// A load the layer deferred: the request's values, copied, with everything the
/// open needs from the request (its time, fingerprint, path).
#[cfg(feature = "tower")]
struct Pending {
    config: SessionConfig,
    /// The candidate values, one after the other; `ends[i]` is where value `i` ends.
    text: String,
    ends: [usize; super::read::MAX_CANDIDATES],
    count: usize,
    carrier: Carrier,
    request: Request,
    now: i64,
    /// A value is sealed under another key than the primary: the response re-seals
    /// it even when the handler never touched the session.
    old_key: bool,
}

#[cfg(feature = "tower")]
impl Pending {
    /// A pending load, when every value's clear header says it is inline.
    fn defer(
        config: &SessionConfig,
        headers: &HeaderMap,
        uri: &Uri,
        found: &Candidates<'_>,
    ) -> Option<Self> {
        let primary = config.codec().keyring().primary_key_id();
        let mut old_key = false;
        let mut ends = [0; super::read::MAX_CANDIDATES];
        let mut text = String::with_capacity(found.values().iter().map(|v| v.len()).sum());
        for (i, value) in found.values().iter().enumerate() {
            // A value that does not even parse is refused on open all the same.
            if let Ok(header) = codec::peek_header(value) {
                if header.pointer {
                    return None;
                }
                old_key |= header.key_id != primary;
            }
            text.push_str(value);
            ends[i] = text.len();
        }
        Some(Pending {
            config: config.clone(),
            text,
            ends,
            count: found.values().len(),
            carrier: found.carrier,
            request: Request::of(config, headers, uri),
            now: config.clock().unix(),
            old_key,
        })
    }

    /// True when the response must open it even if the handler did not: to re-seal
    /// a value under an old key, or because the config saves every response.
    fn opens_at_response(&self) -> bool {
        self.old_key || self.config.always_saves()
    }

    /// Opens the first value that authenticates and has not expired, as
    /// [`start_load`] would have. A revocation list that went stale since the
    /// request started refuses a session with a subject (fail closed: it opens fresh,
    /// with that error, and the save answers 503 without writing over the cookie).
    fn open(self) -> State {
        let Pending {
            config,
            text,
            ends,
            count,
            carrier,
            request,
            now,
            ..
        } = self;
        let mut first_error = None;
        let mut start = 0;
        for &end in &ends[..count] {
            let value = &text[start..end];
            start = end;
            match unseal(&config, carrier, request.aad(&config), value, now) {
                Ok(Unsealed::Whole(loaded)) => return request.state(&config, carrier, loaded),
                // The clear header said inline, and it is authenticated: not reached.
                Ok(Unsealed::Pointer(_)) => {
                    first_error.get_or_insert(Error::MissingInStore);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = &first_error {
            log_refused(&config, e);
        }
        request.fresh_state(&config, now, true, carrier, first_error)
    }
}

/// Logs a refused value: at DEBUG, except what a client may be flooding with
/// (forged values, retired keys), which WARN at most once a minute.
#[cfg(feature = "tower")]
pub(crate) fn log_refused(config: &SessionConfig, e: &Error) {
    use crate::usage::KeyId;
    match e {
        Error::UnknownKeyId(id) => {
            if config.usage().warn_unknown(*id, config.clock().unix()) {
                tracing::warn!(
                    reason = e.kind().as_str(),
                    key_id = %KeyId(*id),
                    "session sealed with a key no longer in the ring; starting a fresh session \
                     (reported once a minute per key id)"
                );
            } else {
                tracing::debug!(reason = e.kind().as_str(), key_id = %KeyId(*id), "session value refused; starting a fresh session");
            }
        }
        Error::Authentication | Error::UnsupportedFlags(_) => {
            // Forged or corrupted values: any client can send them, so WARN once a minute.
            match config.warnings().refused.warn_now(config.clock().unix()) {
                Some(left_out) => tracing::warn!(
                    reason = e.kind().as_str(),
                    error = %e,
                    left_out,
                    "session value refused; starting a fresh session \
                     (reported once a minute; left_out: how many more since the last report)"
                ),
                None => {
                    tracing::debug!(reason = e.kind().as_str(), error = %e, "session value refused; starting a fresh session")
                }
            }
        }
        _ => {
            tracing::debug!(reason = e.kind().as_str(), error = %e, "session value refused; starting a fresh session")
        }
    }
}

impl BodyFetch {
    /// Fetches the pointer's body; if that entry is gone or does not open, tries the
    /// request's remaining values, awaiting the store as needed.
    ///
    /// # Errors
    /// Only [`Error::Store`].
    pub(crate) async fn finish(
        self,
        config: &SessionConfig,
        headers: &HeaderMap,
    ) -> Result<Session, Error> {
        let BodyFetch {
            now,
            request,
            index,
            pointer,
            mut first_error,
        } = self;
        let found = candidates(config, headers);
        let mut next = Some(Ok(Unsealed::Pointer(pointer)));
        let mut rest = found.values().iter().skip(index + 1);
        while let Some(unsealed) = next.take() {
            let loaded = match unsealed {
                Ok(Unsealed::Whole(loaded)) => Ok(loaded),
                Ok(Unsealed::Pointer(pointer)) => fetch_body(config, pointer).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(loaded) => return Ok(request.session(config, found.carrier, loaded)),
                Err(e @ (Error::Store { .. } | Error::RevocationUnavailable { .. })) => {
                    return Err(e)
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            next = rest
                .next()
                .map(|value| unseal(config, found.carrier, request.aad(config), value, now));
        }
        Ok(request.fresh(config, now, &found, first_error))
    }
}

/// Checks the size, decodes, authenticates and decrypts a value, then decodes it.
pub(crate) fn unseal(
    config: &SessionConfig,
    carrier: Carrier,
    aad: &[u8],
    value: &str,
    now: i64,
) -> Result<Unsealed, Error> {
    config.budget().check_incoming(carrier, value.len())?;
    let opened = config.codec().open_bytes(aad, codec::decode_text(value)?)?;
    let key_id = opened.header.key_id;
    let snapshot = Snapshot {
        plaintext: opened.plaintext,
        content: opened.header.content(),
        old_key: opened.old_key,
    };
    let unsealed = decode_snapshot(config, snapshot, now)?;
    // Counted once live: an expired value would not have kept anyone signed in.
    config.usage().record(key_id, now);
    Ok(unsealed)
}

/// Decodes an authenticated plaintext and checks its expiry against today's rules.
fn decode_snapshot(
    config: &SessionConfig,
    snapshot: Snapshot,
    now: i64,
) -> Result<Unsealed, Error> {
    let content = snapshot.content;
    let (mut meta, contents) = envelope::decode(
        content.version,
        config.compression(),
        &snapshot.plaintext,
        content,
    )?;
    // Times in the future (another server's clock a little ahead, or a sealed claim)
    // count from now, so no limit can be stretched by dating a session ahead.
    meta.created = meta.created.min(now);
    meta.last_active = meta.last_active.min(now);
    let expires_at = config.rules().effective_expiry(
        meta.policy,
        meta.created,
        meta.last_active,
        meta.expires_at,
    );
    if now >= expires_at {
        return Err(Error::Expired {
            expired_at: expires_at,
        });
    }
    // The session expires when today's rules say, whatever it was sealed with: so
    // `expires_at()`, renewals and the cookie's Max-Age never report a later time.
    meta.expires_at = expires_at;
    config
        .revocations()
        .check(&meta, config.codec().keyring())?;
    match contents {
        Contents::Pointer(entry) => Ok(Unsealed::Pointer(PointerMeta {
            meta,
            entry,
            snapshot,
        })),
        Contents::Body(body) => Ok(Unsealed::Whole(Loaded {
            meta,
            body,
            residence: Residence::Inline,
            old_key: snapshot.old_key,
            snapshot,
        })),
    }
}

/// Fetches and opens the body a pointer refers to.
pub(crate) async fn fetch_body(
    config: &SessionConfig,
    pointer: PointerMeta,
) -> Result<Loaded, Error> {
    let PointerMeta {
        meta,
        entry,
        snapshot,
    } = pointer;
    let store = config.store().ok_or(Error::MissingInStore)?;
    let stored = store
        .load(&guard::entry_key(&entry))
        .await?
        .ok_or(Error::MissingInStore)?;
    let context = guard::entry_context(config.cookie_name(), &entry);
    let opened = config.codec().open_bytes(&context, stored)?;
    if opened.header.pointer {
        return Err(Error::Authentication);
    }
    let body = envelope::decode_body(
        opened.header.version,
        config.store_compression(),
        &opened.plaintext,
        opened.header.compressed,
    )?;
    Ok(Loaded {
        residence: Residence::Store(entry),
        meta,
        body,
        old_key: snapshot.old_key || opened.old_key,
        snapshot,
    })
}

/// Re-reads the session as it was loaded or last saved, dropping unsaved changes.
pub(crate) async fn reload(config: &SessionConfig, session: &Session) -> Result<(), Error> {
    let (snapshot, carrier) = {
        let s = session.state();
        (s.snapshot(), s.carrier())
    };
    let now = config.clock().unix();
    let fresh = match snapshot {
        Some(snapshot) => {
            let loaded = match decode_snapshot(config, snapshot, now)? {
                Unsealed::Whole(loaded) => loaded,
                Unsealed::Pointer(pointer) => fetch_body(config, pointer).await?,
            };
            let arrival = Arrival::loaded(carrier, None, loaded.old_key);
            Session::loaded(loaded, arrival)
        }
        None => Session::fresh(
            now,
            config
                .rules()
                .next_expiry(envelope::Policy::Default, now, now),
            Arrival::fresh(carrier, None, None),
            Admission::Normal,
        ),
    };
    session.replace_from(&fresh);
    Ok(())
}
