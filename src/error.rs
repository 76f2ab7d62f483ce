//! The one error type of the crate.
//!
//! Display strings are short lowercase fragments that say what went wrong and
//! carry the numbers that matter. Authentication failures are deliberately
//! opaque: a tampered value, a wrong key, a wrong cookie name or purpose all
//! give the same [`Error::Authentication`].

use std::error::Error as StdError;

/// A boxed cause kept by [`Error::Store`], so `source()` reaches the backend's own error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong while sealing, opening, loading or saving a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value is not valid base64url, or too short to hold a header, nonce and tag.
    #[error("malformed session value: {0}")]
    Malformed(&'static str),

    /// The value names a format version this build does not know.
    #[error("unsupported session format version {0} (this build reads version 1)")]
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
        /// What was too large ("cookie", "session value", ...).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },

    /// A compressed body claims or reaches a size over the decompression cap.
    #[error("compressed session body would expand past the {limit}-byte cap")]
    DecompressionLimit {
        /// The configured cap in bytes.
        limit: usize,
    },

    /// A compressed body is corrupt (only reachable through the test-only raw paths).
    #[error("compressed session body is corrupt")]
    Decompression,

    /// Serializing or deserializing session data failed (usually a type mismatch in `get`).
    #[error("session data could not be (de)serialized: {0}")]
    Serialization(#[from] postcard::Error),

    /// A secret or keyring string is unusable.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A configuration is unsafe or inconsistent.
    #[error("invalid session configuration: {0}")]
    Config(String),

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
}

impl Error {
    /// Wraps a store backend error, keeping it as the `source()`.
    pub fn store(op: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Store {
            op,
            source: source.into(),
        }
    }

    /// A short stable label for logs and metrics (`"authentication"`, `"expired"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::UnsupportedVersion(_) => "unsupported_version",
            Error::UnsupportedFlags(_) => "unsupported_flags",
            Error::UnknownKeyId(_) => "unknown_key_id",
            Error::Authentication => "authentication",
            Error::Expired { .. } => "expired",
            Error::TooLarge { .. } => "too_large",
            Error::DecompressionLimit { .. } => "decompression_limit",
            Error::Decompression => "decompression",
            Error::Serialization(_) => "serialization",
            Error::InvalidKey(_) => "invalid_key",
            Error::Config(_) => "config",
            Error::Store { .. } => "store",
            Error::MissingInStore => "missing_in_store",
        }
    }
}
