//! The plaintext inside a sealed session value: a small header that is never
//! compressed ([`Meta`]: id, times, the session's own expiry policy, subject,
//! CSRF secret), then the data ([`Body`], maybe compressed) or, for a pointer,
//! the name of the store entry that holds the data.
//!
//! ```text
//! v2 (written): plaintext = postcard(MetaV2) || body        inline
//!                         = postcard(MetaV2) || entry id    pointer (16 bytes)
//!     MetaV2 = id, created, last-active and expires-at as deltas from created,
//!              policy, subject (key id + keyed hash), fingerprint tag, CSRF secret
//! v1 (read):    plaintext = postcard(MetaV1) || body        (a pointer: MetaV1 only)
//! body      = postcard(values map, flash map), lz4-compressed when flag bit 2 is set
//! ```
//! The session id and the CSRF secret live in `Meta`, outside the compressed
//! part, so compressing attacker-chosen data next to them cannot leak them
//! through the length. The envelope owns compression and format versions: the
//! codec only seals and opens the bytes this module produces.

use serde::de::DeserializeSeed as _;
use serde::{Deserialize, Serialize};

pub(crate) use crate::expiry::Policy;
use crate::id::{Entry, EntryId};
use crate::map::ValueMap;
use crate::{Error, SessionId};

mod compress;
mod v1;
mod v2;

pub(crate) use compress::Compression;

/// Format version of the envelope format v1 (read only).
pub(crate) const V1: u8 = 1;
/// Format version written by this build.
pub(crate) const V2: u8 = 2;

/// What the envelope says about the bytes it hands to the codec: its format version
/// (byte 0) and flag bits 2 and 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Content {
    /// The envelope format version.
    pub(crate) version: u8,
    /// The envelope's body is compressed.
    pub(crate) compressed: bool,
    /// The value carries no body: it points at a store entry.
    pub(crate) pointer: bool,
}

impl Default for Content {
    /// The current version, uncompressed, inline.
    fn default() -> Self {
        Content {
            version: V2,
            compressed: false,
            pointer: false,
        }
    }
}

/// Length of a CSRF token secret in bytes.
pub(crate) const CSRF_LEN: usize = 32;
/// Length of a subject's keyed hash in bytes.
pub(crate) const SUBJECT_HASH_LEN: usize = 16;
/// Length of a fingerprint tag in bytes.
pub(crate) const FINGERPRINT_TAG_LEN: usize = 8;

/// The logged-in identity as a keyed hash: the id of the key that made it, and the
/// first 16 bytes of HMAC-SHA256 under that key's subject key (never the name
/// itself), with the time it was set (login): revoking a subject refuses the
/// sessions it was set on before the revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Subject {
    pub(crate) key_id: u32,
    pub(crate) hash: [u8; SUBJECT_HASH_LEN],
    /// Unix milliseconds when it was set.
    pub(crate) since: i64,
}

/// The uncompressed envelope header, in memory (absolute unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Random 128-bit session id.
    pub(crate) id: SessionId,
    /// Unix seconds when the session was created.
    pub(crate) created: i64,
    /// Unix seconds of the last write that counted as activity (for idle timeouts).
    pub(crate) last_active: i64,
    /// Unix seconds after which the session is invalid, whatever the cookie says.
    pub(crate) expires_at: i64,
    /// The session's own expiry policy.
    pub(crate) policy: Policy,
    /// The logged-in identity, for revoking all of a subject's sessions.
    pub(crate) subject: Option<Subject>,
    /// A hash of the request fingerprint it was written under (log-only binding).
    pub(crate) fingerprint: Option<[u8; FINGERPRINT_TAG_LEN]>,
    /// The CSRF token secret, made lazily.
    pub(crate) csrf: Option<[u8; CSRF_LEN]>,
}

impl Meta {
    /// The meta of a session created at `now`, expiring at `expires_at`.
    pub(crate) fn new(id: SessionId, now: i64, expires_at: i64) -> Self {
        Meta {
            id,
            created: now,
            last_active: now,
            expires_at,
            policy: Policy::Default,
            subject: None,
            fingerprint: None,
            csrf: None,
        }
    }
}

/// The session data: values and the flash data for the next request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Body {
    pub(crate) values: ValueMap,
    pub(crate) flash: ValueMap,
}

