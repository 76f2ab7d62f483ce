//! [`FileStore`]: one file per session in a directory, surviving restarts.
//!
//! Layout: `entry` is the on-disk format of one entry and the safe ways to open,
//! read, write and remove it; `dir` the names in the store's directory; `sweep` the
//! removal of expired, corrupt and left-over files; `deadline` the bound on every
//! step of blocking file work. This file is the store itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::{SessionStore, StoreKey};
use crate::Error;

mod deadline;
mod dir;
mod entry;
mod sweep;

use deadline::{abandoned, run, Claim};
use dir::{create_dir, is_key_name, is_temp_name, list};
use entry::{
    is_regular_or_missing, load_entry, now_ms, read_header, remove_missing_ok, shorten_expiry,
    write_atomic, Header, HEADER_LEN, MAGIC,
};
use sweep::{sweep_dir, sweep_names};

/// Default chance that a save triggers a background sweep: 2 in 100.
const DEFAULT_SWEEP_PROBABILITY: (u32, u32) = (2, 100);

/// How long one blocking step of file work may take before the call fails (the same
/// default as the Redis store's round trip).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Files handled per blocking step by `len`, `clear` and `sweep`, so that each step,
/// not the walk of a whole directory, is what the timeout bounds.
const BATCH: usize = 256;

/// A store that keeps each entry in its own file in a directory, so sessions survive
/// a process restart on the same machine.
///
/// Writes are atomic (temporary file, fsync, rename). Expiry is checked on load
/// (an expired file loads as `None` and is removed), and a sweep of expired files
/// runs in the background after a save with a small probability (2 in 100 by
/// default, see [`with_sweep_probability`](Self::with_sweep_probability)), or on
/// demand with [`sweep`](Self::sweep). The store touches only its own files: names
/// of exactly 32 lowercase hex characters, and its own temporary files; anything
/// else in the directory is left alone. An entry file that is corrupt (empty, cut
/// short, wrong magic) loads as missing and is removed, by the load or the sweep; a
/// FIFO, directory or socket under an entry name loads as missing and is never removed.
///
/// All disk work runs on Tokio's blocking pool, never on the async worker threads,
/// and each step must finish within a [timeout](Self::with_timeout) (2 s by default):
/// a file system that stops answering (a hung network mount) makes the call fail with
/// [`Error::Store`] instead of leaving the request waiting. The stuck thread stays
/// blocked until the file system answers but holds nothing the next calls need; a
/// save or delete that timed out before it started its final rename or removal never
/// takes effect later.
///
/// [`expire_in`](SessionStore::expire_in) rewrites only the expiry in an entry file's
/// header, and only to bring it forward; it never rewrites the value nor creates a file.
///
/// Several processes on one machine may share a directory. Cloning is cheap and
/// clones share the configuration.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::Error> {
/// use std::time::Duration;
/// use sealed_session::store::{FileStore, SessionStore, StoreKey};
///
/// let dir = std::env::temp_dir().join(format!("sealed-session-doc-{}", std::process::id()));
/// let store = FileStore::open(&dir).await?;
/// let key = StoreKey::from_bytes([7; 16]);
/// store.save(&key, b"ciphertext", Duration::from_secs(600)).await?;
///
/// // A new instance on the same directory (say, after a restart) sees the entry.
/// let reopened = FileStore::open(&dir).await?;
/// assert_eq!(reopened.load(&key).await?.as_deref(), Some(&b"ciphertext"[..]));
/// # reopened.clear().await?;
/// # std::fs::remove_dir(&dir).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Sweep after a save with probability `sweep_numerator / sweep_denominator`.
    sweep_numerator: u32,
    sweep_denominator: u32,
    fsync: bool,
    /// Deadline of each blocking step.
    timeout: Duration,
    /// Set while a background sweep runs, so sweeps do not pile up (and a sweep stuck on
    /// a hung file system ties up one thread, not one per save).
    sweeping: AtomicBool,
}

