//! Seal and open: wire format v1, compression and the size budget.
//!
//! ```text
//! 0      1 byte   version = 1
//! 1      1 byte   flags: bits 0-1 algorithm (0 AES-256-GCM-SIV, 1 XChaCha20-Poly1305)
//!                        bit 2 compressed, bit 3 pointer (body lives in the store)
//!                        bits 4-7 must be 0
//! 2      4 bytes  key id (big-endian), derived from the secret by HKDF
//! 6      n bytes  random nonce: 12 (GCM-SIV) or 24 (XChaCha20)
//! 6+n    ...      ciphertext || 16-byte tag
//! AAD = bytes[0..6] || purpose || context (the cookie name)
//! ```
//! Text form: base64url without padding. The purpose is also part of the key
//! derivation, so the plain concatenation in the AAD cannot be confused
//! between two purposes. The codec works on any bytes (like iron's
//! seal/unseal); [`Session`](crate::Session) puts its envelope inside.

use aes_gcm_siv::aead::{AeadCore, AeadInOut};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;

use crate::keyring::{Cipher, KEY_ID_LEN};
use crate::{Algorithm, Error, Keyring};

/// Format version written and read by this build (byte 0).
pub const VERSION: u8 = 1;
/// Bytes before the nonce: version, flags, key id.
pub const HEADER_LEN: usize = 2 + KEY_ID_LEN;
/// AEAD tag length, the same for both algorithms (RFC 8452 §4; RFC 8439 §2.8).
pub const TAG_LEN: usize = 16;
/// Flag bits 0-1: the algorithm.
pub const FLAG_ALGORITHM_MASK: u8 = 0b0000_0011;
/// Flag bit 2: the body after the envelope header is lz4-compressed.
pub const FLAG_COMPRESSED: u8 = 0b0000_0100;
/// Flag bit 3: a pointer; the session body lives in the store.
pub const FLAG_POINTER: u8 = 0b0000_1000;
/// Flag bits 4-7: reserved, must be zero.
pub const FLAG_RESERVED_MASK: u8 = 0b1111_0000;
/// Default: compress bodies of at least this many bytes (when it saves ≥ 10%).
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 256;
/// Default cap on a decompressed body: 64 KiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024;
/// Default longest text value `open` looks at (name + "=" + value ≤ 4093 minus the name).
pub const DEFAULT_MAX_VALUE_LEN: usize = 4093 - 1 - 7;

const _: () = assert!(HEADER_LEN == 6, "wire format v1: the header is 6 bytes");
const _: () =
    assert!(FLAG_ALGORITHM_MASK & FLAG_COMPRESSED & FLAG_POINTER & FLAG_RESERVED_MASK == 0);
/// Length prefix lz4_flex puts before a compressed block.
const LZ4_SIZE_PREFIX: usize = 4;

/// The six header bytes of a sealed value, readable without any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version (always [`VERSION`] once parsed).
    pub version: u8,
    /// The algorithm named by flag bits 0-1.
    pub algorithm: Algorithm,
    /// Flag bit 2: the body is compressed.
    pub compressed: bool,
    /// Flag bit 3: the value is a pointer to a store entry.
    pub pointer: bool,
    /// The id of the key that sealed it.
    pub key_id: u32,
}

impl Header {
    /// Parses and validates the header at the start of raw (decoded) bytes.
    ///
    /// # Errors
    /// [`Error::Malformed`] when too short, [`Error::UnsupportedVersion`],
    /// [`Error::UnsupportedFlags`] for reserved bits or an unknown algorithm.
    pub fn parse(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() < HEADER_LEN {
            return Err(Error::Malformed("too short for a header"));
        }
        if raw[0] != VERSION {
            return Err(Error::UnsupportedVersion(raw[0]));
        }
        let flags = raw[1];
        if flags & FLAG_RESERVED_MASK != 0 {
            return Err(Error::UnsupportedFlags(flags));
        }
        let algorithm = Algorithm::from_wire_id(flags & FLAG_ALGORITHM_MASK)
            .ok_or(Error::UnsupportedFlags(flags))?;
        let key_id = u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]);
        Ok(Header {
            version: VERSION,
            algorithm,
            compressed: flags & FLAG_COMPRESSED != 0,
            pointer: flags & FLAG_POINTER != 0,
            key_id,
        })
    }

    /// The flags byte this header encodes to.
    pub fn flags(&self) -> u8 {
        let mut flags = self.algorithm.wire_id();
        if self.compressed {
            flags |= FLAG_COMPRESSED;
        }
        if self.pointer {
            flags |= FLAG_POINTER;
        }
        flags
    }

    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let id = self.key_id.to_be_bytes();
        [self.version, self.flags(), id[0], id[1], id[2], id[3]]
    }
}

