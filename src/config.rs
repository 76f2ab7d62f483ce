//! `SessionConfig`: cookie attributes, expiry, transport, codec settings and the store.
//!
//! Defaults are the safe ones: cookie `session`, `Path=/`, no `Domain`,
//! `Secure`, `HttpOnly`, `SameSite=Lax`, a browser-session cookie with a 24 h
//! idle timeout and a 7-day absolute limit, AES-256-GCM-SIV, compression from
//! 256 bytes, and a 4093-byte budget for `name=value`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cookie::SameSite;
use http::HeaderName;
use time::OffsetDateTime;

use crate::codec::{Codec, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_DECOMPRESSED};
use crate::envelope::Meta;
use crate::store::SessionStore;
use crate::{Algorithm, Error, Keyring};

/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// Default budget for `name=value` of the cookie, measured on the final text.
///
/// Browsers keep about 4096 bytes of name+value and drop larger cookies without
/// a word (Safari a little earlier), so stay a few bytes under.
pub const DEFAULT_COOKIE_BUDGET: usize = 4093;

/// Smallest budget accepted: room for a pointer cookie with any name up to 64 bytes.
pub const MIN_COOKIE_BUDGET: usize = 256;

/// Where the sealed session travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A cookie (the default).
    Cookie,
    /// Only a request/response header, for API clients that keep no cookies.
    Header(HeaderName),
    /// The header when the request carries it (even empty, to start a session), else the cookie.
    CookieOrHeader(HeaderName),
}

/// How long a session lives. The envelope inside the value decides, never the cookie's Max-Age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    persistent: bool,
    idle: Option<Duration>,
    absolute: Duration,
    renew_threshold: Duration,
}

impl Default for Expiry {
    /// A browser-session cookie, 24 h idle timeout, 7-day absolute limit.
    fn default() -> Self {
        Expiry::browser_session()
    }
}

impl Expiry {
    /// No Max-Age: the cookie ends with the browser. Server-side limits still hold:
    /// 24 h idle, 7 days absolute (change them with the `with_*` methods).
    pub fn browser_session() -> Self {
        Expiry {
            persistent: false,
            idle: Some(Duration::from_secs(24 * 3600)),
            absolute: Duration::from_secs(7 * 24 * 3600),
            renew_threshold: Duration::from_secs(12 * 3600),
        }
    }

    /// A fixed lifetime from creation; the cookie's Max-Age counts down to it.
    pub fn absolute(ttl: Duration) -> Self {
        Expiry {
            persistent: true,
            idle: None,
            absolute: ttl,
            renew_threshold: Duration::ZERO,
        }
    }

    /// Lives while used: each write pushes expiry to now + `timeout`; an unchanged
    /// session is re-issued only when less than half of `timeout` is left (see
    /// [`Expiry::with_renew_threshold`]). Absolute limit 30 days unless changed.
    pub fn idle(timeout: Duration) -> Self {
        Expiry {
            persistent: true,
            idle: Some(timeout),
            absolute: Duration::from_secs(30 * 24 * 3600),
            renew_threshold: timeout / 2,
        }
    }

