//! Saving: ask the session what the response must do, let the size guard place
//! the sealed value, write it, and hand back whatever store work is left.
//!
//! [`start_save`] does everything that needs no store (most responses); a
//! [`StoreWrite`] it returns is awaited by [`StoreWrite::finish`]. Nothing is
//! written into the response headers before the store work it depends on has
//! succeeded: a failed save leaves the client with its previous session.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use super::write::{write_removal, write_value};
use crate::guard::{self, Guard, Placement};
use crate::id::Entry;
use crate::session::{Carrier, Residence, SaveAction, Sealing, Snapshot};
use crate::store::SessionStore;
use crate::{Error, Session, SessionConfig};

/// Where a save stands once everything that needs no store is done.
pub(crate) enum SaveStep {
    /// Written (or nothing to write).
    Done,
    /// The store still has work to do.
    Store(StoreWrite),
}

/// How long an entry a newer write replaced stays readable, for requests still in
/// flight with the previous cookie (a page's parallel requests): then it expires.
pub(crate) const REPLACED_ENTRY_GRACE: Duration = Duration::from_secs(60);

/// Store work a save leaves.
pub(crate) enum StoreWrite {
    /// Retire an entry the new value no longer points at (the body moved back into
    /// the cookie): it expires after [`REPLACED_ENTRY_GRACE`].
    RetireEntry(Entry),
    /// `destroy()`: the session is revoked (and its subject, for
    /// `log_out_everywhere`) and its store entry deleted before the client is told to
    /// drop its cookie, so no copy of that cookie opens it again.
    Remove(Box<Removal>),
    /// Put the body in the store, then send the pointer.
    WriteBody(Box<BodyWrite>),
}

/// What a logout must do besides removing the cookie.
pub(crate) struct Removal {
    entry: Option<Entry>,
    carrier: Carrier,
    had_value: bool,
    revoke: Option<(crate::SessionId, i64)>,
    everywhere: Option<String>,
}

