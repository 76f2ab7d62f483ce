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
use crate::map::ValueMap;
use crate::store::StoreKey;
use crate::Error;

/// A session's random 128-bit id. `Display` gives 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A fresh random id from the thread-local CSPRNG (seeded from the OS).
    pub fn random() -> Self {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        SessionId(id)
    }

    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        SessionId(bytes)
    }

    /// The raw 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key this session's body has in a store.
    pub const fn store_key(&self) -> StoreKey {
        StoreKey::from_bytes(self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.store_key(), f)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Where the session came from on this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// No valid session came with the request.
    Fresh,
    /// The whole session was in the cookie or header.
    Inline,
    /// The cookie held a pointer; the body came from the store.
    Pointer,
}

pub(crate) struct State {
    pub(crate) meta: Meta,
    pub(crate) body: Body,
    /// Flash data sent by the previous request, readable on this one.
    pub(crate) flash_now: ValueMap,
    pub(crate) origin: Origin,
    /// The id the session had when loaded (to clean up its store entry after regenerate/destroy).
    pub(crate) loaded_id: [u8; 16],
    pub(crate) changed: bool,
    pub(crate) force_save: bool,
    pub(crate) touched: bool,
    pub(crate) destroyed: bool,
    pub(crate) old_key: bool,
    /// Still sealed under an old key: the next save must re-seal it.
    pub(crate) needs_reseal: bool,
    /// No valid session came with the request.
    pub(crate) new: bool,
    /// A request without a session under `create_on_missing(false)`: saved only on `save()`.
    pub(crate) detached: bool,
    pub(crate) load_error: Option<Arc<Error>>,
    /// The session came in the header transport; it goes back the same way.
    pub(crate) via_header: bool,
    /// AAD context when it is more than the cookie name (a fingerprint is configured):
    /// cookie name, 0x01, fingerprint. `None` means the cookie name alone.
    pub(crate) context: Option<Vec<u8>>,
    /// What it was loaded from or last saved as, for `reload`.
    pub(crate) source: Option<Source>,
}

/// The authenticated plaintext a session was loaded from or last saved as.
///
/// `reload` decodes it again instead of keeping (and copying on every load) the
/// text value: the plaintext is the buffer the value was decrypted into, so
/// keeping it costs nothing, and it opens the same way the value would.
#[derive(Clone)]
pub(crate) struct Source {
    /// `postcard(Meta) || body`, as after decryption.
    pub(crate) plaintext: Vec<u8>,
    /// The body part is lz4-compressed.
    pub(crate) compressed: bool,
    /// The value was a pointer: the body is in the store.
    pub(crate) pointer: bool,
    /// A key other than the primary opened it.
    pub(crate) old_key: bool,
}

/// A session as decoded from a value, before it becomes a [`Session`].
pub(crate) struct Loaded {
    pub(crate) meta: Meta,
    pub(crate) body: Body,
    pub(crate) origin: Origin,
    pub(crate) old_key: bool,
    pub(crate) source: Source,
}

