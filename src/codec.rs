//! Seal and open bytes: the AEAD and the clear wire header, nothing else.
//!
//! ```text
//! 0      1 byte   version: 1 (read only) or 2 (written); the envelope inside differs
//! 1      1 byte   flags: bits 0-1 algorithm (0 AES-256-GCM-SIV, 1 XChaCha20-Poly1305)
//!                        bit 2 compressed, bit 3 pointer (body lives in the store)
//!                        bits 4-7 must be 0
//! 2      4 bytes  key id (big-endian), derived from the secret by HKDF
//! 6      n bytes  random nonce: 12 (GCM-SIV) or 24 (XChaCha20)
//! 6+n    ...      ciphertext || 16-byte tag
//! AAD = bytes[0..6] || purpose || context (the cookie name)
//! ```
//! Text form: base64url without padding. The purpose is also part of the key
//! derivation, so the plain concatenation in the AAD cannot be confused between
//! two purposes. The codec knows nothing of sessions: the compressed and pointer
//! flags are the envelope's ([`crate::envelope`]), carried here as [`Content`],
//! which the envelope defines.

use aes_gcm_siv::aead::{AeadCore, AeadInOut};
use base64_simd::URL_SAFE_NO_PAD;
use rand::RngCore as _;

use crate::envelope::Content;
use crate::keyring::{Cipher, KEY_ID_LEN};
use crate::{Algorithm, Error, Keyring};

/// Format versions this build reads (byte 0); the last is the one it writes
/// ([`Content`]'s default). The
/// outer format (this header, the nonce, the tag, the AAD) is the same for both.
pub(crate) const VERSIONS: [u8; 2] = [crate::envelope::V1, crate::envelope::V2];
/// Bytes before the nonce: version, flags, key id.
pub(crate) const HEADER_LEN: usize = 2 + KEY_ID_LEN;
/// AEAD tag length, the same for both algorithms (RFC 8452 §4; RFC 8439 §2.8).
pub(crate) const TAG_LEN: usize = 16;
/// Flag bits 0-1: the algorithm.
const FLAG_ALGORITHM_MASK: u8 = 0b0000_0011;
/// Flag bit 2: the body after the envelope header is lz4-compressed.
const FLAG_COMPRESSED: u8 = 0b0000_0100;
/// Flag bit 3: a pointer; the session body lives in the store.
const FLAG_POINTER: u8 = 0b0000_1000;
/// Flag bits 4-7: reserved, must be zero.
const FLAG_RESERVED_MASK: u8 = 0b1111_0000;
/// Longest text value [`Codec::open`] decodes unless told otherwise: a whole cookie's worth.
pub(crate) const DEFAULT_MAX_VALUE_LEN: usize = 4096;

const _: () = assert!(HEADER_LEN == 6, "wire format v1: the header is 6 bytes");
const _: () =
    assert!(FLAG_ALGORITHM_MASK & FLAG_COMPRESSED & FLAG_POINTER & FLAG_RESERVED_MASK == 0);

/// The clear header of a sealed value: what anyone can read without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// Format version.
    pub version: u8,
    /// The algorithm named by flag bits 0-1.
    pub algorithm: Algorithm,
    /// Flag bit 2: the body is compressed.
    pub compressed: bool,
    /// Flag bit 3: the value is a pointer to a store entry.
    pub pointer: bool,
    /// The whole flags byte (algorithm, compressed, pointer), as on the wire.
    pub flags: u8,
    /// The id of the key that sealed it.
    pub key_id: u32,
}

