//! How long a session lives ([`Expiry`]) and what time it is ([`Clock`]).
//!
//! The sealed envelope, not the cookie's Max-Age, decides expiry: a client that
//! keeps a cookie past its time gets a fresh session.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

    /// True when the cookie carries Max-Age (it outlives the browser).
    pub(crate) fn is_persistent(&self) -> bool {
        self.persistent
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

    /// The expiry to write for a session active at `now`.
    pub(crate) fn next_expiry(&self, created: i64, now: i64) -> i64 {
        let end = self.absolute_end(created);
        match self.idle {
            Some(idle) => end.min(now.saturating_add(secs(idle))),
            None => end,
        }
    }

    /// An unchanged session created at `created` and expiring at `expires_at` needs
    /// re-issuing: idle expiry close and still extendable.
    pub(crate) fn renewal_due(&self, created: i64, expires_at: i64, now: i64) -> bool {
        self.idle.is_some()
            && expires_at.saturating_sub(now) < secs(self.renew_threshold)
            && expires_at < self.next_expiry(created, now)
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
