//! How long a session lives and what time it is.
//!
//! The config has a default policy ([`Expiry`]) and ceilings (`max_lifetime`,
//! `max_idle`) that hold for every session; a session may carry its own policy
//! ([`SessionExpiry`], "remember me"), sealed with it. The sealed envelope, not the
//! cookie's Max-Age, decides: on every load a session expires at the earliest of
//! what it was sealed with and what today's config allows (idle and absolute
//! measured from the session's own times), so tightening the config shortens
//! every cookie already issued, and nothing lives longer than the ceilings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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

    /// Refuses a policy no session could live under.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if self.absolute.is_zero() {
            return Err(crate::Error::Config(
                "the absolute session lifetime is zero: every session would expire at once".into(),
            ));
        }
        if self.idle.is_some_and(|i| i.is_zero()) {
            return Err(crate::Error::Config(
                "the idle timeout is zero: every session would expire at once".into(),
            ));
        }
        Ok(())
    }

    /// The absolute end of a session created at `created` (unix seconds).
    fn absolute_end(&self, created: i64) -> i64 {
        created.saturating_add(secs(self.absolute))
    }

    /// What this policy allows a session created at `created` and active at `now`.
    fn next_expiry(&self, created: i64, now: i64) -> i64 {
        let end = self.absolute_end(created);
        match self.idle {
            Some(idle) => end.min(now.saturating_add(secs(idle))),
            None => end,
        }
    }
}

/// A session's own expiry policy, set with [`Session::set_expiry`](crate::Session::set_expiry)
/// and sealed with the session, so it holds on every later request, through
/// renewals, `regenerate()` and a move to the store. The config's ceilings
/// (`SessionConfigBuilder::max_lifetime`, `max_idle`) still bound it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionExpiry {
    /// The config's default policy (what every session has until it sets its own).
    #[default]
    Default,
    /// A browser-session cookie (no Max-Age, gone when the browser closes), under the
    /// config default's idle and absolute limits.
    BrowserSession,
    /// A persistent cookie that lives this long from when it is set, whatever the
    /// activity ("remember me for 30 days").
    Absolute(Duration),
    /// A persistent cookie that lives while used: each write pushes expiry to now +
    /// `timeout`; an unchanged session is re-issued when less than `renew_threshold`
    /// is left.
    Idle {
        /// How long the session lives after its last activity.
        timeout: Duration,
        /// Re-issue an unchanged session when less than this is left.
        renew_threshold: Duration,
    },
}

/// The sealed form of a [`SessionExpiry`] (format v2). Durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) enum Policy {
    /// The config's default policy, as configured on each request.
    #[default]
    Default,
    /// A browser-session cookie under the config default's server-side limits.
    BrowserSession,
    /// Persistent; lives `ttl` seconds from `start` (seconds after creation).
    Absolute { start: i64, ttl: u64 },
    /// Persistent; lives while used.
    Idle { timeout: u64, renew: u64 },
}

impl Policy {
    /// The policy for `expiry` set at `now` on a session created at `created`.
    pub(crate) fn new(expiry: SessionExpiry, created: i64, now: i64) -> Self {
        let u = |d: Duration| d.as_secs();
        match expiry {
            SessionExpiry::Default => Policy::Default,
            SessionExpiry::BrowserSession => Policy::BrowserSession,
            SessionExpiry::Absolute(ttl) => Policy::Absolute {
                start: now.saturating_sub(created),
                ttl: u(ttl),
            },
            SessionExpiry::Idle {
                timeout,
                renew_threshold,
            } => Policy::Idle {
                timeout: u(timeout),
                renew: u(renew_threshold),
            },
        }
    }

    /// The public view of the policy.
    pub(crate) fn public(self) -> SessionExpiry {
        match self {
            Policy::Default => SessionExpiry::Default,
            Policy::BrowserSession => SessionExpiry::BrowserSession,
            Policy::Absolute { ttl, .. } => SessionExpiry::Absolute(Duration::from_secs(ttl)),
            Policy::Idle { timeout, renew } => SessionExpiry::Idle {
                timeout: Duration::from_secs(timeout),
                renew_threshold: Duration::from_secs(renew),
            },
        }
    }
}

/// The config's expiry rules: the default policy and the ceilings every session is
/// held to. All times unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    default: Expiry,
    /// Longest any session lives from its creation.
    max_lifetime: i64,
    /// Longest any session lives after its last activity.
    max_idle: Option<i64>,
}

impl Rules {
    /// Rules around `default`; the lifetime ceiling defaults to the default's absolute limit.
    pub(crate) fn new(
        default: Expiry,
        max_lifetime: Option<Duration>,
        max_idle: Option<Duration>,
    ) -> Self {
        Rules {
            default,
            max_lifetime: secs(max_lifetime.unwrap_or(default.absolute)),
            max_idle: max_idle.map(secs),
        }
    }

    /// The longest any session lives from its creation, in seconds.
    pub(crate) fn max_lifetime_secs(&self) -> i64 {
        self.max_lifetime
    }

    /// The ceilings: created + max lifetime, last activity + max idle.
    fn ceiling(&self, created: i64, last_active: i64) -> i64 {
        let end = created.saturating_add(self.max_lifetime);
        match self.max_idle {
            Some(idle) => end.min(last_active.saturating_add(idle)),
            None => end,
        }
    }

    /// What `policy` alone allows a session created at `created`, last active at `active`.
    fn allowed(&self, policy: Policy, created: i64, active: i64) -> i64 {
        match policy {
            Policy::Default | Policy::BrowserSession => self.default.next_expiry(created, active),
            Policy::Absolute { start, ttl } => created
                .saturating_add(start)
                .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            Policy::Idle { timeout, .. } => {
                active.saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX))
            }
        }
    }

    /// The expiry to seal for a session last active at `active`.
    pub(crate) fn next_expiry(&self, policy: Policy, created: i64, active: i64) -> i64 {
        self.allowed(policy, created, active)
            .min(self.ceiling(created, active))
    }

    /// When a loaded session expires: the earliest of what it was sealed with and what
    /// today's rules allow from its own times.
    pub(crate) fn effective_expiry(
        &self,
        policy: Policy,
        created: i64,
        last_active: i64,
        sealed: i64,
    ) -> i64 {
        sealed.min(self.next_expiry(policy, created, last_active))
    }

    /// An unchanged session needs re-issuing: its idle expiry is close and a write
    /// would push it further out.
    pub(crate) fn renewal_due(
        &self,
        policy: Policy,
        created: i64,
        expires_at: i64,
        now: i64,
    ) -> bool {
        let threshold = match policy {
            Policy::Default | Policy::BrowserSession if self.default.idle.is_some() => {
                secs(self.default.renew_threshold)
            }
            Policy::Idle { renew, .. } => i64::try_from(renew).unwrap_or(i64::MAX),
            _ => return false,
        };
        expires_at.saturating_sub(now) < threshold
            && expires_at < self.next_expiry(policy, created, now)
    }

    /// True when the cookie carries Max-Age (it outlives the browser).
    pub(crate) fn is_persistent(&self, policy: Policy) -> bool {
        match policy {
            Policy::Default => self.default.persistent,
            Policy::BrowserSession => false,
            Policy::Absolute { .. } | Policy::Idle { .. } => true,
        }
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
    pub(crate) fn system() -> Self {
        Clock(None)
    }

    /// A clock that asks `now` for the time.
    pub fn from_fn(now: impl Fn() -> OffsetDateTime + Send + Sync + 'static) -> Self {
        Clock(Some(Arc::new(now)))
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
    /// The system clock (UTC).
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}
