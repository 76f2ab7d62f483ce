//! The checks behind every fuzz target, shared word for word by the libFuzzer
//! targets (`fuzz/fuzz_targets/*.rs`, nightly) and the stable corpus replay
//! (`tests/fuzz_corpus.rs`, `cargo test --all-features`), which both include
//! this file with `#[path]`. Each check takes the raw input bytes exactly as
//! libFuzzer hands them over, so a crash file under `fuzz/artifacts/` replays
//! unchanged here; it panics when an invariant breaks.
//!
//! Needs: `sealed-session` with feature `test-util`, `http`, `tokio` (rt),
//! `base64`, `postcard`. No `arbitrary`: inputs are decoded by the small
//! [`Reader`] below so the stable test (which has no `arbitrary` dependency)
//! decodes a file exactly as the fuzzer did.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use sealed_session::store::MemoryStore;
use sealed_session::{headers, Algorithm, Clock, Codec, Error, Keyring, SessionConfig, Transport};

/// The secret of the v1 vectors' plain (non-session) values: 32 × 0x01.
pub const SECRET_PLAIN: [u8; 32] = [0x01; 32];

/// The secret of the v1 vectors' session envelopes: bytes 0..32.
pub const SECRET_SESSION: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8;
        i += 1;
    }
    s
};

/// Cookie names the `open` target tries (the v1 vectors use both).
pub const OPEN_NAMES: [&str; 2] = ["session", "__Host-session"];

/// Header of the header transport in `cookie_header`.
pub const SESSION_HEADER: &str = "x-session";

/// A time after every session vector's expiry (2033-05-18): sealed seeds get
/// through decryption and envelope decoding, then stop at the expiry check.
pub const LATE_UNIX: i64 = 2_000_000_000;

/// Decompression cap of the `envelope` target.
pub const ENVELOPE_MAX_DECOMPRESSED: usize = 4096;

/// Runs a future that needs at most a current-thread runtime (no store is ever configured).
fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RT.with(|rt| rt.block_on(f))
}

/// A one-key ring. (Keyring derives its keys again on every clone, so callers
/// that run per input keep what they build in a `OnceLock`.)
fn ring(secret: [u8; 32], algorithm: Algorithm) -> Keyring {
    Keyring::new([secret])
        .expect("a 32-byte secret")
        .with_algorithm(algorithm)
}

// ---------------------------------------------------------------- open

/// `open`: arbitrary bytes, as text when UTF-8 and base64url-encoded, opened
/// under a fixed keyring (both algorithms, both vector cookie names).
///
/// Never panics; anything that opens was sealed under the fixed primary key
/// and re-seals to the same plaintext. (Forging an AEAD tag is not something
/// a fuzzer does: only real sealed values from the seed corpus open.)
/// Returns how many of the attempts opened.
pub fn open(data: &[u8]) -> usize {
    static CODECS: OnceLock<[Codec; 2]> = OnceLock::new();
    let codecs = CODECS.get_or_init(|| {
        [Algorithm::Aes256GcmSiv, Algorithm::XChaCha20Poly1305]
            .map(|a| Codec::new(ring(SECRET_PLAIN, a)))
    });
    let mut opened = 0;
    for codec in codecs {
        for name in OPEN_NAMES {
            if let Ok(text) = std::str::from_utf8(data) {
                opened += usize::from(open_one(codec, name, text));
            }
            opened += usize::from(open_one(codec, name, &URL_SAFE_NO_PAD.encode(data)));
        }
    }
    opened
}

fn open_one(codec: &Codec, name: &str, text: &str) -> bool {
    let Ok(opened) = codec.open(name, text) else {
        return false;
    };
    let ring = codec.keyring();
    assert_eq!(
        opened.header.key_id,
        ring.primary_key_id(),
        "opened under a key id not in the ring"
    );
    assert_eq!(opened.header.algorithm, ring.algorithm());
    assert!(!opened.old_key, "a one-key ring has no old key");
    assert!(!opened.header.pointer, "Codec::seal never writes pointers");
    assert!(
        opened.plaintext.len() < text.len(),
        "the plaintext is shorter than its sealed text"
    );
    let resealed = codec
        .seal(name, &opened.plaintext)
        .expect("what opened must seal again");
    let again = codec.open(name, &resealed).expect("a fresh seal must open");
    assert_eq!(again.plaintext, opened.plaintext);
    true
}

