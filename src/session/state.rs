//! What a [`Session`](super::Session) knows about itself besides its data: how it
//! came with the request, where it lives, and what the response must do with it.
//!
//! One [`Status`] says what the handler asked for; [`Admission`] says whether a
//! write is allowed at all; [`Residence`] says where the body lives. The request
//! layer asks [`State::plan_save`] what to do and reports back with
//! [`State::saved`] or [`State::removed`]; nothing outside this module writes a field.

use std::sync::Arc;

use crate::envelope::Content;
use crate::envelope::{self, Body, Meta, Subject, FINGERPRINT_TAG_LEN};
use crate::expiry::{Policy, Rules};
use crate::id::Entry;
use crate::map::ValueMap;
use crate::{Error, SessionExpiry, SessionId};

/// How the session value travels: it goes back the way it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// The session cookie.
    Cookie,
    /// The configured request/response header.
    Header,
}

/// Where the session lives on the client's side of the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residence {
    /// Nowhere yet: no valid value came with the request and none was written.
    Fresh,
    /// Whole in the cookie or header.
    Inline,
    /// The cookie holds a pointer; the body is in the store, in this entry.
    Store(Entry),
}

/// What the handler asked of the response (renewals due to the policy come on top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Nothing: write only when a renewal is due.
    Unchanged,
    /// [`touch`](super::Session::touch): renew the expiry now.
    Touched,
    /// An old key opened it: re-seal under the primary.
    Reseal,
    /// Values, flash data, the CSRF secret or the id changed.
    Changed,
    /// [`destroy`](super::Session::destroy): remove the cookie and any store entry.
    Destroyed,
}

/// Whether the response may write the session at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Written when its status (or a renewal) says so.
    Normal,
    /// The request brought no session under `create_on_missing(false)`: written only
    /// after [`save`](super::Session::save).
    Detached,
    /// [`save`](super::Session::save) was called: written even if unchanged.
    Forced,
}

/// The authenticated plaintext a session was loaded from or last saved as, for
/// [`reload`](crate::headers::reload): it is the buffer the value was decrypted
/// into, so keeping it costs nothing, and it decodes the same way the value would.
#[derive(Clone)]
pub(crate) struct Snapshot {
    /// `meta || body` (or `meta || entry id` for a pointer), as after decryption.
    pub(crate) plaintext: Vec<u8>,
    /// Its format version and flags.
    pub(crate) content: Content,
    /// A key other than the primary opened it.
    pub(crate) old_key: bool,
}

/// A session as decoded from a value, before it becomes a [`Session`](super::Session).
pub(crate) struct Loaded {
    pub(crate) meta: Meta,
    pub(crate) body: Body,
    pub(crate) residence: Residence,
    pub(crate) old_key: bool,
    pub(crate) snapshot: Snapshot,
}

/// Facts about the request the session came with; they do not change afterwards.
pub(crate) struct Arrival {
    pub(crate) carrier: Carrier,
    /// AAD context when it is more than the cookie name (a fingerprint is configured):
    /// cookie name, 0x01, fingerprint. `None` means the cookie name alone.
    pub(crate) context: Option<Vec<u8>>,
    /// A valid session came with the request.
    pub(crate) came_with_session: bool,
    /// A key other than the primary opened it.
    pub(crate) old_key: bool,
    /// Why the request's value was refused, if it was.
    pub(crate) load_error: Option<Arc<Error>>,
    /// The tag of this request's fingerprint, when fingerprints are only logged.
    pub(crate) fingerprint: Option<[u8; FINGERPRINT_TAG_LEN]>,
    /// The session was written under another fingerprint than this request's.
    pub(crate) fingerprint_changed: bool,
    /// The id the session came with (what a logout must revoke).
    pub(crate) loaded_id: Option<SessionId>,
}

impl Arrival {
    /// A request that brought no usable session.
    pub(crate) fn fresh(carrier: Carrier, context: Option<Vec<u8>>, error: Option<Error>) -> Self {
        Arrival {
            carrier,
            context,
            came_with_session: false,
            old_key: false,
            load_error: error.map(Arc::new),
            fingerprint: None,
            fingerprint_changed: false,
            loaded_id: None,
        }
    }

    /// A request whose value opened.
    pub(crate) fn loaded(carrier: Carrier, context: Option<Vec<u8>>, old_key: bool) -> Self {
        Arrival {
            carrier,
            context,
            came_with_session: true,
            old_key,
            load_error: None,
            fingerprint: None,
            fingerprint_changed: false,
            loaded_id: None,
        }
    }

