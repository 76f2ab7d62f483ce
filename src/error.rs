//! The one error type of the crate, and [`ErrorKind`] for matching.
//!
//! Display strings are short lowercase fragments that say what went wrong and
//! carry the numbers that matter; they are for people and logs, **not API**:
//! match on [`Error::kind`] (or on the variant), never on the text. A cause is
//! printed by its own `Display` through [`source`](std::error::Error::source),
//! never repeated in ours. Authentication failures are deliberately opaque: a
//! tampered value, a wrong key, a wrong cookie name or purpose all give the same
//! [`Error::Authentication`].

use std::error::Error as StdError;
use std::fmt;

/// A boxed cause kept by [`Error::Store`], so `source()` reaches the backend's own error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong while sealing, opening, loading or saving a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value is not canonical base64url without padding.
    #[error("session value is not base64url")]
    NotBase64,

    /// The decoded value is too short to hold a header, a nonce and a tag.
    #[error("session value is {len} bytes, too short for a header, nonce and tag")]
    Truncated {
        /// Length of the decoded value in bytes.
        len: usize,
    },

    /// The value names a format version this build does not know.
    #[error("unsupported session format version {0} (this build reads versions 1 and 2)")]
    UnsupportedVersion(u8),

    /// The flags byte has reserved bits set or names an unknown algorithm.
    #[error("unsupported session flags {0:#04x}")]
    UnsupportedFlags(u8),

    /// The value was sealed with a key that is not in the keyring (rotated out, or another app).
    #[error("unknown key id {0:08x}: the value was sealed with a key this keyring does not hold")]
    UnknownKeyId(u32),

    /// The value did not authenticate: tampered, wrong key, wrong cookie name or wrong purpose.
    #[error("session value failed authentication")]
    Authentication,

    /// The session's absolute or idle lifetime has passed.
    #[error("session expired at unix time {expired_at}")]
    Expired {
        /// Unix time (seconds) at which the session stopped being valid.
        expired_at: i64,
    },

    /// A value is bigger than the budget allowed for it.
    #[error("{what} is {size} bytes, over the {limit}-byte budget")]
    TooLarge {
        /// What was too large ("session value", "session cookie", ...), or the name of
        /// the setting whose cap it is over (`max_decompressed`, `max_store_body`).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },

    /// A compressed body claims or reaches a size over the decompression cap.
    #[error("compressed session body would expand past the {limit}-byte {cap} cap")]
    DecompressionLimit {
        /// The configured cap in bytes.
        limit: usize,
        /// Which cap: `max_decompressed` (a cookie or header) or `max_store_body`.
        cap: &'static str,
    },

    /// A compressed body is corrupt (only reachable through the test-only raw paths).
    #[error("compressed session body is corrupt")]
    Decompression,

    /// The envelope around the session data could not be encoded or decoded.
    #[error("session envelope could not be (de)serialized")]
    Serialization(#[source] postcard::Error),

    /// A value could not be encoded, or does not decode as the type asked for (a
    /// wrong type, or a type changed incompatibly since it was stored). Only this key
    /// is affected: the rest of the session works.
    #[error(
        "session value {key:?} could not be encoded, or does not decode as the requested type"
    )]
    Value {
        /// The key of the value.
        key: String,
        /// The encoder's or decoder's own error.
        #[source]
        source: BoxError,
    },

    /// A secret or keyring string is unusable.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A configuration is unsafe or inconsistent.
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// A response header could not be built from the sealed value and the configuration.
    #[error("the session {0} header could not be built")]
    InvalidHeader(&'static str),

    /// The session store failed; the cause is kept in `source()`.
    #[error("session store failed while trying to {op}")]
    Store {
        /// What the store was asked to do (load, save, delete, ...).
        op: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },

    /// A pointer cookie names a store entry that is gone (expired or evicted).
    #[error("the session body is missing from the store (expired or evicted)")]
    MissingInStore,

    /// The session was revoked: ended by a logout, its subject logged out
    /// everywhere, or issued before the revocation cutoff.
    #[error("session revoked: {reason}")]
    Revoked {
        /// Which revocation refused it.
        reason: &'static str,
    },

    /// The revocation list could not be read for longer than allowed, so a session
    /// with a subject is refused rather than risk serving a revoked one (the
    /// layer answers 503).
    #[error("the revocation list is {stale_secs} s stale: sessions with a subject are refused until it syncs")]
    RevocationUnavailable {
        /// How long since the last successful sync (`u64::MAX`: never synced).
        stale_secs: u64,
    },
}

