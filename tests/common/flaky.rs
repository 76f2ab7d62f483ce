//! A revocation backend that can be taken down: while `down` is set, every append
//! and read fails as a refused connection would.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sealed_session::revocation::{MemoryRevocations, RevocationBackend};
use sealed_session::Error;

/// A `MemoryRevocations` behind a switch.
#[derive(Clone, Default)]
pub struct Flaky {
    pub inner: MemoryRevocations,
    pub down: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl RevocationBackend for Flaky {
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("revoke", "connection refused"));
        }
        self.inner.append(record, until).await
    }
    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("sync revocations", "connection refused"));
        }
        self.inner.read(cursor).await
    }
}
