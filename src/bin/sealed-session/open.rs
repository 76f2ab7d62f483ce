//! `open`: open a cookie with the keys and report its metadata and entry sizes; with
//! `--store`, fetch the body of a pointer cookie from its store.

use sealed_session::inspect::Description;
use sealed_session::{Algorithm, Keyring, SessionConfig, DEFAULT_COOKIE_NAME};

use crate::failure::{cookie_failure, open_failure, Failure, OpenAttempt};
use crate::format::{KeyId, Timestamp};
use crate::input;
use crate::report::{Body, Entry, OpenReport, Storage};
use crate::store::StoreSpec;
use crate::OpenArgs;

/// Opens COOKIE with `keys` (the `--keys` / `SESSION_KEYS` text) and builds its report.
pub fn run(args: &OpenArgs, keys: &str) -> Result<OpenReport, Failure> {
    let keyring = Keyring::from_base64(keys).map_err(|e| {
        Failure::from(e).hint(
            "--keys / SESSION_KEYS takes comma-separated base64 secrets of at least 32 bytes, \
             newest first (`sealed-session keygen` makes one)",
        )
    })?;
    let store = args.store.as_deref().map(StoreSpec::parse).transpose()?;
    let input = input::read(args.cookie.as_deref(), args.name.as_deref())?;
    let name = args
        .name
        .clone()
        .or(input.name)
        .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
    let value = input.value;

    // The clear header first: malformed, version and flag errors need no key.
    let inspection = sealed_session::inspect::header(&value).map_err(cookie_failure)?;
    let header_algorithm = inspection.header.algorithm;
    let algorithm = args
        .algorithm
        .map(Algorithm::from)
        .unwrap_or(header_algorithm);

    let config = SessionConfig::builder(keyring)
        .cookie_name(name.clone())
        .purpose(args.purpose.clone())
        .algorithm(algorithm)
        .build()?;
    let keyring = config.codec().keyring();
    let desc = sealed_session::inspect::describe(&config, &value).map_err(|e| {
        open_failure(
            e,
            &OpenAttempt {
                keyring,
                name: &name,
                purpose: &args.purpose,
                algorithm,
                header_algorithm,
            },
        )
    })?;

    let (body, loaded) = match (desc.header.pointer, &store) {
        (false, _) => (Body::Cookie, None),
        (true, None) => (Body::InStore, None),
        (true, Some(_)) if desc.expired => (Body::ExpiredNotLoaded, None),
        (true, Some(spec)) => {
            let loaded = fetch(spec, &args.redis_prefix, &config, &value, &desc)?;
            (Body::LoadedFromStore, Some(loaded))
        }
    };
    let (entries, flash, body_old_key) = match loaded {
        Some(l) => (Some(l.entries), Some(l.flash), l.old_key),
        None => (
            desc.entries.map(Entry::list),
            desc.flash.map(Entry::list),
            false,
        ),
    };
    let h = desc.header;
    Ok(OpenReport {
        cookie_name: name,
        text_len: inspection.text_len,
        id: desc.id,
        created: Timestamp(desc.created_at),
        last_activity: Timestamp(desc.last_activity),
        expires: Timestamp(desc.expires_at),
        expired: desc.expired,
        key_id: KeyId(h.key_id),
        old_key: desc.old_key,
        primary_key_id: KeyId(keyring.primary_key_id()),
        algorithm: h.algorithm,
        storage: if h.pointer {
            Storage::Pointer
        } else {
            Storage::Inline
        },
        pointer: h.pointer,
        compressed: h.compressed,
        csrf_token: desc.has_csrf_token,
        body,
        body_old_key,
        entries,
        flash,
        now: time::OffsetDateTime::now_utc(),
    })
}

/// A body fetched from the store.
struct Loaded {
    entries: Vec<Entry>,
    flash: Vec<Entry>,
    /// The store body (not the cookie) was sealed with an old key.
    old_key: bool,
}

/// Opens the store and fetches the body a pointer cookie names.
fn fetch(
    spec: &StoreSpec<'_>,
    redis_prefix: &str,
    config: &SessionConfig,
    value: &str,
    desc: &Description,
) -> Result<Loaded, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("could not start the async runtime: {e}")))?;
    runtime.block_on(async {
        let store = spec.open(redis_prefix).await?;
        // The same keys (derived for the same purpose and algorithm), name and budget.
        let with_store = SessionConfig::builder(config.codec().keyring().clone())
            .cookie_name(config.cookie_name())
            .store_arc(store)
            .build()?;
        let session = sealed_session::inspect::open(&with_store, value)
            .await
            .map_err(|e| {
                Failure::from(e).hint(format!(
                    "session id {} (the store key), expires {}",
                    desc.id,
                    Timestamp(desc.expires_at)
                ))
            })?;
        if session.id() != desc.id {
            return Err(Failure::msg(
                "the store returned a body for another session id",
            ));
        }
        Ok(Loaded {
            entries: Entry::list(session.entries()),
            flash: Entry::list(session.flash_entries()),
            old_key: session.opened_with_old_key() && !desc.old_key,
        })
    })
}
