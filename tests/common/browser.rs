//! Helpers for http-level tests: a clock tests can move, and a cookie jar of one.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use sealed_session::{Clock, Session, SessionConfig};
use time::OffsetDateTime;

/// A clock that stays where the test puts it.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(unix: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(unix)))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn clock(&self) -> Clock {
        let t = self.0.clone();
        Clock::from_fn(move || {
            OffsetDateTime::from_unix_timestamp(t.load(Ordering::SeqCst)).unwrap()
        })
    }
}

/// All Set-Cookie header values of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `name=value` pair of the only Set-Cookie, if there is one.
pub fn cookie_pair(headers: &HeaderMap) -> Option<String> {
    let all = set_cookies(headers);
    assert!(all.len() <= 1, "more than one Set-Cookie: {all:?}");
    all.first().map(|c| c.split(';').next().unwrap().to_owned())
}

/// Request headers carrying one Cookie header.
pub fn with_cookie(pair: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    h
}

/// Incompressible bytes (xorshift), so sizes are what the test means them to be.
/// A `ByteBuf` is stored as one CBOR byte string (a `Vec<u8>` would be an array
/// of numbers, up to two bytes each).
pub fn noise(len: usize, seed: u64) -> serde_bytes::ByteBuf {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    serde_bytes::ByteBuf::from(bytes)
}

/// One request: load from `cookie`, run `f`, save; returns the session and response headers.
pub async fn request(
    config: &SessionConfig,
    cookie: Option<&str>,
    f: impl FnOnce(&Session),
) -> (Session, HeaderMap) {
    let headers = cookie.map(with_cookie).unwrap_or_default();
    let session = sealed_session::headers::load(config, &headers)
        .await
        .unwrap();
    f(&session);
    let mut out = HeaderMap::new();
    sealed_session::headers::save(config, &session, &mut out)
        .await
        .unwrap();
    (session, out)
}
