//! Saving: ask the session what the response must do, let the size guard place
//! the sealed value, write it, and hand back whatever store work is left.
//!
//! [`start_save`] does everything that needs no store (most responses); a
//! [`StoreWrite`] it returns is awaited by [`StoreWrite::finish`].

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::write::{write_removal, write_value};
use crate::guard::{self, Guard, Placement};
use crate::session::{Residence, SaveAction, Sealing, Snapshot};
use crate::store::SessionStore;
use crate::{Error, Session, SessionConfig, SessionId};

/// Where a save stands once everything that needs no store is done.
pub(crate) enum SaveStep {
    /// Written (or nothing to write).
    Done,
    /// The store still has work to do.
    Store(StoreWrite),
}

/// Store work a save leaves.
pub(crate) enum StoreWrite {
    /// Delete an entry nothing points at any more (after destroy, or after the body
    /// moved back into the cookie).
    DeleteEntry(SessionId),
    /// Put the body in the store, then send the pointer.
    WriteBody(Box<BodyWrite>),
}

/// A spilled session: the store entry to write and the pointer to send after it.
pub(crate) struct BodyWrite {
    store: Arc<dyn SessionStore>,
    id: SessionId,
    /// The body sealed for the store, bound to the session id.
    entry: Vec<u8>,
    /// The sealed pointer value.
    pointer: Vec<u8>,
    ttl: i64,
    sealing: Sealing,
}

/// Everything a save does that needs no store; the rest comes back as [`StoreWrite`].
///
/// # Errors
/// [`Error::TooLarge`] when the session does not fit and there is no store; nothing
/// is written to `headers` then.
pub(crate) fn start_save(
    config: &SessionConfig,
    session: &Session,
    headers: &mut HeaderMap,
) -> Result<SaveStep, Error> {
    let now = config.clock().unix();
    let action = session
        .state()
        .plan_save(&config.expiry(), config.always_saves(), now)?;
    let mut sealing = match action {
        SaveAction::Skip => return Ok(SaveStep::Done),
        SaveAction::Remove {
            had_value,
            carrier,
            entry,
        } => {
            session.state().removed();
            if had_value {
                write_removal(config, carrier, headers);
            }
            return Ok(entry.map_or(SaveStep::Done, |id| {
                SaveStep::Store(StoreWrite::DeleteEntry(id))
            }));
        }
        SaveAction::Write(sealing) => sealing,
    };
    let aad = sealing
        .context
        .as_deref()
        .unwrap_or(config.cookie_name().as_bytes());
    let ttl = sealing.expires_at.saturating_sub(now).max(1);
    let (meta, body) = sealing.plaintext.split_at(sealing.meta_len);
    let guard = Guard {
        codec: config.codec(),
        compression: config.compression(),
        budget: config.budget(),
        cookie_name: config.cookie_name(),
        has_store: config.store().is_some(),
    };
    match guard.place(sealing.carrier, aad, sealing.id, meta, body)? {
        Placement::Inline(raw) => {
            write_value(config, &raw, sealing.carrier, ttl, headers)?;
            let was = sealing.was;
            session.state().saved(
                Residence::Inline,
                Snapshot {
                    plaintext: sealing.plaintext,
                    compressed: false,
                    pointer: false,
                    old_key: false,
                },
            );
            // The body left the store: its entry goes.
            Ok(match was {
                Residence::Store(id) => SaveStep::Store(StoreWrite::DeleteEntry(id)),
                _ => SaveStep::Done,
            })
        }
        Placement::Spill { pointer, entry } => {
            let store = Arc::clone(config.store().expect("the guard spills only to a store"));
            sealing.plaintext.truncate(sealing.meta_len);
            Ok(SaveStep::Store(StoreWrite::WriteBody(Box::new(
                BodyWrite {
                    store,
                    id: sealing.id,
                    entry,
                    pointer,
                    ttl,
                    sealing,
                },
            ))))
        }
    }
}

impl StoreWrite {
    /// Does the store part of a save.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails to take the body: then nothing is written
    /// to `headers` and the session stays unsaved.
    pub(crate) async fn finish(
        self,
        config: &SessionConfig,
        session: &Session,
        headers: &mut HeaderMap,
    ) -> Result<(), Error> {
        let write = match self {
            StoreWrite::DeleteEntry(id) => {
                delete_quietly(config, id).await;
                return Ok(());
            }
            StoreWrite::WriteBody(write) => write,
        };
        let BodyWrite {
            store,
            id,
            entry,
            pointer,
            ttl,
            sealing,
        } = *write;
        let ttl_duration = Duration::from_secs(ttl.unsigned_abs());
        store
            .save(&guard::entry_key(id), &entry, ttl_duration)
            .await?;
        write_value(config, &pointer, sealing.carrier, ttl, headers)?;
        if let Residence::Store(stale) = sealing.was {
            if stale != id {
                delete_quietly(config, stale).await;
            }
        }
        session.state().saved(
            Residence::Store(id),
            Snapshot {
                // `postcard(Meta)`, the pointer's plaintext.
                plaintext: sealing.plaintext,
                compressed: false,
                pointer: true,
                old_key: false,
            },
        );
        Ok(())
    }
}

/// Deletes an entry nothing points at; a failure is logged, the entry expires with its TTL.
async fn delete_quietly(config: &SessionConfig, id: SessionId) {
    if let Some(store) = config.store() {
        if let Err(e) = store.delete(&guard::entry_key(id)).await {
            tracing::warn!(error = %e, "could not delete a stale session store entry; it will expire");
        }
    }
}