/// A spilled session: the store entry to write and the pointer to send after it.
pub(crate) struct BodyWrite {
    store: Arc<dyn SessionStore>,
    /// Where this write goes: an entry no other write ever used.
    entry: Entry,
    /// The body sealed for the store, bound to the session and the entry.
    sealed: Vec<u8>,
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
    // A session the handler never touched is left as it came: not even opened.
    #[cfg(feature = "tower")]
    if session.untouched() {
        return Ok(SaveStep::Done);
    }
    // A value the layer opened lazily, after the revocation list had gone too stale
    // to check it: answer as an eager load would have (503), and write nothing over
    // the client's cookie, whatever the handler did with the fresh session it got.
    #[cfg(feature = "tower")]
    if let Some(e) = session.load_error() {
        if let Error::RevocationUnavailable { stale_secs } = *e {
            return Err(Error::RevocationUnavailable { stale_secs });
        }
    }
    let now = config.clock().unix();
    let keyring = config.codec().keyring();
    let action =
        session
            .state()
            .plan_save(config.rules(), config.always_saves(), now, |subject| {
                keyring.subject(
                    subject,
                    config
                        .revocations()
                        .subject_time(crate::revocation::unix_now_ms()),
                )
            })?;
    let mut sealing = match action {
        SaveAction::Skip => return Ok(SaveStep::Done),
        SaveAction::Remove {
            had_value,
            carrier,
            entry,
            revoke,
            everywhere,
        } => {
            if entry.is_some() || revoke.is_some() || everywhere.is_some() {
                return Ok(SaveStep::Store(StoreWrite::Remove(Box::new(Removal {
                    entry,
                    carrier,
                    had_value,
                    revoke,
                    everywhere,
                }))));
            }
            session.state().removed();
            if had_value {
                write_removal(config, carrier, headers);
            }
            return Ok(SaveStep::Done);
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
        store_compression: config.store_compression(),
        budget: config.budget(),
        cookie_name: config.cookie_name(),
        has_store: config.store().is_some(),
    };
    match guard.place(sealing.carrier, aad, sealing.id, meta, body)? {
        Placement::Inline(raw) => {
            write_value(
                config,
                &raw,
                sealing.carrier,
                sealing.persistent,
                ttl,
                headers,
            )?;
            let was = sealing.was;
            session.state().saved(
                Residence::Inline,
                Snapshot {
                    plaintext: sealing.plaintext,
                    content: Default::default(),
                    old_key: false,
                },
            );
            // The body left the store: its entry goes.
            Ok(match was {
                Residence::Store(entry) => SaveStep::Store(StoreWrite::RetireEntry(entry)),
                _ => SaveStep::Done,
            })
        }
        Placement::Spill {
            pointer,
            entry,
            sealed,
        } => {
            let store = Arc::clone(config.store().expect("the guard spills only to a store"));
            // The pointer's plaintext, kept for `reload`: the meta, then the entry id.
            sealing.plaintext.truncate(sealing.meta_len);
            if let Entry::Written(_, id) = &entry {
                sealing.plaintext.extend_from_slice(id.as_bytes());
            }
            Ok(SaveStep::Store(StoreWrite::WriteBody(Box::new(
                BodyWrite {
                    store,
                    entry,
                    sealed,
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
    /// [`Error::Store`] when the store fails to take the body or to delete a destroyed
    /// session's entry: then nothing is written to `headers` and the session stays
    /// unsaved (or not destroyed).
    pub(crate) async fn finish(
        self,
        config: &SessionConfig,
        session: &Session,
        headers: &mut HeaderMap,
    ) -> Result<(), Error> {
        let write = match self {
            StoreWrite::RetireEntry(entry) => {
                retire_quietly(config, &entry).await;
                return Ok(());
            }
            StoreWrite::Remove(removal) => {
                let Removal {
                    entry,
                    carrier,
                    had_value,
                    revoke,
                    everywhere,
                } = *removal;
                let now_ms = crate::revocation::unix_now_ms();
                let mut records = Vec::new();
                if let Some((id, created)) = revoke {
                    // The session cannot outlive its creation plus the lifetime
                    // ceiling; the entry is kept at least that long from now (so a
                    // skewed or injected clock never drops it early).
                    let from = created.max(now_ms / 1000);
                    records.push(crate::revocation::Record {
                        target: crate::revocation::Target::Session(id),
                        at: now_ms,
                        until: from.saturating_add(config.rules().max_lifetime_secs()),
                    });
                }
                if let Some(subject) = &everywhere {
                    records.extend(config.subject_records(subject, now_ms));
                }
                config.revocations().record(&records).await?;
                if let (Some(entry), Some(store)) = (entry, config.store()) {
                    store.delete(&guard::entry_key(&entry)).await?;
                }
                session.state().removed();
                if had_value {
                    write_removal(config, carrier, headers);
                }
                return Ok(());
            }
            StoreWrite::WriteBody(write) => write,
        };
        let BodyWrite {
            store,
            entry,
            sealed,
            pointer,
            ttl,
            sealing,
        } = *write;
        let ttl_duration = Duration::from_secs(ttl.unsigned_abs());
        let key = guard::entry_key(&entry);
        match sealing.was {
            Residence::Store(replaced) => {
                store
                    .save_replacing(&key, &sealed, ttl_duration, &guard::entry_key(&replaced))
                    .await?
            }
            _ => store.save(&key, &sealed, ttl_duration).await?,
        }
        write_value(
            config,
            &pointer,
            sealing.carrier,
            sealing.persistent,
            ttl,
            headers,
        )?;
        if let Residence::Store(replaced) = sealing.was {
            retire_quietly(config, &replaced).await;
        }
        session.state().saved(
            Residence::Store(entry),
            Snapshot {
                plaintext: sealing.plaintext,
                content: crate::envelope::Content {
                    pointer: true,
                    ..Default::default()
                },
                old_key: false,
            },
        );
        Ok(())
    }
}

/// Lets a replaced entry expire after the grace period. It is an older state of the
/// session, sealed with the pointer that names it, so keeping it is never wrong; a
/// failure is logged and the entry expires with its own TTL.
async fn retire_quietly(config: &SessionConfig, entry: &Entry) {
    if let Some(store) = config.store() {
        if let Err(e) = store
            .expire_in(&guard::entry_key(entry), REPLACED_ENTRY_GRACE)
            .await
        {
            tracing::warn!(error = %e, "could not shorten a replaced session store entry; it will expire with its TTL");
        }
    }
}
