//! `SessionConfig`: cookie attributes, expiry, transport, codec settings and the store.
//!
//! Defaults are the safe ones: cookie `session`, `Path=/`, no `Domain`,
//! `Secure`, `HttpOnly`, `SameSite=Lax`, a browser-session cookie with a 24 h
//! idle timeout and a 7-day absolute limit, AES-256-GCM-SIV, compression from
//! 256 bytes, and a 4093-byte budget for `name=value`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::HeaderName;
use time::OffsetDateTime;

use crate::envelope::Compression;
use crate::expiry::Rules;
use crate::guard::{Budget, BROWSER_LIMIT};
use crate::revocation::{self, RevocationBackend, Revocations, StalePolicy};
use crate::store::SessionStore;
use crate::usage::{KeyUsage, Usage};
use crate::warn_limit::Warnings;
use crate::{Algorithm, Clock, Codec, Error, Expiry, Keyring};

/// Default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "session";

/// Default budget for `name=value` of the cookie, measured on the final text.
///
/// Browsers keep about 4096 bytes of name+value and drop larger cookies without
/// a word (Safari a little earlier), so stay a few bytes under.
pub const DEFAULT_COOKIE_BUDGET: usize = 4093;
const _: () = assert!(DEFAULT_COOKIE_BUDGET <= BROWSER_LIMIT);

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

/// Default cap on a session body kept in the store: 1 MiB.
pub(crate) const DEFAULT_MAX_STORE_BODY: usize = 1024 * 1024;

/// How a request fingerprint binds the session (see
/// [`SessionConfigBuilder::fingerprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FingerprintMode {
    /// Bound into the seal: a cookie replayed under another fingerprint does not open.
    #[default]
    Strict,
    /// Only logged: the session opens, a WARN line says its fingerprint changed, and
    /// [`Session::fingerprint_changed`](crate::Session::fingerprint_changed) is true (for
    /// users whose fingerprint moves, e.g. mobile IPs, where strict binding logs them out).
    LogOnly,
}

/// A request-derived context bound into the AAD (e.g. a hash of User-Agent, a tenant id).
pub(crate) type Fingerprint = Arc<dyn Fn(&http::HeaderMap, &http::Uri) -> Vec<u8> + Send + Sync>;

struct Inner {
    codec: Codec,
    compression: Compression,
    store_compression: Compression,
    budget: Budget,
    cookie: CookieSpec,
    rules: Rules,
    transport: Transport,
    create_on_missing: bool,
    always_save: bool,
    store: Option<Arc<dyn SessionStore>>,
    clock: Clock,
    fingerprint: Option<Fingerprint>,
    fingerprint_mode: FingerprintMode,
    ignore_paths: Vec<String>,
    passive_paths: Vec<String>,
    revocations: Arc<Revocations>,
    usage: Usage,
    warnings: Warnings,
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
            .field("rules", &i.rules)
            .field("budget", &i.budget.limit())
            .field("transport", &i.transport)
            .field("create_on_missing", &i.create_on_missing)
            .field("always_save", &i.always_save)
            .field("store", &i.store.is_some())
            .field("ignore_paths", &i.ignore_paths)
            .field("passive_paths", &i.passive_paths)
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
            max_store_body: DEFAULT_MAX_STORE_BODY,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            expiry: Expiry::default(),
            max_lifetime: None,
            max_idle: None,
            budget: DEFAULT_COOKIE_BUDGET,
            transport: Transport::Cookie,
            create_on_missing: true,
            always_save: false,
            store: None,
            clock: Clock::system(),
            fingerprint: None,
            fingerprint_mode: FingerprintMode::Strict,
            ignore_paths: Vec::new(),
            passive_paths: Vec::new(),
            revocation: revocation::Settings::default(),
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

    /// The expiry rules: the default policy and the ceilings.
    pub(crate) fn rules(&self) -> &Rules {
        &self.inner.rules
    }

    /// The store for big sessions, if any.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.inner.store.as_ref()
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Compression and the decompression cap for values that travel in a cookie or header.
    pub(crate) fn compression(&self) -> &Compression {
        &self.inner.compression
    }

