//! Replays the fuzz corpora on stable: every file under `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through the same check as the libFuzzer
//! target (`fuzz/checks.rs`, included here and by `fuzz/fuzz_targets/*.rs`), so a
//! plain `cargo test --all-features` covers the seeds and every crash ever found.
//!
//! The seed corpus is derived from the frozen vectors (tests/vectors/v1.json, v2.json);
//! regenerate it with `SEALED_SESSION_WRITE_FUZZ_SEEDS=1 cargo test --all-features --test fuzz_corpus`.
#![cfg(feature = "test-util")]

#[path = "../fuzz/checks.rs"]
mod checks;

#[path = "common/vector_parts.rs"]
mod vector_parts;
use vector_parts::parts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use checks::RoundtripInput;
use sealed_session::testing::EnvelopeParts;
use sealed_session::{Algorithm, Codec, Keyring};
use serde_json::Value;

const TARGETS: [&str; 4] = ["open", "roundtrip", "cookie_header", "envelope"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of a target's seed corpus and regressions, sorted.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["fuzz/corpus", "fuzz/regressions"] {
        let dir = root().join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Runs a check on one file, naming the file when it panics.
fn replay<T>(path: &Path, check: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("fuzz input {} fails its check", path.display());
            std::panic::resume_unwind(e)
        }
    }
}

#[test]
fn open_corpus() {
    let files = inputs("open");
    assert!(!files.is_empty(), "fuzz/corpus/open is empty");
    let opened: usize = files
        .iter()
        .map(|(path, data)| replay(path, || checks::open(data)))
        .sum();
    // The seeds hold the six values sealed under the fixed key, as text and as raw bytes.
    assert!(
        opened >= 12,
        "only {opened} seed opens succeeded: the seeds no longer reach the success path"
    );
}

#[test]
fn roundtrip_corpus() {
    let files = inputs("roundtrip");
    assert!(!files.is_empty(), "fuzz/corpus/roundtrip is empty");
    for (path, data) in &files {
        replay(path, || checks::roundtrip(data));
    }
}

#[test]
fn cookie_header_corpus() {
    let files = inputs("cookie_header");
    assert!(!files.is_empty(), "fuzz/corpus/cookie_header is empty");
    let (mut expired, mut opened) = (0, 0);
    for (path, data) in &files {
        let session = replay(path, || checks::cookie_header(data));
        expired += usize::from(
            session
                .load_error()
                .is_some_and(|e| e.kind() == sealed_session::ErrorKind::Expired),
        );
        opened += usize::from(!session.is_new());
    }
    assert!(
        opened >= 3,
        "only {opened} seeds carry a live cookie among neighbours"
    );
    // Seeds carrying real sealed sessions get through decryption and decoding to the expiry check.
    assert!(
        expired >= 4,
        "only {expired} seeds reached the expiry check"
    );
}

#[test]
fn envelope_corpus() {
    let files = inputs("envelope");
    assert!(!files.is_empty(), "fuzz/corpus/envelope is empty");
    let mut decoded = 0;
    for (path, data) in &files {
        let results = replay(path, || checks::envelope(data));
        decoded += results.iter().filter(|r| r.is_ok()).count();
    }
    assert!(decoded >= 2, "no seed envelope decodes any more");
}

#[test]
fn roundtrip_input_encoding_is_exact() {
    for input in roundtrip_seeds() {
        assert_eq!(RoundtripInput::decode(&input.encode()), input);
    }
    // Any bytes decode, including none.
    let empty = RoundtripInput::decode(&[]);
    assert_eq!(empty.cookie_name.len(), 1);
    assert!(empty.values.is_empty());
}

/// The seed files are exactly what `seeds()` derives from the vectors.
#[test]
fn seed_corpus_is_current() {
    let write = std::env::var_os("SEALED_SESSION_WRITE_FUZZ_SEEDS").is_some();
    let seeds = seeds();
    for target in TARGETS {
        let dir = root().join("fuzz/corpus").join(target);
        if write {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut expected: Vec<&str> = Vec::new();
        for (t, name, bytes) in &seeds {
            if *t != target {
                continue;
            }
            let path = dir.join(name);
            if write {
                std::fs::write(&path, bytes).unwrap();
            }
            let on_disk = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; regenerate with SEALED_SESSION_WRITE_FUZZ_SEEDS=1",
                    path.display()
                )
            });
            assert_eq!(&on_disk, bytes, "{} is stale", path.display());
            expected.push(name);
        }
        assert!(!expected.is_empty());
    }
}

