//! [`MemoryRevocations`]: a revocation list shared by the configs of one process.

use std::sync::{Arc, Mutex};

use super::{unix_now, RevocationBackend};
use crate::Error;

/// Revocations shared by the configs of one process (several apps in one binary,
/// tests). Without any backend a config keeps its revocations to itself; this one
/// lets configs that share it see each other's within a sync interval. Entries go
/// once their window has passed. Cloning is cheap and clones share the list.
#[derive(Clone, Default)]
pub struct MemoryRevocations {
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    /// (sequence, record, until), in sequence order.
    records: Vec<(u128, Vec<u8>, i64)>,
    next: u128,
}

impl MemoryRevocations {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.log.lock().map_or(0, |l| l.records.len());
        f.debug_struct("MemoryRevocations")
            .field("records", &len)
            .finish()
    }
}

#[async_trait::async_trait]
impl RevocationBackend for MemoryRevocations {
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.next += 1;
        let seq = log.next;
        log.records.push((seq, record.to_vec(), until));
        if seq.is_multiple_of(1024) {
            let now = unix_now();
            log.records.retain(|(_, _, until)| *until > now);
        }
        Ok(())
    }

    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let after = cursor.unwrap_or(0);
        let start = log.records.partition_point(|(seq, _, _)| *seq <= after);
        let records = log.records[start..]
            .iter()
            .map(|(_, r, _)| r.clone())
            .collect();
        Ok((records, log.next))
    }
}
