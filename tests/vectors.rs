//! Frozen test vectors: they pin wire format v1 (header, key derivation, AAD,
//! compression, the session envelope) for good. A change that breaks them is a
//! format change and must bump the version.
//!
//! Regenerate only when adding vectors: `SEALED_SESSION_WRITE_VECTORS=1 cargo test --all-features --test vectors`.

#[path = "common/vector_parts.rs"]
mod vector_parts;
use vector_parts::parts;

use std::path::PathBuf;

use http::{header, HeaderMap, HeaderValue};
use sealed_session::testing::{open_inflated, seal_session_with_nonce, seal_with_nonce};
use sealed_session::{Algorithm, Clock, Codec, Keyring, SessionConfig};
use serde_json::{json, Value};
use time::OffsetDateTime;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v1.json")
}

fn alg(name: &str) -> Algorithm {
    match name {
        "AES-256-GCM-SIV" => Algorithm::Aes256GcmSiv,
        "XChaCha20-Poly1305" => Algorithm::XChaCha20Poly1305,
        other => panic!("unknown algorithm {other}"),
    }
}

fn secrets(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| hex::decode(s.as_str().unwrap()).unwrap())
        .collect()
}

fn codec_for(v: &Value, secrets_field: &str) -> Codec {
    let ring = Keyring::new(secrets(&v[secrets_field]))
        .unwrap()
        .with_algorithm(alg(v["algorithm"].as_str().unwrap()))
        .with_purpose(v["purpose"].as_str().unwrap());
    Codec::new(ring)
}

fn threshold(v: &Value) -> Option<usize> {
    v["compression_threshold"].as_u64().map(|t| t as usize)
}

fn seal(v: &Value) -> String {
    let codec = codec_for(v, "secrets");
    let nonce = hex::decode(v["nonce"].as_str().unwrap()).unwrap();
    let name = v["name"].as_str().unwrap();
    if v.get("session").is_some() {
        seal_session_with_nonce(&codec, name, &parts(v), &nonce, threshold(v)).unwrap()
    } else {
        let plaintext = hex::decode(v["plaintext"].as_str().unwrap()).unwrap();
        seal_with_nonce(&codec, name, &plaintext, &nonce, threshold(v), 1).unwrap()
    }
}

fn definitions() -> Vec<Value> {
    let k1 = hex::encode([0x01u8; 32]);
    let k2 = hex::encode((0u8..32).collect::<Vec<_>>());
    let text = "sealed-session keeps the whole session in one cookie. ".repeat(12);
    let postcard_str = |s: &str| hex::encode(postcard::to_stdvec(s).unwrap());
    let mut defs = Vec::new();
    for (algorithm, nonce_len) in [("AES-256-GCM-SIV", 12), ("XChaCha20-Poly1305", 24)] {
        let nonce = hex::encode((0..nonce_len).map(|i| 0xA0u8 + i as u8).collect::<Vec<_>>());
        defs.push(
            json!({"description": format!("{algorithm}, empty plaintext"), "algorithm": algorithm,
            "secrets": [k1], "purpose": "session", "name": "session", "nonce": nonce,
            "compression_threshold": 256, "plaintext": ""}),
        );
        defs.push(json!({"description": format!("{algorithm}, small plaintext, not compressed"), "algorithm": algorithm,
            "secrets": [k1], "purpose": "session", "name": "session", "nonce": nonce,
            "compression_threshold": 256, "plaintext": hex::encode("hello, sealed-session")}));
        defs.push(json!({"description": format!("{algorithm}, text plaintext, compressed"), "algorithm": algorithm,
            "secrets": [k1], "purpose": "session", "name": "__Host-session", "nonce": nonce,
            "compression_threshold": 256, "plaintext": hex::encode(&text)}));
        defs.push(json!({"description": format!("{algorithm}, other purpose, sealed by the old key of a rotated ring"),
            "algorithm": algorithm, "secrets": [k1], "open_with": [k2, k1], "purpose": "api-token",
            "name": "sid", "nonce": nonce, "compression_threshold": null, "plaintext": hex::encode(&text)}));
        defs.push(json!({"description": format!("{algorithm}, session envelope"), "algorithm": algorithm,
            "secrets": [k2], "purpose": "session", "name": "session", "nonce": nonce,
            "compression_threshold": 256,
            "session": {"id": "00112233445566778899aabbccddeeff", "created": 1_790_000_000i64,
                "last_active": 1_790_000_600i64, "expires_at": 1_790_086_400i64,
                "csrf": hex::encode([0x5Au8; 32]),
                "values": {"user": postcard_str("ada"), "views": hex::encode(postcard::to_stdvec(&7u32).unwrap())}}}));
        defs.push(json!({"description": format!("{algorithm}, session envelope with a compressed body"), "algorithm": algorithm,
            "secrets": [k2], "purpose": "session", "name": "session", "nonce": nonce,
            "compression_threshold": 256,
            "session": {"id": "ffeeddccbbaa99887766554433221100", "created": 1_790_000_000i64,
                "last_active": 1_790_000_000i64, "expires_at": 1_790_003_600i64, "csrf": null,
                "values": {"notes": postcard_str(&text)}}}));
    }
    defs
}

