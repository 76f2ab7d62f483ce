//! [`RedisStore`]: session bodies in Redis, shared by every server process.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;

use super::{SessionStore, StoreKey};
use crate::Error;

/// Largest TTL sent to Redis, in milliseconds: Redis refuses expiry times that
/// overflow a signed 64-bit unix-millisecond clock, so longer TTLs are capped here.
const MAX_TTL_MS: u64 = (i64::MAX as u64) / 2;

/// Key prefix used unless another is set.
const DEFAULT_PREFIX: &str = "sealed-session:";

/// How long one Redis round trip may take before the call fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keys asked for per `SCAN` call and deleted per `DEL` call in `clear`.
const BATCH: usize = 500;

/// `expire_in` in one atomic step, on any Redis with Lua (2.6 and later; `PEXPIRE ... LT`
/// would need Redis 7): a missing key (`PTTL` -2) is left alone, a key without a TTL (-1)
/// gets one, and a TTL is only ever shortened. Sent with `EVAL` (the script is a few
/// dozen bytes), which needs no script cache and no extra feature of the redis crate.
/// `ARGV[1]` goes to `PEXPIRE` as sent (a Lua number would be formatted as a float).
const SHORTEN_TTL: &str = "local left = redis.call('PTTL', KEYS[1]) \
    if left == -2 then return 0 end \
    if left == -1 or left > tonumber(ARGV[1]) then \
    return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
    return 0";

/// A store that keeps entries in Redis under a key prefix, with the TTL set by
/// `SET ... PX`, so Redis itself expires them; [`expire_in`](SessionStore::expire_in)
/// only ever shortens that TTL, atomically, on any Redis version.
///
/// It talks through a [`ConnectionManager`], which reconnects on its own after
/// Redis restarts or the network drops: while Redis is unreachable each call
/// fails with [`Error::Store`] within [`timeout`](Self::with_timeout) (2 s by
/// default) instead of hanging, and once Redis is back the same store works
/// again without being rebuilt. Cloning is cheap and clones share the connection.
///
/// Keys are `prefix + 32 hex characters` (prefix `sealed-session:`
/// by default); [`len`](SessionStore::len) and [`clear`](SessionStore::clear)
/// walk only such keys, with `SCAN` (never `KEYS`), so other data in the same
/// database is left alone.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use std::time::Duration;
/// use sealed_session::store::{RedisStore, SessionStore, StoreKey};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?.with_prefix("myapp:session:");
/// let key = StoreKey::from_bytes([7; 16]);
/// store.save(&key, b"ciphertext", Duration::from_secs(600)).await?;
/// assert_eq!(store.load(&key).await?.as_deref(), Some(&b"ciphertext"[..]));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    manager: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisStore {
    /// Connects to the Redis server at `url` (e.g. `redis://127.0.0.1:6379/0`)
    /// with [`manager_config`](Self::manager_config) and the default prefix
    /// `sealed-session:` (change it with [`with_prefix`](Self::with_prefix)).
    ///
    /// # Errors
    /// [`Error::Store`] when the URL is invalid or the server cannot be reached within 2 s.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::store("connect", e))?;
        let connecting = ConnectionManager::new_with_config(client, Self::manager_config());
        let manager = deadline("connect", DEFAULT_TIMEOUT, connecting).await?;
        Ok(Self::new(manager))
    }

    /// Wraps a connection manager you built yourself (see
    /// [`manager_config`](Self::manager_config) for settings that fail fast).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use redis::aio::ConnectionManager;
    /// use sealed_session::store::RedisStore;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let manager = ConnectionManager::new_with_config(client, RedisStore::manager_config()).await?;
    /// let store = RedisStore::new(manager).with_prefix("myapp:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(manager: ConnectionManager) -> Self {
        RedisStore {
            manager,
            prefix: Arc::from(DEFAULT_PREFIX),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Puts this store's keys under `prefix` (default `sealed-session:`).
    ///
    /// Give each application sharing a Redis database its own prefix: `clear`
    /// removes every session key under the prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// Sets how long one Redis round trip may take before the call fails with
    /// [`Error::Store`] (default 2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connection-manager settings [`connect`](Self::connect) uses: connect and
    /// response timeouts of 1 s and two quick reconnect retries, so a dead server
    /// gives an error within about a second instead of a long back-off.
    ///
    /// ```
    /// let config = sealed_session::store::RedisStore::manager_config();
    /// assert_eq!(config.response_timeout(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn manager_config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
    }

    fn key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one command with the store's timeout.
    async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, Error> {
        let mut conn = self.manager.clone();
        deadline(op, self.timeout, cmd.query_async::<T>(&mut conn)).await
    }

    /// One `SCAN` page of this store's keys: the next cursor (0 when done) and the keys.
    async fn scan_page(
        &self,
        op: &'static str,
        pattern: &str,
        cursor: u64,
    ) -> Result<(u64, Vec<Vec<u8>>), Error> {
        let mut cmd = redis::cmd("SCAN");
        cmd.cursor_arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(BATCH);
        self.query(op, &cmd).await
    }
}

/// The `SCAN MATCH` pattern for keys under `prefix`: the prefix, glob-escaped,
/// then exactly 32 lowercase hex characters (a store key).
fn scan_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 32 * 8);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    for _ in 0..32 {
        pattern.push_str("[0-9a-f]");
    }
    pattern
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The manager's Debug would print the connection info, password included.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        self.query("load", &cmd).await
    }

    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .min(MAX_TTL_MS);
        if ttl_ms == 0 {
            // Redis refuses `PX 0`; an entry that expires at once is a deleted one.
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.key(key));
            return self.query("save", &cmd).await;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(ttl_ms);
        self.query("save", &cmd).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.query("delete", &cmd).await
    }

    /// Shortens the key's TTL with a small Lua script (`PTTL`, then `PEXPIRE` when that
    /// brings it forward), atomically and on any Redis version; a missing key stays missing.
    ///
    /// # Errors
    /// [`Error::Store`] when Redis cannot be reached within the
    /// [timeout](Self::with_timeout) or refuses (no `EVAL` or `PEXPIRE` permission).
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .min(MAX_TTL_MS);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SHORTEN_TTL).arg(1).arg(self.key(key)).arg(ttl_ms);
        self.query::<i64>("expire_in", &cmd).await.map(drop)
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        let pattern = scan_pattern(&self.prefix);
        // SCAN may return a key more than once: count distinct keys.
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan_page("len", &pattern, cursor).await?;
            seen.extend(keys);
            if next == 0 {
                return Ok(Some(seen.len()));
            }
            cursor = next;
        }
    }

    async fn clear(&self) -> Result<(), Error> {
        let pattern = scan_pattern(&self.prefix);
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan_page("clear", &pattern, cursor).await?;
            if !keys.is_empty() {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(keys);
                self.query::<()>("clear", &cmd).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// Awaits a Redis future for at most `timeout`, mapping both failures to [`Error::Store`].
pub(crate) async fn deadline<T>(
    op: &'static str,
    timeout: Duration,
    work: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(|e| Error::store(op, e)),
        Err(_) => Err(Error::store(
            op,
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from redis within {timeout:?}"),
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_escapes_glob_characters() {
        let pattern = scan_pattern("a*b?[c]\\:");
        assert!(pattern.starts_with("a\\*b\\?\\[c\\]\\\\:[0-9a-f]"));
        assert_eq!(pattern.matches("[0-9a-f]").count(), 32);
    }
}