impl Header {
    /// Parses and validates the header at the start of raw (decoded) bytes.
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, Error> {
        if raw.len() < HEADER_LEN {
            return Err(Error::Truncated { len: raw.len() });
        }
        if !VERSIONS.contains(&raw[0]) {
            return Err(Error::UnsupportedVersion(raw[0]));
        }
        let flags = raw[1];
        if flags & FLAG_RESERVED_MASK != 0 {
            return Err(Error::UnsupportedFlags(flags));
        }
        let algorithm = Algorithm::from_wire_id(flags & FLAG_ALGORITHM_MASK)
            .ok_or(Error::UnsupportedFlags(flags))?;
        Ok(Header {
            version: raw[0],
            algorithm,
            compressed: flags & FLAG_COMPRESSED != 0,
            pointer: flags & FLAG_POINTER != 0,
            flags,
            key_id: u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]),
        })
    }

    /// The content flags (and version) the envelope set.
    pub(crate) fn content(&self) -> Content {
        Content {
            version: self.version,
            compressed: self.compressed,
            pointer: self.pointer,
        }
    }

    /// The header of a value sealed now by `algorithm`'s key `key_id`.
    fn new(algorithm: Algorithm, content: Content, key_id: u32) -> Self {
        let mut flags = algorithm.wire_id();
        if content.compressed {
            flags |= FLAG_COMPRESSED;
        }
        if content.pointer {
            flags |= FLAG_POINTER;
        }
        Header {
            version: content.version,
            algorithm,
            compressed: content.compressed,
            pointer: content.pointer,
            flags,
            key_id,
        }
    }

    fn to_bytes(self) -> [u8; HEADER_LEN] {
        let id = self.key_id.to_be_bytes();
        [self.version, self.flags, id[0], id[1], id[2], id[3]]
    }
}

/// A successfully opened value.
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The plaintext, as it was sealed (a session body sealed compressed stays compressed).
    pub plaintext: Vec<u8>,
    /// The header it was sealed with.
    pub header: Header,
    /// True when a key other than the primary opened it: re-seal it under the primary.
    pub old_key: bool,
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

/// Seals and opens bytes with a [`Keyring`]; the building block under sessions.
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
    max_value_len: usize,
}

