//! Frozen test vectors: they pin wire formats v1 and v2 (header, key derivation,
//! AAD, compression, the session envelope, v2's pointers and store entries) for
//! good. A change that breaks them is a format change and must bump the version.
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
        let version = v["version"].as_u64().map_or(1, |n| n as u8);
        seal_with_nonce(&codec, name, &plaintext, &nonce, threshold(v), version).unwrap()
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

fn path_v2() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v2.json")
}

/// The few CBOR encodings the vectors need, written out by hand (RFC 8949 §3) so
/// the vectors do not depend on the encoder they pin.
mod cbor_by_hand {
    pub trait Cbor {
        fn cbor(&self, out: &mut Vec<u8>);
    }
    fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        match n {
            0..=23 => out.push(major << 5 | n as u8),
            24..=0xff => out.extend([major << 5 | 24, n as u8]),
            0x100..=0xffff => {
                out.push(major << 5 | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(major << 5 | 26);
                out.extend((n as u32).to_be_bytes());
            }
        }
    }
    impl Cbor for u64 {
        fn cbor(&self, out: &mut Vec<u8>) {
            head(0, *self, out);
        }
    }
    impl Cbor for &str {
        fn cbor(&self, out: &mut Vec<u8>) {
            head(3, self.len() as u64, out);
            out.extend(self.as_bytes());
        }
    }
    impl Cbor for bool {
        fn cbor(&self, out: &mut Vec<u8>) {
            out.push(if *self { 0xf5 } else { 0xf4 });
        }
    }
    impl<T: Cbor> Cbor for Vec<T> {
        fn cbor(&self, out: &mut Vec<u8>) {
            head(4, self.len() as u64, out);
            for x in self {
                x.cbor(out);
            }
        }
    }
    /// A struct: a map of field names to values, in declaration order.
    pub struct Fields<'a>(pub Vec<(&'a str, &'a dyn Cbor)>);
    impl Cbor for Fields<'_> {
        fn cbor(&self, out: &mut Vec<u8>) {
            head(5, self.0.len() as u64, out);
            for (k, v) in &self.0 {
                k.cbor(out);
                v.cbor(out);
            }
        }
    }
}

