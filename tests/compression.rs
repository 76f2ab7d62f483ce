//! Compression of session bodies: only above the threshold, only when it pays,
//! and a cap on what a body may expand to.

#[path = "common/browser.rs"]
mod browser;

use browser::{cookie_pair, noise, request};
use http::HeaderMap;
use sealed_session::{Error, Keyring, SessionConfig};

const K1: [u8; 32] = [0x11; 32];

fn text_like(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .cycle()
        .take(len)
        .copied()
        .collect()
}

fn builder() -> sealed_session::SessionConfigBuilder {
    SessionConfig::builder(Keyring::new([K1]).unwrap())
}

/// The sealed value of a session holding `data` under `"d"`.
async fn sealed(cfg: &SessionConfig, data: &[u8]) -> String {
    // One CBOR byte string (a plain `&[u8]` would be an array of numbers).
    let (_, out) = request(cfg, None, |s| {
        s.insert("d", serde_bytes::Bytes::new(data)).unwrap()
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

fn compressed(value: &str) -> bool {
    sealed_session::inspect::header(value)
        .unwrap()
        .header
        .compressed
}

#[tokio::test]
async fn compression_only_when_it_pays() {
    let cfg = builder().build().unwrap();
    assert!(
        !compressed(&sealed(&cfg, &text_like(100)).await),
        "under threshold"
    );
    let text = sealed(&cfg, &text_like(4000)).await;
    let info = sealed_session::inspect::header(&text).unwrap();
    assert!(info.header.compressed);
    assert!(info.ciphertext_len < 1000, "{}", info.ciphertext_len);
    assert!(
        !compressed(&sealed(&cfg, &noise(2000, 1)).await),
        "noise does not shrink"
    );
    let off = builder().no_compression().build().unwrap();
    let plain = sealed(&off, &text_like(2000)).await;
    assert!(!compressed(&plain));
    // A compressing config opens what a non-compressing one sealed.
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        format!("session={plain}").parse().unwrap(),
    );
    let s = sealed_session::headers::load(&cfg, &headers).await.unwrap();
    assert_eq!(
        s.get::<serde_bytes::ByteBuf>("d")
            .unwrap()
            .map(|b| b.into_vec()),
        Some(text_like(2000))
    );
}

#[tokio::test]
async fn decompression_cap_is_enforced() {
    let big = builder().build().unwrap();
    let value = sealed(&big, &text_like(60_000)).await;
    assert!(compressed(&value));
    let small = builder().max_decompressed(10_000).build().unwrap();
    let (s, _) = request(&small, Some(&format!("session={value}")), |_| {}).await;
    assert!(s.is_new());
    assert!(matches!(
        s.load_error().as_deref(),
        Some(Error::DecompressionLimit {
            limit: 10_000,
            cap: "max_decompressed"
        })
    ));
    let session = sealed_session::headers::load(&small, &HeaderMap::new())
        .await
        .unwrap();
    session.insert("d", &noise(10_001, 2)).unwrap();
    let mut out = HeaderMap::new();
    assert!(matches!(
        sealed_session::headers::save(&small, &session, &mut out).await,
        Err(Error::TooLarge { .. })
    ));
    assert!(out.is_empty(), "nothing is written when the save fails");
}