    /// Records this request's fingerprint tag (log-only binding).
    pub(crate) fn with_fingerprint(mut self, tag: Option<[u8; FINGERPRINT_TAG_LEN]>) -> Self {
        self.fingerprint = tag;
        self
    }
}

pub(crate) struct State {
    pub(super) meta: Meta,
    pub(super) body: Body,
    /// Flash data sent by the previous request, readable on this one.
    pub(super) flash_now: ValueMap,
    pub(super) status: Status,
    pub(super) admission: Admission,
    pub(super) residence: Residence,
    pub(super) arrival: Arrival,
    /// What it was loaded from or last saved as, for `reload`.
    pub(super) snapshot: Option<Snapshot>,
    /// This request does not count as activity (polling): no renewal, no new idle time.
    pub(super) passive: bool,
    /// A subject set on this request, hashed under the primary key when saved.
    pub(super) new_subject: Option<String>,
    /// An expiry set on this request, resolved against the config's clock when saved.
    pub(super) new_expiry: Option<SessionExpiry>,
    /// `log_out_everywhere`: the subject whose sessions the save revokes.
    pub(super) revoke_subject: Option<String>,
    /// A value the layer has not opened yet: opened on the first access to the state.
    #[cfg(feature = "tower")]
    pub(super) pending: Option<Deferred>,
}

/// A value the layer found but has not opened: how to open it, and whether the
/// response must open it even when the handler never touches the session.
#[cfg(feature = "tower")]
pub(crate) struct Deferred {
    /// Opens the value into the session's state (a fresh one if it does not open).
    pub(crate) open: Box<dyn FnOnce() -> State + Send>,
    /// The value is under an old key, or the config saves every response.
    pub(crate) opens_at_response: bool,
}

/// What a save must do, decided under the session lock.
pub(crate) enum SaveAction {
    /// Nothing to write.
    Skip,
    /// Remove the client's value (if it had one) and the store entry (if any), after
    /// revoking the session (and its subject everywhere, if asked).
    Remove {
        had_value: bool,
        carrier: Carrier,
        entry: Option<Entry>,
        /// The id and creation of the session the client holds.
        revoke: Option<(SessionId, i64)>,
        /// `log_out_everywhere`: the subject whose sessions go too.
        everywhere: Option<String>,
    },
    /// Seal and write this.
    Write(Sealing),
}

/// An encoded session ready to seal, taken out of the session lock.
pub(crate) struct Sealing {
    pub(crate) id: SessionId,
    pub(crate) expires_at: i64,
    /// `postcard(Meta) || postcard(Body)`, uncompressed.
    pub(crate) plaintext: Vec<u8>,
    /// Where the body starts in `plaintext`.
    pub(crate) meta_len: usize,
    /// Where the session lived before this write (to clean up its store entry).
    pub(crate) was: Residence,
    pub(crate) context: Option<Vec<u8>>,
    pub(crate) carrier: Carrier,
    /// The cookie carries Max-Age.
    pub(crate) persistent: bool,
}

impl State {
    pub(crate) fn fresh(meta: Meta, arrival: Arrival, admission: Admission) -> Self {
        State {
            meta,
            body: Body::default(),
            flash_now: ValueMap::new(),
            status: Status::Unchanged,
            admission,
            residence: Residence::Fresh,
            arrival,
            snapshot: None,
            passive: false,
            new_subject: None,
            new_expiry: None,
            revoke_subject: None,
            #[cfg(feature = "tower")]
            pending: None,
        }
    }

    pub(crate) fn loaded(loaded: Loaded, mut arrival: Arrival) -> Self {
        arrival.loaded_id = Some(loaded.meta.id);
        let Loaded {
            meta,
            mut body,
            residence,
            old_key,
            snapshot,
        } = loaded;
        let flash_now = std::mem::take(&mut body.flash);
        // Flash data read on this request must be dropped from the next cookie.
        let status = if !flash_now.is_empty() {
            Status::Changed
        } else if old_key {
            Status::Reseal
        } else {
            Status::Unchanged
        };
        State {
            meta,
            body,
            flash_now,
            status,
            admission: Admission::Normal,
            residence,
            arrival,
            snapshot: Some(snapshot),
            passive: false,
            new_subject: None,
            new_expiry: None,
            revoke_subject: None,
            #[cfg(feature = "tower")]
            pending: None,
        }
    }

