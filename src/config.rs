//! `SessionConfig`: cookie attributes, expiry, transport, codec settings and the store.
//!
//! Defaults are the safe ones: cookie `session`, `Path=/`, no `Domain`,
//! `Secure`, `HttpOnly`, `SameSite=Lax`, a browser-session cookie with a 24 h
//! idle timeout and a 7-day absolute limit, AES-256-GCM-SIV, compression from
//! 256 bytes, and a 4093-byte budget for `name=value`.

use std::fmt;
use std::sync::Arc;

use cookie::{Cookie, SameSite};
use http::HeaderName;

use crate::envelope::Compression;
use crate::guard::Budget;
use crate::store::SessionStore;
use crate::usage::{KeyUsage, Usage};
use crate::{Algorithm, Clock, Codec, Error, Expiry, Keyring};

/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// Default budget for `name=value` of the cookie, measured on the final text.
///
/// Browsers keep about 4096 bytes of name+value and drop larger cookies without
/// a word (Safari a little earlier), so stay a few bytes under.
pub const DEFAULT_COOKIE_BUDGET: usize = 4093;

/// Smallest budget accepted: room for a pointer cookie with any name up to 64 bytes.
pub(crate) const MIN_COOKIE_BUDGET: usize = 256;

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

/// A request-derived context bound into the AAD (e.g. a hash of User-Agent, a tenant id).
pub(crate) type Fingerprint = Arc<dyn Fn(&http::HeaderMap, &http::Uri) -> Vec<u8> + Send + Sync>;

struct Inner {
    codec: Codec,
    compression: Compression,
    budget: Budget,
    cookie: CookieSpec,
    expiry: Expiry,
    transport: Transport,
    create_on_missing: bool,
    always_save: bool,
    store: Option<Arc<dyn SessionStore>>,
    clock: Clock,
    fingerprint: Option<Fingerprint>,
    ignore_paths: Vec<String>,
    usage: Usage,
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
    inner: Arc<Inner>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("SessionConfig")
            .field("codec", &i.codec)
            .field("cookie", &i.cookie)
            .field("expiry", &i.expiry)
            .field("budget", &i.budget.limit())
            .field("transport", &i.transport)
            .field("create_on_missing", &i.create_on_missing)
            .field("always_save", &i.always_save)
            .field("store", &i.store.is_some())
            .field("ignore_paths", &i.ignore_paths)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The header this transport reads and writes, if any.
    pub(crate) fn header(&self) -> Option<&HeaderName> {
        match self {
            Transport::Cookie => None,
            Transport::Header(h) | Transport::CookieOrHeader(h) => Some(h),
        }
    }
}