    /// Sets (or removes) the idle timeout.
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle = idle;
        self
    }

    /// Sets the absolute limit counted from creation.
    pub fn with_absolute_limit(mut self, limit: Duration) -> Self {
        self.absolute = limit;
        self
    }

    /// Re-issue an unchanged session only when less than this is left before idle expiry.
    pub fn with_renew_threshold(mut self, threshold: Duration) -> Self {
        self.renew_threshold = threshold;
        self
    }

    /// True when the cookie carries Max-Age (it outlives the browser).
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The absolute end of a session created at `created` (unix seconds).
    fn absolute_end(&self, created: i64) -> i64 {
        created.saturating_add(secs(self.absolute))
    }

    /// The expiry to write for a session active at `now`.
    pub(crate) fn next_expiry(&self, created: i64, now: i64) -> i64 {
        let end = self.absolute_end(created);
        match self.idle {
            Some(idle) => end.min(now.saturating_add(secs(idle))),
            None => end,
        }
    }

    /// An unchanged session needs re-issuing: idle expiry close and still extendable.
    pub(crate) fn renewal_due(&self, meta: &Meta, now: i64) -> bool {
        self.idle.is_some()
            && meta.expires_at.saturating_sub(now) < secs(self.renew_threshold)
            && meta.expires_at < self.next_expiry(meta.created, now)
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The time source for expiry checks; injectable so tests can move time.
#[derive(Clone)]
pub struct Clock(Option<Arc<dyn Fn() -> OffsetDateTime + Send + Sync>>);

impl Clock {
    /// The system clock (UTC).
    pub fn system() -> Self {
        Clock(None)
    }

    /// A clock that asks `now` for the time.
    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Clock(Some(Arc::new(now)))
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        match &self.0 {
            Some(now) => now(),
            None => OffsetDateTime::now_utc(),
        }
    }

    /// Unix seconds, read straight from `SystemTime` for the system clock (no calendar
    /// arithmetic: this runs twice per request).
    pub(crate) fn unix(&self) -> i64 {
        match &self.0 {
            Some(now) => now().unix_timestamp(),
            None => match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => secs(d),
                Err(before) => -secs(before.duration()),
            },
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// A request-derived context bound into the AAD (e.g. a hash of User-Agent, a tenant id).
pub type Fingerprint = Arc<dyn Fn(&http::HeaderMap, &http::Uri) -> Vec<u8> + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) codec: Codec,
    pub(crate) cookie_name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) expiry: Expiry,
    pub(crate) budget: usize,
    pub(crate) transport: Transport,
    pub(crate) create_on_missing: bool,
    pub(crate) always_save: bool,
    pub(crate) store: Option<Arc<dyn SessionStore>>,
    pub(crate) clock: Clock,
    pub(crate) fingerprint: Option<Fingerprint>,
    pub(crate) ignore_paths: Vec<String>,
    /// The Set-Cookie attributes after `name=value` (`; HttpOnly; SameSite=Lax; …`),
    /// formatted once by the `cookie` crate; `Max-Age`, which the crate writes last
    /// among these, is appended per response.
    pub(crate) cookie_attributes: String,
}

/// A validated session configuration. Cheap to clone (an `Arc`).
///
/// ```
/// use sealed_session::{Keyring, SessionConfig};
/// let config = SessionConfig::builder(Keyring::generate())
///     .cookie_name("__Host-session")
///     .build()?;
/// assert_eq!(config.cookie_name(), "__Host-session");
/// # Ok::<(), sealed_session::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("SessionConfig")
            .field("codec", &i.codec)
            .field("cookie_name", &i.cookie_name)
            .field("path", &i.path)
            .field("domain", &i.domain)
            .field("secure", &i.secure)
            .field("http_only", &i.http_only)
            .field("same_site", &i.same_site)
            .field("expiry", &i.expiry)
            .field("budget", &i.budget)
            .field("transport", &i.transport)
            .field("create_on_missing", &i.create_on_missing)
            .field("always_save", &i.always_save)
            .field("store", &i.store.is_some())
            .field("ignore_paths", &i.ignore_paths)
            .finish_non_exhaustive()
    }
}