// ------------------------------------------------------------------ seeds

struct Vector {
    algorithm: Algorithm,
    name: String,
    purpose: String,
    secret: Vec<u8>,
    sealed: String,
    json: Value,
}

fn vectors() -> Vec<Vector> {
    read_vectors("tests/vectors/v1.json")
}

fn vectors_v2() -> Vec<Vector> {
    read_vectors("tests/vectors/v2.json")
}

fn read_vectors(file: &str) -> Vec<Vector> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|v| Vector {
            algorithm: match v["algorithm"].as_str().unwrap() {
                "AES-256-GCM-SIV" => Algorithm::Aes256GcmSiv,
                "XChaCha20-Poly1305" => Algorithm::XChaCha20Poly1305,
                other => panic!("unknown algorithm {other}"),
            },
            name: v["name"].as_str().unwrap().to_owned(),
            purpose: v["purpose"].as_str().unwrap().to_owned(),
            secret: hex::decode(v["secrets"][0].as_str().unwrap()).unwrap(),
            sealed: v["sealed"].as_str().unwrap().to_owned(),
            json: v,
        })
        .collect()
}

fn alg_label(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Aes256GcmSiv => "aes",
        _ => "xchacha",
    }
}

/// The envelope plaintext of a session vector: postcard(meta) || body, the body
/// lz4-compressed (size-prefixed) when `compressed`. Postcard writes a struct as
/// the tuple of its fields, so tuples of the same types give the same bytes.
fn envelope_plaintext(p: &EnvelopeParts, compressed: bool) -> Vec<u8> {
    let meta = (p.id, p.created, p.last_active, p.expires_at, p.csrf);
    let values: BTreeMap<String, Vec<u8>> = p.values.iter().cloned().collect();
    let flash: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = postcard::to_stdvec(&meta).unwrap();
    let body = postcard::to_stdvec(&(values, flash)).unwrap();
    if compressed {
        out.extend(lz4_flex::block::compress_prepend_size(&body));
    } else {
        out.extend(body);
    }
    out
}

fn roundtrip_seeds() -> Vec<RoundtripInput> {
    let text = "sealed-session keeps the whole session in one cookie. ".repeat(12);
    let v = |k: &str, b: &[u8]| (k.to_owned(), b.to_vec());
    vec![
        RoundtripInput {
            algorithm: Algorithm::Aes256GcmSiv,
            compression: None,
            cookie_name: "session".into(),
            purpose: None,
            values: vec![v("user", b"\x03ada"), v("views", &[7])],
        },
        RoundtripInput {
            algorithm: Algorithm::XChaCha20Poly1305,
            compression: Some(256),
            cookie_name: "__Host-session".into(),
            purpose: None,
            values: vec![v("notes", text.as_bytes()), v("csrf", &[0x5a; 32])],
        },
        RoundtripInput {
            algorithm: Algorithm::Aes256GcmSiv,
            compression: Some(0),
            cookie_name: "sid".into(),
            purpose: Some("api-token".into()),
            values: vec![v("a", b"1"), v("a", b"2"), v("", b""), v("b", &[0; 300])],
        },
        RoundtripInput {
            algorithm: Algorithm::XChaCha20Poly1305,
            compression: None,
            cookie_name: "x".into(),
            purpose: Some(String::new()),
            values: vec![v("ключ", "значение".as_bytes()), v("cart", &[0xff; 40])],
        },
        RoundtripInput {
            algorithm: Algorithm::Aes256GcmSiv,
            compression: Some(64),
            cookie_name: "s-1_A".into(),
            purpose: None,
            values: Vec::new(),
        },
        // The codec builds AADs of up to 192 bytes on the stack: 6 + purpose + name
        // at 192 exactly, at 193, and far over (the longest cookie name).
        RoundtripInput {
            algorithm: Algorithm::Aes256GcmSiv,
            compression: None,
            cookie_name: "session".into(),
            purpose: Some("p".repeat(192 - 6 - 7)),
            values: vec![v("k", b"aad-192")],
        },
        RoundtripInput {
            algorithm: Algorithm::XChaCha20Poly1305,
            compression: Some(16),
            cookie_name: "session".into(),
            purpose: Some("p".repeat(193 - 6 - 7)),
            values: vec![v("k", b"aad-193-aad-193-aad-193")],
        },
        RoundtripInput {
            algorithm: Algorithm::Aes256GcmSiv,
            compression: Some(256),
            cookie_name: "N".repeat(64),
            purpose: Some("q".repeat(255)),
            values: vec![v("k", &[1; 20])],
        },
    ]
}

