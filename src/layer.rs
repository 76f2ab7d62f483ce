//! A tower [`Layer`] that loads the session before the inner service and
//! writes it back after (feature `tower`).
//!
//! The session goes into the request extensions as a [`Session`] handle; the
//! handler's changes are seen when the response goes out, because the handle
//! is shared. A bad cookie gives a fresh session (logged at debug/warn with
//! its reason, never its value). A store failure answers 503 for a request
//! whose session needs the store; inline sessions keep working.
//!
//! Inline values open lazily, when the handler first touches the [`Session`] (or
//! at the response, to re-seal a value under an old key or when the config saves
//! every response): a request that never touches its session costs no decryption
//! and writes nothing back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::headers::{self, LoadStep, SaveStep};
use crate::{Error, Session, SessionConfig};

/// The `on_error` hook: the status and headers of the layer's own error answers.
type ErrorHook = dyn Fn(&Error) -> Response<()> + Send + Sync;

/// What every request of a layer shares: one `Arc` clone per request.
struct Shared {
    config: SessionConfig,
    on_error: Option<Box<ErrorHook>>,
}

/// Adds sessions to a tower service: loads the [`Session`] into the request
/// extensions before the inner service runs, and writes it back (`Set-Cookie`,
/// or the configured header) into its response.
///
/// With axum, add it with `Router::layer` and take [`Session`] (or `Option<Session>`)
/// in handlers and middleware:
///
/// ```
/// # #[cfg(feature = "axum")]
/// # mod demo {
/// use axum::{routing::get, Router};
/// use sealed_session::{Keyring, Session, SessionConfig, SessionLayer};
///
/// async fn views(session: Session) -> Result<String, sealed_session::Error> {
///     let n = session.get_or("views", 0u64)? + 1;
///     session.insert("views", &n)?;
///     Ok(format!("{n} views"))
/// }
///
/// # pub fn main() -> Result<(), sealed_session::Error> {
/// let config = SessionConfig::builder(Keyring::generate()).build()?;
/// let app: Router = Router::new().route("/", get(views)).layer(SessionLayer::new(config));
/// # Ok(()) }
/// # }
/// # #[cfg(feature = "axum")]
/// # demo::main().unwrap();
/// ```
///
/// On any tower service, the handler finds the session in the request extensions:
///
/// ```
/// use std::convert::Infallible;
/// use http::{header, Request, Response};
/// use sealed_session::{Keyring, Session, SessionConfig, SessionLayer};
/// use tower::{service_fn, ServiceBuilder, ServiceExt as _};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = SessionConfig::builder(Keyring::generate()).build()?;
/// let service = ServiceBuilder::new()
///     .layer(SessionLayer::new(config))
///     .service(service_fn(|request: Request<String>| async move {
///         let session = request.extensions().get::<Session>().expect("the layer put it there");
///         session.insert("user", "ada")?;
///         Ok::<_, sealed_session::Error>(Response::new(String::from("hello")))
///     }));
/// let response = service.oneshot(Request::new(String::new())).await?;
/// assert!(response.headers()[header::SET_COOKIE].to_str().unwrap().starts_with("session="));
/// # Ok::<(), sealed_session::Error>(()) }).unwrap();
/// ```
///
/// # Order among other layers
///
/// The layer only reads request headers and writes response headers; it wraps the
/// inner body in [`ResponseBody`] (empty for its own error answers) and asks nothing
/// of it, so it composes with tower-http's `CompressionLayer`, `TraceLayer`,
/// `TimeoutLayer` and the like in any order. The right order, outermost first, is
/// `TraceLayer` → `TimeoutLayer` → `CompressionLayer` → `SessionLayer` → your routes:
///
/// * **trace outside** so the request's span and latency include the session's
///   store round trips and its error answers;
/// * **timeout outside** so a hanging store is cut off too (a timeout while saving
///   sends no `Set-Cookie`: the client keeps its previous session);
/// * **compression** is indifferent (the session never touches the body); outside
///   keeps the layer's own answers on the same path as the app's.
///
/// # Middleware: which side sees what
///
/// A middleware sees the session only when it runs *inside* the layer (with
/// axum's `Router::layer`, the call made **last** is the outermost, so add
/// `SessionLayer` after the middleware). Inside, it can read and change the
/// session before and after the handler, and its changes are saved with the
/// handler's. Outside, the request has no session (`Option<Session>` is `None`)
/// and the response already carries its `Set-Cookie`: changing the session there
/// is too late. Take `Option<Session>` in a router-wide middleware, so that
/// `ignore_path` routes (no session) pass instead of answering 500:
///
/// ```
/// # #[cfg(feature = "axum")]
/// # mod demo {
/// use axum::{extract::Request, middleware::{self, Next}, response::Response, routing::get, Router};
/// use sealed_session::{Keyring, Session, SessionConfig, SessionLayer};
///
/// /// Counts the session's requests; ignored paths have no session.
/// async fn count(session: Option<Session>, request: Request, next: Next) -> Response {
///     if let Some(session) = &session {
///         let hits = session.get_or("hits", 0u64).unwrap_or(0);
///         let _ = session.insert("hits", &(hits + 1));
///     }
///     next.run(request).await
/// }
///
/// # pub fn main() -> Result<(), sealed_session::Error> {
/// let config = SessionConfig::builder(Keyring::generate()).ignore_path("/health").build()?;
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .route("/health", get(|| async { "ok" }))
///     .layer(middleware::from_fn(count)) // inside: sees the session
///     .layer(SessionLayer::new(config)); // added last = outermost
/// # Ok(()) }
/// # }
/// # #[cfg(feature = "axum")]
/// # demo::main().unwrap();
/// ```
///
/// # Bad input and failures
///
/// * A cookie or header that is garbage, tampered, expired, sealed by an unknown key
///   or for another name or purpose gives the handler a fresh session: never an
///   error answer. [`Session::load_error`] says why; the layer logs the reason (WARN
///   for tampering and, at most once a minute per key id, for a retired key; DEBUG
///   otherwise), never the value.
/// * The store fails while loading a session whose body lives there: the handler is
///   not called; the answer is **503**.
/// * The session cannot be saved (the store fails: **503**; too big with no store:
///   **500**): the handler's response is replaced by the error answer, and no
///   `Set-Cookie` is written, so the client keeps its previous, still valid cookie.
///
/// The error answers have an empty [`ResponseBody`], carry the error's [`ErrorKind`](crate::ErrorKind)
/// in their extensions, and can be shaped with [`SessionLayer::on_error`].
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", &self.shared.config)
            .field("on_error", &self.shared.on_error.is_some())
            .finish()
    }
}

