//! [`RedisRevocations`]: the revocation list in Redis, for several servers.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{unix_now, RevocationBackend};
use crate::store::RedisStore;
use crate::Error;

/// Appends a record: a sequence number, the record in the log (scored by it) and in
/// the expiry index (scored by its end), and drops up to 100 expired records.
const APPEND: &str = r"
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3], 'LIMIT', 0, 100)
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
return seq
";

/// How long one Redis round trip may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The revocation list in Redis, shared by every server: a log of records scored by
/// a sequence number (the sync cursor) and an index by expiry that each append
/// trims, all under a key prefix (`sealed-session:revocations:` by default).
/// Cloning is cheap and clones share the connection.
#[derive(Clone)]
pub struct RedisRevocations {
    manager: ConnectionManager,
    keys: Arc<[String; 3]>,
    append: Arc<redis::Script>,
}

impl RedisRevocations {
    /// Connects to the Redis server at `url` (with [`RedisStore::manager_config`]).
    ///
    /// # Errors
    /// [`Error::Store`] when the URL is invalid or the server cannot be reached within 2 s.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::store("connect", e))?;
        let connecting = ConnectionManager::new_with_config(client, RedisStore::manager_config());
        let manager = crate::store::redis_deadline("connect", TIMEOUT, connecting).await?;
        Ok(Self::new(manager))
    }

    /// Wraps a connection manager you built yourself.
    pub fn new(manager: ConnectionManager) -> Self {
        RedisRevocations {
            manager,
            keys: Arc::new(keys("sealed-session:revocations:")),
            append: Arc::new(redis::Script::new(APPEND)),
        }
    }

    /// Puts the list's keys under `prefix` (default `sealed-session:revocations:`):
    /// `<prefix>seq`, `<prefix>log` and `<prefix>until`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Arc::new(keys(&prefix.into()));
        self
    }
}

fn keys(prefix: &str) -> [String; 3] {
    [
        format!("{prefix}seq"),
        format!("{prefix}log"),
        format!("{prefix}until"),
    ]
}

impl std::fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("log", &self.keys[1])
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RevocationBackend for RedisRevocations {
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error> {
        let mut conn = self.manager.clone();
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(&self.keys[0])
            .key(&self.keys[1])
            .key(&self.keys[2])
            .arg(record)
            .arg(until)
            .arg(unix_now());
        let _seq: i64 =
            crate::store::redis_deadline("revoke", TIMEOUT, invocation.invoke_async(&mut conn))
                .await?;
        Ok(())
    }

    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error> {
        let mut conn = self.manager.clone();
        let from = match cursor {
            Some(c) => format!("({c}"),
            None => "-inf".to_owned(),
        };
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(&self.keys[1])
            .arg(from)
            .arg("+inf")
            .arg("WITHSCORES");
        let scored: Vec<(Vec<u8>, f64)> =
            crate::store::redis_deadline("sync revocations", TIMEOUT, cmd.query_async(&mut conn))
                .await?;
        let mut next = cursor.unwrap_or(0);
        let mut records = Vec::with_capacity(scored.len());
        for (record, seq) in scored {
            // Sequence numbers are integers well below 2^53: exact in a double.
            next = next.max(seq as u128);
            records.push(record);
        }
        Ok((records, next))
    }
}
