//! The plaintext inside a sealed session value: a small fixed header that is
//! never compressed (id, times, CSRF token), then the data body (maybe compressed).
//!
//! ```text
//! plaintext = postcard(Meta) || body
//! body      = postcard(Body), lz4-compressed when flag bit 2 is set; empty for a pointer
//! ```
//! The session id and the CSRF token live in `Meta`, outside the compressed
//! part, so compressing attacker-chosen data next to them cannot leak them
//! through the length.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::Codec;
use crate::Error;

/// Length of a CSRF token secret in bytes.
pub(crate) const CSRF_LEN: usize = 32;

/// The uncompressed envelope header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Random 128-bit session id.
    pub(crate) id: [u8; 16],
    /// Unix seconds when the session was created.
    pub(crate) created: i64,
    /// Unix seconds of the last write (for idle timeouts).
    pub(crate) last_active: i64,
    /// Unix seconds after which the session is invalid, whatever the cookie says.
    pub(crate) expires_at: i64,
    /// The CSRF token secret, made lazily.
    pub(crate) csrf: Option<[u8; CSRF_LEN]>,
}

/// The session data: values and the flash data for the next request, postcard-encoded values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub(crate) values: BTreeMap<String, Vec<u8>>,
    pub(crate) flash: BTreeMap<String, Vec<u8>>,
}

impl Body {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(postcard::to_stdvec(self)?)
    }
}

impl Meta {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(postcard::to_stdvec(self)?)
    }
}

/// Splits a decrypted plaintext into its meta and (decompressed) body.
///
/// A pointer carries no body; `Body::default()` stands in for it.
pub(crate) fn decode(
    codec: &Codec,
    plaintext: &[u8],
    compressed: bool,
) -> Result<(Meta, Option<Body>), Error> {
    let (meta, rest): (Meta, &[u8]) = postcard::take_from_bytes(plaintext)?;
    if rest.is_empty() && !compressed {
        return Ok((meta, None));
    }
    let body = decode_body(codec, rest, compressed)?;
    Ok((meta, Some(body)))
}

/// Decodes a body, decompressing it first when flagged (capped by the codec).
pub(crate) fn decode_body(codec: &Codec, bytes: &[u8], compressed: bool) -> Result<Body, Error> {
    if compressed {
        let inflated = codec.decompress(bytes)?;
        Ok(postcard::from_bytes(&inflated)?)
    } else {
        Ok(postcard::from_bytes(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    #[test]
    fn meta_and_body_round_trip() {
        let codec = Codec::new(Keyring::generate());
        let meta = Meta {
            id: [3; 16],
            created: 1_700_000_000,
            last_active: 1_700_000_100,
            expires_at: 1_700_086_400,
            csrf: Some([9; CSRF_LEN]),
        };
        let mut body = Body::default();
        body.values.insert("user".into(), vec![1, 2, 3]);
        let mut plain = meta.encode().unwrap();
        plain.extend(body.encode().unwrap());
        let (m, b) = decode(&codec, &plain, false).unwrap();
        assert_eq!(m, meta);
        assert_eq!(b, Some(body));
        let (_, none) = decode(&codec, &meta.encode().unwrap(), false).unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn garbage_never_panics() {
        let codec = Codec::new(Keyring::generate()).with_max_decompressed(1024);
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ len).collect();
            let _ = decode(&codec, &junk, false);
            let _ = decode(&codec, &junk, true);
        }
        let bomb = [0xff, 0xff, 0xff, 0x7f, 0, 0];
        assert!(matches!(
            decode_body(&codec, &bomb, true),
            Err(Error::DecompressionLimit { limit: 1024 })
        ));
    }
}