impl SessionLayer {
    /// A layer using `config`.
    pub fn new(config: SessionConfig) -> Self {
        SessionLayer {
            shared: Arc::new(Shared {
                config,
                on_error: None,
            }),
        }
    }

    /// Shapes the layer's own error answers (a store failure, a session that could not
    /// be saved): `hook` gives their status and headers; the body is an empty
    /// [`ResponseBody`], so this works whatever service sits inside.
    ///
    /// The default answer is the error's status (503 for [`ErrorKind::Store`](crate::ErrorKind::Store),
    /// 500 otherwise) with no headers. Either way the answer carries the error's
    /// [`ErrorKind`](crate::ErrorKind) in its extensions, which an outer middleware (e.g.
    /// axum's `middleware::map_response`) can turn into a body. On a failed save the
    /// layer writes no session `Set-Cookie` (the answer holds only what the hook put in
    /// it): the client keeps its old cookie.
    ///
    /// ```
    /// use http::{header, Response, StatusCode};
    /// use sealed_session::{ErrorKind, Keyring, SessionConfig, SessionLayer};
    ///
    /// let config = SessionConfig::builder(Keyring::generate()).build()?;
    /// let layer = SessionLayer::new(config).on_error(|err| {
    ///     let mut answer = Response::new(());
    ///     if err.kind() == ErrorKind::Store {
    ///         *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    ///         answer.headers_mut().insert(header::RETRY_AFTER, "5".parse().unwrap());
    ///     } else {
    ///         *answer.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    ///     }
    ///     answer
    /// });
    /// # let _ = layer;
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    #[must_use]
    pub fn on_error<F>(self, hook: F) -> Self
    where
        F: Fn(&Error) -> Response<()> + Send + Sync + 'static,
    {
        SessionLayer {
            shared: Arc::new(Shared {
                config: self.shared.config.clone(),
                on_error: Some(Box::new(hook)),
            }),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`SessionLayer`] produces.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.shared.config;
        if config.is_ignored_path(request.uri().path()) {
            return ResponseFuture::calling(inner.call(request), None);
        }
        let (mut parts, body) = request.into_parts();
        // Most requests need no store to load: no future is boxed for them.
        // Inline values are opened when the handler first touches the session.
        let fetch = match headers::start_load_lazy(config, &parts.headers, &parts.uri) {
            LoadStep::Done(session) => {
                parts.extensions.insert(session.clone());
                let future = inner.call(Request::from_parts(parts, body));
                return ResponseFuture::calling(future, Some((session, Arc::clone(&self.shared))));
            }
            LoadStep::FetchBody(fetch) => fetch,
            LoadStep::Refused(e) => {
                log_revocation_refused(config, &e);
                let answer = error_answer(&self.shared, &e);
                return ResponseFuture::loading(Box::pin(async move { Err(answer) }));
            }
        };
        let shared = Arc::clone(&self.shared);
        ResponseFuture::loading(Box::pin(async move {
            let session = match fetch.finish(&shared.config, &parts.headers).await {
                Ok(session) => session,
                Err(e @ Error::RevocationUnavailable { .. }) => {
                    log_revocation_refused(&shared.config, &e);
                    return Err(error_answer(&shared, &e));
                }
                Err(e) => {
                    tracing::error!(error = %e, source = ?std::error::Error::source(&e), "session store failed on load");
                    return Err(error_answer(&shared, &e));
                }
            };
            if let Some(e) = session.load_error() {
                headers::log_refused(&shared.config, &e);
            }
            parts.extensions.insert(session.clone());
            let future = inner.call(Request::from_parts(parts, body));
            Ok((future, session, shared))
        }))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Loading through the store: the inner service's future with the session, or the 503 answer.
type Loading<F, B> = BoxFuture<Result<(F, Session, Arc<Shared>), Response<ResponseBody<B>>>>;

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
            session: Option<(Session, Arc<Shared>)>,
        },
        // The store takes the body (or an entry is deleted) before the response goes out.
        Saving { save: BoxFuture<Response<ResponseBody<B>>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn calling(inner: F, session: Option<(Session, Arc<Shared>)>) -> Self {
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
    B: Send + 'static,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Loading { load } => match std::task::ready!(load.as_mut().poll(cx)) {
                    Ok((inner, session, shared)) => state.set(State::Calling {
                        inner,
                        session: Some((session, shared)),
                    }),
                    Err(unavailable) => return Poll::Ready(Ok(unavailable)),
                },
                StateProj::Calling { inner, session } => {
                    let mut response = std::task::ready!(inner.poll(cx))?.map(ResponseBody::new);
                    let Some((session, shared)) = session.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    match headers::start_save(&shared.config, &session, response.headers_mut()) {
                        Ok(SaveStep::Done) => return Poll::Ready(Ok(response)),
                        Ok(SaveStep::Store(work)) => state.set(State::Saving {
                            save: Box::pin(async move {
                                match work
                                    .finish(&shared.config, &session, response.headers_mut())
                                    .await
                                {
                                    Ok(()) => response,
                                    Err(e) => save_failed(&shared, &e),
                                }
                            }),
                        }),
                        Err(e) => return Poll::Ready(Ok(save_failed(&shared, &e))),
                    }
                }
                StateProj::Saving { save } => return save.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// The answer when a session could not be saved: logged, then the error answer.
fn save_failed<B>(shared: &Shared, e: &Error) -> Response<ResponseBody<B>> {
    match e {
        Error::Store { .. } => {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "session store failed on save; the client keeps its previous session");
        }
        _ => {
            tracing::error!(reason = e.kind().as_str(), error = %e, "session could not be saved; the client keeps its previous session");
        }
    }
    error_answer(shared, e)
}

/// The layer's own answer for `e`: the hook's status and headers (or the error's
/// status), an empty body, and the [`ErrorKind`](crate::ErrorKind) in the extensions.
fn error_answer<B>(shared: &Shared, e: &Error) -> Response<ResponseBody<B>> {
    let mut answer = match &shared.on_error {
        Some(hook) => hook(e),
        None => {
            let mut answer = Response::new(());
            *answer.status_mut() = e.status();
            answer
        }
    };
    answer.extensions_mut().insert(e.kind());
    answer.map(|()| ResponseBody::empty())
}

pin_project_lite::pin_project! {
    /// The response body of [`SessionService`]: the inner service's body, or nothing
    /// for the layer's own error answers.
    ///
    /// A wrapper rather than a `Default` bound on the inner body, so the layer composes
    /// with any inner service, including layers whose bodies have no empty value
    /// (tower-http's `TraceLayer`).
    pub struct ResponseBody<B> {
        #[pin]
        inner: Option<B>,
    }
}

impl<B> ResponseBody<B> {
    fn new(inner: B) -> Self {
        ResponseBody { inner: Some(inner) }
    }

    fn empty() -> Self {
        ResponseBody { inner: None }
    }
}

impl<B> Default for ResponseBody<B> {
    /// An empty body.
    fn default() -> Self {
        Self::empty()
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("empty", &self.inner.is_none())
            .finish()
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.as_pin_mut() {
            Some(inner) => inner.poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// Logs why a request's value was refused, never the value: WARN for what looks like
/// tampering and for a retired key (once a minute per key id), DEBUG otherwise.
/// A session refused (503) because the revocation list is too stale to check it:
/// every such request would log, so WARN once a minute.
fn log_revocation_refused(config: &SessionConfig, e: &Error) {
    match config
        .warnings()
        .revocation_refused
        .warn_now(config.clock().unix())
    {
        Some(left_out) => tracing::warn!(
            error = %e,
            left_out,
            "session refused: the revocation list is too stale to check it \
             (reported once a minute; left_out: how many more since the last report)"
        ),
        None => {
            tracing::debug!(error = %e, "session refused: the revocation list is too stale to check it")
        }
    }
}