    /// Compression and the cap for bodies kept in the store.
    pub(crate) fn store_compression(&self) -> &Compression {
        &self.inner.store_compression
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

    pub(crate) fn fingerprint_mode(&self) -> FingerprintMode {
        self.inner.fingerprint_mode
    }

    /// True when requests to this path do not count as activity.
    pub(crate) fn is_passive_path(&self, path: &str) -> bool {
        matches_any(&self.inner.passive_paths, path)
    }

    pub(crate) fn revocations(&self) -> &Arc<Revocations> {
        &self.inner.revocations
    }

    /// Revokes every session of `subject` (set with `Session::set_subject`) issued
    /// up to now, on every server sharing the revocation backend: "log out
    /// everywhere", a password change, an account suspension. Sessions logged in
    /// again afterwards stand.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// let config = sealed_session::SessionConfig::builder(sealed_session::Keyring::generate()).build()?;
    /// config.revoke_subject("ada@example.com").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when the revocation backend did not record it: then nothing
    /// was revoked (report the failure, do not claim success).
    pub async fn revoke_subject(&self, subject: &str) -> Result<(), Error> {
        let records = self.subject_records(subject, revocation::unix_now_ms());
        self.inner.revocations.record(&records).await
    }

    /// The records that revoke `subject` at `at_ms`: its hash under every key of the
    /// ring (a session may carry any of them), each kept for a session lifetime.
    pub(crate) fn subject_records(&self, subject: &str, at_ms: i64) -> Vec<revocation::Record> {
        let at = at_ms;
        let until = (at_ms / 1000).saturating_add(self.inner.rules.max_lifetime_secs());
        self.inner
            .codec
            .keyring()
            .subjects(subject, at)
            .into_iter()
            .map(|s| revocation::Record {
                target: revocation::Target::Subject {
                    key_id: s.key_id,
                    hash: s.hash,
                },
                at,
                until,
            })
            .collect()
    }

    /// How many revocations the replica holds and how long since it last synced.
    pub fn revocation_status(&self) -> revocation::RevocationStatus {
        self.inner.revocations.status()
    }

    /// Reads the revocations the backend has that this process does not, now (the
    /// background sync does it every `revocation_sync_interval`). Call it at
    /// startup, before serving, so a new process knows every revocation at once.
    ///
    /// # Errors
    /// [`Error::Store`] when the backend cannot be read.
    pub async fn sync_revocations(&self) -> Result<(), Error> {
        self.inner.revocations.ensure_syncing();
        self.inner.revocations.sync().await
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

    /// The limiters of client-caused WARN lines.
    pub(crate) fn warnings(&self) -> &Warnings {
        &self.inner.warnings
    }

    /// True when [`SessionLayer`](crate::SessionLayer) skips sessions for this path (no
    /// crypto, no store, no Set-Cookie). The `headers` functions never consult it.
    pub fn is_ignored_path(&self, path: &str) -> bool {
        matches_any(&self.inner.ignore_paths, path)
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
    max_store_body: usize,
    cookie_name: String,
    path: String,
    domain: Option<String>,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
    expiry: Expiry,
    max_lifetime: Option<Duration>,
    max_idle: Option<Duration>,
    budget: usize,
    transport: Transport,
    create_on_missing: bool,
    always_save: bool,
    store: Option<Arc<dyn SessionStore>>,
    clock: Clock,
    fingerprint: Option<Fingerprint>,
    fingerprint_mode: FingerprintMode,
    ignore_paths: Vec<String>,
    passive_paths: Vec<String>,
    revocation: revocation::Settings,
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

    /// Cap on what the body of a value that travels in a cookie or header may
    /// decompress to (default 64 KiB): a bigger claim is refused before any
    /// allocation. Bodies kept in the store have their own cap, [`max_store_body`](Self::max_store_body).
    pub fn max_decompressed(mut self, bytes: usize) -> Self {
        self.compression.max_decompressed = bytes;
        self
    }

    /// Cap on a session body kept in the store (default 1 MiB): a session whose data
    /// grows past it cannot be saved ([`Error::TooLarge`] naming this cap; the client
    /// keeps its previous session). Separate from [`max_decompressed`](Self::max_decompressed),
    /// which bounds what a cookie may expand to.
    pub fn max_store_body(mut self, bytes: usize) -> Self {
        self.max_store_body = bytes;
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

    /// The default expiry policy, for sessions that set none of their own
    /// (default [`Expiry::browser_session`]).
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// The longest any session lives from its creation, whatever its own expiry
    /// (default: the default policy's absolute limit). Raise it to allow
    /// "remember me" sessions longer than the default; lower it to shorten every
    /// session already issued (it is checked on every load).
    pub fn max_lifetime(mut self, limit: Duration) -> Self {
        self.max_lifetime = Some(limit);
        self
    }

    /// The longest any session lives after its last activity, whatever its own expiry
    /// (default: none beyond each policy's own idle timeout). Checked on every load.
    pub fn max_idle(mut self, limit: Duration) -> Self {
        self.max_idle = Some(limit);
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
    /// context (other User-Agent, other tenant) opens as a fresh session. With
    /// [`FingerprintMode::LogOnly`] the change is logged instead.
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

    /// A path whose requests do not count as activity (exact, or a prefix when it ends
    /// in `*`): polling it neither renews the session nor keeps an idle session alive.
    /// (Per request: [`Session::set_passive`](crate::Session::set_passive).)
    pub fn passive_path(mut self, path: impl Into<String>) -> Self {
        self.passive_paths.push(path.into());
        self
    }

    /// Shares revocations (logouts, subjects logged out everywhere) with every
    /// process that uses the same backend; without one, a config keeps its
    /// revocations to itself. See [`crate::revocation`].
    pub fn revocation(mut self, backend: impl RevocationBackend) -> Self {
        self.revocation.backend = Some(Arc::new(backend));
        self
    }

    /// How often the revocation replica syncs from its backend (default 500 ms): the
    /// bound on how long a revocation takes to reach every server.
    pub fn revocation_sync_interval(mut self, interval: Duration) -> Self {
        self.revocation.interval = interval;
        self
    }

    /// How stale the revocation replica may get (the backend unreadable) before the
    /// [`StalePolicy`] applies to sessions with a subject (default 5 s).
    pub fn revocation_max_staleness(mut self, staleness: Duration) -> Self {
        self.revocation.max_staleness = staleness;
        self
    }

    /// What to do with sessions that carry a subject while the replica is staler
    /// than allowed (default [`StalePolicy::FailClosed`]: 503).
    ///
    /// **Warning**: [`StalePolicy::Serve`] may serve a session revoked elsewhere
    /// during a backend outage.
    pub fn revocation_stale_policy(mut self, policy: StalePolicy) -> Self {
        self.revocation.policy = policy;
        self
    }

    /// Refuses every session created before `cutoff`: a mass logout without
    /// rotating keys (after an incident, or to end all sessions of a release).
    pub fn revoke_issued_before(mut self, cutoff: OffsetDateTime) -> Self {
        self.revocation.cutoff = Some(cutoff.unix_timestamp());
        self
    }

    /// How a [`fingerprint`](Self::fingerprint) binds the session (default
    /// [`FingerprintMode::Strict`]).
    pub fn fingerprint_mode(mut self, mode: FingerprintMode) -> Self {
        self.fingerprint_mode = mode;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::Config`] for: an empty or invalid cookie name; `__Host-` (in any case)
    /// without Secure, `Path=/` and no Domain; `__Secure-` without Secure;
    /// `SameSite=None` without Secure; a budget under 256 or over 4096 bytes; a path or
    /// domain with `;` or control characters; a zero lifetime or idle timeout.
    /// [`Error::InvalidKey`] when two secrets derive the same key id for the chosen
    /// algorithm and purpose.
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
        // Browsers match the prefixes case-insensitively (RFC 6265bis §4.1.3).
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
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
        if lower.starts_with("__secure-") && !self.secure {
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
        if self.budget > BROWSER_LIMIT {
            return Err(Error::Config(format!(
                "cookie budget {} is over the {BROWSER_LIMIT} bytes of name=value browsers keep \
                 (larger cookies are dropped without a word)",
                self.budget
            )));
        }
        // RFC 6265 §4.1.1: a path is any CHAR except controls and ';'.
        if self.path.is_empty()
            || !self.path.starts_with('/')
            || self.path.bytes().any(|b| b == b';' || b.is_ascii_control())
        {
            return Err(Error::Config(format!(
                "cookie path {:?} must start with / and contain no ';' or control characters \
                 (CR, LF, NUL, ...)",
                self.path
            )));
        }
        if let Some(d) = &self.domain {
            if d.is_empty()
                || d.bytes()
                    .any(|b| b"; ,".contains(&b) || b.is_ascii_control())
            {
                return Err(Error::Config(format!("cookie domain {d:?} is not valid")));
            }
        }
        self.expiry.validate()?;
        if self.max_lifetime.is_some_and(|d| d.is_zero())
            || self.max_idle.is_some_and(|d| d.is_zero())
        {
            return Err(Error::Config(
                "max_lifetime and max_idle must be over zero: every session would expire at once"
                    .into(),
            ));
        }
        let mut keyring = self.keyring;
        if let Some(a) = self.algorithm {
            keyring = keyring.try_with_algorithm(a)?;
        }
        if let Some(p) = self.purpose {
            keyring = keyring.try_with_purpose(p)?;
        }
        let budget = Budget::new(self.budget, name.len());
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
                store_compression: Compression {
                    max_decompressed: self.max_store_body,
                    cap: "max_store_body",
                    ..self.compression
                },
                budget,
                cookie,
                rules: Rules::new(self.expiry, self.max_lifetime, self.max_idle),
                transport: self.transport,
                create_on_missing: self.create_on_missing,
                always_save: self.always_save,
                store: self.store,
                clock: self.clock,
                fingerprint: self.fingerprint,
                fingerprint_mode: self.fingerprint_mode,
                ignore_paths: self.ignore_paths,
                passive_paths: self.passive_paths,
                revocations: Revocations::new(self.revocation),
                usage,
                warnings: Warnings::new(),
            }),
        })
    }
}

/// Exact paths, or prefixes when they end in `*`.
fn matches_any(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == p,
    })
}

/// RFC 7230 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