impl SessionConfig {
    /// Starts a builder with safe defaults around a keyring.
    pub fn builder(keyring: Keyring) -> SessionConfigBuilder {
        SessionConfigBuilder {
            keyring,
            algorithm: None,
            purpose: None,
            compression_threshold: Some(DEFAULT_COMPRESSION_THRESHOLD),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            expiry: Expiry::default(),
            budget: DEFAULT_COOKIE_BUDGET,
            transport: Transport::Cookie,
            create_on_missing: true,
            always_save: false,
            store: None,
            clock: Clock::system(),
            fingerprint: None,
            ignore_paths: Vec::new(),
        }
    }

    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.inner.cookie_name
    }

    /// The codec (keyring, compression, value budget).
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The expiry policy.
    pub fn expiry(&self) -> Expiry {
        self.inner.expiry
    }

    /// The `name=value` budget in bytes.
    pub fn cookie_budget(&self) -> usize {
        self.inner.budget
    }

    /// The store for big sessions, if any.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.inner.store.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// True when the layer skips sessions for this path (no crypto, no store, no Set-Cookie).
    pub fn is_ignored_path(&self, path: &str) -> bool {
        self.inner
            .ignore_paths
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == p,
            })
    }
}

/// Builder for [`SessionConfig`]; `build()` validates.
#[must_use]
pub struct SessionConfigBuilder {
    keyring: Keyring,
    algorithm: Option<Algorithm>,
    purpose: Option<String>,
    compression_threshold: Option<usize>,
    max_decompressed: usize,
    cookie_name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    expiry: Expiry,
    budget: usize,
    transport: Transport,
    create_on_missing: bool,
    always_save: bool,
    store: Option<Arc<dyn SessionStore>>,
    clock: Clock,
    fingerprint: Option<Fingerprint>,
    ignore_paths: Vec<String>,
}