#[test]
fn frozen_vectors_seal_and_open_exactly() {
    if std::env::var_os("SEALED_SESSION_WRITE_VECTORS").is_some() {
        let vectors: Vec<Value> = definitions()
            .into_iter()
            .map(|mut v| {
                v["sealed"] = Value::String(seal(&v));
                v
            })
            .collect();
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(
            path(),
            serde_json::to_string_pretty(&vectors).unwrap() + "\n",
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("tests/vectors/v1.json");
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(vectors.len() >= 12);
    let mut compressed = 0;
    for v in &vectors {
        let desc = v["description"].as_str().unwrap();
        let expected = v["sealed"].as_str().unwrap();
        assert_eq!(seal(v), expected, "sealing changed: {desc}");
        let header = sealed_session::inspect::header(expected).unwrap().header;
        assert_eq!(header.version, 1);
        compressed += usize::from(header.compressed);
        if v.get("session").is_some() {
            // Sessions keep their envelope header uncompressed; they open through the http path.
            open_as_session(v, expected);
            continue;
        }
        let opener = if v.get("open_with").is_some() {
            codec_for(v, "open_with")
        } else {
            codec_for(v, "secrets")
        };
        let (plaintext, old_key) = open_inflated(
            &opener.with_max_value_len(100_000),
            v["name"].as_str().unwrap(),
            expected,
            64 * 1024,
        )
        .unwrap_or_else(|e| panic!("{desc}: {e}"));
        assert_eq!(old_key, v.get("open_with").is_some(), "{desc}");
        assert_eq!(
            hex::encode(&plaintext),
            v["plaintext"].as_str().unwrap(),
            "{desc}"
        );
    }
    assert!(compressed >= 4, "vectors must cover compressed values");
}

/// A session vector loads through the http path with the values it was sealed with.
fn open_as_session(v: &Value, sealed: &str) {
    let p = parts(v);
    let created = p.created;
    let ring = Keyring::new(secrets(&v["secrets"]))
        .unwrap()
        .with_algorithm(alg(v["algorithm"].as_str().unwrap()));
    let config = SessionConfig::builder(ring)
        .clock(Clock::from_fn(move || {
            OffsetDateTime::from_unix_timestamp(created + 60).unwrap()
        }))
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    let cookie = format!("{}={sealed}", v["name"].as_str().unwrap());
    headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let session = rt
        .block_on(sealed_session::headers::load(&config, &headers))
        .unwrap();
    assert!(session.load_error().is_none(), "{:?}", session.load_error());
    assert_eq!(session.id().as_bytes(), &p.id);
    assert_eq!(session.expires_at().unix_timestamp(), p.expires_at);
    for (k, bytes) in &p.values {
        let got: Option<String> = session.get(k).ok().flatten();
        if k == "views" {
            assert_eq!(session.get::<u32>(k).unwrap(), Some(7));
        } else {
            assert_eq!(got, Some(postcard::from_bytes::<String>(bytes).unwrap()));
        }
    }
}