/// What `inspect` can tell about a cookie value without any key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The parsed header.
    pub header: Header,
    /// Length of the text value.
    pub text_len: usize,
    /// Length of the decoded bytes.
    pub raw_len: usize,
    /// Length of the nonce.
    pub nonce_len: usize,
    /// Length of the ciphertext without the tag (= the plaintext length).
    pub ciphertext_len: usize,
}

/// Reads the header and sizes of a sealed text value; needs no key and proves nothing.
///
/// # Errors
/// Bad base64, a short value, or an unsupported version or flags.
pub fn inspect(value: &str) -> Result<Inspection, Error> {
    let raw = URL_SAFE_NO_PAD
        .decode(value.trim())
        .map_err(|_| Error::Malformed("not base64url"))?;
    let header = Header::parse(&raw)?;
    let nonce_len = header.algorithm.nonce_len();
    let ciphertext_len = raw
        .len()
        .checked_sub(HEADER_LEN + nonce_len + TAG_LEN)
        .ok_or(Error::Malformed("too short for nonce and tag"))?;
    Ok(Inspection {
        header,
        text_len: value.trim().len(),
        raw_len: raw.len(),
        nonce_len,
        ciphertext_len,
    })
}

/// A successfully opened value.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext, decompressed.
    pub plaintext: Vec<u8>,
    /// The header it was sealed with.
    pub header: Header,
    /// True when a key other than the primary opened it: re-seal it under the primary.
    pub old_key: bool,
}

/// Result of `open_raw`: plaintext still possibly compressed after the caller's prefix.
pub(crate) struct RawOpened {
    pub(crate) plaintext: Vec<u8>,
    pub(crate) header: Header,
    pub(crate) old_key: bool,
}

/// AADs up to this size are built on the stack (header + purpose + cookie name fit easily).
const AAD_STACK: usize = 192;

/// The AAD bytes, borrowed from a stack buffer or owned when long.
enum Aad<'b> {
    Stack(&'b [u8]),
    Heap(Vec<u8>),
}

impl std::ops::Deref for Aad<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Aad::Stack(s) => s,
            Aad::Heap(v) => v,
        }
    }
}

/// A body ready to seal: compressed when that pays.
pub(crate) struct PreparedBody<'a> {
    pub(crate) bytes: std::borrow::Cow<'a, [u8]>,
    pub(crate) compressed: bool,
}

/// Compression settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    pub(crate) threshold: Option<usize>,
    pub(crate) max_decompressed: usize,
}

/// Seals and opens values with a [`Keyring`]; the building block under sessions.
///
/// ```
/// use sealed_session::{Codec, Keyring};
/// let codec = Codec::new(Keyring::generate());
/// let text = codec.seal("session", b"hello")?;
/// let opened = codec.open("session", &text)?;
/// assert_eq!(opened.plaintext, b"hello");
/// assert!(codec.open("other", &text).is_err());
/// # Ok::<(), sealed_session::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Codec {
    keyring: Keyring,
    compression: Compression,
    max_value_len: usize,
}

