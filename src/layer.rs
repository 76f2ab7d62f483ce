//! A tower [`Layer`] that loads the session before the inner service and
//! writes it back after (feature `tower`).
//!
//! The session goes into the request extensions as a [`Session`] handle; the
//! handler's changes are seen when the response goes out, because the handle
//! is shared. A bad cookie gives a fresh session (logged at debug/warn with
//! its reason, never its value). A store failure answers 503 for a request
//! whose session needs the store; inline sessions keep working.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Error, Session, SessionConfig};

/// Adds sessions to a service. Build it from a [`SessionConfig`].
#[derive(Debug, Clone)]
pub struct SessionLayer {
    config: SessionConfig,
}

impl SessionLayer {
    /// A layer using `config`.
    pub fn new(config: SessionConfig) -> Self {
        SessionLayer { config }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`SessionLayer`] produces.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    config: SessionConfig,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<&'static str> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self.config.is_ignored_path(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let loaded = crate::http::load_with(&config, &parts.headers, &parts.uri).await;
            let session = match loaded {
                Ok(session) => session,
                Err(e) => {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store failed on load");
                    return Ok(plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "session store unavailable, try again later\n",
                    ));
                }
            };
            if let Some(e) = session.load_error() {
                log_refused(&e);
            }
            parts.extensions.insert(session.clone());
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            match crate::http::save(&config, &session, response.headers_mut()).await {
                Ok(()) => Ok(response),
                Err(e @ Error::Store { .. }) => {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store failed on save");
                    Ok(plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "session store unavailable, the session was not saved\n",
                    ))
                }
                Err(e) => {
                    tracing::error!(error = %e, "session could not be saved");
                    Ok(plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "session could not be saved\n",
                    ))
                }
            }
        })
    }
}

fn log_refused(e: &Error) {
    match e {
        Error::Authentication | Error::UnknownKeyId(_) | Error::UnsupportedFlags(_) => {
            tracing::warn!(reason = e.kind(), error = %e, "session value refused; starting a fresh session");
        }
        _ => {
            tracing::debug!(reason = e.kind(), error = %e, "session value refused; starting a fresh session")
        }
    }
}

fn plain<B: From<&'static str>>(status: StatusCode, body: &'static str) -> Response<B> {
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Reads the session a [`SessionLayer`] put into request extensions.
pub fn session_of<B>(request: &Request<B>) -> Option<&Session> {
    request.extensions().get::<Session>()
}
