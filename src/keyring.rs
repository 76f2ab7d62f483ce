//! Keygrip-style keyring: the first secret seals, every secret opens.
//!
//! Each secret goes through HKDF-SHA256 (fixed salt `sealed-session/v1`, info =
//! label + algorithm + purpose) to give a 32-byte AEAD key and a 4-byte key id.
//! The AEAD cipher for each key is built once, here, never per message. Opening
//! looks the key up by id, so there is no trial decryption over all keys, and
//! reports whether an old key was used so the caller can re-seal under the
//! primary.

use std::fmt;
use std::str::FromStr;

use aes_gcm_siv::{aead::KeyInit, Aes256GcmSiv};
use base64::Engine as _;
use chacha20poly1305::XChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::envelope::{Subject, SUBJECT_HASH_LEN};
use crate::Error;

/// Minimum secret length in bytes: 256 bits of key material.
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// Fixed HKDF-SHA256 salt label for format v1 (RFC 5869 §3.1: a non-secret salt).
pub(crate) const HKDF_SALT: &[u8] = b"sealed-session/v1";

/// HKDF info prefix; the algorithm label and the purpose follow it.
const HKDF_INFO_PREFIX: &[u8] = b"sealed-session/v1/aead-key+key-id/";

/// HKDF info prefix of the subject key (format v2); the purpose follows it.
const HKDF_SUBJECT_INFO_PREFIX: &[u8] = b"sealed-session/v2/subject-key/";

/// Length of a subject key.
const SUBJECT_KEY_LEN: usize = 32;

/// Length of a derived AEAD key (both algorithms take 256-bit keys).
const AEAD_KEY_LEN: usize = 32;

/// Length of a key id on the wire (wire format v1, bytes 2..6).
pub(crate) const KEY_ID_LEN: usize = 4;

/// Purpose used when none is configured.
pub(crate) const DEFAULT_PURPOSE: &str = "session";

/// The AEAD that seals values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// AES-256-GCM-SIV (RFC 8452): nonce-misuse resistant, fast with AES-NI. The default.
    #[default]
    Aes256GcmSiv,
    /// XChaCha20-Poly1305: constant-time in software, for CPUs without AES instructions.
    XChaCha20Poly1305,
}

impl Algorithm {
    /// The value of flag bits 0-1 in wire format v1.
    pub(crate) const fn wire_id(self) -> u8 {
        match self {
            Algorithm::Aes256GcmSiv => 0,
            Algorithm::XChaCha20Poly1305 => 1,
        }
    }

    /// The algorithm for flag bits 0-1, if it is one this build knows.
    pub(crate) const fn from_wire_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Algorithm::Aes256GcmSiv),
            1 => Some(Algorithm::XChaCha20Poly1305),
            _ => None,
        }
    }

    /// Nonce length: 12 bytes for AES-256-GCM-SIV (RFC 8452 §4), 24 for XChaCha20.
    pub(crate) const fn nonce_len(self) -> usize {
        match self {
            Algorithm::Aes256GcmSiv => 12,
            Algorithm::XChaCha20Poly1305 => 24,
        }
    }

    /// A stable name, used in the HKDF info so keys for one algorithm never serve another.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256GcmSiv => "AES-256-GCM-SIV",
            Algorithm::XChaCha20Poly1305 => "XChaCha20-Poly1305",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cipher built once per key. Boxed: the AES key schedules are large.
pub(crate) enum Cipher {
    Siv(Box<Aes256GcmSiv>),
    XChaCha(Box<XChaCha20Poly1305>),
}

/// One secret's derived key: its id, the ready cipher, and the key that hashes
/// subjects (so the revocation list never holds a user's name).
pub(crate) struct DerivedKey {
    pub(crate) id: u32,
    pub(crate) cipher: Cipher,
    subject_key: Zeroizing<[u8; SUBJECT_KEY_LEN]>,
}

/// An ordered set of secrets: the first (primary) seals, all of them open.
///
/// Key material is zeroized on drop and `Debug` prints only key ids.
///
/// ```
/// use sealed_session::Keyring;
/// let new = [7u8; 32];
/// let old = [9u8; 32];
/// let ring = Keyring::new([new, old])?;
/// assert_eq!(ring.len(), 2);
/// # Ok::<(), sealed_session::Error>(())
/// ```
pub struct Keyring {
    secrets: Vec<Zeroizing<Vec<u8>>>,
    algorithm: Algorithm,
    purpose: String,
    keys: Vec<DerivedKey>,
}

