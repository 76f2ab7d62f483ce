//! [`FileStore`]: one file per session in a directory, surviving restarts.
//!
//! # File format
//! A store file is named by the key's 32 lowercase hex characters and holds
//! [`MAGIC`] (4 bytes), the expiry as unix milliseconds (8 bytes, big-endian),
//! then the value. Files are written to a temporary name in the same directory
//! (`.<key>.<16 hex>.tmp`), synced, then renamed over the final name, so a reader
//! sees the old file or the new one, never a half-written one.
//!
//! A regular file under an entry name that does not start with a whole header (empty,
//! cut short, another magic: what a crash with fsync off leaves) is *corrupt*: it reads
//! as missing and is removed. Anything else under an entry name (a FIFO, a directory,
//! a socket, a symlink) and a file of another format version (`sss` followed by
//! another version byte) is not ours to judge: it reads as missing and is left alone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
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

/// Shared by a blocking step and its caller: who gets to decide whether the step's
/// change happens, the step (it commits) or the caller (it gave up waiting).
#[derive(Default)]
struct Claim(AtomicU8);

impl Claim {
    const OPEN: u8 = 0;
    const COMMITTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// Called by the step right before its irreversible change: `false` when the
    /// caller has given up (the step must then undo what it prepared and stop).
    fn commit(&self) -> bool {
        match self.0.compare_exchange(
            Self::OPEN,
            Self::COMMITTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(state) => state == Self::COMMITTED,
        }
    }

    /// Called by the caller on timeout: `true` when the step's change will not happen.
    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(
                Self::OPEN,
                Self::ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    fn is_abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::ABANDONED
    }
}

/// What a step returns when its caller gave up before the step got to run or commit.
fn abandoned() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "the caller stopped waiting; nothing was changed",
    )
}

/// Runs blocking file work on Tokio's blocking pool within `timeout`, mapping failures
/// (and the timeout) to [`Error::Store`].
async fn run<T, F>(op: &'static str, timeout: Duration, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&Claim) -> io::Result<T> + Send + 'static,
{
    let claim = Arc::new(Claim::default());
    let step_claim = Arc::clone(&claim);
    let step = tokio::task::spawn_blocking(move || {
        // Queued behind stuck steps for longer than the caller waited: do nothing.
        if step_claim.is_abandoned() {
            return Err(abandoned());
        }
        work(&step_claim)
    });
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(Error::store(op, e)),
        Ok(Err(join)) => Err(Error::store(op, join)),
        Err(_) => {
            let outcome = if claim.abandon() {
                "it will not take effect"
            } else {
                "it was already being applied and may still take effect"
            };
            Err(Error::store(
                op,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the file system did not answer within {timeout:?}; {outcome}"),
                ),
            ))
        }
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

/// What the first bytes of a regular file under an entry name say it is.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// One of our entries, with its expiry (unix milliseconds).
    Entry(u64),
    /// Written by another format version of this store: not ours to judge or remove.
    OtherVersion,
    /// Not an entry (empty, cut short, another magic): reads as missing, removed.
    Corrupt,
}

fn parse_header(bytes: &[u8]) -> Header {
    match bytes.split_first_chunk::<HEADER_LEN>() {
        Some((header, _)) if header.starts_with(&MAGIC) => {
            let mut expiry = [0u8; 8];
            expiry.copy_from_slice(&header[MAGIC.len()..]);
            Header::Entry(u64::from_be_bytes(expiry))
        }
        _ => match bytes {
            [b's', b's', b's', version, ..]
                if *version != MAGIC[3] && version.is_ascii_alphanumeric() =>
            {
                Header::OtherVersion
            }
            _ => Header::Corrupt,
        },
    }
}

/// Opens an entry file for reading without blocking on a FIFO (Unix: `O_NONBLOCK`) and
/// without following a symlink; `None` when nothing is there or it is not a regular file.
fn open_entry(path: &Path) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NONBLOCK | libc::O_NOFOLLOW,
    );
    match options.open(path) {
        Ok(file) if file.metadata()?.is_file() => Ok(Some(file)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A symlink (ELOOP under O_NOFOLLOW) or a socket (ENXIO) under the name.
        Err(e) => match is_regular_or_missing(path) {
            Ok(false) => Ok(None),
            _ => Err(e),
        },
    }
}