fn definitions_v2() -> Vec<Value> {
    use cbor_by_hand::{Cbor, Fields};
    let k2 = hex::encode((0u8..32).collect::<Vec<_>>());
    let text = "sealed-session keeps the whole session in one cookie. ".repeat(12);
    let enc = |v: &dyn Cbor| {
        let mut out = Vec::new();
        v.cbor(&mut out);
        hex::encode(out)
    };
    let item = |sku: &'static str, qty: u64| (sku, qty);
    let items: Vec<(&str, u64)> = vec![item("A1B2C3D4", 2), item("Z9Y8X7W6", 9)];
    let cart = {
        let mut out = Vec::new();
        out.push(0x80 | items.len() as u8);
        for (sku, qty) in &items {
            Fields(vec![("sku", sku), ("qty", qty)]).cbor(&mut out);
        }
        hex::encode(out)
    };
    let mut defs = Vec::new();
    for (algorithm, nonce_len) in [("AES-256-GCM-SIV", 12), ("XChaCha20-Poly1305", 24)] {
        let nonce = hex::encode((0..nonce_len).map(|i| 0xB0u8 + i as u8).collect::<Vec<_>>());
        // The subject is hashed under the vector's own key (a key outside the ring
        // would make the session refused: its subject could not be revoked).
        let key_id = Keyring::new([(0u8..32).collect::<Vec<_>>()])
            .unwrap()
            .with_algorithm(alg(algorithm))
            .primary_key_id();
        defs.push(
            json!({"description": format!("{algorithm}, v2 raw value"), "version": 2,
            "algorithm": algorithm, "secrets": [k2], "purpose": "session", "name": "session",
            "nonce": nonce, "compression_threshold": null, "plaintext": hex::encode("hello, v2")}),
        );
        defs.push(
            json!({"description": format!("{algorithm}, v2 session, default policy"),
            "version": 2, "algorithm": algorithm, "secrets": [k2], "purpose": "session",
            "name": "session", "nonce": nonce, "compression_threshold": 256,
            "session": {"id": "00112233445566778899aabbccddeeff", "created": 1_790_000_000i64,
                "last_active": 1_790_000_600i64, "expires_at": 1_790_086_400i64,
                "csrf": hex::encode([0x5Au8; 32]),
                "values": {"user": enc(&"ada"), "views": enc(&7u64), "cart": cart}}}),
        );
        defs.push(json!({"description": format!("{algorithm}, v2 session, remember me, subject, fingerprint, compressed"),
            "version": 2, "algorithm": algorithm, "secrets": [k2], "purpose": "session",
            "name": "__Host-session", "nonce": nonce, "compression_threshold": 256,
            "session": {"id": "ffeeddccbbaa99887766554433221100", "created": 1_790_000_000i64,
                "last_active": 1_790_003_600i64, "expires_at": 1_792_592_000i64, "csrf": null,
                "policy": {"kind": "absolute", "start": 600, "ttl": 2_592_000},
                "subject": {"key_id": key_id, "hash": hex::encode([0x77u8; 16]), "since": 1_790_000_600_000i64},
                "fingerprint": hex::encode([0x42u8; 8]),
                "values": {"notes": enc(&text.as_str())},
                "flash": {"messages": enc(&vec!["saved"])}}}));
        defs.push(
            json!({"description": format!("{algorithm}, v2 pointer to a store entry, idle policy"),
            "version": 2, "algorithm": algorithm, "secrets": [k2], "purpose": "session",
            "name": "session", "nonce": nonce, "compression_threshold": 256,
            "session": {"id": "0f0e0d0c0b0a09080706050403020100", "created": 1_790_000_000i64,
                "last_active": 1_790_000_000i64, "expires_at": 1_790_003_600i64, "csrf": null,
                "policy": {"kind": "idle", "timeout": 3600, "renew": 1800},
                "pointer": "e0e1e2e3e4e5e6e7e8e9eaebecedeeef",
                "values": {"notes": enc(&text.as_str()), "paid": enc(&true)}}}),
        );
    }
    defs
}

