//! Driving an axum `Router` in a bench: one request through a clone of the router,
//! with the body collected (included with `#[path]` by the benches that need it).

#![allow(dead_code)] // not every bench uses every helper

use axum::body::Body;
use axum::Router;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// A GET of `path`, carrying `cookie` as the Cookie header when given.
pub fn request(path: &str, cookie: Option<&HeaderValue>) -> Request<Body> {
    let mut b = Request::builder().uri(path).header("host", "example.com");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c.clone());
    }
    b.body(Body::empty()).unwrap()
}

/// One request through a clone of the router; the body is collected.
pub async fn call(
    router: &Router,
    req: Request<Body>,
) -> (StatusCode, HeaderMap, axum::body::Bytes) {
    let response = router.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}