/// (target, file name, bytes) of every seed.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let vectors = vectors();
    let plain_ring = Keyring::new([checks::SECRET_PLAIN]).unwrap();
    let mut by_kind: std::collections::HashMap<(Algorithm, bool), String> = Default::default();
    for (i, v) in vectors.iter().enumerate() {
        // open: every sealed text; the raw bytes of those the fixed keyring opens.
        out.push((
            "open",
            format!("v1-{i:02}-text"),
            v.sealed.as_bytes().to_vec(),
        ));
        let opens = v.secret == checks::SECRET_PLAIN
            && v.purpose == "session"
            && checks::OPEN_NAMES.contains(&v.name.as_str())
            && v.json.get("open_with").is_none();
        if opens {
            assert_eq!(plain_ring.purpose(), "session");
            out.push((
                "open",
                format!("v1-{i:02}-raw"),
                URL_SAFE_NO_PAD.decode(&v.sealed).unwrap(),
            ));
        }
        if v.json.get("session").is_some() {
            assert_eq!(v.secret, checks::SECRET_SESSION);
            let header = sealed_session::inspect::header(&v.sealed).unwrap().header;
            by_kind.insert((v.algorithm, header.compressed), v.sealed.clone());
            // envelope: the decrypted plaintext (the same for both algorithms).
            if v.algorithm == Algorithm::Aes256GcmSiv {
                let p = parts(&v.json);
                let plain = envelope_plaintext(&p, header.compressed);
                if !header.compressed {
                    // Proof that this is the exact plaintext: sealing it again gives the vector.
                    let codec = Codec::new(
                        Keyring::new([&v.secret])
                            .unwrap()
                            .with_algorithm(v.algorithm),
                    );
                    let nonce = hex::decode(v.json["nonce"].as_str().unwrap()).unwrap();
                    assert_eq!(
                        sealed_session::testing::seal_with_nonce(
                            &codec, &v.name, &plain, &nonce, None, 1
                        )
                        .unwrap(),
                        v.sealed
                    );
                } else {
                    let inspected = sealed_session::inspect::header(&v.sealed).unwrap();
                    assert_eq!(inspected.ciphertext_len, plain.len());
                }
                let kind = if header.compressed {
                    "compressed"
                } else {
                    "plain"
                };
                out.push(("envelope", format!("v1-{i:02}-{kind}"), plain));
            }
        }
    }
    // envelope: meta alone, a body over the cap, a size claim over the cap, a body at the cap.
    let p = parts(
        &vectors
            .iter()
            .find(|v| v.json.get("session").is_some())
            .unwrap()
            .json,
    );
    let meta_only = envelope_plaintext(
        &EnvelopeParts {
            values: Vec::new(),
            ..p.clone()
        },
        false,
    );
    let meta_len = meta_only.len() - 2; // two empty maps
    out.push(("envelope", "meta-only".into(), meta_only.clone()));
    let mut big = p.clone();
    big.values = vec![("k".into(), vec![b'a'; checks::ENVELOPE_MAX_DECOMPRESSED])];
    out.push((
        "envelope",
        "over-cap-compressed".into(),
        envelope_plaintext(&big, true),
    ));
    let mut bomb = meta_only[..meta_len].to_vec();
    bomb.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 0x1f, 0x00]);
    out.push(("envelope", "size-claim-2gib".into(), bomb));
    let mut fits = p.clone();
    fits.values = vec![(
        "k".into(),
        vec![b'b'; checks::ENVELOPE_MAX_DECOMPRESSED - 16],
    )];
    out.push((
        "envelope",
        "under-cap-compressed".into(),
        envelope_plaintext(&fits, true),
    ));

    // cookie_header: mode byte (bit 0 header transport, bit 1 XChaCha), then lines.
    let aes = &by_kind[&(Algorithm::Aes256GcmSiv, false)];
    let aes_z = &by_kind[&(Algorithm::Aes256GcmSiv, true)];
    let xc = &by_kind[&(Algorithm::XChaCha20Poly1305, false)];
    let xc_z = &by_kind[&(Algorithm::XChaCha20Poly1305, true)];
    let cookie_seeds: Vec<(&str, String)> = vec![
        ("cookie-aes", format!("0session={aes}")),
        ("cookie-aes-compressed", format!("0session={aes_z}")),
        ("cookie-xchacha", format!("2session={xc}")),
        (
            "cookie-xchacha-compressed",
            format!("2theme=dark; session={xc_z}"),
        ),
        (
            "cookie-many",
            format!(
                "0a=b; session={aes_z}; session=garbage\nother=1; session=\"{aes}\"\nsession=AQ"
            ),
        ),
        ("header-aes", format!("1x-session:{aes}\nsession={aes_z}")),
        (
            "header-xchacha-compressed",
            format!("3x-session:{xc_z}\nx-session:{xc}"),
        ),
        ("header-empty", "1x-session:\nsession=AQA".into()),
        ("cookie-wrong-algorithm", format!("0session={xc}")),
        ("cookie-oversized", format!("0session={}", "A".repeat(4200))),
        ("none", "0".into()),
    ];
    for (name, s) in cookie_seeds {
        out.push(("cookie_header", name.into(), s.into_bytes()));
    }
    // cookie_header, mode bit 2: a live cookie put among the line's bytes at the
    // position of the second byte.
    let neighbours: [(&str, &[u8]); 4] = [
        (
            "live-between-utf8",
            "\x0alang=español; theme=dark".as_bytes(),
        ),
        ("live-after-junk", b"\xff\xfe=\x80\x81; a=1"),
        ("live-xchacha-start", b"\x00x=\xc3; y"),
        (
            "live-after-three-tossed",
            b"\x40session=a; session=b; session=c; z=1",
        ),
    ];
    for (name, rest) in neighbours {
        let mode: u8 = if name.contains("xchacha") { 4 | 2 } else { 4 };
        let mut bytes = vec![mode];
        bytes.extend_from_slice(rest);
        out.push(("cookie_header", name.into(), bytes));
    }

    // Format v2: every sealed text for `open`, the decrypted plaintexts for
    // `envelope`, and the expired v2 cookies for `cookie_header`.
    for (i, v) in vectors_v2().iter().enumerate() {
        out.push((
            "open",
            format!("v2-{i:02}-text"),
            v.sealed.as_bytes().to_vec(),
        ));
        if v.json.get("session").is_none() {
            continue;
        }
        let codec = Codec::new(
            Keyring::new([&v.secret])
                .unwrap()
                .with_algorithm(v.algorithm),
        )
        .with_max_value_len(1 << 16);
        let opened = codec.open(&v.name, &v.sealed).unwrap();
        if v.algorithm == Algorithm::Aes256GcmSiv {
            let kind = match (opened.header.pointer, opened.header.compressed) {
                (true, _) => "pointer",
                (_, true) => "compressed",
                _ => "plain",
            };
            out.push(("envelope", format!("v2-{i:02}-{kind}"), opened.plaintext));
        }
        if v.name == "session" {
            let mode = if v.algorithm == Algorithm::Aes256GcmSiv {
                "0"
            } else {
                "2"
            };
            out.push((
                "cookie_header",
                format!("v2-{i:02}-cookie"),
                format!("{mode}a=b; session={}", v.sealed).into_bytes(),
            ));
        }
    }

    for (i, input) in roundtrip_seeds().iter().enumerate() {
        out.push((
            "roundtrip",
            format!("seed-{i}-{}", alg_label(input.algorithm)),
            input.encode(),
        ));
    }
    out
}