impl Codec {
    /// A codec with default compression (≥ 256 bytes, 64 KiB cap) and value budget.
    pub fn new(keyring: Keyring) -> Self {
        Codec {
            keyring,
            compression: Compression {
                threshold: Some(DEFAULT_COMPRESSION_THRESHOLD),
                max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            },
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// Compress bodies of at least `threshold` bytes (only when it saves ≥ 10%); `None` turns it off.
    ///
    /// **Warning**: compressing attacker-influenced data next to secrets can leak those
    /// secrets through the length (CRIME/BREACH). Sessions keep their id and CSRF token
    /// outside the compressed part; keep other secrets out of compressible data or turn this off.
    pub fn with_compression_threshold(mut self, threshold: Option<usize>) -> Self {
        self.compression.threshold = threshold;
        self
    }

    /// Caps the decompressed size of a body; larger claims are [`Error::DecompressionLimit`].
    pub fn with_max_decompressed(mut self, bytes: usize) -> Self {
        self.compression.max_decompressed = bytes;
        self
    }

    /// The longest text value `open` will even decode; longer is [`Error::TooLarge`] at once.
    pub fn with_max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The longest text value `open` accepts.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// The decompression cap.
    pub fn max_decompressed(&self) -> usize {
        self.compression.max_decompressed
    }

    /// Seals bytes for a cookie name (or any context) into cookie-safe text.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the plaintext is over the decompression cap (it could never be opened).
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, Error> {
        let raw = self.seal_raw(name.as_bytes(), &[], plaintext, false, None)?;
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Opens text sealed for the same name and purpose with any key of the keyring.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (checked first, before decoding), [`Error::Malformed`],
    /// [`Error::UnsupportedVersion`], [`Error::UnsupportedFlags`], [`Error::UnknownKeyId`],
    /// [`Error::Authentication`], [`Error::DecompressionLimit`].
    pub fn open(&self, name: &str, value: &str) -> Result<Opened, Error> {
        let raw = self.decode_text(value)?;
        let opened = self.open_raw(name.as_bytes(), raw)?;
        let plaintext = if opened.header.compressed {
            self.decompress(&opened.plaintext)?
        } else {
            opened.plaintext
        };
        Ok(Opened {
            plaintext,
            header: opened.header,
            old_key: opened.old_key,
        })
    }

    /// Seals with a caller-chosen nonce. Test vectors only: a repeated nonce breaks XChaCha20.
    ///
    /// # Errors
    /// As [`Codec::seal`], and [`Error::Malformed`] for a nonce of the wrong length.
    #[cfg(feature = "test-util")]
    pub fn seal_with_nonce(
        &self,
        name: &str,
        plaintext: &[u8],
        nonce: &[u8],
    ) -> Result<String, Error> {
        let raw = self.seal_raw(name.as_bytes(), &[], plaintext, false, Some(nonce))?;
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Cheap checks first: budget, then base64 (strict, canonical).
    pub(crate) fn decode_text(&self, value: &str) -> Result<Vec<u8>, Error> {
        if value.len() > self.max_value_len {
            return Err(Error::TooLarge {
                what: "session value",
                size: value.len(),
                limit: self.max_value_len,
            });
        }
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| Error::Malformed("not base64url"))
    }

    #[cfg(feature = "test-util")]
    pub(crate) fn encode_text(raw: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Appends the text form of sealed bytes to `out` (no intermediate `String`; the
    /// slice encoder, which is much faster than `encode_string`'s chunked one).
    pub(crate) fn encode_text_into(raw: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + Self::text_len(raw.len()), 0);
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out[at..])
            .expect("the buffer is sized by text_len");
        out.truncate(at + written);
    }

    /// Length of the text form of `raw_len` sealed bytes.
    pub(crate) const fn text_len(raw_len: usize) -> usize {
        (raw_len * 4).div_ceil(3)
    }

    /// Seals `prefix || maybe_compress(body)`; only `body` is ever compressed.
    pub(crate) fn seal_raw(
        &self,
        context: &[u8],
        prefix: &[u8],
        body: &[u8],
        pointer: bool,
        fixed_nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        let body = self.prepare_body(body)?;
        self.seal_prepared(context, prefix, &body, pointer, fixed_nonce)
    }

    /// Checks the size cap and compresses when that pays; sealing can then reuse it.
    pub(crate) fn prepare_body<'a>(&self, body: &'a [u8]) -> Result<PreparedBody<'a>, Error> {
        if body.len() > self.compression.max_decompressed {
            return Err(Error::TooLarge {
                what: "session body",
                size: body.len(),
                limit: self.compression.max_decompressed,
            });
        }
        Ok(match self.compress(body) {
            Some(packed) => PreparedBody {
                bytes: std::borrow::Cow::Owned(packed),
                compressed: true,
            },
            None => PreparedBody {
                bytes: std::borrow::Cow::Borrowed(body),
                compressed: false,
            },
        })
    }

    /// Length of the text form of a value sealed from `plaintext_len` bytes (no sealing done).
    pub(crate) fn sealed_text_len(&self, plaintext_len: usize) -> usize {
        Self::text_len(HEADER_LEN + self.keyring.algorithm().nonce_len() + plaintext_len + TAG_LEN)
    }

    /// Seals `prefix || body` for a body already prepared by [`Codec::prepare_body`].
    pub(crate) fn seal_prepared(
        &self,
        context: &[u8],
        prefix: &[u8],
        body: &PreparedBody<'_>,
        pointer: bool,
        fixed_nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        let compressed = body.compressed;
        let body: &[u8] = &body.bytes;
        let key = self.keyring.primary();
        let algorithm = self.keyring.algorithm();
        let header = Header {
            version: VERSION,
            algorithm,
            compressed,
            pointer,
            key_id: key.id,
        };
        let nonce_len = algorithm.nonce_len();
        let start = HEADER_LEN + nonce_len;
        let mut out = Vec::with_capacity(start + prefix.len() + body.len() + TAG_LEN);
        out.extend_from_slice(&header.to_bytes());
        match fixed_nonce {
            Some(n) if n.len() == nonce_len => out.extend_from_slice(n),
            Some(_) => return Err(Error::Malformed("fixed nonce has the wrong length")),
            None => {
                out.resize(start, 0);
                rand::rng().fill_bytes(&mut out[HEADER_LEN..start]);
            }
        }
        out.extend_from_slice(prefix);
        out.extend_from_slice(body);
        let mut stack = [0u8; AAD_STACK];
        let aad = self.aad(&out[..HEADER_LEN], context, &mut stack);
        let (head, msg) = out.split_at_mut(start);
        let nonce = &head[HEADER_LEN..];
        let tag = match &key.cipher {
            Cipher::Siv(c) => encrypt(c.as_ref(), nonce, &aad, msg),
            Cipher::XChaCha(c) => encrypt(c.as_ref(), nonce, &aad, msg),
        };
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Checks the header, finds the key by id, authenticates and decrypts in place:
    /// the returned plaintext reuses `raw`'s allocation.
    pub(crate) fn open_raw(&self, context: &[u8], mut raw: Vec<u8>) -> Result<RawOpened, Error> {
        let header = Header::parse(&raw)?;
        let nonce_len = header.algorithm.nonce_len();
        let start = HEADER_LEN + nonce_len;
        if raw.len() < start + TAG_LEN {
            return Err(Error::Malformed("too short for nonce and tag"));
        }
        if header.algorithm != self.keyring.algorithm() {
            return Err(Error::UnknownKeyId(header.key_id));
        }
        let (key, primary) = self
            .keyring
            .find(header.key_id)
            .ok_or(Error::UnknownKeyId(header.key_id))?;
        let mut stack = [0u8; AAD_STACK];
        let aad = self.aad(&raw[..HEADER_LEN], context, &mut stack);
        let tag_at = raw.len() - TAG_LEN;
        let (head, rest) = raw.split_at_mut(start);
        let nonce = &head[HEADER_LEN..];
        let (ct, tag) = rest.split_at_mut(tag_at - start);
        let ok = match &key.cipher {
            Cipher::Siv(c) => decrypt(c.as_ref(), nonce, &aad, ct, tag),
            Cipher::XChaCha(c) => decrypt(c.as_ref(), nonce, &aad, ct, tag),
        };
        if !ok {
            return Err(Error::Authentication);
        }
        raw.truncate(tag_at);
        raw.drain(..start);
        Ok(RawOpened {
            plaintext: raw,
            header,
            old_key: !primary,
        })
    }

    /// Builds the AAD (header || purpose || context), on the stack when it fits.
    fn aad<'b>(&self, header: &[u8], context: &[u8], stack: &'b mut [u8; AAD_STACK]) -> Aad<'b> {
        let purpose = self.keyring.purpose().as_bytes();
        let len = header.len() + purpose.len() + context.len();
        if len <= AAD_STACK {
            let parts = [header, purpose, context];
            let mut at = 0;
            for part in parts {
                stack[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            Aad::Stack(&stack[..len])
        } else {
            Aad::Heap([header, purpose, context].concat())
        }
    }

    /// lz4 with a size prefix, kept only when it saves at least 10%.
    fn compress(&self, body: &[u8]) -> Option<Vec<u8>> {
        let threshold = self.compression.threshold?;
        if body.len() < threshold || body.is_empty() {
            return None;
        }
        let packed = lz4_flex::block::compress_prepend_size(body);
        (packed.len() <= body.len() - body.len() / 10).then_some(packed)
    }

    /// Inflates a compressed body, refusing any claim over the cap before allocating.
    pub(crate) fn decompress(&self, packed: &[u8]) -> Result<Vec<u8>, Error> {
        let limit = self.compression.max_decompressed;
        if packed.len() < LZ4_SIZE_PREFIX {
            return Err(Error::Decompression);
        }
        let (size, block) = packed.split_at(LZ4_SIZE_PREFIX);
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        if size > limit {
            return Err(Error::DecompressionLimit { limit });
        }
        let mut out = vec![0u8; size];
        match lz4_flex::block::decompress_into(block, &mut out) {
            Ok(n) if n == size => Ok(out),
            _ => Err(Error::Decompression),
        }
    }
}

fn encrypt<A: AeadInOut + AeadCore>(
    cipher: &A,
    nonce: &[u8],
    aad: &[u8],
    msg: &mut [u8],
) -> [u8; TAG_LEN] {
    let nonce =
        aes_gcm_siv::aead::Nonce::<A>::try_from(nonce).expect("nonce length fixed by algorithm");
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, msg.into())
        .expect("plaintext is far below the AEAD length limits");
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_slice());
    out
}

fn decrypt<A: AeadInOut + AeadCore>(
    cipher: &A,
    nonce: &[u8],
    aad: &[u8],
    msg: &mut [u8],
    tag: &[u8],
) -> bool {
    let (Ok(nonce), Ok(tag)) = (
        aes_gcm_siv::aead::Nonce::<A>::try_from(nonce),
        aes_gcm_siv::aead::Tag::<A>::try_from(tag),
    ) else {
        return false;
    };
    cipher
        .decrypt_inout_detached(&nonce, aad, msg.into(), &tag)
        .is_ok()
}
