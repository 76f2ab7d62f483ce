//! Test-only hooks (feature `test-util`): fixed nonces for frozen vectors, raw
//! envelope decoding for fuzzing.
//!
//! Never enable this feature in production: a fixed nonce repeated under XChaCha20
//! breaks it.

use crate::codec::{self, Codec};
use crate::envelope::Content;
use crate::envelope::{self, raw, Body, Compression, Meta, Policy as SealedPolicy, Subject};
use crate::id::{Entry, EntryId};
use crate::{guard, Error, SessionId};

/// A sealed expiry policy (format v2), as the envelope holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The config's default.
    Default,
    /// A browser-session cookie.
    BrowserSession,
    /// Lives `ttl` seconds from `start` seconds after creation.
    Absolute {
        /// Seconds after creation the policy was set.
        start: i64,
        /// Lifetime in seconds.
        ttl: u64,
    },
    /// Lives `timeout` seconds after each write; re-issued under `renew` seconds left.
    Idle {
        /// Idle timeout in seconds.
        timeout: u64,
        /// Renew threshold in seconds.
        renew: u64,
    },
}

impl From<Policy> for SealedPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Default => SealedPolicy::Default,
            Policy::BrowserSession => SealedPolicy::BrowserSession,
            Policy::Absolute { start, ttl } => SealedPolicy::Absolute { start, ttl },
            Policy::Idle { timeout, renew } => SealedPolicy::Idle { timeout, renew },
        }
    }
}

/// The fixed parts of a session envelope.
#[derive(Debug, Clone)]
pub struct EnvelopeParts {
    /// Format version: 1 or 2.
    pub version: u8,
    /// Session id.
    pub id: [u8; 16],
    /// Created, unix seconds.
    pub created: i64,
    /// Last activity, unix seconds.
    pub last_active: i64,
    /// Expiry, unix seconds.
    pub expires_at: i64,
    /// CSRF secret.
    pub csrf: Option<[u8; 32]>,
    /// The session's own policy (v2 only).
    pub policy: Policy,
    /// Subject: key id, keyed hash and when it was set (v2 only).
    pub subject: Option<(u32, [u8; 16], i64)>,
    /// Fingerprint tag (v2 only).
    pub fingerprint: Option<[u8; 8]>,
    /// Values, already encoded (postcard in v1, CBOR in v2).
    pub values: Vec<(String, Vec<u8>)>,
    /// Flash values for the next request, already encoded.
    pub flash: Vec<(String, Vec<u8>)>,
    /// Seal a pointer to this store entry id instead of the body (v2 only).
    pub pointer: Option<[u8; 16]>,
}

impl EnvelopeParts {
    fn meta(&self) -> Meta {
        Meta {
            id: SessionId::from_bytes(self.id),
            created: self.created,
            last_active: self.last_active,
            expires_at: self.expires_at,
            policy: self.policy.into(),
            subject: self.subject.map(|(key_id, hash, since)| Subject {
                key_id,
                hash,
                since,
            }),
            fingerprint: self.fingerprint,
            csrf: self.csrf,
        }
    }

    fn body(&self) -> Result<Vec<u8>, Error> {
        let mut body = Body::default();
        for (k, v) in &self.values {
            body.values.insert(k, v);
        }
        for (k, v) in &self.flash {
            body.flash.insert(k, v);
        }
        raw::body(&body)
    }
}

fn compression(threshold: Option<usize>) -> Compression {
    Compression {
        threshold,
        ..Compression::default()
    }
}

/// Seals bytes for `name` with a fixed nonce as format `version`, lz4-compressing
/// them first (flag bit 2) when `compression_threshold` says it pays: the raw-value
/// vectors.
///
/// # Errors
/// A nonce of the wrong length; a plaintext over the 64 KiB cap.
pub fn seal_with_nonce(
    codec: &Codec,
    name: &str,
    plaintext: &[u8],
    nonce: &[u8],
    compression_threshold: Option<usize>,
    version: u8,
) -> Result<String, Error> {
    let packed = compression(compression_threshold).pack(plaintext)?;
    let content = Content {
        version,
        compressed: packed.compressed,
        pointer: false,
    };
    let raw = codec.seal_parts(name.as_bytes(), content, &[&packed.bytes], Some(nonce))?;
    Ok(codec::encode_text(&raw))
}