// ---------------------------------------------------------------- roundtrip

/// A little-endian cursor over fuzz input: reads past the end give zeros/empties,
/// like `arbitrary::Unstructured`, so every byte string is a valid input.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Bytes left.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// One byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    /// A little-endian u16 (missing bytes are 0).
    pub fn u16(&mut self) -> u16 {
        let b = self.bytes(2);
        u16::from(b.first().copied().unwrap_or(0)) | u16::from(b.get(1).copied().unwrap_or(0)) << 8
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }
}

/// Decoded `roundtrip` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundtripInput {
    /// The AEAD.
    pub algorithm: Algorithm,
    /// Compression threshold, or `None` for off.
    pub compression: Option<usize>,
    /// A valid cookie name (letters, digits, `_`, `-`; 1–64 bytes).
    pub cookie_name: String,
    /// The keyring purpose (`None`: the default); up to 255 bytes, so that
    /// header + purpose + name crosses the codec's 192-byte stack AAD buffer.
    pub purpose: Option<String>,
    /// Session values in insertion order (later duplicates win).
    pub values: Vec<(String, Vec<u8>)>,
}

const NAME_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

fn alphabet_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| char::from(NAME_ALPHABET[usize::from(*b) % NAME_ALPHABET.len()]))
        .collect()
}

fn alphabet_indices(s: &str) -> Vec<u8> {
    s.bytes()
        .map(|c| {
            let i = NAME_ALPHABET
                .iter()
                .position(|a| *a == c)
                .expect("name alphabet");
            u8::try_from(i).unwrap()
        })
        .collect()
}