impl Keyring {
    /// Builds a keyring from secrets, newest first, for the default algorithm and purpose.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if there is no secret, a secret is shorter than
    /// 32 bytes, or the same secret appears twice.
    pub fn new<I, S>(secrets: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let secrets: Vec<Zeroizing<Vec<u8>>> = secrets
            .into_iter()
            .map(|s| Zeroizing::new(s.as_ref().to_vec()))
            .collect();
        if secrets.is_empty() {
            return Err(Error::InvalidKey(
                "a keyring needs at least one secret".into(),
            ));
        }
        for (i, s) in secrets.iter().enumerate() {
            if s.len() < MIN_SECRET_LEN {
                return Err(Error::InvalidKey(format!(
                    "secret #{} is {} bytes; secrets must be at least {MIN_SECRET_LEN} bytes",
                    i + 1,
                    s.len()
                )));
            }
        }
        Self::derive(secrets, Algorithm::default(), DEFAULT_PURPOSE.to_owned())
    }

    /// Parses comma-separated base64 secrets, newest first (the `SESSION_KEYS=new,old` convention).
    ///
    /// Standard and URL-safe alphabets are accepted, padding optional, spaces around items ignored.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for bad base64 (naming the item) or any error of [`Keyring::new`].
    pub fn from_base64(list: &str) -> Result<Self, Error> {
        let mut secrets = Vec::new();
        for (i, item) in list.split(',').enumerate() {
            let item = item.trim();
            let decoded = decode_secret(item).ok_or_else(|| {
                Error::InvalidKey(format!("secret #{} is not valid base64", i + 1))
            })?;
            secrets.push(decoded);
        }
        Self::new(secrets.iter().map(|s| s.as_slice()))
    }

    /// A keyring with one fresh random 32-byte secret (tests, demos, the keys example).
    ///
    /// Sessions sealed with it do not survive a restart.
    ///
    /// # Panics
    /// If the operating system's random source fails; see [`Keyring::try_generate`].
    pub fn generate() -> Self {
        Self::try_generate().expect("operating system random source failed")
    }

    /// Like [`Keyring::generate`], but returns an error if the OS random source fails.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if no randomness could be had.
    pub fn try_generate() -> Result<Self, Error> {
        let secret = Zeroizing::new(try_random_secret()?);
        Self::new([secret.as_slice()])
    }

