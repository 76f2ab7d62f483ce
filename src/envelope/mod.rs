//! The plaintext inside a sealed session value: a small fixed header that is
//! never compressed (id, times, CSRF token), then the data body (maybe compressed).
//!
//! ```text
//! plaintext = postcard(Meta) || body
//! body      = postcard(Body), lz4-compressed when flag bit 2 is set; empty for a pointer
//! ```
//! The session id and the CSRF token live in `Meta`, outside the compressed
//! part, so compressing attacker-chosen data next to them cannot leak them
//! through the length. The envelope owns compression: the codec only seals and
//! opens the bytes this module produces.

use serde::de::DeserializeSeed as _;
use serde::{Deserialize, Serialize};

use crate::map::ValueMap;
use crate::{Error, SessionId};

mod compress;
pub(crate) use compress::Compression;

/// Length of a CSRF token secret in bytes.
pub(crate) const CSRF_LEN: usize = 32;

/// The uncompressed envelope header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Random 128-bit session id.
    pub(crate) id: SessionId,
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
    pub(crate) values: ValueMap,
    pub(crate) flash: ValueMap,
}

impl Body {
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(postcard::to_stdvec(self)?)
    }
}

impl Meta {
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(postcard::to_stdvec(self)?)
    }
}

/// Most bytes `postcard(Meta)` takes: 16 (id) + 3 × 10 (varint i64) + 1 + 32 (CSRF).
const META_MAX: usize = 16 + 3 * 10 + 1 + CSRF_LEN;

/// Upper bound of `postcard(Body)`: every length prefix at its longest varint.
fn body_size_bound(body: &Body) -> usize {
    const PREFIX: usize = 10;
    let map = |m: &ValueMap| 2 * PREFIX * m.len() + m.live_bytes();
    2 * PREFIX + map(&body.values) + map(&body.flash)
}

/// Encodes `postcard(meta) || postcard(body)` into one buffer sized up front (no
/// regrowth), returning it and where the body starts.
pub(crate) fn encode(meta: &Meta, body: &Body) -> Result<(Vec<u8>, usize), Error> {
    let out = Vec::with_capacity(META_MAX + body_size_bound(body));
    let out = postcard::serialize_with_flavor(meta, AppendVec(out))?;
    let meta_len = out.len();
    let out = postcard::serialize_with_flavor(body, AppendVec(out))?;
    Ok((out, meta_len))
}

/// A postcard flavor appending to a `Vec` with `extend_from_slice`
/// (`postcard::to_extend` pushes byte by byte; `to_stdvec` starts from an empty `Vec`).
struct AppendVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Splits a decrypted plaintext into its meta and (decompressed) body.
///
/// A pointer carries no body: `None` then.
pub(crate) fn decode(
    compression: &Compression,
    plaintext: &[u8],
    compressed: bool,
) -> Result<(Meta, Option<Body>), Error> {
    let (meta, rest): (Meta, &[u8]) = postcard::take_from_bytes(plaintext)?;
    if rest.is_empty() && !compressed {
        return Ok((meta, None));
    }
    let body = decode_body(compression, rest, compressed)?;
    Ok((meta, Some(body)))
}

/// Decodes a body, decompressing it first when flagged (capped).
pub(crate) fn decode_body(
    compression: &Compression,
    bytes: &[u8],
    compressed: bool,
) -> Result<Body, Error> {
    if compressed {
        let inflated = compression.unpack(bytes)?;
        body_from_bytes(&inflated)
    } else {
        body_from_bytes(bytes)
    }
}

/// `postcard::from_bytes::<Body>`, with the maps' arenas sized from the input length
/// once instead of growing entry by entry.
fn body_from_bytes(bytes: &[u8]) -> Result<Body, Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let values = ValueMap::seed(bytes.len()).deserialize(&mut de)?;
    let flash = ValueMap::seed(bytes.len()).deserialize(&mut de)?;
    Ok(Body { values, flash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_and_body_round_trip() {
        let compression = Compression::default();
        let meta = Meta {
            id: SessionId::from_bytes([3; 16]),
            created: 1_700_000_000,
            last_active: 1_700_000_100,
            expires_at: 1_700_086_400,
            csrf: Some([9; CSRF_LEN]),
        };
        let mut body = Body::default();
        body.values.insert("user", &[1, 2, 3]);
        let mut plain = meta.encode().unwrap();
        plain.extend(body.encode().unwrap());
        let (m, b) = decode(&compression, &plain, false).unwrap();
        assert_eq!(m, meta);
        assert_eq!(b.as_ref(), Some(&body));
        let (_, none) = decode(&compression, &meta.encode().unwrap(), false).unwrap();
        assert_eq!(none, None);

        let (joined, meta_len) = encode(&meta, &body).unwrap();
        assert_eq!(joined, plain);
        assert_eq!(meta_len, meta.encode().unwrap().len());
    }

    #[test]
    fn size_bounds_hold_at_the_extremes() {
        let meta = Meta {
            id: SessionId::from_bytes([0xff; 16]),
            created: i64::MIN,
            last_active: i64::MAX,
            expires_at: i64::MIN,
            csrf: Some([0xff; CSRF_LEN]),
        };
        assert_eq!(meta.encode().unwrap().len(), META_MAX);
        let mut body = Body::default();
        body.values.insert(&"k".repeat(300), &[7; 70_000]);
        body.flash.insert("", &[]);
        let (out, _) = encode(&meta, &body).unwrap();
        assert!(out.len() <= META_MAX + body_size_bound(&body));
        assert!(out.capacity() <= META_MAX + body_size_bound(&body));
    }

    #[test]
    fn garbage_never_panics() {
        let compression = Compression {
            max_decompressed: 1024,
            ..Compression::default()
        };
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ len).collect();
            let _ = decode(&compression, &junk, false);
            let _ = decode(&compression, &junk, true);
        }
        let bomb = [0xff, 0xff, 0xff, 0x7f, 0, 0];
        assert!(matches!(
            decode_body(&compression, &bomb, true),
            Err(Error::DecompressionLimit { limit: 1024 })
        ));
    }
}
