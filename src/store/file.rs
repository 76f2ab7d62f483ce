//! [`FileStore`]: one file per session in a directory, surviving restarts.
//!
//! # File format
//! A store file is named by the key's 32 lowercase hex characters and holds
//! [`MAGIC`] (4 bytes), the expiry as unix milliseconds (8 bytes, big-endian),
//! then the value. Files are written to a temporary name in the same directory
//! (`.<key>.<16 hex>.tmp`), synced, then renamed over the final name, so a reader
//! sees the old file or the new one, never a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

use super::{SessionStore, StoreKey};
use crate::Error;

/// First bytes of every store file: marks the file as ours, format version 1.
const MAGIC: [u8; 4] = *b"sss1";

/// Magic plus the 8-byte expiry.
const HEADER_LEN: usize = MAGIC.len() + 8;

/// Length of a store file's name: the key in hex.
const KEY_NAME_LEN: usize = 32;

/// Default chance that a save triggers a background sweep: 2 in 100.
const DEFAULT_SWEEP_PROBABILITY: (u32, u32) = (2, 100);

/// Temporary files older than this are leftovers of a crash and swept.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// A store that keeps each entry in its own file in a directory, so sessions survive
/// a process restart on the same machine.
///
/// Writes are atomic (temporary file, fsync, rename). Expiry is checked on load
/// (an expired file loads as `None` and is removed), and a sweep of expired files
/// runs in the background after a save with a small probability (2 in 100 by
/// default, see [`with_sweep_probability`](Self::with_sweep_probability)), or on
/// demand with [`sweep`](Self::sweep). The store touches only its own files: names
/// of exactly 32 lowercase hex characters, and its own temporary files; anything
/// else in the directory is left alone. All disk work runs on Tokio's blocking
/// pool, never on the async worker threads.
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
    /// Set while a background sweep runs, so sweeps do not pile up.
    sweeping: AtomicBool,
}

impl FileStore {
    /// Opens (creating if missing, with parents) a store in `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] with the I/O error when the directory cannot be created or is
    /// not a directory.
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
        blocking("open", move || {
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
    /// saved sessions or leave an empty file behind (which then fails to load);
    /// a process crash cannot.
    pub fn with_fsync(self, fsync: bool) -> Self {
        self.reconfigure(|inner| inner.fsync = fsync)
    }

    /// Removes expired entries and temporary files left over by a crash (older than
    /// a minute); returns how many files it removed. Other files are left alone.
    ///
    /// # Errors
    /// [`Error::Store`] when the directory cannot be listed; files that vanish or
    /// cannot be read meanwhile are skipped.
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
        let dir = self.inner.dir.clone();
        blocking("sweep", move || sweep_dir(&dir)).await
    }

    fn reconfigure(self, change: impl FnOnce(&mut Inner)) -> Self {
        let inner = &self.inner;
        let mut copy = Inner {
            dir: inner.dir.clone(),
            sweep_numerator: inner.sweep_numerator,
            sweep_denominator: inner.sweep_denominator,
            fsync: inner.fsync,
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
            .finish()
    }
}

#[async_trait::async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path_of(key);
        let dir = self.inner.dir.clone();
        let name = key.to_string();
        blocking("load", move || {
            let mut bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let expiry = parse_header(&bytes)?;
            if expiry <= now_ms() {
                // The entry is gone either way; a failed clean-up is left to `sweep`.
                if let Err(error) = remove_if_expired(&dir, &name) {
                    tracing::debug!(%error, "file store could not remove an expired entry");
                }
                return Ok(None);
            }
            bytes.drain(..HEADER_LEN);
            Ok(Some(bytes))
        })
        .await
    }

    async fn save(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expiry = now_ms().saturating_add(ttl_ms);
        let mut contents = Vec::with_capacity(HEADER_LEN + value.len());
        contents.extend_from_slice(&MAGIC);
        contents.extend_from_slice(&expiry.to_be_bytes());
        contents.extend_from_slice(value);
        let dir = self.inner.dir.clone();
        let name = key.to_string();
        let fsync = self.inner.fsync;
        blocking("save", move || write_atomic(&dir, &name, &contents, fsync)).await?;
        self.maybe_sweep();
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        let path = self.path_of(key);
        blocking("delete", move || remove_missing_ok(&path)).await
    }

    async fn len(&self) -> Result<Option<usize>, Error> {
        let dir = self.inner.dir.clone();
        blocking("len", move || {
            let now = now_ms();
            let mut live = 0;
            for name in list(&dir)? {
                if is_key_name(&name)
                    && matches!(read_expiry(&dir.join(&name)), Ok(Some(e)) if e > now)
                {
                    live += 1;
                }
            }
            Ok(Some(live))
        })
        .await
    }