impl Codec {
    /// A codec that opens text values of up to 4096 bytes.
    pub fn new(keyring: Keyring) -> Self {
        Codec {
            keyring,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// The longest text value [`Codec::open`] will even decode; longer is [`Error::TooLarge`] at once.
    pub fn with_max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Seals bytes for a cookie name (or any context) into cookie-safe text.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for limits.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, Error> {
        let raw = self.seal_parts(name.as_bytes(), Content::default(), &[plaintext], None)?;
        Ok(URL_SAFE_NO_PAD.encode_to_string(raw))
    }

    /// Opens text sealed for the same name and purpose with any key of the keyring.
    ///
    /// # Errors
    /// [`Error::TooLarge`] (checked first, before decoding), [`Error::NotBase64`],
    /// [`Error::Truncated`], [`Error::UnsupportedVersion`], [`Error::UnsupportedFlags`],
    /// [`Error::UnknownKeyId`], [`Error::Authentication`].
    pub fn open(&self, name: &str, value: &str) -> Result<Opened, Error> {
        if value.len() > self.max_value_len {
            return Err(Error::TooLarge {
                what: "session value",
                size: value.len(),
                limit: self.max_value_len,
            });
        }
        self.open_bytes(name.as_bytes(), decode_text(value)?)
    }

    /// Seals `parts` (concatenated) for `context`, flagged with `content`; a fixed nonce is
    /// for frozen test vectors only.
    pub(crate) fn seal_parts(
        &self,
        context: &[u8],
        content: Content,
        parts: &[&[u8]],
        fixed_nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        let key = self.keyring.primary();
        let algorithm = self.keyring.algorithm();
        let header = Header::new(algorithm, content, key.id);
        let nonce_len = algorithm.nonce_len();
        let start = HEADER_LEN + nonce_len;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(start + len + TAG_LEN);
        out.extend_from_slice(&header.to_bytes());
        match fixed_nonce {
            Some(n) if n.len() == nonce_len => out.extend_from_slice(n),
            Some(n) => {
                return Err(Error::Config(format!(
                    "a fixed nonce for {algorithm} is {nonce_len} bytes, not {}",
                    n.len()
                )))
            }
            None => {
                out.resize(start, 0);
                rand::rng().fill_bytes(&mut out[HEADER_LEN..start]);
            }
        }
        for part in parts {
            out.extend_from_slice(part);
        }
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
    pub(crate) fn open_bytes(&self, context: &[u8], mut raw: Vec<u8>) -> Result<Opened, Error> {
        let header = Header::parse(&raw)?;
        let nonce_len = header.algorithm.nonce_len();
        let start = HEADER_LEN + nonce_len;
        if raw.len() < start + TAG_LEN {
            return Err(Error::Truncated { len: raw.len() });
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
        Ok(Opened {
            plaintext: raw,
            header,
            old_key: !primary,
        })
    }

    /// Length of the raw sealed bytes for `plaintext_len` bytes of plaintext.
    pub(crate) fn sealed_len(&self, plaintext_len: usize) -> usize {
        HEADER_LEN + self.keyring.algorithm().nonce_len() + plaintext_len + TAG_LEN
    }

    /// Builds the AAD (header || purpose || context), on the stack when it fits.
    fn aad<'b>(&self, header: &[u8], context: &[u8], stack: &'b mut [u8; AAD_STACK]) -> Aad<'b> {
        let purpose = self.keyring.purpose().as_bytes();
        let len = header.len() + purpose.len() + context.len();
        if len <= AAD_STACK {
            let mut at = 0;
            for part in [header, purpose, context] {
                stack[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            Aad::Stack(&stack[..len])
        } else {
            Aad::Heap([header, purpose, context].concat())
        }
    }
}

/// The clear header of a value from its first 8 characters, without decoding the
/// rest: what the layer needs to tell an inline value from a pointer.
///
/// # Errors
/// A value too short for a header, bad base64 there, or an unsupported version or flags.
#[cfg(feature = "tower")]
pub(crate) fn peek_header(value: &str) -> Result<Header, Error> {
    const HEADER_TEXT: usize = text_len(HEADER_LEN);
    let head = value
        .as_bytes()
        .get(..HEADER_TEXT)
        .ok_or(Error::Truncated { len: value.len() })?;
    let mut raw = [0u8; HEADER_LEN];
    URL_SAFE_NO_PAD
        .decode(head, base64_simd::Out::from_slice(&mut raw))
        .map_err(|_| Error::NotBase64)?;
    Header::parse(&raw)
}

/// Strict, canonical base64url without padding.
pub(crate) fn decode_text(value: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode_to_vec(value)
        .map_err(|_| Error::NotBase64)
}

/// The text form of sealed bytes.
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn encode_text(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode_to_string(raw)
}

/// Appends the text form of sealed bytes to `out` (no intermediate `String`).
pub(crate) fn encode_text_into(raw: &[u8], out: &mut Vec<u8>) {
    URL_SAFE_NO_PAD.encode_append(raw, out);
}

/// Length of the text form of `raw_len` sealed bytes.
pub(crate) const fn text_len(raw_len: usize) -> usize {
    (raw_len * 4).div_ceil(3)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_len_matches_the_encoder() {
        for len in 0..64 {
            let raw = vec![0xA5u8; len];
            let mut out = Vec::new();
            encode_text_into(&raw, &mut out);
            assert_eq!(out.len(), text_len(len));
            assert_eq!(out, encode_text(&raw).into_bytes());
        }
    }

    /// The SIMD decoder is exactly as strict as the base64 crate's canonical one:
    /// every last symbol, an extra symbol, padding and foreign characters.
    #[test]
    fn decoding_is_as_strict_as_the_base64_crate() {
        use base64::Engine as _;
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n";
        for len in 0..70usize {
            let raw: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = reference.encode(&raw);
            let mut variants = vec![format!("{text}="), format!("{text}=="), format!(" {text}")];
            for c in alphabet.chars() {
                let mut last = text.clone();
                last.pop();
                last.push(c);
                variants.push(last);
                variants.push(format!("{text}{c}"));
            }
            for v in variants {
                assert_eq!(
                    decode_text(&v).ok(),
                    reference.decode(&v).ok(),
                    "{v:?} (from {len} bytes)"
                );
            }
        }
    }

    #[test]
    fn sealed_len_is_exact() {
        let codec = Codec::new(Keyring::generate());
        for len in [0, 1, 100] {
            let raw = codec
                .seal_parts(b"s", Content::default(), &[&vec![1; len]], None)
                .unwrap();
            assert_eq!(raw.len(), codec.sealed_len(len));
        }
    }
}
