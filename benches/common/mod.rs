//! Helpers shared by the benches (each bench includes this file with `#[path]`).

#![allow(dead_code)] // not every bench uses every helper

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// Drives a future that never waits (no store, or the memory store) without a runtime.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("this path was expected to complete without waiting"),
    }
}

/// What the browser sends back: `name=value` of the Set-Cookie, as a Cookie header.
pub fn cookie_request(response: &HeaderMap) -> HeaderMap {
    let set_cookie = response[SET_COOKIE].to_str().unwrap();
    let pair = set_cookie.split(';').next().unwrap();
    let mut request = HeaderMap::new();
    request.insert(COOKIE, HeaderValue::from_str(pair).unwrap());
    request
}
