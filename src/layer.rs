//! A tower [`Layer`] that loads the session before the inner service and
//! writes it back after (feature `tower`).
//!
//! The session goes into the request extensions as a [`Session`] handle; the
//! handler's changes are seen when the response goes out, because the handle
//! is shared. A bad cookie gives a fresh session (logged at debug/warn with
//! its reason, never its value). A store failure answers 503 for a request
//! whose session needs the store; inline sessions keep working.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::headers::{self, LoadStep, SaveStep};
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
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if self.config.is_ignored_path(request.uri().path()) {
            return ResponseFuture::calling(inner.call(request), None);
        }
        let (mut parts, body) = request.into_parts();
        // Most requests need no store to load: no future is boxed for them.
        let fetch = match headers::start_load(&self.config, &parts.headers, &parts.uri) {
            LoadStep::Done(session) => {
                if let Some(e) = session.load_error() {
                    log_refused(&e);
                }
                parts.extensions.insert(session.clone());
                let future = inner.call(Request::from_parts(parts, body));
                return ResponseFuture::calling(future, Some((session, self.config.clone())));
            }
            LoadStep::FetchBody(fetch) => fetch,
            LoadStep::Refused(e) => {
                tracing::warn!(error = %e, "session refused: the revocation list is too stale to check it");
                return ResponseFuture::loading(Box::pin(async move {
                    Err(plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "session revocations unavailable, try again later\n",
                    ))
                }));
            }
        };
        let config = self.config.clone();
        ResponseFuture::loading(Box::pin(async move {
            let session = match fetch.finish(&config, &parts.headers).await {
                Ok(session) => session,
                Err(e @ Error::RevocationUnavailable { .. }) => {
                    tracing::warn!(error = %e, "session refused: the revocation list is too stale to check it");
                    return Err(plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "session revocations unavailable, try again later\n",
                    ));
                }
                Err(e) => {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store failed on load");
                    return Err(plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "session store unavailable, try again later\n",
                    ));
                }
            };
            if let Some(e) = session.load_error() {
                log_refused(&e);
            }
            parts.extensions.insert(session.clone());
            let future = inner.call(Request::from_parts(parts, body));
            Ok((future, session, config))
        }))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Loading through the store: the inner service's future with the session, or the 503 answer.
type Loading<F, B> = BoxFuture<Result<(F, Session, SessionConfig), Response<B>>>;

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner service's future, then the
    /// session written into its response. Only store work is boxed.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // The session's body is being fetched from the store.
        Loading { load: Loading<F, B> },
        // The inner service runs; the session (if any) is saved after it.
        Calling {
            #[pin]
            inner: F,
            session: Option<(Session, SessionConfig)>,
        },
        // The store takes the body (or an entry is deleted) before the response goes out.
        Saving { save: BoxFuture<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn calling(inner: F, session: Option<(Session, SessionConfig)>) -> Self {
        ResponseFuture {
            state: State::Calling { inner, session },
        }
    }

    fn loading(load: Loading<F, B>) -> Self {
        ResponseFuture {
            state: State::Loading { load },
        }
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Loading { .. } => "loading",
            State::Calling { .. } => "calling",
            State::Saving { .. } => "saving",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<&'static str> + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Loading { load } => match std::task::ready!(load.as_mut().poll(cx)) {
                    Ok((inner, session, config)) => state.set(State::Calling {
                        inner,
                        session: Some((session, config)),
                    }),
                    Err(unavailable) => return Poll::Ready(Ok(unavailable)),
                },
                StateProj::Calling { inner, session } => {
                    let mut response = std::task::ready!(inner.poll(cx))?;
                    let Some((session, config)) = session.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    match headers::start_save(&config, &session, response.headers_mut()) {
                        Ok(SaveStep::Done) => return Poll::Ready(Ok(response)),
                        Ok(SaveStep::Store(work)) => state.set(State::Saving {
                            save: Box::pin(async move {
                                match work.finish(&config, &session, response.headers_mut()).await {
                                    Ok(()) => response,
                                    Err(e) => save_failed(&e),
                                }
                            }),
                        }),
                        Err(e) => return Poll::Ready(Ok(save_failed(&e))),
                    }
                }
                StateProj::Saving { save } => return save.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// The answer when a session could not be saved: 503 for a store failure, else 500.
fn save_failed<B: From<&'static str>>(e: &Error) -> Response<B> {
    match e {
        Error::Store { .. } => {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "session store failed on save");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "session store unavailable, the session was not saved\n",
            )
        }
        _ => {
            tracing::error!(error = %e, "session could not be saved");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "session could not be saved\n",
            )
        }
    }
}

fn log_refused(e: &Error) {
    match e {
        Error::Authentication | Error::UnknownKeyId(_) | Error::UnsupportedFlags(_) => {
            tracing::warn!(reason = e.kind().as_str(), error = %e, "session value refused; starting a fresh session");
        }
        _ => {
            tracing::debug!(reason = e.kind().as_str(), error = %e, "session value refused; starting a fresh session")
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
