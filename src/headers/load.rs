//! Loading: try the request's values in order, open the first that authenticates
//! and has not expired, and fetch a pointer's body from the store.
//!
//! Most requests never need the store, so loading is split: [`start_load`] does
//! everything that needs none and stops at the first pointer; [`BodyFetch::finish`]
//! goes on from there without opening anything twice.

use http::{HeaderMap, Uri};

use super::read::{candidates, fingerprint_context, Candidates};
use crate::envelope::{self, Meta};
use crate::guard;
use crate::session::{Admission, Arrival, Loaded, Residence, Snapshot};
use crate::{codec, Error, Session, SessionConfig};

/// Where a load stands once everything that needs no store is done.
pub(crate) enum LoadStep {
    /// The session, loaded without the store (most requests).
    Done(Session),
    /// A value is a pointer: its body must come from the store.
    FetchBody(BodyFetch),
}

/// A load stopped at a pointer: the opened pointer and what came before it.
pub(crate) struct BodyFetch {
    now: i64,
    context: Option<Vec<u8>>,
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
    snapshot: Snapshot,
}

/// Loads up to the first value that needs the store, then stops.
pub(crate) fn start_load(config: &SessionConfig, headers: &HeaderMap, uri: &Uri) -> LoadStep {
    let now = config.clock().unix();
    let found = candidates(config, headers);
    let context = fingerprint_context(config, headers, uri);
    let aad = context
        .as_deref()
        .unwrap_or(config.cookie_name().as_bytes());
    let mut first_error = None;
    for (index, value) in found.values().iter().enumerate() {
        match unseal(config, aad, value, now) {
            Ok(Unsealed::Whole(loaded)) => {
                let arrival = Arrival::loaded(found.carrier, context, loaded.old_key);
                return LoadStep::Done(Session::loaded(loaded, arrival));
            }
            Ok(Unsealed::Pointer(pointer)) => {
                return LoadStep::FetchBody(BodyFetch {
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
    LoadStep::Done(fresh(config, now, &found, context, first_error))
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
            context,
            index,
            pointer,
            mut first_error,
        } = self;
        let found = candidates(config, headers);
        let aad = context
            .as_deref()
            .unwrap_or(config.cookie_name().as_bytes());
        let mut next = Some(Ok(Unsealed::Pointer(pointer)));
        let mut rest = found.values().iter().skip(index + 1);
        while let Some(unsealed) = next.take() {
            let loaded = match unsealed {
                Ok(Unsealed::Whole(loaded)) => Ok(loaded),
                Ok(Unsealed::Pointer(pointer)) => fetch_body(config, pointer).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(loaded) => {
                    let arrival = Arrival::loaded(found.carrier, context, loaded.old_key);
                    return Ok(Session::loaded(loaded, arrival));
                }
                Err(e @ Error::Store { .. }) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            next = rest.next().map(|value| unseal(config, aad, value, now));
        }
        Ok(fresh(config, now, &found, context, first_error))
    }
}

/// The fresh session a request gets when none of its values opened.
fn fresh(
    config: &SessionConfig,
    now: i64,
    found: &Candidates<'_>,
    context: Option<Vec<u8>>,
    first_error: Option<Error>,
) -> Session {
    let admission = if !config.creates_on_missing() && !found.any {
        Admission::Detached
    } else {
        Admission::Normal
    };
    let expires_at = config.expiry().next_expiry(now, now);
    let arrival = Arrival::fresh(found.carrier, context, first_error);
    Session::fresh(now, expires_at, arrival, admission)
}

/// Checks the size, decodes, authenticates and decrypts a value, then decodes it.
pub(crate) fn unseal(
    config: &SessionConfig,
    aad: &[u8],
    value: &str,
    now: i64,
) -> Result<Unsealed, Error> {
    config.budget().check_incoming(value.len())?;
    let opened = config.codec().open_bytes(aad, codec::decode_text(value)?)?;
    let key_id = opened.header.key_id;
    let snapshot = Snapshot {
        plaintext: opened.plaintext,
        compressed: opened.header.compressed,
        pointer: opened.header.pointer,
        old_key: opened.old_key,
    };
    let unsealed = decode_snapshot(config, snapshot, now)?;
    // Counted once live: an expired value would not have kept anyone signed in.
    config.usage().record(key_id, now);
    Ok(unsealed)
}

/// Decodes an authenticated plaintext and checks its expiry.
fn decode_snapshot(
    config: &SessionConfig,
    snapshot: Snapshot,
    now: i64,
) -> Result<Unsealed, Error> {
    let (meta, body) = envelope::decode(
        config.compression(),
        &snapshot.plaintext,
        snapshot.compressed,
    )?;
    if now >= meta.expires_at {
        return Err(Error::Expired {
            expired_at: meta.expires_at,
        });
    }
    if snapshot.pointer {
        return Ok(Unsealed::Pointer(PointerMeta { meta, snapshot }));
    }
    Ok(Unsealed::Whole(Loaded {
        meta,
        body: body.unwrap_or_default(),
        residence: Residence::Inline,
        old_key: snapshot.old_key,
        snapshot,
    }))
}

/// Fetches and opens the body a pointer refers to.
pub(crate) async fn fetch_body(
    config: &SessionConfig,
    pointer: PointerMeta,
) -> Result<Loaded, Error> {
    let PointerMeta { meta, snapshot } = pointer;
    let store = config.store().ok_or(Error::MissingInStore)?;
    let stored = store
        .load(&guard::entry_key(meta.id))
        .await?
        .ok_or(Error::MissingInStore)?;
    let context = guard::entry_context(config.cookie_name(), meta.id);
    let opened = config.codec().open_bytes(&context, stored)?;
    if opened.header.pointer {
        return Err(Error::Authentication);
    }
    let body = envelope::decode_body(
        config.compression(),
        &opened.plaintext,
        opened.header.compressed,
    )?;
    Ok(Loaded {
        residence: Residence::Store(meta.id),
        meta,
        body,
        old_key: snapshot.old_key || opened.old_key,
        snapshot,
    })
}

/// Re-reads the session as it was loaded or last saved, dropping unsaved changes.
pub(crate) async fn reload(config: &SessionConfig, session: &Session) -> Result<(), Error> {
    let snapshot = session.state().snapshot();
    let now = config.clock().unix();
    let carrier = session.state().carrier();
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
            config.expiry().next_expiry(now, now),
            Arrival::fresh(carrier, None, None),
            Admission::Normal,
        ),
    };
    session.replace_from(&fresh);
    Ok(())
}