    /// A fresh random secret as URL-safe base64 without padding, ready for `SESSION_KEYS`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if the OS random source fails.
    pub fn generate_secret_base64() -> Result<String, Error> {
        let secret = Zeroizing::new(try_random_secret()?);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_slice()))
    }

    /// The same secrets, with keys derived for another algorithm.
    ///
    /// Switching algorithm changes every key id: values sealed under the old
    /// algorithm no longer open.
    ///
    /// # Panics
    /// If two secrets' 4-byte key ids collide under the new algorithm (about one
    /// chance in 2³² per pair of secrets). [`SessionConfigBuilder::algorithm`](crate::SessionConfigBuilder::algorithm)
    /// reports that as an error instead.
    pub fn with_algorithm(self, algorithm: Algorithm) -> Self {
        self.try_with_algorithm(algorithm)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same secrets, with keys derived for another purpose (domain separation).
    ///
    /// Values sealed for one purpose never open under another, even with the same secrets.
    ///
    /// # Panics
    /// If two secrets' 4-byte key ids collide under the new purpose (about one chance
    /// in 2³² per pair of secrets). [`SessionConfigBuilder::purpose`](crate::SessionConfigBuilder::purpose)
    /// reports that as an error instead.
    pub fn with_purpose(self, purpose: impl Into<String>) -> Self {
        self.try_with_purpose(purpose)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Keyring::with_algorithm`] that reports a key id collision as an error.
    pub(crate) fn try_with_algorithm(self, algorithm: Algorithm) -> Result<Self, Error> {
        let Keyring {
            secrets, purpose, ..
        } = self;
        Self::derive(secrets, algorithm, purpose)
    }

    /// [`Keyring::with_purpose`] that reports a key id collision as an error.
    pub(crate) fn try_with_purpose(self, purpose: impl Into<String>) -> Result<Self, Error> {
        let Keyring {
            secrets, algorithm, ..
        } = self;
        Self::derive(secrets, algorithm, purpose.into())
    }

    /// The algorithm the keys were derived for.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The purpose the keys were derived for (and that goes into the AAD).
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// Number of keys (never zero, so there is no `is_empty`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The id of the primary key, the one that seals.
    pub fn primary_key_id(&self) -> u32 {
        self.keys[0].id
    }

    /// All key ids, primary first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.id).collect()
    }

    pub(crate) fn primary(&self) -> &DerivedKey {
        &self.keys[0]
    }

    /// The subject's keyed hash under the primary key, set at `since` (what a session seals).
    pub(crate) fn subject(&self, subject: &str, since: i64) -> Subject {
        self.keys[0].subject(subject, since)
    }

    /// The subject's keyed hash under every key: a session may carry any of them.
    pub(crate) fn subjects(&self, subject: &str, since: i64) -> Vec<Subject> {
        self.keys
            .iter()
            .map(|k| k.subject(subject, since))
            .collect()
    }

    /// True when a key with this id is in the ring.
    pub(crate) fn has_key(&self, id: u32) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Finds a key by id; the flag says whether it is the primary.
    pub(crate) fn find(&self, id: u32) -> Option<(&DerivedKey, bool)> {
        self.keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.id == id)
            .map(|(i, k)| (k, i == 0))
    }

    fn derive(
        secrets: Vec<Zeroizing<Vec<u8>>>,
        algorithm: Algorithm,
        purpose: String,
    ) -> Result<Self, Error> {
        let mut keys: Vec<DerivedKey> = Vec::with_capacity(secrets.len());
        for (i, secret) in secrets.iter().enumerate() {
            if let Some(j) = secrets[..i].iter().position(|earlier| earlier == secret) {
                return Err(Error::InvalidKey(format!(
                    "secret #{} repeats secret #{}",
                    i + 1,
                    j + 1
                )));
            }
            let key = derive_key(secret, algorithm, &purpose);
            if let Some(j) = keys.iter().position(|k| k.id == key.id) {
                return Err(Error::InvalidKey(format!(
                    "secrets #{} and #{} derive the same key id {:08x} for {algorithm} and \
                     purpose {purpose:?} (a 1 in 2^32 chance): generate another secret for #{}",
                    j + 1,
                    i + 1,
                    key.id,
                    i + 1
                )));
            }
            keys.push(key);
        }
        Ok(Keyring {
            secrets,
            algorithm,
            purpose,
            keys,
        })
    }
}

impl Clone for Keyring {
    fn clone(&self) -> Self {
        Self::derive(self.secrets.clone(), self.algorithm, self.purpose.clone())
            .expect("secrets were validated")
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|k| format!("{:08x}", k.id)).collect();
        f.debug_struct("Keyring")
            .field("algorithm", &self.algorithm)
            .field("purpose", &self.purpose)
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl FromStr for Keyring {
    type Err = Error;

    /// Same as [`Keyring::from_base64`].
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_base64(s)
    }
}

impl DerivedKey {
    /// HMAC-SHA256 of the subject under this key's subject key, cut to 16 bytes.
    fn subject(&self, subject: &str, since: i64) -> Subject {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.subject_key.as_slice())
            .expect("HMAC takes any key length");
        mac.update(subject.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut hash = [0u8; SUBJECT_HASH_LEN];
        hash.copy_from_slice(&full[..SUBJECT_HASH_LEN]);
        Subject {
            key_id: self.id,
            hash,
            since,
        }
    }
}

/// HKDF-SHA256: 32 bytes of AEAD key then 4 bytes of key id, bound to algorithm and
/// purpose; and a subject key bound to the purpose only (subjects hash the same
/// whatever the algorithm).
fn derive_key(secret: &[u8], algorithm: Algorithm, purpose: &str) -> DerivedKey {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret);
    let mut okm = Zeroizing::new([0u8; AEAD_KEY_LEN + KEY_ID_LEN]);
    let info: [&[u8]; 4] = [
        HKDF_INFO_PREFIX,
        algorithm.name().as_bytes(),
        b"/",
        purpose.as_bytes(),
    ];
    hk.expand_multi_info(&info, okm.as_mut_slice())
        .expect("36 bytes is far below HKDF-SHA256's 8160-byte limit");
    let (key, id) = okm.split_at(AEAD_KEY_LEN);
    let id = u32::from_be_bytes(id.try_into().expect("4 bytes"));
    let cipher = match algorithm {
        Algorithm::Aes256GcmSiv => Cipher::Siv(Box::new(
            Aes256GcmSiv::new_from_slice(key).expect("32-byte key"),
        )),
        Algorithm::XChaCha20Poly1305 => Cipher::XChaCha(Box::new(
            XChaCha20Poly1305::new_from_slice(key).expect("32-byte key"),
        )),
    };
    let mut subject_key = Zeroizing::new([0u8; SUBJECT_KEY_LEN]);
    hk.expand_multi_info(
        &[HKDF_SUBJECT_INFO_PREFIX, purpose.as_bytes()],
        subject_key.as_mut_slice(),
    )
    .expect("32 bytes is far below HKDF-SHA256's limit");
    DerivedKey {
        id,
        cipher,
        subject_key,
    }
}

fn decode_secret(item: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let unpadded = item.trim_end_matches('=');
    if unpadded.contains(['-', '_']) {
        URL_SAFE_NO_PAD.decode(unpadded).ok()
    } else {
        STANDARD_NO_PAD.decode(unpadded).ok()
    }
}

fn try_random_secret() -> Result<Vec<u8>, Error> {
    let mut secret = vec![0u8; MIN_SECRET_LEN];
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut secret) {
        secret.zeroize();
        return Err(Error::InvalidKey(format!(
            "the operating system random source failed: {e}"
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secret_is_refused_with_its_length() {
        let err = Keyring::new([[1u8; 31]]).unwrap_err();
        assert!(err.to_string().contains("31 bytes"), "{err}");
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn empty_and_duplicate_are_refused() {
        assert!(Keyring::new(Vec::<Vec<u8>>::new()).is_err());
        let err = Keyring::new([[1u8; 32], [1u8; 32]]).unwrap_err();
        assert!(err.to_string().contains("repeats secret #1"), "{err}");
    }

    /// Two distinct secrets whose key ids collide (found by a birthday search over
    /// 32-byte big-endian counters: 0x16cf and 0x27c0b share id 7438dea5 for
    /// AES-256-GCM-SIV and purpose "session"; 0x71ed and 0x21064 share a1654625
    /// under purpose "csrf" only).
    fn counter(n: u32) -> [u8; 32] {
        let mut s = [0u8; 32];
        s[28..].copy_from_slice(&n.to_be_bytes());
        s
    }

    #[test]
    fn a_key_id_collision_says_to_generate_another_secret() {
        let err = Keyring::new([counter(0x16cf), counter(0x27c0b)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("7438dea5") && text.contains("generate another secret"),
            "{text}"
        );
        assert!(!text.contains("repeats"), "{text}");
        // Distinct under the default purpose, colliding under another: an error, no panic.
        let ring = Keyring::new([counter(0x71ed), counter(0x21064)]).unwrap();
        let err = ring.try_with_purpose("csrf").unwrap_err();
        assert!(err.to_string().contains("generate another secret"), "{err}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = [0xABu8; 32];
        let ring = Keyring::new([secret]).unwrap();
        let dbg = format!("{ring:?}");
        assert!(!dbg.to_lowercase().contains("abab"), "{dbg}");
        assert!(!dbg.contains("171"), "{dbg}");
        assert!(dbg.contains(&format!("{:08x}", ring.primary_key_id())));
    }

    #[test]
    fn base64_list_accepts_both_alphabets_and_padding() {
        let a = [0xFBu8; 32];
        let b = [0x3Eu8; 33];
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let text = format!(" {} , {}", URL_SAFE_NO_PAD.encode(a), STANDARD.encode(b));
        let ring = Keyring::from_base64(&text).unwrap();
        let direct = Keyring::new([&a[..], &b[..]]).unwrap();
        assert_eq!(ring.key_ids(), direct.key_ids());
        let err = Keyring::from_base64("not base64!!").unwrap_err();
        assert!(err.to_string().contains("#1"), "{err}");
    }

    #[test]
    fn ids_depend_on_algorithm_and_purpose() {
        let ring = Keyring::new([[5u8; 32]]).unwrap();
        let id = ring.primary_key_id();
        let ring = ring.with_purpose("csrf");
        assert_ne!(ring.primary_key_id(), id);
        let ring = ring
            .with_purpose("session")
            .with_algorithm(Algorithm::XChaCha20Poly1305);
        assert_ne!(ring.primary_key_id(), id);
        assert_eq!(ring.clone().key_ids(), ring.key_ids());
    }

    #[test]
    fn generated_secret_is_usable() {
        let text = Keyring::generate_secret_base64().unwrap();
        assert!(Keyring::from_base64(&text).is_ok());
        assert_ne!(
            Keyring::generate().primary_key_id(),
            Keyring::generate().primary_key_id()
        );
    }
}