/// What follows the meta in a plaintext.
#[derive(Debug)]
pub(crate) enum Contents {
    /// The session data (an inline value).
    Body(Body),
    /// A pointer: the data is in the store.
    Pointer(Entry),
}

/// Upper bound of `postcard(Body)`: every length prefix at its longest varint.
fn body_size_bound(body: &Body) -> usize {
    const PREFIX: usize = 10;
    let map = |m: &ValueMap| 2 * PREFIX * m.len() + m.live_bytes();
    2 * PREFIX + map(&body.values) + map(&body.flash)
}

/// Encodes `postcard(meta) || postcard(body)` (format v2) into one buffer sized up
/// front (no regrowth), returning it and where the body starts.
pub(crate) fn encode(meta: &Meta, body: &Body) -> Result<(Vec<u8>, usize), Error> {
    let out = Vec::with_capacity(v2::META_MAX + body_size_bound(body));
    let out = v2::encode_meta(meta, AppendVec(out))?;
    let meta_len = out.len();
    let out = postcard::serialize_with_flavor(body, AppendVec(out))?;
    Ok((out, meta_len))
}

/// The plaintext of a pointer (format v2): the meta, then the entry's id.
pub(crate) fn pointer_parts<'a>(meta: &'a [u8], entry: &'a EntryId) -> [&'a [u8]; 2] {
    [meta, entry.as_bytes()]
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

/// Decodes a decrypted plaintext of format `version` with the flags `content`:
/// its meta and its body (decompressed, capped) or the store entry it points at.
pub(crate) fn decode(
    version: u8,
    compression: &Compression,
    plaintext: &[u8],
    content: Content,
) -> Result<(Meta, Contents), Error> {
    let (meta, rest) = match version {
        V1 => v1::decode_meta(plaintext)?,
        _ => v2::decode_meta(plaintext)?,
    };
    if content.pointer {
        let entry = match version {
            V1 if rest.is_empty() => Entry::Legacy(meta.id),
            V2 if !content.compressed => {
                let id: [u8; 16] = rest.try_into().map_err(|_| Error::Truncated {
                    len: plaintext.len(),
                })?;
                Entry::Written(meta.id, EntryId::from_bytes(id))
            }
            _ => return Err(Error::Authentication),
        };
        return Ok((meta, Contents::Pointer(entry)));
    }
    let body = decode_body(version, compression, rest, content.compressed)?;
    Ok((meta, Contents::Body(body)))
}

/// Decodes a body of format `version`, decompressing it first when flagged (capped).
pub(crate) fn decode_body(
    version: u8,
    compression: &Compression,
    bytes: &[u8],
    compressed: bool,
) -> Result<Body, Error> {
    let body = if compressed {
        body_from_bytes(&compression.unpack(bytes)?)?
    } else if bytes.is_empty() {
        Body::default()
    } else {
        body_from_bytes(bytes)?
    };
    Ok(match version {
        V1 => v1::upgrade_body(body),
        _ => body,
    })
}

/// `postcard::from_bytes::<Body>`, with the maps' arenas sized from the input length
/// once instead of growing entry by entry.
fn body_from_bytes(bytes: &[u8]) -> Result<Body, Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let values = ValueMap::seed(bytes.len()).deserialize(&mut de)?;
    let flash = ValueMap::seed(bytes.len()).deserialize(&mut de)?;
    Ok(Body { values, flash })
}

/// Test hooks: the v1 writer (frozen vectors) and raw encoders.
#[cfg(any(test, feature = "test-util"))]
pub(crate) mod raw {
    use super::*;

    /// `postcard(body)`.
    pub(crate) fn body(body: &Body) -> Result<Vec<u8>, Error> {
        Ok(postcard::to_stdvec(body)?)
    }

    /// `postcard(MetaV1)`: what a format-v1 build wrote.
    pub(crate) fn meta_v1(meta: &Meta) -> Result<Vec<u8>, Error> {
        v1::encode_meta(meta)
    }

