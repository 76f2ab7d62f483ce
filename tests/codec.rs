//! The sealed codec: round trips, tampering, binding, rotation. (Compression is the
//! envelope's: tests/compression.rs.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use proptest::prelude::*;
use sealed_session::{Algorithm, Codec, Error, Keyring};

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Aes256GcmSiv, Algorithm::XChaCha20Poly1305];

fn codec(secrets: &[[u8; 32]], algorithm: Algorithm) -> Codec {
    Codec::new(Keyring::new(secrets).unwrap().with_algorithm(algorithm)).with_max_value_len(200_000)
}

fn text_like(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .cycle()
        .take(len)
        .copied()
        .collect()
}

fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn round_trip_empty_small_and_64k_for_both_algorithms() {
    for alg in ALGORITHMS {
        let c = codec(&[K1], alg);
        for data in [
            Vec::new(),
            noise(200),
            text_like(200),
            noise(64 * 1024),
            text_like(64 * 1024),
        ] {
            let sealed = c.seal("session", &data).unwrap();
            let opened = c.open("session", &sealed).unwrap();
            assert_eq!(opened.plaintext, data, "{alg} len {}", data.len());
            assert!(!opened.old_key);
            assert_eq!(opened.header.algorithm, alg);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn prop_round_trip(data in proptest::collection::vec(any::<u8>(), 0..3000),
                       repeat in 1usize..4,
                       xchacha in any::<bool>(),
                       name in "[a-zA-Z0-9_-]{1,20}") {
        let alg = if xchacha { Algorithm::XChaCha20Poly1305 } else { Algorithm::Aes256GcmSiv };
        let c = codec(&[K1], alg);
        let data: Vec<u8> = data.repeat(repeat);
        let sealed = c.seal(&name, &data).unwrap();
        prop_assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(c.open(&name, &sealed).unwrap().plaintext, data);
    }

    #[test]
    fn prop_garbage_never_opens_or_panics(text in "\\PC{0,400}") {
        let c = codec(&[K1], Algorithm::Aes256GcmSiv);
        prop_assert!(c.open("session", &text).is_err());
    }
}

#[test]
fn every_bit_flip_and_truncation_is_rejected() {
    for alg in ALGORITHMS {
        for data in [noise(150), text_like(600)] {
            let c = codec(&[K1], alg);
            let sealed = c.seal("session", &data).unwrap();
            let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
            for i in 0..raw.len() {
                for bit in 0..8 {
                    let mut t = raw.clone();
                    t[i] ^= 1 << bit;
                    let text = URL_SAFE_NO_PAD.encode(&t);
                    assert!(
                        c.open("session", &text).is_err(),
                        "{alg}: flip byte {i} bit {bit} opened"
                    );
                }
            }
            for len in 0..raw.len() {
                let text = URL_SAFE_NO_PAD.encode(&raw[..len]);
                assert!(
                    c.open("session", &text).is_err(),
                    "{alg}: truncation to {len} opened"
                );
            }
            // Text-level: every character replaced by every other base64url character.
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let bytes = sealed.as_bytes();
            for i in 0..bytes.len() {
                for &ch in alphabet.iter().chain(b"=+/ .") {
                    if ch == bytes[i] {
                        continue;
                    }
                    let mut t = bytes.to_vec();
                    t[i] = ch;
                    let text = String::from_utf8(t).unwrap();
                    assert!(
                        c.open("session", &text).is_err(),
                        "{alg}: char {i} -> {ch} opened"
                    );
                }
            }
            assert!(c.open("session", &format!("{sealed}A")).is_err());
        }
    }
}

#[test]
fn failures_are_opaque_and_typed() {
    let c = codec(&[K1], Algorithm::Aes256GcmSiv);
    let sealed = c.seal("session", b"data").unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(&raw);
    assert!(matches!(
        c.open("session", &tampered),
        Err(Error::Authentication)
    ));
    assert!(matches!(c.open("session", "!!!"), Err(Error::NotBase64)));
    assert!(matches!(
        c.open("session", ""),
        Err(Error::Truncated { len: 0 })
    ));

    let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    raw[0] = 3;
    assert!(matches!(
        c.open("session", &URL_SAFE_NO_PAD.encode(&raw)),
        Err(Error::UnsupportedVersion(3))
    ));
    for bad_flags in [0x10u8, 0x80, 0x02, 0x03] {
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        raw[1] = bad_flags;
        assert!(matches!(
            c.open("session", &URL_SAFE_NO_PAD.encode(&raw)),
            Err(Error::UnsupportedFlags(f)) if f == bad_flags
        ));
    }
}

#[test]
fn bound_to_cookie_name_and_purpose() {
    for alg in ALGORITHMS {
        let c = codec(&[K1], alg);
        let sealed = c.seal("a", b"payload").unwrap();
        assert!(c.open("a", &sealed).is_ok());
        assert!(matches!(c.open("b", &sealed), Err(Error::Authentication)));
        assert!(matches!(c.open("a ", &sealed), Err(Error::Authentication)));
        let other = Codec::new(
            Keyring::new([K1])
                .unwrap()
                .with_algorithm(alg)
                .with_purpose("csrf"),
        );
        assert!(other.open("a", &sealed).is_err());
    }
}

#[test]
fn rotation_old_keys_open_and_the_newest_seals() {
    for alg in ALGORITHMS {
        let old = codec(&[K1], alg);
        let rotated = codec(&[K2, K1], alg);
        let by_old = old.seal("session", b"x").unwrap();
        let opened = rotated.open("session", &by_old).unwrap();
        assert!(opened.old_key, "opened by an old key must say so");
        assert_eq!(opened.header.key_id, old.keyring().primary_key_id());

        let by_new = rotated.seal("session", b"x").unwrap();
        let header = sealed_session::inspect::header(&by_new).unwrap().header;
        assert_eq!(
            header.key_id,
            rotated.keyring().primary_key_id(),
            "the newest key seals"
        );
        assert_ne!(header.key_id, old.keyring().primary_key_id());
        assert!(!rotated.open("session", &by_new).unwrap().old_key);
        assert!(matches!(
            old.open("session", &by_new),
            Err(Error::UnknownKeyId(id)) if id == header.key_id
        ));
    }
}

#[test]
fn cheap_rejection_before_decoding() {
    let c = Codec::new(Keyring::new([K1]).unwrap()).with_max_value_len(100);
    let long = "A".repeat(101);
    assert!(matches!(
        c.open("s", &long),
        Err(Error::TooLarge {
            size: 101,
            limit: 100,
            ..
        })
    ));
}

#[test]
fn values_for_one_algorithm_do_not_open_under_the_other() {
    let siv = codec(&[K1], Algorithm::Aes256GcmSiv);
    let xc = codec(&[K1], Algorithm::XChaCha20Poly1305);
    let sealed = siv.seal("s", b"x").unwrap();
    assert!(matches!(xc.open("s", &sealed), Err(Error::UnknownKeyId(_))));
}
