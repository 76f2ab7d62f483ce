//! What a [`Session`](super::Session) knows about itself besides its data: how it
//! came with the request, where it lives, and what the response must do with it.
//!
//! One [`Status`] says what the handler asked for; [`Admission`] says whether a
//! write is allowed at all; [`Residence`] says where the body lives. The request
//! layer asks [`State::plan_save`] what to do and reports back with
//! [`State::saved`] or [`State::removed`]; nothing outside this module writes a field.

use std::sync::Arc;

use crate::envelope::{self, Body, Meta};
use crate::map::ValueMap;
use crate::{Error, Expiry, SessionId};

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
    /// The cookie holds a pointer; the body is in the store, under the id it was written with.
    Store(SessionId),
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
    /// `postcard(Meta) || body`, as after decryption.
    pub(crate) plaintext: Vec<u8>,
    /// The body part is compressed.
    pub(crate) compressed: bool,
    /// The value was a pointer: the body is in the store.
    pub(crate) pointer: bool,
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
        }
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
}

/// What a save must do, decided under the session lock.
pub(crate) enum SaveAction {
    /// Nothing to write.
    Skip,
    /// Remove the client's value (if it had one) and the store entry (if any).
    Remove {
        had_value: bool,
        carrier: Carrier,
        entry: Option<SessionId>,
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
}

impl State {
    pub(super) fn fresh(meta: Meta, arrival: Arrival, admission: Admission) -> Self {
        State {
            meta,
            body: Body::default(),
            flash_now: ValueMap::new(),
            status: Status::Unchanged,
            admission,
            residence: Residence::Fresh,
            arrival,
            snapshot: None,
        }
    }

    pub(super) fn loaded(loaded: Loaded, arrival: Arrival) -> Self {
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
        }
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
    /// the data out of it).
    pub(crate) fn plan_save(
        &mut self,
        expiry: &Expiry,
        always_save: bool,
        now: i64,
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
                    Residence::Store(id) => Some(id),
                    _ => None,
                },
            });
        }
        let renew = self.status == Status::Touched
            || always_save
            || expiry.renewal_due(self.meta.created, self.meta.expires_at, now);
        let write = matches!(self.status, Status::Changed | Status::Reseal)
            || self.admission == Admission::Forced
            || (renew && self.residence != Residence::Fresh);
        if !write {
            return Ok(SaveAction::Skip);
        }
        self.meta.last_active = now;
        self.meta.expires_at = expiry.next_expiry(self.meta.created, now);
        let (plaintext, meta_len) = envelope::encode(&self.meta, &self.body)?;
        Ok(SaveAction::Write(Sealing {
            id: self.meta.id,
            expires_at: self.meta.expires_at,
            plaintext,
            meta_len,
            was: self.residence,
            context: self.arrival.context.clone(),
            carrier: self.arrival.carrier,
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

    /// Records a completed removal: nothing is left on the client.
    pub(crate) fn removed(&mut self) {
        self.residence = Residence::Fresh;
        self.status = Status::Unchanged;
        self.snapshot = None;
    }
}
