//! Test-only hooks (feature `test-util`): fixed nonces for frozen vectors, raw
//! envelope decoding for fuzzing.
//!
//! Never enable this feature in production: a fixed nonce repeated under XChaCha20
//! breaks it.

use crate::codec::{self, Codec, Content};
use crate::envelope::{self, Body, Compression, Meta};
use crate::{Error, SessionId};

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

fn compression(threshold: Option<usize>) -> Compression {
    Compression {
        threshold,
        ..Compression::default()
    }
}

/// Seals bytes for `name` with a fixed nonce, lz4-compressing them first (flag bit 2)
/// when `compression_threshold` says it pays: the raw-value vectors of format v1.
///
/// # Errors
/// A nonce of the wrong length; a plaintext over the 64 KiB cap.
pub fn seal_with_nonce(
    codec: &Codec,
    name: &str,
    plaintext: &[u8],
    nonce: &[u8],
    compression_threshold: Option<usize>,
) -> Result<String, Error> {
    let packed = compression(compression_threshold).pack(plaintext)?;
    let content = Content {
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

/// Seals a session envelope for `context` (the cookie name) with a fixed nonce.
///
/// # Errors
/// As the codec's seal.
pub fn seal_session_with_nonce(
    codec: &Codec,
    context: &str,
    parts: &EnvelopeParts,
    nonce: &[u8],
    compression_threshold: Option<usize>,
) -> Result<String, Error> {
    let meta = Meta {
        id: SessionId::from_bytes(parts.id),
        created: parts.created,
        last_active: parts.last_active,
        expires_at: parts.expires_at,
        csrf: parts.csrf,
    };
    let mut body = Body::default();
    for (k, v) in &parts.values {
        body.values.insert(k, v);
    }
    let body = body.encode()?;
    let packed = compression(compression_threshold).pack(&body)?;
    let content = Content {
        compressed: packed.compressed,
        pointer: false,
    };
    let raw = codec.seal_parts(
        context.as_bytes(),
        content,
        &[&meta.encode()?, &packed.bytes],
        Some(nonce),
    )?;
    Ok(codec::encode_text(&raw))
}

/// Feeds arbitrary bytes to the envelope decoder and decompressor (capped at
/// `max_decompressed`), as if they had just been decrypted. Returns the number of
/// values decoded.
///
/// # Errors
/// Whatever the decoder refuses.
pub fn decode_envelope(
    max_decompressed: usize,
    plaintext: &[u8],
    compressed: bool,
) -> Result<usize, Error> {
    let compression = Compression {
        max_decompressed,
        ..Compression::default()
    };
    let (_, body) = envelope::decode(&compression, plaintext, compressed)?;
    Ok(body.map_or(0, |b| b.values.len() + b.flash.len()))
}