impl FileStore {
    /// Opens (creating if missing, with parents) a store in `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] with the I/O error when the directory cannot be created or is
    /// not a directory, or when that takes longer than 2 s.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// let dir = std::env::temp_dir().join(format!("sealed-session-open-{}", std::process::id()));
    /// let store = sealed_session::store::FileStore::open(&dir).await?;
    /// assert!(dir.is_dir());
    /// # std::fs::remove_dir(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let check = dir.clone();
        run("open", DEFAULT_TIMEOUT, move |_| {
            create_dir(&check)?;
            if fs::metadata(&check)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} is not a directory",
                    check.display()
                )))
            }
        })
        .await?;
        let (sweep_numerator, sweep_denominator) = DEFAULT_SWEEP_PROBABILITY;
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                sweep_numerator,
                sweep_denominator,
                fsync: true,
                timeout: DEFAULT_TIMEOUT,
                sweeping: AtomicBool::new(false),
            }),
        })
    }

    /// Sets the chance that a save triggers a background sweep of expired files
    /// to `numerator / denominator`. A numerator (or denominator) of 0 turns
    /// automatic sweeps off; a numerator at or above the denominator sweeps after
    /// every save.
    ///
    /// Call it right after [`open`](Self::open); clones made before keep their setting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// # let dir = std::env::temp_dir().join(format!("sealed-session-sweep-{}", std::process::id()));
    /// let store = sealed_session::store::FileStore::open(&dir).await?.with_sweep_probability(1, 1000);
    /// # std::fs::remove_dir(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_sweep_probability(self, numerator: u32, denominator: u32) -> Self {
        self.reconfigure(|inner| {
            inner.sweep_numerator = numerator.min(denominator);
            inner.sweep_denominator = denominator.max(1);
        })
    }

    /// Turns fsync of each written file (and of the directory after the rename)
    /// on or off. On by default.
    ///
    /// **Warning**: with fsync off, a power loss or kernel crash can lose recently
    /// saved sessions or leave an empty file behind (which then loads as missing and
    /// is removed); a process crash cannot.
    pub fn with_fsync(self, fsync: bool) -> Self {
        self.reconfigure(|inner| inner.fsync = fsync)
    }

    /// Sets how long one blocking step of file work may take before the call fails
    /// with [`Error::Store`] (default 2 s). A load, save or delete is one step; `len`,
    /// `clear` and [`sweep`](Self::sweep) take one step per 256 files.
    ///
    /// A step that times out keeps its blocking thread until the file system answers;
    /// a save or delete that had not reached its final rename or removal by then is
    /// dropped, so a call reported failed does not take effect later. A zero timeout
    /// fails every call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// # let dir = std::env::temp_dir().join(format!("sealed-session-timeout-{}", std::process::id()));
    /// use std::time::Duration;
    /// let store = sealed_session::store::FileStore::open(&dir)
    ///     .await?
    ///     .with_timeout(Duration::from_millis(500));
    /// # std::fs::remove_dir(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.reconfigure(|inner| inner.timeout = timeout)
    }

    /// Removes expired and corrupt entries and temporary files left over by a crash
    /// (older than a minute); returns how many files it removed. Other files, and
    /// anything under an entry name that is not a regular file, are left alone.
    ///
    /// # Errors
    /// [`Error::Store`] when the directory cannot be listed or a step takes longer
    /// than the [timeout](Self::with_timeout); files that vanish or cannot be read
    /// meanwhile are skipped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::Error> {
    /// # let dir = std::env::temp_dir().join(format!("sealed-session-sweepdoc-{}", std::process::id()));
    /// let store = sealed_session::store::FileStore::open(&dir).await?;
    /// assert_eq!(store.sweep().await?, 0);
    /// # std::fs::remove_dir(&dir).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sweep(&self) -> Result<usize, Error> {
        let names = self.names("sweep", |name| is_key_name(name) || is_temp_name(name));
        let mut removed = 0;
        for batch in names.await? {
            removed += self
                .step("sweep", move |dir, _| Ok(sweep_names(dir, &batch)))
                .await?;
        }
        Ok(removed)
    }

    fn reconfigure(self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &self.inner;
        let mut copy = Inner {
            dir: inner.dir.clone(),
            sweep_numerator: inner.sweep_numerator,
            sweep_denominator: inner.sweep_denominator,
            fsync: inner.fsync,
            timeout: inner.timeout,
            sweeping: AtomicBool::new(false),
        };
        change(&mut copy);
        FileStore {
            inner: Arc::new(copy),
        }
    }

    fn path_of(&self, key: &StoreKey) -> PathBuf {
        self.inner.dir.join(key.to_string())
    }

    /// Runs one step of file work on the store's directory within the store's timeout.
    async fn step<T, F>(&self, op: &'static str, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Path, &Claim) -> io::Result<T> + Send + 'static,
    {
        let dir = self.inner.dir.clone();
        run(op, self.inner.timeout, move |claim| work(&dir, claim)).await
    }

    /// The directory's names that `keep` accepts, in batches of [`BATCH`].
    async fn names(
        &self,
        op: &'static str,
        keep: fn(&str) -> bool,
    ) -> Result<Vec<Vec<String>>, Error> {
        let names = self
            .step(op, move |dir, _| {
                Ok(list(dir)?
                    .into_iter()
                    .filter(|n| keep(n))
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(names.chunks(BATCH).map(<[String]>::to_vec).collect())
    }

    /// Starts a background sweep with the configured probability, unless one runs.
    fn maybe_sweep(&self) {
        let inner = &self.inner;
        if inner.sweep_numerator == 0
            || !rand::rng().random_ratio(inner.sweep_numerator, inner.sweep_denominator)
            || inner.sweeping.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = Arc::clone(inner);
        // Nobody waits for this sweep, so it has no deadline; `sweeping` stays set
        // until it ends, so a hung file system ties up one thread for it, not many.
        tokio::task::spawn_blocking(move || {
            match sweep_dir(&inner.dir) {
                Ok(removed) => tracing::debug!(removed, "file store sweep"),
                Err(error) => tracing::warn!(%error, "file store sweep failed"),
            }
            inner.sweeping.store(false, Ordering::Release);
        });
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field(
                "sweep_probability",
                &(self.inner.sweep_numerator, self.inner.sweep_denominator),
            )
            .field("fsync", &self.inner.fsync)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

#[async_trait::async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        let name = key.to_string();
        self.step("load", move |dir, _| load_entry(dir, &name))
            .await
    }

    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expiry = now_ms().saturating_add(ttl_ms);
        let mut contents = Vec::with_capacity(HEADER_LEN + value.len());
        contents.extend_from_slice(&MAGIC);
        contents.extend_from_slice(&expiry.to_be_bytes());
        contents.extend_from_slice(value);
        let name = key.to_string();
        let fsync = self.inner.fsync;
        self.step("save", move |dir, claim| {
            write_atomic(dir, &name, &contents, fsync, claim)
        })
        .await?;
        self.maybe_sweep();
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        let path = self.path_of(key);
        self.step("delete", move |_, claim| {
            // A FIFO or directory under the name is not an entry: nothing to delete.
            if !is_regular_or_missing(&path)? {
                return Ok(());
            }
            if !claim.commit() {
                return Err(abandoned());
            }
            remove_missing_ok(&path)
        })
        .await
    }

    /// Rewrites only the 8-byte expiry in the entry file's header, when `ttl` brings it
    /// forward; a missing, expired, corrupt or foreign file is left alone (and nothing is
    /// created).
    ///
    /// # Errors
    /// [`Error::Store`] when the file cannot be opened for writing (a read-only file or
    /// mount) or written, or when that takes longer than the [timeout](Self::with_timeout).
    async fn expire_in(&self, key: &StoreKey, ttl: Duration) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expiry = now_ms().saturating_add(ttl_ms);
        let path = self.path_of(key);
        self.step("expire_in", move |_, claim| {
            shorten_expiry(&path, expiry, claim).map(drop)
        })
        .await
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        let mut live = 0;
        for batch in self.names("len", is_key_name).await? {
            live += self
                .step("len", move |dir, _| {
                    let now = now_ms();
                    Ok(batch
                        .iter()
                        .filter(|name| {
                            matches!(read_header(&dir.join(name)), Ok(Some(Header::Entry(e))) if e > now)
                        })
                        .count())
                })
                .await?;
        }
        Ok(Some(live))
    }

    async fn clear(&self) -> Result<(), Error> {
        for batch in self.names("clear", is_key_name).await? {
            self.step("clear", move |dir, _| {
                for name in &batch {
                    let path = dir.join(name);
                    // Every regular file under an entry name is ours, whatever it holds.
                    if is_regular_or_missing(&path)? {
                        remove_missing_ok(&path)?;
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rand::Rng;

    use super::dir::create_dir;
    use super::entry::MAGIC;

    /// A unique empty directory under the system's temporary directory.
    pub(super) fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-file-unit-{tag}-{}-{:016x}",
            std::process::id(),
            rand::rng().random::<u64>()
        ));
        create_dir(&dir).unwrap();
        dir
    }

    pub(super) fn entry_bytes(expiry: u64, value: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&expiry.to_be_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    pub(super) const NAME: &str = "0123456789abcdef0123456789abcdef";
}
