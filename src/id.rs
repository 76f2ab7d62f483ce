//! The random ids: [`SessionId`], a session's 128-bit id, and [`EntryId`], the
//! name a store entry gets on each write of a session too big for its cookie.

use std::fmt;

use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// A session's random 128-bit id. `Display` gives 32 lowercase hex characters.
///
/// On the wire it is 16 raw bytes (postcard writes a newtype as its content).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// The name of one write of a session's body to the store: random per write, and
/// named only by the pointer cookie sent with that write. A write that times out and
/// lands later therefore lands where no cookie points, and an old pointer cookie can
/// only ever open the body it was written with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub(crate) struct EntryId([u8; 16]);

impl EntryId {
    pub(crate) fn random() -> Self {
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        EntryId(id)
    }

    pub(crate) const fn from_bytes(bytes: [u8; 16]) -> Self {
        EntryId(bytes)
    }

    pub(crate) const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

/// Where a session's body is in the store.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Entry {
    /// Format v1: under the session id itself (read only; never written any more).
    Legacy(SessionId),
    /// Format v2: under the entry id of the write, bound to the session id.
    Written(SessionId, EntryId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_its_sixteen_bytes() {
        let id = SessionId::from_bytes([7; 16]);
        assert_eq!(postcard::to_stdvec(&id).unwrap(), [7; 16]);
        assert_eq!(id.to_string(), "07".repeat(16));
        assert_ne!(SessionId::random(), SessionId::random());
    }
}
