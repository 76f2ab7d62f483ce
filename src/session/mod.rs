//! `Session`: typed key/value data, flash data, a CSRF token, an id and a lifecycle.
//!
//! A session is loaded once per request; after that every operation here is
//! synchronous and local. `Session` is a cheap clonable handle (an `Arc`), so
//! a tower layer can put it in request extensions and still see the handler's
//! changes when the response goes out.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::envelope::{Body, Meta, CSRF_LEN};
use crate::expiry::Policy;
use crate::{values, Error, SessionExpiry, SessionId};

mod state;
#[cfg(feature = "tower")]
pub(crate) use state::Deferred;
pub(crate) use state::{
    Admission, Arrival, Carrier, Loaded, Residence, SaveAction, Sealing, Snapshot, State, Status,
};

/// A session: typed values, flash data, CSRF token, id and lifecycle.
///
/// ```
/// # use sealed_session::Session;
/// let session = Session::new();
/// session.insert("user_id", &42u64)?;
/// assert_eq!(session.get::<u64>("user_id")?, Some(42));
/// assert_eq!(session.pull::<u64>("user_id")?, Some(42));
/// assert!(!session.contains("user_id"));
/// # Ok::<(), sealed_session::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Mutex<State>>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state();
        f.debug_struct("Session")
            .field("id", &s.meta.id)
            .field("keys", &s.body.values.keys().collect::<Vec<_>>())
            .field("status", &s.status)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session outside any request (tests, background jobs); expires in a day.
    pub fn new() -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Self::fresh(
            now,
            now + 86_400,
            Arrival::fresh(Carrier::Cookie, None, None),
            Admission::Normal,
        )
    }

    /// A new session for a request that brought no usable value.
    pub(crate) fn fresh(now: i64, expires_at: i64, arrival: Arrival, admission: Admission) -> Self {
        let meta = Meta::new(SessionId::random(), now, expires_at);
        Self::from_state(State::fresh(meta, arrival, admission))
    }

    /// A session decoded from a value that came with the request.
    pub(crate) fn loaded(loaded: Loaded, arrival: Arrival) -> Self {
        Self::from_state(State::loaded(loaded, arrival))
    }

    /// A session whose value the layer opens only when it is first used.
    #[cfg(feature = "tower")]
    pub(crate) fn pending(pending: Deferred) -> Self {
        Self::from_state(State::pending(pending))
    }

    /// A session built from its state.
    pub(crate) fn from_state(state: State) -> Self {
        Session {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// Takes over another session's contents (for `reload`), keeping how this one
    /// travels (carrier, AAD context) and whether it may be written.
    pub(crate) fn replace_from(&self, other: &Session) {
        let mut theirs = other.state();
        let mut mine = self.state();
        std::mem::swap(&mut mine.meta, &mut theirs.meta);
        std::mem::swap(&mut mine.body, &mut theirs.body);
        std::mem::swap(&mut mine.flash_now, &mut theirs.flash_now);
        std::mem::swap(&mut mine.snapshot, &mut theirs.snapshot);
        mine.status = theirs.status;
        mine.residence = theirs.residence;
        mine.arrival.came_with_session = theirs.arrival.came_with_session;
        mine.arrival.old_key = theirs.arrival.old_key;
        mine.arrival.load_error = theirs.arrival.load_error.take();
        if mine.admission == Admission::Forced {
            mine.admission = Admission::Normal;
        }
    }

    /// The session's state, locked. A panic in another holder cannot leave it
    /// half-written in a way that matters more than losing the request, so the
    /// guard is recovered.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        #[cfg_attr(not(feature = "tower"), allow(unused_mut))]
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(feature = "tower")]
        if let Some(pending) = state.pending.take() {
            *state = (pending.open)();
        }
        state
    }

    /// True while the layer has not opened the value and the response need not
    /// either: the handler never touched the session, the value is under the
    /// primary key and the config does not save every response.
    #[cfg(feature = "tower")]
    pub(crate) fn untouched(&self) -> bool {
        let state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.pending.as_ref().is_some_and(|p| !p.opens_at_response)
    }

    /// Stores a value under `key` (CBOR: self-describing, so the type may gain
    /// fields with `#[serde(default)]` in a later deploy and still read this value).
    ///
    /// # Errors
    /// [`Error::Value`] if the value cannot be serialized.
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        values::with_encoded(key, value, |bytes| {
            let mut s = self.state();
            if s.body.values.set(key, bytes) {
                s.mark_changed();
            }
        })
    }

    /// Reads the value under `key` as `T`; `Ok(None)` when absent.
    ///
    /// A value of another type is an error, never garbage; additive changes to `T`
    /// since the value was stored (a new field with `#[serde(default)]` or of type
    /// `Option`, a new enum variant, a removed field) still read it.
    ///
    /// # Errors
    /// [`Error::Value`] when the stored value does not decode as `T`: only this key
    /// is affected (remove or overwrite it to recover).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let s = self.state();
        s.body
            .values
            .get(key)
            .map(|b| values::decode(key, b))
            .transpose()
    }

    /// Reads all values at once as the fields of one struct (each field a key; use
    /// `Option` or `#[serde(default)]` for keys that may be absent), or as a map.
    ///
    /// ```
    /// # use sealed_session::Session;
    /// #[derive(serde::Deserialize)]
    /// struct Visit { user: String, views: Option<u64> }
    /// let session = Session::new();
    /// session.insert("user", "ada")?;
    /// let visit: Visit = session.get_all()?;
    /// assert_eq!((visit.user.as_str(), visit.views), ("ada", None));
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Value`] naming the first key that does not decode as its field, or
    /// (with an empty key) a required field that is missing.
    pub fn get_all<T: DeserializeOwned>(&self) -> Result<T, Error> {
        values::decode_all(&self.state().body.values)
    }

    /// Reads the value under `key`, or `default` when absent.
    ///
    /// # Errors
    /// [`Error::Value`] when present but not a `T`.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Reads the value under `key`, or `T::default()` when absent.
    ///
    /// # Errors
    /// [`Error::Value`] when present but not a `T`.
    pub fn get_or_default<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or_default())
    }

    /// Removes `key`; true if it was there.
    #[doc(alias = "forget")]
    pub fn remove(&self, key: &str) -> bool {
        let mut s = self.state();
        let removed = s.body.values.remove(key);
        if removed {
            s.mark_changed();
        }
        removed
    }

    /// Reads and removes the value under `key` (get and forget).
    ///
    /// # Errors
    /// [`Error::Value`] when present but not a `T`; the value stays then.
    pub fn pull<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let value = self.get(key)?;
        if value.is_some() {
            self.remove(key);
        }
        Ok(value)
    }

    /// Appends `value` to the list stored under `key` (a `Vec<T>`), creating it if absent.
    ///
    /// # Errors
    /// [`Error::Value`] when `key` holds something other than a list of `T` (it is
    /// left as it was: never silently turned into a list).
    pub fn push<T: Serialize + DeserializeOwned>(&self, key: &str, value: T) -> Result<(), Error> {
        let mut list: Vec<T> = self.get_or_default(key)?;
        list.push(value);
        self.insert(key, &list)
    }

    /// True if `key` holds a value.
    #[doc(alias = "has")]
    pub fn contains(&self, key: &str) -> bool {
        self.state().body.values.contains_key(key)
    }

    /// Removes all values (flash data and the CSRF token stay; see [`Session::destroy`]).
    #[doc(alias = "flush")]
    pub fn clear(&self) {
        let mut s = self.state();
        if !s.body.values.is_empty() {
            s.body.values.clear();
            s.mark_changed();
        }
    }

    /// The keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.state().body.values.keys().map(str::to_owned).collect()
    }

    /// Every key with the size in bytes of its encoded value, sorted by key.
    #[doc(alias = "all")]
    pub fn entries(&self) -> Vec<(String, usize)> {
        let s = self.state();
        s.body
            .values
            .iter()
            .map(|(k, v)| (k.to_owned(), v.len()))
            .collect()
    }

    /// Flash entries that arrived with this request (readable now), with their encoded sizes.
    pub fn flash_entries(&self) -> Vec<(String, usize)> {
        let s = self.state();
        s.flash_now
            .iter()
            .map(|(k, v)| (k.to_owned(), v.len()))
            .collect()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.state().body.values.len()
    }

    /// True when the session holds no values.
    pub fn is_empty(&self) -> bool {
        self.state().body.values.is_empty()
    }

    /// Stores flash data for the next request only.
    ///
    /// # Errors
    /// [`Error::Value`] if the value cannot be serialized.
    pub fn flash<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        values::with_encoded(key, value, |bytes| {
            let mut s = self.state();
            s.body.flash.insert(key, bytes);
            s.mark_changed();
        })
    }

    /// Reads flash data the previous request left (gone after this request unless kept).
    ///
    /// # Errors
    /// [`Error::Value`] when present but not a `T`.
    pub fn get_flash<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let s = self.state();
        s.flash_now
            .get(key)
            .map(|b| values::decode(key, b))
            .transpose()
    }

    /// Keeps all of this request's flash data for one more request.
    pub fn reflash(&self) {
        let mut s = self.state();
        let state = &mut *s;
        for (k, v) in state.flash_now.iter() {
            state.body.flash.insert_if_absent(k, v);
        }
        s.mark_changed();
    }

    /// Keeps the named flash entries for one more request.
    pub fn keep(&self, keys: &[&str]) {
        let mut s = self.state();
        for key in keys {
            let state = &mut *s;
            if let Some(v) = state.flash_now.get(key) {
                state.body.flash.insert_if_absent(key, v);
            }
        }
        s.mark_changed();
    }

    /// The CSRF token (URL-safe base64 of 32 random bytes), made on first use.
    pub fn csrf_token(&self) -> String {
        let mut s = self.state();
        let token = match s.meta.csrf {
            Some(t) => t,
            None => {
                let t = random_csrf();
                s.meta.csrf = Some(t);
                s.mark_changed();
                t
            }
        };
        URL_SAFE_NO_PAD.encode(token)
    }

    /// Replaces the CSRF token with a new one and returns it.
    pub fn regenerate_csrf_token(&self) -> String {
        let mut s = self.state();
        let t = random_csrf();
        s.meta.csrf = Some(t);
        s.mark_changed();
        URL_SAFE_NO_PAD.encode(t)
    }

    /// Checks a submitted CSRF token in constant time; false when none was ever issued.
    pub fn verify_csrf_token(&self, submitted: &str) -> bool {
        let s = self.state();
        let Some(expected) = s.meta.csrf else {
            return false;
        };
        let mut buf = [0u8; CSRF_LEN + 3];
        match URL_SAFE_NO_PAD.decode_slice(submitted.trim().as_bytes(), &mut buf) {
            Ok(CSRF_LEN) => bool::from(buf[..CSRF_LEN].ct_eq(&expected)),
            _ => false,
        }
    }

    /// Gives the session a new id and a new CSRF secret, keeping its data. Call it on
    /// login: an attacker who planted the session id (fixation) or read its CSRF
    /// token before knows neither afterwards.
    #[doc(alias = "cycle_id")]
    #[doc(alias = "renew")]
    pub fn regenerate(&self) {
        let mut s = self.state();
        s.meta.id = SessionId::random();
        if s.meta.csrf.is_some() {
            s.meta.csrf = Some(random_csrf());
        }
        s.mark_changed();
    }

    /// Ends the session: all data goes, the response removes the cookie and any store entry.
    #[doc(alias = "flush")]
    #[doc(alias = "purge")]
    pub fn destroy(&self) {
        let mut s = self.state();
        s.body = Body::default();
        s.flash_now.clear();
        s.meta.csrf = None;
        s.meta.id = SessionId::random();
        s.meta.policy = Policy::Default;
        s.meta.subject = None;
        s.new_subject = None;
        s.new_expiry = None;
        s.revoke_subject = None;
        s.status = Status::Destroyed;
    }

    /// Sets this session's own expiry ("remember me"), sealed with it so it holds on
    /// every later request, through renewals, `regenerate()` and a move to the store;
    /// [`SessionExpiry::Default`] goes back to the config's policy. The config's
    /// `max_lifetime` and `max_idle` still bound it, and the cookie's Max-Age follows
    /// it (none for a browser-session cookie).
    ///
    /// ```
    /// # use sealed_session::{Session, SessionExpiry};
    /// # use std::time::Duration;
    /// let session = Session::new();
    /// session.set_expiry(SessionExpiry::Absolute(Duration::from_secs(30 * 86_400)));
    /// assert_eq!(session.expiry(), SessionExpiry::Absolute(Duration::from_secs(30 * 86_400)));
    /// ```
    pub fn set_expiry(&self, expiry: SessionExpiry) {
        let mut s = self.state();
        if s.new_expiry.is_some() || s.meta.policy.public() != expiry {
            // Resolved against the config's clock when the session is saved.
            s.new_expiry = Some(expiry);
            s.mark_changed();
        }
    }

    /// This session's own expiry, as set with [`Session::set_expiry`].
    pub fn expiry(&self) -> SessionExpiry {
        let s = self.state();
        s.new_expiry.unwrap_or_else(|| s.meta.policy.public())
    }

    /// Serves this request without counting it as activity: an unchanged session is
    /// not renewed, and a changed one is written without pushing its idle expiry
    /// (polling must not keep an idle session alive). See also
    /// `SessionConfigBuilder::passive_path`.
    pub fn set_passive(&self) {
        self.state().passive = true;
    }

    /// Records who is logged in (at login), so that `revoke_subject` can end all of
    /// this subject's sessions ("log out everywhere"). The name is sealed as a keyed
    /// hash, never as itself.
    pub fn set_subject(&self, subject: &str) {
        let mut s = self.state();
        s.new_subject = Some(subject.to_owned());
        s.mark_changed();
    }

    /// Logs `subject` out everywhere: every session whose subject was set to it (with
    /// [`Session::set_subject`]) up to now is revoked on every server sharing the
    /// revocation backend, and this session is destroyed. The save fails (503 in the
    /// layer) if the revocation could not be recorded.
    pub fn log_out_everywhere(&self, subject: &str) {
        self.destroy();
        self.state().revoke_subject = Some(subject.to_owned());
    }

    /// True when a subject was set on this session (now or on an earlier request).
    pub fn has_subject(&self) -> bool {
        let s = self.state();
        s.new_subject.is_some() || s.meta.subject.is_some()
    }

    /// True when the session was last written under another request fingerprint than
    /// this request's (with `FingerprintMode::LogOnly`; with the strict mode such a
    /// session does not open at all).
    pub fn fingerprint_changed(&self) -> bool {
        self.state().arrival.fingerprint_changed
    }

    /// Renews the expiry now (idle timeout restarts) and re-issues the cookie.
    pub fn touch(&self) {
        self.state().touch();
    }

    /// Forces a write on the way out even if nothing changed.
    pub fn save(&self) {
        self.state().force();
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.state().meta.id
    }

    /// True when no valid session came with the request.
    pub fn is_new(&self) -> bool {
        !self.state().arrival.came_with_session
    }

    /// True when the body lives in the store (loaded from, or last saved as, a pointer).
    pub fn is_store_backed(&self) -> bool {
        matches!(self.state().residence, Residence::Store(_))
    }

    /// True when the session changed and will be written.
    pub fn is_changed(&self) -> bool {
        matches!(self.state().status, Status::Changed | Status::Destroyed)
    }

    /// True after [`Session::destroy`].
    pub fn is_destroyed(&self) -> bool {
        self.state().status == Status::Destroyed
    }

    /// True when an old (non-primary) key opened it; the response re-seals it under the primary.
    pub fn opened_with_old_key(&self) -> bool {
        self.state().arrival.old_key
    }

    /// Why the request's session value was refused (for logs and metrics), if it was.
    pub fn load_error(&self) -> Option<Arc<Error>> {
        self.state().arrival.load_error.clone()
    }

    /// When the session was created.
    pub fn created_at(&self) -> OffsetDateTime {
        unix(self.state().meta.created)
    }

    /// When the session was last written.
    pub fn last_activity(&self) -> OffsetDateTime {
        unix(self.state().meta.last_active)
    }

    /// When the session stops being valid (as of its last write).
    pub fn expires_at(&self) -> OffsetDateTime {
        unix(self.state().meta.expires_at)
    }
}

