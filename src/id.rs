//! [`SessionId`]: a session's random 128-bit id.

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