/// A session: typed values, flash data, CSRF token, id and lifecycle.
///
/// ```
/// # use sealed_session::Session;
/// let session = Session::new_detached();
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
            .field("id", &SessionId(s.meta.id))
            .field("keys", &s.body.values.keys().collect::<Vec<_>>())
            .field("changed", &s.changed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session outside any request (tests, background jobs); expires in a day.
    pub fn new_detached() -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Self::fresh(now, now + 86_400, None)
    }

    pub(crate) fn fresh(now: i64, expires_at: i64, load_error: Option<Error>) -> Self {
        let id = *SessionId::random().as_bytes();
        let meta = Meta {
            id,
            created: now,
            last_active: now,
            expires_at,
            csrf: None,
        };
        Self::from_state(State {
            meta,
            body: Body::default(),
            flash_now: ValueMap::new(),
            origin: Origin::Fresh,
            loaded_id: id,
            changed: false,
            force_save: false,
            touched: false,
            destroyed: false,
            old_key: false,
            needs_reseal: false,
            new: true,
            detached: false,
            load_error: load_error.map(Arc::new),
            via_header: false,
            context: None,
            source: None,
        })
    }

    /// A session loaded from a value that came `via_header` (or a cookie) with this AAD context.
    pub(crate) fn loaded(loaded: Loaded, via_header: bool, context: Option<Vec<u8>>) -> Self {
        let Loaded {
            meta,
            mut body,
            origin,
            old_key,
            source,
        } = loaded;
        let flash_now = std::mem::take(&mut body.flash);
        Self::from_state(State {
            loaded_id: meta.id,
            meta,
            body,
            // Flash data read on this request must be dropped from the next cookie.
            changed: !flash_now.is_empty(),
            flash_now,
            origin,
            force_save: false,
            touched: false,
            destroyed: false,
            old_key,
            needs_reseal: old_key,
            new: false,
            detached: false,
            load_error: None,
            via_header,
            context,
            source: Some(source),
        })
    }

    fn from_state(state: State) -> Self {
        Session {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// Takes over another session's contents (for `reload`), keeping transport and context.
    pub(crate) fn replace_from(&self, other: &Session) {
        let mut theirs = other.state();
        let mut mine = self.state();
        let via_header = mine.via_header;
        let context = std::mem::take(&mut mine.context);
        let detached = mine.detached;
        std::mem::swap(&mut *mine, &mut *theirs);
        mine.via_header = via_header;
        mine.context = context;
        mine.detached = detached;
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic in another holder cannot leave State half-written in a way that
        // matters more than losing the request, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a value under `key`, serialized with postcard.
    ///
    /// # Errors
    /// [`Error::Serialization`] if the value cannot be serialized.
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = postcard::to_stdvec(value)?;
        let mut s = self.state();
        if s.body.values.get(key) != Some(bytes.as_slice()) {
            s.body.values.insert(key, &bytes);
            s.mark_changed();
        }
        Ok(())
    }

    /// Reads the value under `key` as `T`; `Ok(None)` when absent.
    ///
    /// Values are not self-describing: read with the type you wrote.
    ///
    /// # Errors
    /// [`Error::Serialization`] when the bytes do not decode as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let s = self.state();
        s.body
            .values
            .get(key)
            .map(|b| postcard::from_bytes(b).map_err(Error::from))
            .transpose()
    }

    /// Reads the value under `key`, or `default` when absent.
    ///
    /// # Errors
    /// [`Error::Serialization`] when present but not a `T`.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Reads the value under `key`, or `T::default()` when absent.
    ///
    /// # Errors
    /// [`Error::Serialization`] when present but not a `T`.
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
    /// [`Error::Serialization`] when present but not a `T`; the value stays then.
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
    /// [`Error::Serialization`] when `key` holds something other than a `Vec<T>`.
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
    /// [`Error::Serialization`] if the value cannot be serialized.
    pub fn flash<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let bytes = postcard::to_stdvec(value)?;
        let mut s = self.state();
        s.body.flash.insert(key, &bytes);
        s.mark_changed();
        Ok(())
    }

    /// Reads flash data the previous request left (gone after this request unless kept).
    ///
    /// # Errors
    /// [`Error::Serialization`] when present but not a `T`.
    pub fn get_flash<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        let s = self.state();
        s.flash_now
            .get(key)
            .map(|b| postcard::from_bytes(b).map_err(Error::from))
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

    /// Gives the session a new id, keeping its data. Call it on login to prevent fixation.
    #[doc(alias = "cycle_id")]
    #[doc(alias = "renew")]
    pub fn regenerate(&self) {
        let mut s = self.state();
        s.meta.id = *SessionId::random().as_bytes();
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
        s.meta.id = *SessionId::random().as_bytes();
        s.destroyed = true;
        s.changed = true;
    }

    /// Renews the expiry now (idle timeout restarts) and re-issues the cookie.
    pub fn touch(&self) {
        self.state().touched = true;
    }

    /// Forces a write on the way out even if nothing changed.
    pub fn save(&self) {
        let mut s = self.state();
        s.force_save = true;
        s.detached = false;
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        SessionId(self.state().meta.id)
    }

    /// True when no valid session came with the request.
    pub fn is_new(&self) -> bool {
        self.state().new
    }

    /// True when the body lives in the store (loaded from, or last saved as, a pointer).
    pub fn is_store_backed(&self) -> bool {
        self.state().origin == Origin::Pointer
    }

    /// True when the session changed and will be written.
    pub fn is_changed(&self) -> bool {
        self.state().changed
    }

    /// True after [`Session::destroy`].
    pub fn is_destroyed(&self) -> bool {
        self.state().destroyed
    }

    /// True when an old (non-primary) key opened it; the response re-seals it under the primary.
    pub fn opened_with_old_key(&self) -> bool {
        self.state().old_key
    }

    /// Why the request's session value was refused (for logs and metrics), if it was.
    pub fn load_error(&self) -> Option<Arc<Error>> {
        self.state().load_error.clone()
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

impl State {
    fn mark_changed(&mut self) {
        self.changed = true;
        self.destroyed = false;
    }

    /// Records a completed save: where the session now lives, under which id, and
    /// what `reload` goes back to.
    pub(crate) fn saved(&mut self, origin: Origin, id: [u8; 16], source: Source) {
        self.origin = origin;
        self.loaded_id = id;
        self.changed = false;
        self.force_save = false;
        self.touched = false;
        self.needs_reseal = false;
        self.source = Some(source);
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
        let s = Session::new_detached();
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
        assert!(s.push("name", 1u64).is_err() || s.get::<Vec<u64>>("name").is_ok());
        s.clear();
        assert!(s.is_empty());
    }

    #[test]
    fn csrf() {
        let s = Session::new_detached();
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
        let s = Session::new_detached();
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
