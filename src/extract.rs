//! axum integration (feature `axum`): [`Session`] and `Option<Session>` as
//! extractors, and [`Error`] as a response.
//!
//! Which side of the layer sees what is documented on [`SessionLayer`](crate::SessionLayer).

use std::convert::Infallible;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};

use crate::{Error, Session};

/// Rejection when a handler asks for a [`Session`] but no [`SessionLayer`](crate::SessionLayer)
/// ran for the request (missing layer, or the path is in `ignore_path`).
///
/// Ask for `Option<Session>` instead where either is expected (a router-wide middleware).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no session for this request: add sealed_session::SessionLayer to the router (or the path is ignored)")]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

/// `Option<Session>`: `None` when no [`SessionLayer`](crate::SessionLayer) ran for the
/// request (an `ignore_path` route, or a middleware outside the layer); never rejects.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

/// A handler can return `Result<_, sealed_session::Error>`: the error answers with the
/// status [`SessionLayer`](crate::SessionLayer) uses (503 for [`ErrorKind::Store`](crate::ErrorKind::Store),
/// 500 otherwise) and a body of just the status's reason phrase, so nothing about the
/// session, a key or a store leaks. The error is logged (with its cause) at ERROR, and
/// its [`ErrorKind`](crate::ErrorKind) rides in the response extensions for an outer
/// middleware that wants to render its own body.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        tracing::error!(
            reason = self.kind().as_str(),
            error = %self,
            source = ?std::error::Error::source(&self),
            "session error answered with {status}"
        );
        let reason = status.canonical_reason().unwrap_or("Error");
        let mut response = (status, reason).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response.extensions_mut().insert(self.kind());
        response
    }
}