impl Default for Session {
    /// Same as [`Session::new`].
    fn default() -> Self {
        Session::new()
    }
}

fn random_csrf() -> [u8; CSRF_LEN] {
    let mut t = [0u8; CSRF_LEN];
    rand::rng().fill_bytes(&mut t);
    t
}

fn unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values() {
        let s = Session::new();
        assert!(!s.is_changed());
        s.insert("n", &5u32).unwrap();
        s.insert("name", "ann").unwrap();
        assert!(s.is_changed());
        assert_eq!(s.get::<u32>("n").unwrap(), Some(5));
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("ann"));
        assert_eq!(s.get_or("missing", 7u8).unwrap(), 7);
        assert_eq!(s.keys(), vec!["n".to_string(), "name".to_string()]);
        assert_eq!(s.len(), 2);
        s.push("list", 1u8).unwrap();
        s.push("list", 2u8).unwrap();
        assert_eq!(s.get::<Vec<u8>>("list").unwrap(), Some(vec![1, 2]));
        // A non-list is refused, and left as it was.
        let err = s.push("name", 1u64).unwrap_err();
        assert!(
            matches!(&err, Error::Value { key, .. } if key == "name"),
            "{err:?}"
        );
        assert_eq!(s.get::<String>("name").unwrap().as_deref(), Some("ann"));
        s.clear();
        assert!(s.is_empty());
    }

    #[test]
    fn csrf() {
        let s = Session::new();
        assert!(!s.verify_csrf_token("anything"));
        let t = s.csrf_token();
        assert_eq!(t, s.csrf_token());
        assert!(s.verify_csrf_token(&t));
        assert!(!s.verify_csrf_token(&t[1..]));
        assert!(!s.verify_csrf_token(""));
        let t2 = s.regenerate_csrf_token();
        assert_ne!(t, t2);
        assert!(!s.verify_csrf_token(&t));
        assert!(s.verify_csrf_token(&t2));
    }

    #[test]
    fn regenerate_and_destroy() {
        let s = Session::new();
        s.insert("k", &1u8).unwrap();
        let id = s.id();
        s.regenerate();
        assert_ne!(id, s.id());
        assert_eq!(s.get::<u8>("k").unwrap(), Some(1));
        s.destroy();
        assert!(s.is_destroyed() && s.is_empty());
        s.insert("again", &1u8).unwrap();
        assert!(!s.is_destroyed());
    }
}