    /// `postcard(MetaV2)`.
    pub(crate) fn meta_v2(meta: &Meta) -> Result<Vec<u8>, Error> {
        v2::encode_meta(meta, AppendVec(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            id: SessionId::from_bytes([3; 16]),
            created: 1_700_000_000,
            last_active: 1_700_000_100,
            expires_at: 1_700_086_400,
            policy: Policy::Idle {
                timeout: 3600,
                renew: 1800,
            },
            subject: Some(Subject {
                key_id: 7,
                hash: [5; SUBJECT_HASH_LEN],
                since: 1_700_000_050_000,
            }),
            fingerprint: Some([1; FINGERPRINT_TAG_LEN]),
            csrf: Some([9; CSRF_LEN]),
        }
    }

    const INLINE: Content = Content {
        version: V2,
        compressed: false,
        pointer: false,
    };

    #[test]
    fn meta_and_body_round_trip() {
        let compression = Compression::default();
        let meta = meta();
        let mut body = Body::default();
        body.values.insert("user", &[1, 2, 3]);
        let mut plain = raw::meta_v2(&meta).unwrap();
        plain.extend(raw::body(&body).unwrap());
        let (m, b) = decode(V2, &compression, &plain, INLINE).unwrap();
        assert_eq!(m, meta);
        assert!(matches!(b, Contents::Body(b) if b == body));

        let (joined, meta_len) = encode(&meta, &body).unwrap();
        assert_eq!(joined, plain);
        assert_eq!(meta_len, raw::meta_v2(&meta).unwrap().len());
    }

    #[test]
    fn a_pointer_names_its_entry() {
        let compression = Compression::default();
        let meta = meta();
        let entry = EntryId::from_bytes([0xE7; 16]);
        let m = raw::meta_v2(&meta).unwrap();
        let plain = pointer_parts(&m, &entry).concat();
        let pointer = Content {
            pointer: true,
            ..INLINE
        };
        let (_, contents) = decode(V2, &compression, &plain, pointer).unwrap();
        assert!(
            matches!(contents, Contents::Pointer(Entry::Written(id, e)) if id == meta.id && e == entry)
        );
        // A pointer whose entry id is cut short does not decode.
        assert!(decode(V2, &compression, &plain[..plain.len() - 1], pointer).is_err());
        // A v1 pointer is the v1 meta alone, its entry the session id.
        let v1 = raw::meta_v1(&meta).unwrap();
        let (m1, contents) = decode(
            V1,
            &compression,
            &v1,
            Content {
                version: V1,
                ..pointer
            },
        )
        .unwrap();
        assert_eq!(m1.policy, Policy::Default, "v1 sealed no policy");
        assert!(matches!(contents, Contents::Pointer(Entry::Legacy(id)) if id == meta.id));
    }

    #[test]
    fn size_bounds_hold_at_the_extremes() {
        let meta = Meta {
            id: SessionId::from_bytes([0xff; 16]),
            created: i64::MIN,
            last_active: i64::MAX,
            expires_at: i64::MIN,
            policy: Policy::Absolute {
                start: i64::MIN,
                ttl: u64::MAX,
            },
            ..self::meta()
        };
        assert!(raw::meta_v2(&meta).unwrap().len() <= v2::META_MAX);
        let mut body = Body::default();
        body.values.insert(&"k".repeat(300), &[7; 70_000]);
        body.flash.insert("", &[]);
        let (out, _) = encode(&meta, &body).unwrap();
        assert!(out.len() <= v2::META_MAX + body_size_bound(&body));
        assert!(out.capacity() <= v2::META_MAX + body_size_bound(&body));
        let (m, _) = decode(V2, &Compression::default(), &out, INLINE).unwrap();
        assert_eq!(m, meta, "deltas survive the extremes");
    }

    #[test]
    fn garbage_never_panics() {
        let compression = Compression {
            max_decompressed: 1024,
            ..Compression::default()
        };
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ len).collect();
            for version in [V1, V2] {
                for (compressed, pointer) in [(false, false), (true, false), (false, true)] {
                    let content = Content {
                        version,
                        compressed,
                        pointer,
                    };
                    let _ = decode(version, &compression, &junk, content);
                }
            }
        }
        let bomb = [0xff, 0xff, 0xff, 0x7f, 0, 0];
        assert!(matches!(
            decode_body(V2, &compression, &bomb, true),
            Err(Error::DecompressionLimit { limit: 1024, .. })
        ));
    }
}