    /// Stands in for a session the layer has not opened yet; `Session::state` swaps in
    /// the opened one before anything reads it.
    #[cfg(feature = "tower")]
    pub(super) fn pending(pending: Deferred) -> Self {
        let meta = Meta::new(SessionId::from_bytes([0; 16]), 0, 0);
        let mut state = State::fresh(
            meta,
            Arrival::fresh(Carrier::Cookie, None, None),
            Admission::Normal,
        );
        state.pending = Some(pending);
        state
    }

    /// This request does not count as activity.
    pub(crate) fn set_passive(&mut self) {
        self.passive = true;
    }

    /// Values, flash data or the id changed; a destroyed session comes back to life.
    pub(super) fn mark_changed(&mut self) {
        self.status = Status::Changed;
    }

    pub(super) fn touch(&mut self) {
        if self.status == Status::Unchanged {
            self.status = Status::Touched;
        }
    }

    pub(super) fn force(&mut self) {
        self.admission = Admission::Forced;
    }

    pub(crate) fn carrier(&self) -> Carrier {
        self.arrival.carrier
    }

    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot.clone()
    }

    /// Decides what the response must do with the session and, for a write, renews
    /// its times and encodes the envelope (here, under the lock, to spare cloning
    /// the data out of it). `subject_of` hashes a subject set on this request.
    pub(crate) fn plan_save(
        &mut self,
        rules: &Rules,
        always_save: bool,
        now: i64,
        subject_of: impl FnOnce(&str) -> Subject,
    ) -> Result<SaveAction, Error> {
        if self.admission == Admission::Detached {
            if self.status == Status::Changed {
                tracing::debug!(
                    "session not saved: the request brought none and create_on_missing is off"
                );
            }
            return Ok(SaveAction::Skip);
        }
        if self.status == Status::Destroyed {
            return Ok(SaveAction::Remove {
                had_value: self.residence != Residence::Fresh,
                carrier: self.arrival.carrier,
                entry: match self.residence {
                    Residence::Store(entry) => Some(entry),
                    _ => None,
                },
                revoke: self.arrival.loaded_id.map(|id| (id, self.meta.created)),
                everywhere: self.revoke_subject.clone(),
            });
        }
        let meta = &self.meta;
        // A passive request (polling) is not activity, unless the handler touched it.
        let counted = !self.passive || self.status == Status::Touched;
        let renew = self.status == Status::Touched
            || (counted
                && (always_save
                    || rules.renewal_due(meta.policy, meta.created, meta.expires_at, now)));
        let write = matches!(self.status, Status::Changed | Status::Reseal)
            || self.admission == Admission::Forced
            || (renew && self.residence != Residence::Fresh);
        if !write {
            return Ok(SaveAction::Skip);
        }
        if let Some(subject) = self.new_subject.take() {
            self.meta.subject = Some(subject_of(&subject));
        }
        if let Some(expiry) = self.new_expiry.take() {
            self.meta.policy = Policy::new(expiry, self.meta.created, now);
        }
        if self.arrival.fingerprint.is_some() {
            self.meta.fingerprint = self.arrival.fingerprint;
        }
        let meta = &mut self.meta;
        if counted {
            meta.last_active = now;
        }
        meta.expires_at = rules.next_expiry(meta.policy, meta.created, meta.last_active);
        let (plaintext, meta_len) = envelope::encode(meta, &self.body)?;
        Ok(SaveAction::Write(Sealing {
            id: meta.id,
            expires_at: meta.expires_at,
            plaintext,
            meta_len,
            was: self.residence,
            context: self.arrival.context.clone(),
            carrier: self.arrival.carrier,
            persistent: rules.is_persistent(meta.policy),
        }))
    }

    /// Records a completed write: where the session now lives and what `reload` goes back to.
    pub(crate) fn saved(&mut self, residence: Residence, snapshot: Snapshot) {
        self.residence = residence;
        self.status = Status::Unchanged;
        if self.admission == Admission::Forced {
            self.admission = Admission::Normal;
        }
        self.snapshot = Some(snapshot);
    }

    /// Records a completed removal: nothing is left on the client, and what it held
    /// is revoked.
    pub(crate) fn removed(&mut self) {
        self.residence = Residence::Fresh;
        self.status = Status::Unchanged;
        self.snapshot = None;
        self.arrival.loaded_id = None;
        self.revoke_subject = None;
    }
}
