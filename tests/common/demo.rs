//! Driving the demo server's router in process (tower `oneshot`), with raw
//! request headers: a browser of one cookie, or an API client of one header.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// One answer: status, headers and the JSON body (or the text as a JSON string).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The `name=value` pair of the session Set-Cookie, if the response set one.
    pub fn set_cookie(&self) -> Option<String> {
        let sc = self.headers.get(header::SET_COOKIE)?.to_str().unwrap();
        Some(sc.split(';').next().unwrap().to_owned())
    }
}

/// Sends one request to `app` with the given raw headers and optional JSON body.
pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    headers: Vec<(&str, HeaderValue)>,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply {
        status,
        headers,
        json,
    }
}

/// A Cookie header value from raw bytes (browsers send UTF-8 as is).
pub fn raw_cookie(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("no CR, LF or NUL")
}