/// Opens a value sealed by [`seal_with_nonce`] (or [`Codec::seal`]) and inflates a
/// compressed one, capped at `max_decompressed` bytes.
///
/// # Errors
/// Any open error; [`Error::DecompressionLimit`] over the cap.
pub fn open_inflated(
    codec: &Codec,
    name: &str,
    value: &str,
    max_decompressed: usize,
) -> Result<(Vec<u8>, bool), Error> {
    let opened = codec.open(name, value)?;
    let plaintext = if opened.header.compressed {
        Compression {
            max_decompressed,
            ..Compression::default()
        }
        .unpack(&opened.plaintext)?
    } else {
        opened.plaintext
    };
    Ok((plaintext, opened.old_key))
}

/// Seals a session envelope (inline, or a pointer when `parts.pointer` is set) for
/// `context` (the cookie name) with a fixed nonce.
///
/// # Errors
/// As the codec's seal; a version other than 1 or 2.
pub fn seal_session_with_nonce(
    codec: &Codec,
    context: &str,
    parts: &EnvelopeParts,
    nonce: &[u8],
    compression_threshold: Option<usize>,
) -> Result<String, Error> {
    let meta = parts.meta();
    let meta = match parts.version {
        envelope::V1 => raw::meta_v1(&meta)?,
        envelope::V2 => raw::meta_v2(&meta)?,
        other => return Err(Error::UnsupportedVersion(other)),
    };
    let raw = if let Some(entry) = parts.pointer {
        let entry = EntryId::from_bytes(entry);
        let content = Content {
            version: parts.version,
            compressed: false,
            pointer: true,
        };
        codec.seal_parts(
            context.as_bytes(),
            content,
            &envelope::pointer_parts(&meta, &entry),
            Some(nonce),
        )?
    } else {
        let body = parts.body()?;
        let packed = compression(compression_threshold).pack(&body)?;
        let content = Content {
            version: parts.version,
            compressed: packed.compressed,
            pointer: false,
        };
        codec.seal_parts(
            context.as_bytes(),
            content,
            &[&meta, &packed.bytes],
            Some(nonce),
        )?
    };
    Ok(codec::encode_text(&raw))
}

/// Seals the store entry of a v2 pointer with a fixed nonce: the body of `parts`,
/// bound to the cookie name, the session id and `parts.pointer`'s entry id. Returns
/// the store key (hex) and the sealed bytes.
///
/// # Errors
/// As the codec's seal; `parts.pointer` unset.
pub fn seal_store_entry_with_nonce(
    codec: &Codec,
    cookie_name: &str,
    parts: &EnvelopeParts,
    nonce: &[u8],
    compression_threshold: Option<usize>,
) -> Result<(String, Vec<u8>), Error> {
    let entry_id = parts
        .pointer
        .ok_or_else(|| Error::Config("a store entry belongs to a pointer".into()))?;
    let entry = Entry::Written(
        SessionId::from_bytes(parts.id),
        EntryId::from_bytes(entry_id),
    );
    let body = parts.body()?;
    let packed = compression(compression_threshold).pack(&body)?;
    let content = Content {
        version: envelope::V2,
        compressed: packed.compressed,
        pointer: false,
    };
    let sealed = codec.seal_parts(
        &guard::entry_context(cookie_name, &entry),
        content,
        &[&packed.bytes],
        Some(nonce),
    )?;
    Ok((guard::entry_key(&entry).to_string(), sealed))
}

/// Feeds arbitrary bytes to the envelope decoder and decompressor of format
/// `version` (capped at `max_decompressed`), as if they had just been decrypted.
/// Returns the number of values decoded (0 for a pointer).
///
/// # Errors
/// Whatever the decoder refuses.
pub fn decode_envelope(
    version: u8,
    max_decompressed: usize,
    plaintext: &[u8],
    compressed: bool,
    pointer: bool,
) -> Result<usize, Error> {
    let compression = Compression {
        max_decompressed,
        ..Compression::default()
    };
    let content = Content {
        version,
        compressed,
        pointer,
    };
    let (_, contents) = envelope::decode(version, &compression, plaintext, content)?;
    Ok(match contents {
        envelope::Contents::Body(b) => b.values.len() + b.flash.len(),
        envelope::Contents::Pointer(_) => 0,
    })
}
