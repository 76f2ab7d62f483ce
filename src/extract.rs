//! The axum extractor for [`Session`] (feature `axum`).

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::Session;

/// Rejection when a handler asks for a [`Session`] but no [`SessionLayer`](crate::SessionLayer)
/// ran for the request (missing layer, or the path is in `ignore_path`).
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