/// Whether `path` is a regular file or absent (not a FIFO, directory, socket or symlink).
fn is_regular_or_missing(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.file_type().is_file()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads the header of the entry file at `path`; `None` when it is gone or not a regular file.
fn read_header(path: &Path) -> io::Result<Option<Header>> {
    let Some(mut file) = open_entry(path)? else {
        return Ok(None);
    };
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match file.read(&mut header[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(Some(parse_header(&header[..filled])))
}

/// Whether a header marks a file the store should remove: expired, or corrupt.
fn is_stale(header: &Header, now: u64) -> bool {
    match header {
        Header::Entry(expiry) => *expiry <= now,
        Header::Corrupt => true,
        Header::OtherVersion => false,
    }
}

/// The value stored under `dir/name`, if it is a live entry; removes it if expired or corrupt.
fn load_entry(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    let Some(mut file) = open_entry(&path)? else {
        if fs::symlink_metadata(&path).is_ok() {
            tracing::debug!(
                name,
                "file store: not a regular file under an entry name, left alone"
            );
        }
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    drop(file);
    let header = parse_header(&bytes);
    match header {
        Header::Entry(expiry) if expiry > now_ms() => {
            bytes.drain(..HEADER_LEN);
            return Ok(Some(bytes));
        }
        Header::OtherVersion => {
            tracing::debug!(
                name,
                "file store: entry of another format version, left alone"
            );
            return Ok(None);
        }
        Header::Corrupt => {
            tracing::warn!(
                name,
                len = bytes.len(),
                "file store: corrupt entry reads as missing and is removed"
            );
        }
        Header::Entry(_) => {}
    }
    // The entry is gone either way; a failed clean-up is left to `sweep`.
    if let Err(error) = remove_if_stale(dir, name) {
        tracing::debug!(%error, "file store could not remove a stale entry");
    }
    Ok(None)
}

fn remove_missing_ok(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `contents` to `dir/name` atomically: temp file, optional fsync, then, unless
/// the caller gave up meanwhile, the rename.
fn write_atomic(
    dir: &Path,
    name: &str,
    contents: &[u8],
    fsync: bool,
    claim: &Claim,
) -> io::Result<()> {
    let temp = dir.join(temp_name(name));
    let file = match create_new(&temp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The directory was removed under us: recreate it once.
            create_dir(dir)?;
            create_new(&temp)?
        }
        other => other?,
    };
    let written = write_and_rename(file, &temp, &dir.join(name), contents, fsync, claim);
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
    claim: &Claim,
) -> io::Result<()> {
    file.write_all(contents)?;
    if fsync {
        file.sync_all()?;
    }
    drop(file);
    if !claim.commit() {
        return Err(abandoned());
    }
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

/// Removes `dir/name` if it is still expired or corrupt; returns whether it removed it.
///
/// A save may replace the file between our check and the removal. So the file is
/// first renamed aside (atomic), checked again, and if it turns out to be a live
/// entry (or anything but a stale regular file) it is put back, unless an even newer
/// save has taken the name.
fn remove_if_stale(dir: &Path, name: &str) -> io::Result<bool> {
    let path = dir.join(name);
    let aside = dir.join(temp_name(name));
    match fs::rename(&path, &aside) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    }
    let stale = match read_header(&aside) {
        Ok(Some(header)) => is_stale(&header, now_ms()),
        // It vanished (another remover took it).
        Ok(None) if fs::symlink_metadata(&aside).is_err() => return Ok(false),
        // Not a regular file after all, or unreadable: not ours to remove.
        Ok(None) | Err(_) => false,
    };
    if !stale {
        match fs::hard_link(&aside, &path) {
            Ok(()) => {}
            // A newer save took the name meanwhile: it wins.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // No hard links on this file system, or not a file: put it back by renaming.
            Err(_) => return fs::rename(&aside, &path).map(|()| false),
        }
    }
    remove_missing_ok(&aside)?;
    Ok(stale)
}

/// Removes the expired or corrupt entries and stale temporary files among `names`
/// (in `dir`); returns how many. Files that vanish or cannot be read are skipped.
fn sweep_names(dir: &Path, names: &[String]) -> usize {
    let now = now_ms();
    let mut removed = 0;
    for name in names {
        let path = dir.join(name);
        if is_key_name(name) {
            if matches!(read_header(&path), Ok(Some(header)) if is_stale(&header, now))
                && remove_if_stale(dir, name).unwrap_or(false)
            {
                removed += 1;
            }
        } else if is_temp_name(name) {
            let stale = fs::symlink_metadata(&path)
                .ok()
                .filter(|meta| meta.file_type().is_file())
                .and_then(|meta| meta.modified().ok())
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= STALE_TEMP_AGE);
            if stale && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Sweeps the whole of `dir` in one go (the background sweep); returns how many it removed.
fn sweep_dir(dir: &Path) -> io::Result<usize> {
    Ok(sweep_names(dir, &list(dir)?))
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
    fn headers_are_entries_other_versions_or_corrupt() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(parse_header(&bytes), Header::Entry(42), "an empty value");
        bytes.extend_from_slice(b"value");
        assert_eq!(parse_header(&bytes), Header::Entry(42));
        for corrupt in [
            &b""[..],
            &MAGIC[..],
            &bytes[..HEADER_LEN - 1],
            b"hello world!!",
            b"sss",
            b"sss\0\0\0\0\0\0\0\0\0",
            &[0; 64],
        ] {
            assert_eq!(parse_header(corrupt), Header::Corrupt, "{corrupt:?}");
        }
        assert_eq!(parse_header(b"sss2 a later format"), Header::OtherVersion);
    }

    /// A unique empty directory under the system's temporary directory.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-file-unit-{tag}-{}-{:016x}",
            std::process::id(),
            rand::rng().random::<u64>()
        ));
        create_dir(&dir).unwrap();
        dir
    }

    fn entry_bytes(expiry: u64, value: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&expiry.to_be_bytes());
        bytes.extend_from_slice(value);
        bytes
    }

    const NAME: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_stale_entry_replaced_by_a_good_one_is_kept() {
        let dir = temp_dir("race");
        let path = dir.join(NAME);
        // The load saw a corrupt (or expired) file; before its removal ran, a save
        // renamed a good entry over the name. The removal must keep the good one.
        let good = entry_bytes(now_ms() + 60_000, b"fresh");
        fs::write(&path, &good).unwrap();
        assert!(!remove_if_stale(&dir, NAME).unwrap());
        assert_eq!(fs::read(&path).unwrap(), good);
        // Still corrupt or expired at removal time: removed.
        for stale in [Vec::new(), b"garbage".to_vec(), entry_bytes(1, b"old")] {
            fs::write(&path, &stale).unwrap();
            assert!(remove_if_stale(&dir, NAME).unwrap(), "{stale:?}");
            assert!(!path.exists());
        }
        // Another version's file stays.
        fs::write(&path, b"sss2 later").unwrap();
        assert!(!remove_if_stale(&dir, NAME).unwrap());
        assert!(path.exists());
        assert_eq!(
            list(&dir).unwrap(),
            vec![NAME.to_owned()],
            "no file left aside"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_under_an_entry_name_is_never_removed() {
        let dir = temp_dir("dir");
        fs::create_dir(dir.join(NAME)).unwrap();
        assert_eq!(load_entry(&dir, NAME).unwrap(), None);
        assert!(!remove_if_stale(&dir, NAME).unwrap());
        assert_eq!(sweep_dir(&dir).unwrap(), 0);
        assert!(dir.join(NAME).is_dir());
        assert_eq!(list(&dir).unwrap(), vec![NAME.to_owned()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_save_whose_caller_gave_up_before_the_rename_changes_nothing() {
        let dir = temp_dir("abandon");
        let claim = Claim::default();
        assert!(claim.abandon());
        let err = write_atomic(&dir, NAME, b"late", false, &claim).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(list(&dir).unwrap().is_empty(), "no entry and no temp file");
        // Once committed, the caller can no longer call the change off.
        let claim = Claim::default();
        assert!(claim.commit());
        assert!(!claim.abandon());
        write_atomic(&dir, NAME, b"on time", false, &claim).unwrap();
        assert_eq!(fs::read(dir.join(NAME)).unwrap(), b"on time");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A step stuck in a system call (here: opening a FIFO nobody writes to, without
    /// `O_NONBLOCK`) fails its call at the deadline, and the next call runs.
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_step_stuck_in_the_kernel_fails_at_its_deadline() {
        let dir = temp_dir("stuck");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("SKIPPED: mkfifo is not available");
            return;
        }
        let timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let path = fifo.clone();
        let result = run("load", timeout, move |_| File::open(&path).map(drop)).await;
        let took = started.elapsed();
        let err = result.unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Store);
        let cause = std::error::Error::source(&err).unwrap();
        let io = cause.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut, "{io}");
        assert!(io.to_string().contains("200ms"), "{io}");
        assert!(took < Duration::from_secs(1), "took {took:?}");
        // The stuck thread holds nothing the next step needs.
        assert_eq!(run("len", timeout, |_| Ok(7)).await.unwrap(), 7);
        // Let the stuck open finish: a writer pairs with it.
        drop(OpenOptions::new().write(true).open(&fifo).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