impl RoundtripInput {
    /// Layout: `flags` (bit 0 XChaCha, bit 1 compression on, bit 2 a purpose),
    /// `threshold: u16` (only with compression on), `name_len` (mod 64, + 1), name
    /// bytes (mapped into the alphabet), `purpose_len: u8` and purpose bytes (mapped
    /// likewise; only with bit 2), then entries until the input ends (at most 64):
    /// `key_len: u8` (mod 32), key bytes (lossy UTF-8), `value_len: u16`, value bytes.
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let flags = r.u8();
        let algorithm = if flags & 1 == 0 {
            Algorithm::Aes256GcmSiv
        } else {
            Algorithm::XChaCha20Poly1305
        };
        let compression = (flags & 2 != 0).then(|| usize::from(r.u16()));
        let name_len = 1 + usize::from(r.u8() % 64);
        let mut cookie_name = alphabet_string(r.bytes(name_len));
        if cookie_name.is_empty() {
            cookie_name.push('s');
        }
        let purpose = (flags & 4 != 0).then(|| {
            let len = usize::from(r.u8());
            alphabet_string(r.bytes(len))
        });
        let mut values = Vec::new();
        while r.len() > 0 && values.len() < 64 {
            let key_len = usize::from(r.u8() % 32);
            let key = String::from_utf8_lossy(r.bytes(key_len)).into_owned();
            let value_len = usize::from(r.u16());
            values.push((key, r.bytes(value_len).to_vec()));
        }
        RoundtripInput {
            algorithm,
            compression,
            cookie_name,
            purpose,
            values,
        }
    }

    /// Bytes that [`RoundtripInput::decode`] turns back into `self` (for seeds).
    ///
    /// # Panics
    /// If a field is out of the decodable range.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let alg = u8::from(self.algorithm == Algorithm::XChaCha20Poly1305);
        let compression = if self.compression.is_some() { 2 } else { 0 };
        let purpose = if self.purpose.is_some() { 4 } else { 0 };
        out.push(alg | compression | purpose);
        if let Some(t) = self.compression {
            out.extend_from_slice(&u16::try_from(t).unwrap().to_le_bytes());
        }
        assert!((1..=64).contains(&self.cookie_name.len()));
        out.push(u8::try_from(self.cookie_name.len() - 1).unwrap());
        out.extend(alphabet_indices(&self.cookie_name));
        if let Some(p) = &self.purpose {
            out.push(u8::try_from(p.len()).unwrap());
            out.extend(alphabet_indices(p));
        }
        for (k, v) in &self.values {
            assert!(k.len() < 32);
            out.push(u8::try_from(k.len()).unwrap());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

/// `roundtrip`: session data → seal → open gives it back, through the codec
/// (postcard bytes) and through the http path (`save` → Set-Cookie → `load`).
pub fn roundtrip(data: &[u8]) {
    let input = RoundtripInput::decode(data);
    let expected: BTreeMap<&str, &[u8]> = input
        .values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();

    // 1. The codec alone.
    let keyring = match &input.purpose {
        Some(p) => ring(SECRET_PLAIN, input.algorithm).with_purpose(p.as_str()),
        None => ring(SECRET_PLAIN, input.algorithm),
    };
    let codec = Codec::new(keyring.clone()).with_max_value_len(1 << 20);
    let plaintext = postcard::to_stdvec(&input.values).expect("postcard of plain data");
    match codec.seal(&input.cookie_name, &plaintext) {
        Ok(text) => {
            let opened = codec
                .open(&input.cookie_name, &text)
                .expect("a value sealed by this codec must open");
            assert_eq!(opened.plaintext, plaintext);
            assert_eq!(opened.header.algorithm, input.algorithm);
            assert!(!opened.old_key);
            assert!(
                !opened.header.compressed,
                "the codec never compresses: compression is the envelope's"
            );
            let back: Vec<(String, Vec<u8>)> =
                postcard::from_bytes(&opened.plaintext).expect("postcard back");
            assert_eq!(back, input.values);
            // The AAD binds the name (on the stack or the heap, whatever its length).
            let other = format!("{}x", input.cookie_name);
            assert!(
                matches!(codec.open(&other, &text), Err(Error::Authentication)),
                "opened under another cookie name"
            );
        }
        Err(Error::TooLarge { .. }) => {}
        Err(e) => panic!("seal failed: {e}"),
    }

    // 2. The session path: insert, save into a Set-Cookie, load it back (a body
    // over the cookie budget goes to the store and comes back from it).
    let mut builder = SessionConfig::builder(keyring)
        .cookie_name(input.cookie_name.clone())
        .store(MemoryStore::new())
        .max_decompressed(64 * 1024);
    builder = match input.compression {
        Some(t) => builder.compression_threshold(t),
        None => builder.no_compression(),
    };
    let config = builder.build().expect("a valid config");
    let session =
        block_on(headers::load(&config, &HeaderMap::new())).expect("load without a store");
    assert!(session.is_empty());
    for (k, v) in &input.values {
        session.insert(k, v).expect("insert bytes");
    }
    session.save();
    let mut response = HeaderMap::new();
    match block_on(headers::save(&config, &session, &mut response)) {
        Ok(()) => {}
        Err(Error::TooLarge { .. }) => return,
        Err(e) => panic!("save failed: {e}"),
    }
    let set_cookie = response
        .get(SET_COOKIE)
        .expect("a forced save writes Set-Cookie")
        .to_str()
        .expect("Set-Cookie is text");
    let pair = set_cookie.split(';').next().unwrap_or_default();
    assert!(
        pair.starts_with(&format!("{}=", input.cookie_name)),
        "Set-Cookie {set_cookie:?} is not for {:?}",
        input.cookie_name
    );
    let mut request = HeaderMap::new();
    request.insert(
        COOKIE,
        HeaderValue::from_str(pair).expect("cookie pair is a header value"),
    );
    let loaded = block_on(headers::load(&config, &request)).expect("load without a store");
    assert!(
        loaded.load_error().is_none(),
        "reload failed: {:?}",
        loaded.load_error()
    );
    assert!(!loaded.is_new());
    assert_eq!(loaded.id(), session.id());
    let keys = loaded.keys();
    assert_eq!(
        keys.iter().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for (k, v) in &expected {
        let got: Option<Vec<u8>> = loaded.get(k).expect("bytes decode");
        assert_eq!(got.as_deref(), Some(*v), "value of {k:?}");
    }
}

// ---------------------------------------------------------------- cookie_header

/// Decoded `cookie_header` input: `mode` byte, then request header lines split on `\n`.
///
/// `mode` bit 0: transport `CookieOrHeader(x-session)` (else `Cookie`); bit 1: the
/// keyring is XChaCha20 (else AES-GCM-SIV). A line starting with `x-session:` is
/// an `X-Session` header (the rest of the line), any other line a `Cookie` header.
/// At most 8 lines; lines that are no valid header value are dropped.
/// Returns the config (built once per mode) and the request headers.
pub fn cookie_header_request(data: &[u8]) -> (&'static SessionConfig, HeaderMap) {
    static CONFIGS: OnceLock<[SessionConfig; 4]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        [0u8, 1, 2, 3].map(|mode| {
            let transport = if mode & 1 == 1 {
                Transport::CookieOrHeader(HeaderName::from_static(SESSION_HEADER))
            } else {
                Transport::Cookie
            };
            let algorithm = if mode & 2 == 0 {
                Algorithm::Aes256GcmSiv
            } else {
                Algorithm::XChaCha20Poly1305
            };
            cookie_header_config(transport, algorithm)
        })
    });
    let mode = data.first().copied().unwrap_or(0);
    let config = &configs[usize::from(mode & 3)];
    let mut headers = HeaderMap::new();
    let prefix = format!("{SESSION_HEADER}:");
    for line in data
        .get(1..)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
        .take(8)
    {
        let (name, value) = match line.strip_prefix(prefix.as_bytes()) {
            Some(rest) => (HeaderName::from_static(SESSION_HEADER), rest),
            None => (COOKIE, line),
        };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    (config, headers)
}

/// The config of `cookie_header`: the session vectors' key, cookie `session`, no store,
/// and a clock after every vector's expiry.
pub fn cookie_header_config(transport: Transport, algorithm: Algorithm) -> SessionConfig {
    SessionConfig::builder(ring(SECRET_SESSION, algorithm))
        .transport(transport)
        .clock(Clock::from_fn(|| {
            time::OffsetDateTime::from_unix_timestamp(LATE_UNIX).expect("a valid time")
        }))
        .build()
        .expect("a valid config")
}

/// `cookie_header`: any Cookie / X-Session headers load as `Ok`. Without a live
/// value nothing opens (the vectors are expired, forging is out): a fresh session
/// with no data. With mode bit 2 a live session cookie is put into the first
/// Cookie line at a position the input picks, among whatever bytes the input
/// holds: it must open, unless the input put [`MAX_CANDIDATES`] or more other
/// `session` pairs before it (the bound on values tried per request).
///
/// Returns the session for callers that check more (the corpus test).
pub fn cookie_header(data: &[u8]) -> sealed_session::Session {
    let mode = data.first().copied().unwrap_or(0);
    if mode & 4 == 4 && mode & 1 == 0 {
        return cookie_among_neighbours(data);
    }
    let (config, headers) = cookie_header_request(data);
    let session = block_on(headers::load(config, &headers))
        .unwrap_or_else(|e| panic!("load with no store configured failed: {e}"));
    assert!(
        session.is_new(),
        "nothing can open: the vectors are expired, forging is out"
    );
    assert!(session.is_empty(), "a fresh session has no data");
    assert!(session.keys().is_empty());
    session
}

/// How many same-named values a request's load tries (the library's bound).
pub const MAX_CANDIDATES: usize = 4;

/// A live `session=...` pair for the `cookie_header` configs of `algorithm`, holding
/// `{"fuzz": 1}`, sealed once.
fn live_pair(algorithm: Algorithm) -> &'static str {
    static PAIRS: OnceLock<[String; 2]> = OnceLock::new();
    let pairs = PAIRS.get_or_init(|| {
        [Algorithm::Aes256GcmSiv, Algorithm::XChaCha20Poly1305].map(|a| {
            let config = cookie_header_config(Transport::Cookie, a);
            let session = block_on(headers::load(&config, &HeaderMap::new())).expect("fresh");
            session.insert("fuzz", &1u8).expect("a u8 encodes");
            let mut out = HeaderMap::new();
            block_on(headers::save(&config, &session, &mut out)).expect("a small session fits");
            let set_cookie = out[SET_COOKIE].to_str().expect("text");
            set_cookie.split(';').next().expect("a pair").to_owned()
        })
    });
    match algorithm {
        Algorithm::Aes256GcmSiv => &pairs[0],
        _ => &pairs[1],
    }
}

