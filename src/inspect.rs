//! Looking at sealed values from the outside, for operator tools and tests: the
//! clear header without a key ([`header`]), what a value says about itself with
//! the keys ([`describe`]), and the whole session it holds ([`open`]).
//!
//! None of these ever reveal a key or the CSRF secret; [`describe`] shows value
//! sizes, not values.

use time::OffsetDateTime;

use crate::codec::{self, Header, HEADER_LEN, TAG_LEN};
use crate::envelope;
use crate::envelope::Contents;
use crate::headers::{fetch_body, unseal, Unsealed};
use crate::map::ValueMap;
use crate::session::{Arrival, Carrier};
use crate::store::StoreKey;
use crate::{guard, Error, Session, SessionConfig, SessionExpiry, SessionId};

/// What [`header`] can tell about a value without any key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The clear header.
    pub header: Header,
    /// Length of the text value.
    pub text_len: usize,
    /// Length of the decoded bytes.
    pub raw_len: usize,
    /// Length of the nonce.
    pub nonce_len: usize,
    /// Length of the ciphertext without the tag (= the plaintext length).
    pub ciphertext_len: usize,
    /// Length of the authentication tag (16 for both algorithms).
    pub tag_len: usize,
}

/// Reads the header and sizes of a sealed text value; needs no key and proves nothing.
///
/// ```
/// use sealed_session::{inspect, Codec, Keyring};
/// let text = Codec::new(Keyring::generate()).seal("session", b"hello")?;
/// let info = inspect::header(&text)?;
/// assert_eq!(info.header.version, 2);
/// assert_eq!(info.ciphertext_len, 5);
/// # Ok::<(), sealed_session::Error>(())
/// ```
///
/// # Errors
/// Bad base64, a short value, or an unsupported version or flags.
pub fn header(value: &str) -> Result<Inspection, Error> {
    let value = value.trim();
    let raw = codec::decode_text(value)?;
    let header = Header::parse(&raw)?;
    let nonce_len = header.algorithm.nonce_len();
    let ciphertext_len = raw
        .len()
        .checked_sub(HEADER_LEN + nonce_len + TAG_LEN)
        .ok_or(Error::Truncated { len: raw.len() })?;
    Ok(Inspection {
        header,
        text_len: value.len(),
        raw_len: raw.len(),
        nonce_len,
        ciphertext_len,
        tag_len: TAG_LEN,
    })
}

/// What an opened session value says about itself; see [`describe`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Description {
    /// The clear header (version, algorithm, flags, key id).
    pub header: Header,
    /// True when a key other than the primary opened it.
    pub old_key: bool,
    /// The session id.
    pub id: SessionId,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last write.
    pub last_activity: OffsetDateTime,
    /// Expiry recorded in the envelope.
    pub expires_at: OffsetDateTime,
    /// True when it has expired by the config's clock and rules (which may end it
    /// before the recorded expiry).
    pub expired: bool,
    /// The session's own expiry policy.
    pub expiry: SessionExpiry,
    /// True when a subject (the logged-in identity) was sealed with it.
    pub has_subject: bool,
    /// True when a CSRF token was issued (the token itself is never shown).
    pub has_csrf_token: bool,
    /// Each value's key and encoded size; `None` for a pointer (the body is in the store).
    pub entries: Option<Vec<(String, usize)>>,
    /// Each pending flash entry's key and encoded size; `None` for a pointer.
    pub flash: Option<Vec<(String, usize)>>,
    /// Where a pointer's body lives in the store; `None` for an inline value.
    pub store_key: Option<StoreKey>,
}

/// Opens a value (cookie name as context, no fingerprint) and describes it, without
/// touching any store, without failing on expiry and whatever its length (a tool
/// looks at what it is given).
///
/// # Errors
/// Any open error (malformed, version, flags, unknown key id, authentication, limits).
pub fn describe(config: &SessionConfig, value: &str) -> Result<Description, Error> {
    let raw = codec::decode_text(value.trim())?;
    let opened = config
        .codec()
        .open_bytes(config.cookie_name().as_bytes(), raw)?;
    let content = opened.header.content();
    let (meta, contents) = envelope::decode(
        content.version,
        config.compression(),
        &opened.plaintext,
        content,
    )?;
    let sizes = |m: &ValueMap| {
        m.iter()
            .map(|(k, v)| (k.to_owned(), v.len()))
            .collect::<Vec<_>>()
    };
    let (body, entry) = match contents {
        Contents::Body(body) => (Some(body), None),
        Contents::Pointer(entry) => (None, Some(entry)),
    };
    let effective = config.rules().effective_expiry(
        meta.policy,
        meta.created,
        meta.last_active,
        meta.expires_at,
    );
    let at = |t: i64| OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Ok(Description {
        header: opened.header,
        old_key: opened.old_key,
        id: meta.id,
        created_at: at(meta.created),
        last_activity: at(meta.last_active),
        expires_at: at(meta.expires_at),
        expired: config.clock().unix() >= effective,
        expiry: meta.policy.public(),
        has_subject: meta.subject.is_some(),
        has_csrf_token: meta.csrf.is_some(),
        entries: body.as_ref().map(|b| sizes(&b.values)),
        flash: body.as_ref().map(|b| sizes(&b.flash)),
        store_key: entry.as_ref().map(guard::entry_key),
    })
}

/// Opens one sealed value as the session it holds (fetching the body of a pointer
/// from the config's store), with the cookie name as context (no fingerprint).
///
/// # Errors
/// Any open error, [`Error::Expired`], [`Error::MissingInStore`], [`Error::Store`].
pub async fn open(config: &SessionConfig, value: &str) -> Result<Session, Error> {
    let aad = config.cookie_name().as_bytes();
    let loaded = match unseal(
        config,
        Carrier::Cookie,
        aad,
        value.trim(),
        config.clock().unix(),
    )? {
        Unsealed::Whole(loaded) => loaded,
        Unsealed::Pointer(pointer) => fetch_body(config, pointer).await?,
    };
    let arrival = Arrival::loaded(Carrier::Cookie, None, loaded.old_key);
    Ok(Session::loaded(loaded, arrival))
}