impl From<postcard::Error> for Error {
    fn from(e: postcard::Error) -> Self {
        Error::Serialization(e)
    }
}

/// What kind of failure an [`Error`] is: the stable thing to match on and to count.
///
/// [`ErrorKind::as_str`] gives a short label for logs and metrics (`"authentication"`,
/// `"expired"`, ...), stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not base64url, or too short ([`Error::NotBase64`], [`Error::Truncated`]).
    Malformed,
    /// [`Error::UnsupportedVersion`].
    UnsupportedVersion,
    /// [`Error::UnsupportedFlags`].
    UnsupportedFlags,
    /// [`Error::UnknownKeyId`].
    UnknownKeyId,
    /// [`Error::Authentication`].
    Authentication,
    /// [`Error::Expired`].
    Expired,
    /// [`Error::TooLarge`].
    TooLarge,
    /// [`Error::DecompressionLimit`].
    DecompressionLimit,
    /// [`Error::Decompression`].
    Decompression,
    /// [`Error::Serialization`].
    Serialization,
    /// [`Error::Value`].
    Value,
    /// [`Error::InvalidKey`].
    InvalidKey,
    /// [`Error::Config`].
    Config,
    /// [`Error::InvalidHeader`].
    InvalidHeader,
    /// [`Error::Store`].
    Store,
    /// [`Error::MissingInStore`].
    MissingInStore,
    /// [`Error::Revoked`].
    Revoked,
    /// [`Error::RevocationUnavailable`].
    RevocationUnavailable,
}

impl ErrorKind {
    /// A short stable label for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Malformed => "malformed",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::UnsupportedFlags => "unsupported_flags",
            ErrorKind::UnknownKeyId => "unknown_key_id",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Expired => "expired",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::DecompressionLimit => "decompression_limit",
            ErrorKind::Decompression => "decompression",
            ErrorKind::Serialization => "serialization",
            ErrorKind::Value => "value",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::Config => "config",
            ErrorKind::InvalidHeader => "invalid_header",
            ErrorKind::Store => "store",
            ErrorKind::MissingInStore => "missing_in_store",
            ErrorKind::Revoked => "revoked",
            ErrorKind::RevocationUnavailable => "revocation_unavailable",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// Wraps a store backend error, keeping it as the `source()`.
    pub fn store(op: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Store {
            op,
            source: source.into(),
        }
    }

    /// The HTTP status the layer answers with when this error stops a request: 503
    /// for a store failure or a stale revocation list (retry later), 500 for anything else.
    #[cfg(feature = "tower")]
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            Error::Store { .. } | Error::RevocationUnavailable { .. } => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotBase64 | Error::Truncated { .. } => ErrorKind::Malformed,
            Error::UnsupportedVersion(_) => ErrorKind::UnsupportedVersion,
            Error::UnsupportedFlags(_) => ErrorKind::UnsupportedFlags,
            Error::UnknownKeyId(_) => ErrorKind::UnknownKeyId,
            Error::Authentication => ErrorKind::Authentication,
            Error::Expired { .. } => ErrorKind::Expired,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::DecompressionLimit { .. } => ErrorKind::DecompressionLimit,
            Error::Decompression => ErrorKind::Decompression,
            Error::Serialization(_) => ErrorKind::Serialization,
            Error::Value { .. } => ErrorKind::Value,
            Error::InvalidKey(_) => ErrorKind::InvalidKey,
            Error::Config(_) => ErrorKind::Config,
            Error::InvalidHeader(_) => ErrorKind::InvalidHeader,
            Error::Store { .. } => ErrorKind::Store,
            Error::MissingInStore => ErrorKind::MissingInStore,
            Error::Revoked { .. } => ErrorKind::Revoked,
            Error::RevocationUnavailable { .. } => ErrorKind::RevocationUnavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_printed_once() {
        let cause = postcard::from_bytes::<u64>(&[]).unwrap_err();
        let e = Error::from(cause);
        let text = e.to_string();
        let source = StdError::source(&e).expect("the cause is kept").to_string();
        assert!(!text.contains(&source), "{text} repeats {source}");
        assert_eq!(e.kind(), ErrorKind::Serialization);
    }

    #[test]
    fn labels_are_stable() {
        assert_eq!(Error::Authentication.kind().as_str(), "authentication");
        assert_eq!(Error::NotBase64.kind().to_string(), "malformed");
        assert_eq!(Error::UnknownKeyId(1).kind().as_str(), "unknown_key_id");
        assert_eq!(
            Error::store("load", "down").kind(),
            ErrorKind::Store,
            "store errors are one kind whatever the operation"
        );
    }
}
