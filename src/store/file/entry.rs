//! One entry on disk: its format, and the safe ways to open, read, write and remove it.
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
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::deadline::{abandoned, Claim};
use super::dir::{create_dir, temp_name};

/// First bytes of every store file: marks the file as ours, format version 1.
pub(super) const MAGIC: [u8; 4] = *b"sss1";

/// Magic plus the 8-byte expiry.
pub(super) const HEADER_LEN: usize = MAGIC.len() + 8;

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What the first bytes of a regular file under an entry name say it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Header {
    /// One of our entries, with its expiry (unix milliseconds).
    Entry(u64),
    /// Written by another format version of this store: not ours to judge or remove.
    OtherVersion,
    /// Not an entry (empty, cut short, another magic): reads as missing, removed.
    Corrupt,
}

pub(super) fn parse_header(bytes: &[u8]) -> Header {
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
    open_existing(path, false)
}

/// [`open_entry`], for writing too when `write`; never creates a file.
fn open_existing(path: &Path, write: bool) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true).write(write);
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
pub(super) fn is_regular_or_missing(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.file_type().is_file()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads the header of the entry file at `path`; `None` when it is gone or not a regular file.
pub(super) fn read_header(path: &Path) -> io::Result<Option<Header>> {
    let Some(mut file) = open_entry(path)? else {
        return Ok(None);
    };
    header_of(&mut file).map(Some)
}

/// Reads and parses the first bytes of `file`.
fn header_of(file: &mut File) -> io::Result<Header> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match file.read(&mut header[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(parse_header(&header[..filled]))
}

/// Brings the expiry of the live entry at `path` forward to `expiry` (unix ms) if that is
/// sooner, by rewriting only the 8 expiry bytes of its header, unless the caller gave up
/// first; returns whether it did. A missing, expired, corrupt or foreign file, or an
/// entry that expires sooner anyway, is left as it is, and nothing is ever created.
///
/// The value is never touched, so a save that renames a new file over the name meanwhile
/// keeps its own header (this one writes to the file it opened). The write is not
/// synced: after a power loss the entry may keep its old expiry, which only costs space.
/// Two calls on one entry at once may leave the later of their two expiries (both
/// sooner than the entry's own).
pub(super) fn shorten_expiry(path: &Path, expiry: u64, claim: &Claim) -> io::Result<bool> {
    let Some(mut file) = open_existing(path, true)? else {
        return Ok(false);
    };
    match header_of(&mut file)? {
        Header::Entry(current) if current > now_ms() && expiry < current => {}
        _ => return Ok(false),
    }
    if !claim.commit() {
        return Err(abandoned());
    }
    file.seek(SeekFrom::Start(MAGIC.len() as u64))?;
    file.write_all(&expiry.to_be_bytes())?;
    Ok(true)
}

/// Whether a header marks a file the store should remove: expired, or corrupt.
pub(super) fn is_stale(header: &Header, now: u64) -> bool {
    match header {
        Header::Entry(expiry) => *expiry <= now,
        Header::Corrupt => true,
        Header::OtherVersion => false,
    }
}

/// The value stored under `dir/name`, if it is a live entry; removes it if expired or corrupt.
pub(super) fn load_entry(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
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

pub(super) fn remove_missing_ok(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `contents` to `dir/name` atomically: temp file, optional fsync, then, unless
/// the caller gave up meanwhile, the rename.
pub(super) fn write_atomic(
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
pub(super) fn remove_if_stale(dir: &Path, name: &str) -> io::Result<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::dir::list;
    use crate::store::file::tests::{entry_bytes, temp_dir, NAME};

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

    /// Only the expiry of a live entry moves, and only forward; the value, other files
    /// and missing names stay as they are.
    #[test]
    fn shorten_expiry_rewrites_only_a_sooner_expiry_of_a_live_entry() {
        let dir = temp_dir("shorten");
        let path = dir.join(NAME);
        let far = now_ms() + 3_600_000;
        let soon = now_ms() + 60_000;
        fs::write(&path, entry_bytes(far, b"value")).unwrap();
        assert!(shorten_expiry(&path, soon, &Claim::default()).unwrap());
        assert_eq!(fs::read(&path).unwrap(), entry_bytes(soon, b"value"));
        assert!(!shorten_expiry(&path, far, &Claim::default()).unwrap());
        assert_eq!(fs::read(&path).unwrap(), entry_bytes(soon, b"value"));

        let untouched = [
            entry_bytes(1, b"expired"),
            b"garbage".to_vec(),
            b"sss2 a later format".to_vec(),
            Vec::new(),
        ];
        for contents in untouched {
            fs::write(&path, &contents).unwrap();
            assert!(!shorten_expiry(&path, soon, &Claim::default()).unwrap());
            assert_eq!(fs::read(&path).unwrap(), contents);
        }
        fs::remove_file(&path).unwrap();
        assert!(!shorten_expiry(&path, soon, &Claim::default()).unwrap());
        assert!(!path.exists(), "a missing entry is not created");
        fs::create_dir(&path).unwrap();
        assert!(!shorten_expiry(&path, soon, &Claim::default()).unwrap());
        assert!(path.is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A caller that gave up before the write changes nothing.
    #[test]
    fn shorten_expiry_after_the_caller_gave_up_changes_nothing() {
        let dir = temp_dir("shorten-abandon");
        let path = dir.join(NAME);
        let contents = entry_bytes(now_ms() + 3_600_000, b"value");
        fs::write(&path, &contents).unwrap();
        let claim = Claim::default();
        assert!(claim.abandon());
        let err = shorten_expiry(&path, now_ms(), &claim).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(fs::read(&path).unwrap(), contents);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Neither blocks on a FIFO nor follows a symlink.
    #[cfg(unix)]
    #[test]
    fn shorten_expiry_leaves_fifos_and_symlinks_alone() {
        let dir = temp_dir("shorten-special");
        let path = dir.join(NAME);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if made.is_ok_and(|status| status.success()) {
            assert!(!shorten_expiry(&path, now_ms(), &Claim::default()).unwrap());
            fs::remove_file(&path).unwrap();
        } else {
            eprintln!("SKIPPED (FIFO part): mkfifo is not available");
        }
        let target = dir.join("elsewhere");
        let contents = entry_bytes(now_ms() + 3_600_000, b"value");
        fs::write(&target, &contents).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(!shorten_expiry(&path, now_ms(), &Claim::default()).unwrap());
        assert_eq!(fs::read(&target).unwrap(), contents);
        fs::remove_dir_all(&dir).unwrap();
    }
}