impl fmt::Debug for SessionConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfigBuilder")
            .field("keyring", &self.keyring)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl SessionConfigBuilder {
    /// Cookie name (default `session`). `__Host-` and `__Secure-` prefixes are validated.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Cookie `Path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie `Domain` (default none: host-only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Cookie `Secure` (default on).
    ///
    /// **Warning**: off sends the session over plain HTTP; only for local development.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Cookie `HttpOnly` (default on).
    ///
    /// **Warning**: off lets page scripts (and XSS) read the sealed cookie and replay it.
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Cookie `SameSite` (default `Lax`). `None` requires `Secure`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Purpose string for key derivation and AAD (default `session`): separates apps sharing keys.
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// The AEAD (default AES-256-GCM-SIV).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Compress bodies of at least this many bytes when it saves ≥ 10% (default 256).
    ///
    /// **Warning**: compressing attacker-influenced data next to other secrets in the
    /// session can leak them through the length. The id and CSRF token are never compressed.
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = Some(bytes);
        self
    }

    /// Turns compression off.
    pub fn no_compression(mut self) -> Self {
        self.compression_threshold = None;
        self
    }

    /// Cap on a decompressed body (default 64 KiB).
    pub fn max_decompressed(mut self, bytes: usize) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// Budget for `name=value` of the cookie (and for a header value), default 4093.
    pub fn cookie_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// Cookie (default), a header, or the header when present else the cookie.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The expiry policy (default [`Expiry::browser_session`]).
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Whether a request that brought no session gets a new one that is saved when
    /// it changes (default true). With false (connect-session's `generateOnMissingSID:
    /// false`), such a session is written only after an explicit [`Session::save`](crate::Session::save).
    pub fn create_on_missing(mut self, create: bool) -> Self {
        self.create_on_missing = create;
        self
    }

    /// Re-issue the session on every response, renewing its expiry (rolling sessions).
    #[doc(alias = "rolling")]
    #[doc(alias = "always_set_cookie")]
    #[doc(alias = "alwaysSetCookie")]
    pub fn always_save(mut self, always: bool) -> Self {
        self.always_save = always;
        self
    }

    /// The store that takes session bodies over the cookie budget.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The store, already shared.
    pub fn store_arc(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock for expiry (default the system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Binds a request-derived context into the AAD: a cookie replayed from another
    /// context (other User-Agent, other tenant) opens as a fresh session.
    pub fn fingerprint(
        mut self,
        f: impl Fn(&http::HeaderMap, &http::Uri) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        self.fingerprint = Some(Arc::new(f));
        self
    }

    /// A path the layer serves without a session (exact, or a prefix when it ends in `*`).
    pub fn ignore_path(mut self, path: impl Into<String>) -> Self {
        self.ignore_paths.push(path.into());
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::Config`] for: an empty or invalid cookie name; `__Host-` without Secure,
    /// `Path=/` and no Domain; `__Secure-` without Secure; `SameSite=None` without Secure;
    /// a budget under [`MIN_COOKIE_BUDGET`].
    pub fn build(self) -> Result<SessionConfig, Error> {
        let name = &self.cookie_name;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Error::Config(format!(
                "cookie name {name:?} must be a non-empty HTTP token (no spaces, separators or controls)"
            )));
        }
        if name.len() > 64 {
            return Err(Error::Config("cookie name is over 64 bytes".into()));
        }
        if name.starts_with("__Host-") {
            if !self.secure {
                return Err(Error::Config("the __Host- prefix requires Secure".into()));
            }
            if self.path != "/" {
                return Err(Error::Config(format!(
                    "the __Host- prefix requires Path=/ (got {:?})",
                    self.path
                )));
            }
            if self.domain.is_some() {
                return Err(Error::Config("the __Host- prefix forbids a Domain".into()));
            }
        }
        if name.starts_with("__Secure-") && !self.secure {
            return Err(Error::Config("the __Secure- prefix requires Secure".into()));
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(Error::Config("SameSite=None requires Secure".into()));
        }
        if self.budget < MIN_COOKIE_BUDGET {
            return Err(Error::Config(format!(
                "cookie budget {} is under the {MIN_COOKIE_BUDGET}-byte minimum",
                self.budget
            )));
        }
        if self.path.is_empty() || !self.path.starts_with('/') || self.path.contains(';') {
            return Err(Error::Config(format!(
                "cookie path {:?} must start with / and contain no ';'",
                self.path
            )));
        }
        if let Some(d) = &self.domain {
            if d.is_empty() || d.contains([';', ' ', ',']) {
                return Err(Error::Config(format!("cookie domain {d:?} is not valid")));
            }
        }
        let mut keyring = self.keyring;
        if let Some(a) = self.algorithm {
            keyring = keyring.with_algorithm(a);
        }
        if let Some(p) = self.purpose {
            keyring = keyring.with_purpose(p);
        }
        let max_value_len = match &self.transport {
            Transport::Header(_) => self.budget,
            _ => self.budget - name.len() - 1,
        };
        let codec = Codec::new(keyring)
            .with_compression_threshold(self.compression_threshold)
            .with_max_decompressed(self.max_decompressed)
            .with_max_value_len(max_value_len);
        let cookie_attributes = cookie_attributes(
            &self.cookie_name,
            &self.path,
            self.domain.as_deref(),
            self.secure,
            self.http_only,
            self.same_site,
        );
        Ok(SessionConfig {
            inner: Arc::new(Inner {
                codec,
                cookie_attributes,
                cookie_name: self.cookie_name,
                path: self.path,
                domain: self.domain,
                secure: self.secure,
                http_only: self.http_only,
                same_site: self.same_site,
                expiry: self.expiry,
                budget: self.budget,
                transport: self.transport,
                create_on_missing: self.create_on_missing,
                always_save: self.always_save,
                store: self.store,
                clock: self.clock,
                fingerprint: self.fingerprint,
                ignore_paths: self.ignore_paths,
            }),
        })
    }
}

/// The cookie crate's rendering of the attributes, without the leading `name=`.
fn cookie_attributes(
    name: &str,
    path: &str,
    domain: Option<&str>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
) -> String {
    let mut cookie = cookie::Cookie::build((name, ""))
        .path(path)
        .secure(secure)
        .http_only(http_only)
        .same_site(same_site)
        .build();
    if let Some(d) = domain {
        cookie.set_domain(d);
    }
    let full = cookie.to_string();
    full[name.len() + 1..].to_owned()
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