#[test]
fn frozen_v2_vectors_seal_and_open_exactly() {
    use sealed_session::testing::seal_store_entry_with_nonce;
    if std::env::var_os("SEALED_SESSION_WRITE_VECTORS").is_some() {
        let vectors: Vec<Value> = definitions_v2()
            .into_iter()
            .map(|mut v| {
                v["sealed"] = Value::String(seal(&v));
                if v["session"]["pointer"].is_string() {
                    let codec = codec_for(&v, "secrets");
                    let nonce = hex::decode(v["nonce"].as_str().unwrap()).unwrap();
                    let (key, entry) = seal_store_entry_with_nonce(
                        &codec,
                        v["name"].as_str().unwrap(),
                        &parts(&v),
                        &nonce,
                        threshold(&v),
                    )
                    .unwrap();
                    v["store_key"] = Value::String(key);
                    v["store_entry"] = Value::String(hex::encode(entry));
                }
                v
            })
            .collect();
        std::fs::write(
            path_v2(),
            serde_json::to_string_pretty(&vectors).unwrap() + "\n",
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(path_v2()).expect("tests/vectors/v2.json");
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(vectors.len() >= 8);
    let (mut compressed, mut pointers) = (0, 0);
    for v in &vectors {
        let desc = v["description"].as_str().unwrap();
        let expected = v["sealed"].as_str().unwrap();
        assert_eq!(seal(v), expected, "sealing changed: {desc}");
        let header = sealed_session::inspect::header(expected).unwrap().header;
        assert_eq!(header.version, 2, "{desc}");
        compressed += usize::from(header.compressed);
        pointers += usize::from(header.pointer);
        if v["session"]["pointer"].is_string() {
            let codec = codec_for(v, "secrets");
            let nonce = hex::decode(v["nonce"].as_str().unwrap()).unwrap();
            let (key, entry) = seal_store_entry_with_nonce(
                &codec,
                v["name"].as_str().unwrap(),
                &parts(v),
                &nonce,
                threshold(v),
            )
            .unwrap();
            assert_eq!(key, v["store_key"].as_str().unwrap(), "{desc}");
            assert_eq!(
                hex::encode(&entry),
                v["store_entry"].as_str().unwrap(),
                "{desc}"
            );
        }
        if v.get("session").is_some() {
            open_v2_session(v, expected);
            continue;
        }
        let (plaintext, old_key) = open_inflated(
            &codec_for(v, "secrets"),
            v["name"].as_str().unwrap(),
            expected,
            1 << 16,
        )
        .unwrap_or_else(|e| panic!("{desc}: {e}"));
        assert!(!old_key);
        assert_eq!(
            hex::encode(&plaintext),
            v["plaintext"].as_str().unwrap(),
            "{desc}"
        );
    }
    assert!(
        compressed >= 2 && pointers >= 2,
        "{compressed} compressed, {pointers} pointers"
    );
}

/// A v2 session vector loads through the http path (its store entry put in a store
/// first) with the values, policy and subject it was sealed with.
fn open_v2_session(v: &Value, sealed: &str) {
    use sealed_session::store::{MemoryStore, SessionStore, StoreKey};
    let p = parts(v);
    let created = p.created;
    let ring = Keyring::new(secrets(&v["secrets"]))
        .unwrap()
        .with_algorithm(alg(v["algorithm"].as_str().unwrap()));
    let store = std::sync::Arc::new(MemoryStore::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(key) = v["store_key"].as_str() {
        let bytes: [u8; 16] = hex::decode(key).unwrap().try_into().unwrap();
        let entry = hex::decode(v["store_entry"].as_str().unwrap()).unwrap();
        rt.block_on(store.save(
            &StoreKey::from_bytes(bytes),
            &entry,
            std::time::Duration::from_secs(600),
        ))
        .unwrap();
    }
    let config = SessionConfig::builder(ring)
        .cookie_name(v["name"].as_str().unwrap())
        .clock(Clock::from_fn(move || {
            OffsetDateTime::from_unix_timestamp(created + 60).unwrap()
        }))
        .max_lifetime(std::time::Duration::from_secs(40 * 86_400))
        .store_arc(store)
        .build()
        .unwrap();
    let mut headers = HeaderMap::new();
    let cookie = format!("{}={sealed}", v["name"].as_str().unwrap());
    headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
    let session = rt
        .block_on(sealed_session::headers::load(&config, &headers))
        .unwrap();
    let desc = v["description"].as_str().unwrap();
    assert!(
        session.load_error().is_none(),
        "{desc}: {:?}",
        session.load_error()
    );
    assert_eq!(session.id().as_bytes(), &p.id, "{desc}");
    assert_eq!(
        session.expires_at().unix_timestamp(),
        p.expires_at,
        "{desc}"
    );
    assert_eq!(session.has_subject(), p.subject.is_some(), "{desc}");
    assert_eq!(session.is_store_backed(), p.pointer.is_some(), "{desc}");
    let keys: Vec<String> = p.values.iter().map(|(k, _)| k.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(session.keys(), sorted, "{desc}");
    if let Some(user) = session.get::<String>("user").unwrap() {
        assert_eq!(user, "ada");
        assert_eq!(session.get::<u32>("views").unwrap(), Some(7));
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Item {
            sku: String,
            qty: u32,
        }
        let cart: Vec<Item> = session.get("cart").unwrap().unwrap();
        assert_eq!(
            cart[1],
            Item {
                sku: "Z9Y8X7W6".into(),
                qty: 9
            }
        );
    }
    if let Some(notes) = session.get::<String>("notes").unwrap() {
        assert!(notes.starts_with("sealed-session keeps"), "{desc}");
    }
    if !p.flash.is_empty() {
        assert_eq!(
            session.get_flash::<Vec<String>>("messages").unwrap(),
            Some(vec!["saved".to_owned()]),
            "{desc}"
        );
    }
}