    async fn clear(&self) -> Result<(), Error> {
        let dir = self.inner.dir.clone();
        blocking("clear", move || {
            for name in list(&dir)? {
                if is_key_name(&name) {
                    remove_missing_ok(&dir.join(&name))?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Runs blocking file work on Tokio's blocking pool, mapping failures to [`Error::Store`].
async fn blocking<T, F>(op: &'static str, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::store(op, e)),
        Err(join) => Err(Error::store(op, join)),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Names of the entries in `dir` that are valid UTF-8 (ours always are).
fn list(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A store file's name: exactly 32 lowercase hex characters.
fn is_key_name(name: &str) -> bool {
    name.len() == KEY_NAME_LEN && is_lower_hex(name)
}

/// One of our temporary names: `.<32 hex>.<16 hex>.tmp`.
fn is_temp_name(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    match middle.split_once('.') {
        Some((key, suffix)) => is_key_name(key) && suffix.len() == 16 && is_lower_hex(suffix),
        None => false,
    }
}

fn temp_name(name: &str) -> String {
    format!(".{name}.{:016x}.tmp", rand::rng().random::<u64>())
}

fn parse_header(bytes: &[u8]) -> io::Result<u64> {
    match bytes.split_first_chunk::<HEADER_LEN>() {
        Some((header, _)) if header.starts_with(&MAGIC) => {
            let mut expiry = [0u8; 8];
            expiry.copy_from_slice(&header[MAGIC.len()..]);
            Ok(u64::from_be_bytes(expiry))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a sealed-session store file (bad header)",
        )),
    }
}

/// The expiry in a store file's header; `None` when the file is gone.
fn read_expiry(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match file.read(&mut header[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    parse_header(&header[..filled]).map(Some)
}

fn remove_missing_ok(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `contents` to `dir/name` atomically: temp file, optional fsync, rename.
fn write_atomic(dir: &Path, name: &str, contents: &[u8], fsync: bool) -> io::Result<()> {
    let temp = dir.join(temp_name(name));
    let file = match create_new(&temp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The directory was removed under us: recreate it once.
            create_dir(dir)?;
            create_new(&temp)?
        }
        other => other?,
    };
    let written = write_and_rename(file, &temp, &dir.join(name), contents, fsync);
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    if fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_and_rename(
    mut file: File,
    temp: &Path,
    path: &Path,
    contents: &[u8],
    fsync: bool,
) -> io::Result<()> {
    file.write_all(contents)?;
    if fsync {
        file.sync_all()?;
    }
    drop(file);
    fs::rename(temp, path)
}

/// Makes a rename durable (Unix); a no-op elsewhere.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes `dir/name` if it is still expired; returns whether it removed it.
///
/// A save may replace the file between our expiry check and the removal. So the
/// file is first renamed aside (atomic), checked again, and if it turns out to
/// be fresh it is linked back, unless an even newer save has taken the name.
fn remove_if_expired(dir: &Path, name: &str) -> io::Result<bool> {
    let path = dir.join(name);
    let aside = dir.join(temp_name(name));
    match fs::rename(&path, &aside) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    }
    let expired = match read_expiry(&aside) {
        Ok(Some(expiry)) => expiry <= now_ms(),
        Ok(None) => return Ok(false),
        Err(_) => false,
    };
    if !expired {
        match fs::hard_link(&aside, &path) {
            Ok(()) => {}
            // A newer save took the name meanwhile: it wins.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // No hard links on this file system: put it back by renaming.
            Err(_) => return fs::rename(&aside, &path).map(|()| false),
        }
    }
    remove_missing_ok(&aside)?;
    Ok(expired)
}

/// Removes expired store files and stale temporary files in `dir`; returns how many.
fn sweep_dir(dir: &Path) -> io::Result<usize> {
    let now = now_ms();
    let mut removed = 0;
    for name in list(dir)? {
        let path = dir.join(&name);
        if is_key_name(&name) {
            if matches!(read_expiry(&path), Ok(Some(expiry)) if expiry <= now)
                && remove_if_expired(dir, &name).unwrap_or(false)
            {
                removed += 1;
            }
        } else if is_temp_name(&name) {
            let stale = fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE);
            if stale && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_key_name("0123456789abcdef0123456789abcdef"));
        assert!(!is_key_name("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_key_name("0123456789abcdef0123456789abcde"));
        assert!(!is_key_name("notes.txt"));
        let temp = temp_name("0123456789abcdef0123456789abcdef");
        assert!(is_temp_name(&temp), "{temp}");
        assert!(!is_key_name(&temp));
        assert!(!is_temp_name(".0123456789abcdef0123456789abcdef.xyz.tmp"));
        assert!(!is_temp_name(".hidden.tmp"));
    }

    #[test]
    fn header_round_trip_and_rejects_foreign_bytes() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&42u64.to_be_bytes());
        bytes.extend_from_slice(b"value");
        assert_eq!(parse_header(&bytes).unwrap(), 42);
        assert_eq!(
            parse_header(b"hello world!!").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(parse_header(&MAGIC).is_err());
    }
}
