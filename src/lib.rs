#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod error;
mod keyring;

pub use codec::{inspect, Codec, Header, Inspection, Opened};
pub use error::{BoxError, Error};
pub use keyring::{Algorithm, Keyring};

/// Wire-format constants (format v1), for tools that read cookies.
pub mod format {
    pub use crate::codec::{
        DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_DECOMPRESSED, DEFAULT_MAX_VALUE_LEN,
        FLAG_ALGORITHM_MASK, FLAG_COMPRESSED, FLAG_POINTER, FLAG_RESERVED_MASK, HEADER_LEN,
        TAG_LEN, VERSION,
    };
    pub use crate::keyring::{DEFAULT_PURPOSE, HKDF_SALT, KEY_ID_LEN, MIN_SECRET_LEN};
}

mod config;
mod envelope;
pub mod http;
mod map;
mod session;
pub mod store;

pub use config::{
    Clock, Expiry, Fingerprint, SessionConfig, SessionConfigBuilder, Transport,
    DEFAULT_COOKIE_BUDGET, DEFAULT_COOKIE_NAME, MIN_COOKIE_BUDGET,
};
pub use cookie::SameSite;
pub use session::{Session, SessionId};

#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
pub use layer::{session_of, ResponseFuture, SessionLayer, SessionService};

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
pub use store::{MemoryStore, SessionStore, StoreKey};

/// Test-only hooks (feature `test-util`): fixed nonces for frozen vectors, raw envelope decoding for fuzzing.
///
/// Never enable this feature in production: a fixed nonce repeated under XChaCha20 breaks it.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod testing {
    use crate::envelope::{self, Body, Meta};
    use crate::{Codec, Error};

    /// The fixed parts of a session envelope.
    #[derive(Debug, Clone)]
    pub struct EnvelopeParts {
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
        /// Values, already postcard-encoded.
        pub values: Vec<(String, Vec<u8>)>,
    }

    /// Seals a session envelope for `context` (the cookie name) with a fixed nonce.
    ///
    /// # Errors
    /// As the codec's seal.
    pub fn seal_session_with_nonce(
        codec: &Codec,
        context: &str,
        parts: &EnvelopeParts,
        nonce: &[u8],
    ) -> Result<String, Error> {
        let meta = Meta {
            id: parts.id,
            created: parts.created,
            last_active: parts.last_active,
            expires_at: parts.expires_at,
            csrf: parts.csrf,
        };
        let mut body = Body::default();
        for (k, v) in &parts.values {
            body.values.insert(k, v);
        }
        let raw = codec.seal_raw(
            context.as_bytes(),
            &meta.encode()?,
            &body.encode()?,
            false,
            Some(nonce),
        )?;
        Ok(Codec::encode_text(&raw))
    }

    /// Feeds arbitrary bytes to the envelope decoder and decompressor, as if they had
    /// just been decrypted. Returns the number of values decoded.
    ///
    /// # Errors
    /// Whatever the decoder refuses.
    pub fn decode_envelope(
        codec: &Codec,
        plaintext: &[u8],
        compressed: bool,
    ) -> Result<usize, Error> {
        let (_, body) = envelope::decode(codec, plaintext, compressed)?;
        Ok(body.map_or(0, |b| b.values.len() + b.flash.len()))
    }
}
