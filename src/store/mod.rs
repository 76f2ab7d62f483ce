//! Server-side stores for session bodies that outgrow a cookie.
//!
//! A store only ever sees ciphertext: the size guard seals the body again with
//! AAD bound to the session id before handing it over, so a store entry copied
//! to another id does not open, and a leaked store reveals nothing.
//!
//! # Why a boxed (object-safe) trait
//! [`SessionConfig`](crate::SessionConfig) holds its store as
//! `Arc<dyn SessionStore>`, so the config, the layer and `Session` carry no
//! store type parameter and a store can be picked at run time (the demo picks
//! memory, file, Redis, PostgreSQL or SQLite from an environment variable). The
//! price is one boxed future per store call, which is noise next to a network or
//! disk round trip, and store calls happen only for sessions over the cookie budget.
//!
//! # A complete custom store
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//! use sealed_session::store::{SessionStore, StoreKey};
//! use sealed_session::Error;
//!
//! /// Keeps entries in a HashMap; expired entries read as missing.
//! #[derive(Default)]
//! struct MapStore(Mutex<HashMap<StoreKey, (Vec<u8>, Instant)>>);
//!
//! /// When an entry given `ttl` now expires (a TTL too long for an `Instant`: a century).
//! fn deadline(ttl: Duration) -> Instant {
//!     let now = Instant::now();
//!     now.checked_add(ttl).unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600))
//! }
//!
//! #[async_trait::async_trait]
//! impl SessionStore for MapStore {
//!     async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map.get(key).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| v.clone()))
//!     }
//!     async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
//!         self.0.lock().unwrap().insert(*key, (value.to_vec(), deadline(ttl)));
//!         Ok(())
//!     }
//!     async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
//!         self.0.lock().unwrap().remove(key);
//!         Ok(())
//!     }
//!     async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
//!         if let Some((_, until)) = self.0.lock().unwrap().get_mut(key) {
//!             *until = (*until).min(deadline(ttl)); // only ever sooner
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # Checking a store: the conformance suite
//! With the `conformance` feature, the checks every store of this crate passes
//! (round trips of binary values, deletes, overwrites that replace the TTL, expiry,
//! `expire_in` that only ever shortens, `save_replacing`, 64 concurrent writers, `len`
//! and `clear`, use as a trait object) are yours to
//! run: in your crate's `Cargo.toml`,
//! `sealed-session = { version = "0.1", features = ["conformance"] }` under
//! `[dev-dependencies]`, and in a test file
//! ```
//! # #[cfg(feature = "conformance")]
//! # mod checks {
//! # use sealed_session::store::MemoryStore as MapStore;
//! // One #[test] per check, each on a fresh store from this constructor.
//! sealed_session::store_conformance_tests!(map_store, async { Some((MapStore::default(), ())) });
//! # }
//! # fn main() {}
//! ```
//! The constructor may return `None` to skip (a server that is not installed) and
//! keep a guard alive next to the store (a temp dir, a server process); a store
//! whose `len` answers `None` adds `counting = false`. See
//! `sealed_session::store::conformance` for the details and the checks themselves.

use std::fmt;
use std::time::Duration;

use crate::Error;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) mod sql;

#[cfg(feature = "redis")]
pub(crate) use self::redis::deadline as redis_deadline;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "sqlite"))))]
pub use self::sql::{SqlBackend, SqlOptions, SqlPool, SqlStore};
pub use file::FileStore;
pub use memory::MemoryStore;

/// The key a store entry lives under: the session's 128-bit id.
///
/// Its `Display` is 32 lowercase hex characters, safe for file names and Redis keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; 16]);

impl StoreKey {
    /// Wraps 16 raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        StoreKey(bytes)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({self})")
    }
}

/// Where big session bodies go. Async, object-safe, `Send + Sync`.
///
/// Implementations must treat values as opaque bytes, honour the TTL (an
/// expired entry loads as `None`), and return [`Error::Store`] (see
/// [`Error::store`]) with the backend's error as the cause on failure:
/// never `Ok` for a write that did not happen.
// `len` answers `Option` (not every backend can count), so an `is_empty` would mislead.
#[allow(clippy::len_without_is_empty)]
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Reads an entry; `Ok(None)` when missing or expired.
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error>;

    /// Writes (or overwrites) an entry that expires after `ttl`.
    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error>;

    /// Removes an entry; removing a missing entry is not an error.
    async fn delete(&self, key: &StoreKey) -> Result<(), Error>;

    /// Lets an entry live at most `ttl` longer (never longer than it would anyway); a
    /// missing entry is not an error. Called on the entry a newer write replaced, so
    /// requests still in flight with the previous cookie can read it for a moment.
    ///
    /// The default does nothing: the entry then lives until its own TTL, which costs
    /// space (one entry per write of a big session) but never loses a session. Every
    /// store of this crate implements it, and the conformance suite checks it
    /// (`expire_in_only_shortens` fails a store that keeps the default).
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        let _ = (key, ttl);
        Ok(())
    }

    /// Writes the next write of a session whose previous write went to `replaced`:
    /// like [`save`](Self::save) under `key` (a new key: every write gets its own),
    /// for a store that treats entries in use differently from new ones (the
    /// [`MemoryStore`] keeps entries that were read back over new ones) and wants to
    /// know that this one continues a session in use. The replaced entry is retired
    /// afterwards with [`expire_in`](Self::expire_in).
    ///
    /// The default is [`save`](Self::save).
    async fn save_replacing(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        replaced: &StoreKey,
    ) -> Result<(), Error> {
        let _ = replaced;
        self.save(key, value, ttl).await
    }

    /// Number of live entries, if the backend can count them (`None` otherwise).
    async fn len(&self) -> Result<Option<usize>, Error> {
        Ok(None)
    }

    /// Removes every entry this store owns (for Redis: only keys under its prefix).
    ///
    /// # Errors
    /// The default returns [`Error::Store`] saying the backend cannot clear.
    async fn clear(&self) -> Result<(), Error> {
        Err(Error::store("clear", "this store does not support clear"))
    }
}