impl SessionConfig {
    /// Starts a builder with safe defaults around a keyring.
    pub fn builder(keyring: Keyring) -> SessionConfigBuilder {
        SessionConfigBuilder {
            keyring,
            algorithm: None,
            purpose: None,
            compression: Compression::default(),
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
        self.inner.cookie.name()
    }

    /// The codec (keyring and the AEAD).
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// The transport.
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The expiry policy.
    pub(crate) fn expiry(&self) -> Expiry {
        self.inner.expiry
    }

    /// The store for big sessions, if any.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.inner.store.as_ref()
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub(crate) fn compression(&self) -> &Compression {
        &self.inner.compression
    }

    pub(crate) fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    pub(crate) fn cookie(&self) -> &CookieSpec {
        &self.inner.cookie
    }

    pub(crate) fn creates_on_missing(&self) -> bool {
        self.inner.create_on_missing
    }

    pub(crate) fn always_saves(&self) -> bool {
        self.inner.always_save
    }

    pub(crate) fn fingerprint(&self) -> Option<&Fingerprint> {
        self.inner.fingerprint.as_ref()
    }

    /// How much each key of the ring is still used: opens and last open per key id,
    /// primary first, counted since this configuration was built (its clones share them).
    ///
    /// While keys rotate, an old key is safe to drop once its `opens` stop growing and
    /// its `last_seen` is older than the longest session lifetime; see
    /// [`KeyUsage`](crate::KeyUsage) for an example.
    pub fn key_usage(&self) -> Vec<KeyUsage> {
        self.inner.usage.snapshot()
    }

    /// The per-key counters and the unknown-key log limiter.
    pub(crate) fn usage(&self) -> &Usage {
        &self.inner.usage
    }

    /// True when [`SessionLayer`](crate::SessionLayer) skips sessions for this path (no
    /// crypto, no store, no Set-Cookie). The `headers` functions never consult it.
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

/// The session cookie's name and attributes, validated by the config builder.
pub(crate) struct CookieSpec {
    name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    /// The Set-Cookie attributes after `name=value` (`; HttpOnly; SameSite=Lax; …`),
    /// formatted once by the `cookie` crate; `Max-Age`, which the crate writes last
    /// among these, is appended per response.
    attributes: String,
}

impl CookieSpec {
    pub(crate) fn new(
        name: String,
        path: String,
        domain: Option<String>,
        secure: bool,
        http_only: bool,
        same_site: SameSite,
    ) -> Self {
        let mut spec = CookieSpec {
            name,
            path,
            domain,
            secure,
            http_only,
            same_site,
            attributes: String::new(),
        };
        let full = spec.cookie("").to_string();
        spec.attributes = full[spec.name.len() + 1..].to_owned();
        spec
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The attributes after `name=value`, as the `cookie` crate renders them.
    pub(crate) fn attributes(&self) -> &str {
        &self.attributes
    }

    /// The cookie crate's view of this cookie with `value`.
    pub(crate) fn cookie<'a>(&'a self, value: &'a str) -> Cookie<'a> {
        let mut cookie = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site)
            .build();
        if let Some(d) = &self.domain {
            cookie.set_domain(d.as_str());
        }
        cookie
    }
}

impl fmt::Debug for CookieSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieSpec")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .finish()
    }
}

/// Builder for [`SessionConfig`]; `build()` validates.
#[must_use]
pub struct SessionConfigBuilder {
    keyring: Keyring,
    algorithm: Option<Algorithm>,
    purpose: Option<String>,
    compression: Compression,
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
        self.compression.threshold = Some(bytes);
        self
    }

    /// Turns compression off.
    pub fn no_compression(mut self) -> Self {
        self.compression.threshold = None;
        self
    }

    /// Cap on a decompressed body (default 64 KiB).
    pub fn max_decompressed(mut self, bytes: usize) -> Self {
        self.compression.max_decompressed = bytes;
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
    ///
    /// The function sees the request's headers and URI, so load with
    /// [`headers::load_request`](crate::headers::load_request) (or the layer):
    /// [`headers::load`](crate::headers::load) has no URI and refuses such a configuration.
    pub fn fingerprint(
        mut self,
        f: impl Fn(&http::HeaderMap, &http::Uri) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        self.fingerprint = Some(Arc::new(f));
        self
    }

    /// A path [`SessionLayer`](crate::SessionLayer) serves without a session (exact, or a
    /// prefix when it ends in `*`).
    ///
    /// Only the layer applies it: [`headers::load_request`](crate::headers::load_request)
    /// and the other `headers` functions load and save whatever they are given, so a
    /// framework-free caller checks [`SessionConfig::is_ignored_path`] itself.
    pub fn ignore_path(mut self, path: impl Into<String>) -> Self {
        self.ignore_paths.push(path.into());
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::Config`] for: an empty or invalid cookie name; `__Host-` without Secure,
    /// `Path=/` and no Domain; `__Secure-` without Secure; `SameSite=None` without Secure;
    /// a budget under 256 bytes.
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
        let header_only = matches!(self.transport, Transport::Header(_));
        let budget = Budget::new(self.budget, name.len(), header_only);
        let usage = Usage::new(&keyring.key_ids());
        let codec = Codec::new(keyring);
        let cookie = CookieSpec::new(
            self.cookie_name,
            self.path,
            self.domain,
            self.secure,
            self.http_only,
            self.same_site,
        );
        Ok(SessionConfig {
            inner: Arc::new(Inner {
                codec,
                compression: self.compression,
                budget,
                cookie,
                expiry: self.expiry,
                transport: self.transport,
                create_on_missing: self.create_on_missing,
                always_save: self.always_save,
                store: self.store,
                clock: self.clock,
                fingerprint: self.fingerprint,
                ignore_paths: self.ignore_paths,
                usage,
            }),
        })
    }
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