/// Pairs named `session` in `bytes`, split on `;` the way a Cookie header is.
fn session_pairs(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b';')
        .filter(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| p.trim().split_once('='))
                .is_some_and(|(n, _)| n.trim() == "session")
        })
        .count()
}

fn cookie_among_neighbours(data: &[u8]) -> sealed_session::Session {
    let mode = data[0];
    let algorithm = if mode & 2 == 0 {
        Algorithm::Aes256GcmSiv
    } else {
        Algorithm::XChaCha20Poly1305
    };
    let config = cookie_header_config(Transport::Cookie, algorithm);
    let rest = data.get(1..).unwrap_or_default();
    let (at, rest) = match rest.split_first() {
        Some((&at, rest)) => (usize::from(at), rest),
        None => (0, rest),
    };
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let at = if line.is_empty() {
        0
    } else {
        at % (line.len() + 1)
    };
    let (before, after) = line.split_at(at);
    let mut header = before.to_vec();
    header.extend_from_slice(b";");
    header.extend_from_slice(live_pair(algorithm).as_bytes());
    header.extend_from_slice(b";");
    header.extend_from_slice(after);
    let mut headers = HeaderMap::new();
    let Ok(value) = HeaderValue::from_bytes(&header) else {
        // Bytes no header can carry (CR, LF, NUL): no request brings them.
        return block_on(headers::load(&config, &headers)).expect("an empty request");
    };
    headers.append(COOKIE, value);
    let session = block_on(headers::load(&config, &headers))
        .unwrap_or_else(|e| panic!("load with no store configured failed: {e}"));
    if session_pairs(before) < MAX_CANDIDATES {
        assert!(
            !session.is_new(),
            "a valid cookie among other cookies did not open: {:?} (header {:?})",
            session.load_error(),
            String::from_utf8_lossy(&header)
        );
        assert_eq!(session.get::<u8>("fuzz").expect("it decodes"), Some(1));
    }
    session
}

// ---------------------------------------------------------------- envelope

/// `envelope`: arbitrary "decrypted" plaintext through the envelope decoders of
/// format v1 and v2 and the decompressor: inline with and without the compressed
/// flag, and as a pointer. Never panics; the allocation bound is enforced by
/// libFuzzer (`-malloc_limit_mb`, `-rss_limit_mb`).
pub fn envelope(data: &[u8]) -> [Result<usize, Error>; 6] {
    const CASES: [(u8, bool, bool); 6] = [
        (1, false, false),
        (1, true, false),
        (1, false, true),
        (2, false, false),
        (2, true, false),
        (2, false, true),
    ];
    CASES.map(|(version, compressed, pointer)| {
        let r = sealed_session::testing::decode_envelope(
            version,
            ENVELOPE_MAX_DECOMPRESSED,
            data,
            compressed,
            pointer,
        );
        if let Err(Error::DecompressionLimit { limit, .. }) = &r {
            assert_eq!(*limit, ENVELOPE_MAX_DECOMPRESSED);
        }
        r
    })
}
