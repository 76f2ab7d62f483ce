//! [`FileRevocations`]: a revocation log in a directory, for several processes on
//! one machine (the same directory a `FileStore` uses, or another).
//!
//! # File format
//! `revocations-<generation>.log` holds records back to back, each
//! `len (1 byte) || record || until (8 bytes, big-endian unix seconds)`. Appends
//! and compactions take an exclusive lock on `revocations.lock`; a compaction
//! writes the live records to the next generation and removes the old file.
//! Readers take no lock: a record being appended is read on the next sync, and a
//! reader whose generation is gone reads the new one whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{unix_now, RevocationBackend};
use crate::Error;

/// Compact once the log is over this size (and on a 1-in-16 chance per append).
const COMPACT_OVER: u64 = 1 << 20;
/// Most bytes one record may have.
const MAX_RECORD: usize = 64;
/// How long one operation may take (a hung mount fails it instead of the request).
const TIMEOUT: Duration = Duration::from_secs(2);

/// A revocation log in a directory, shared by the processes of one machine.
/// Cloning is cheap and clones share the directory.
#[derive(Clone, Debug)]
pub struct FileRevocations {
    dir: Arc<PathBuf>,
}

impl FileRevocations {
    /// Opens (creating if missing) the log in `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] when the directory cannot be created.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        let check = dir.clone();
        blocking("open", move || fs::create_dir_all(&check)).await?;
        Ok(FileRevocations { dir: Arc::new(dir) })
    }
}

#[async_trait::async_trait]
impl RevocationBackend for FileRevocations {
    async fn append(&self, record: &[u8], until: i64) -> Result<(), Error> {
        if record.len() > MAX_RECORD {
            return Err(Error::store(
                "revoke",
                "a revocation record is over 64 bytes",
            ));
        }
        let dir = Arc::clone(&self.dir);
        let mut line = Vec::with_capacity(1 + record.len() + 8);
        line.push(record.len() as u8);
        line.extend_from_slice(record);
        line.extend_from_slice(&until.to_be_bytes());
        blocking("revoke", move || {
            let lock = lock(&dir)?;
            let generation = current(&dir)?.unwrap_or(1);
            let path = log_path(&dir, generation);
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&line)?;
            // Reported recorded only once it is on disk.
            file.sync_data()?;
            if file.metadata()?.len() > COMPACT_OVER && rand::random::<u8>().is_multiple_of(16) {
                compact(&dir, generation)?;
            }
            drop(lock);
            Ok(())
        })
        .await
    }

    async fn read(&self, cursor: Option<u128>) -> Result<(Vec<Vec<u8>>, u128), Error> {
        let dir = Arc::clone(&self.dir);
        blocking("sync revocations", move || {
            let Some(generation) = current(&dir)? else {
                return Ok((Vec::new(), 0));
            };
            let from = match cursor {
                Some(c) if (c >> 64) as u64 == generation => c as u64,
                _ => 0,
            };
            let mut file = match File::open(log_path(&dir, generation)) {
                Ok(file) => file,
                // Compacted away meanwhile: read it whole next time.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
                Err(e) => return Err(e),
            };
            file.seek(SeekFrom::Start(from))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            let (records, used) = parse(&bytes);
            let now = unix_now();
            let live = records
                .into_iter()
                .filter(|(_, until)| *until > now)
                .map(|(r, _)| r)
                .collect();
            Ok((
                live,
                (u128::from(generation) << 64) | u128::from(from + used as u64),
            ))
        })
        .await
    }
}

/// The complete records in `bytes` and how many bytes they take; a partial record
/// at the end (an append in progress) is left for the next read.
fn parse(bytes: &[u8]) -> (Vec<(Vec<u8>, i64)>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&len) = bytes.get(at) {
        let len = usize::from(len);
        let end = at + 1 + len + 8;
        let Some(entry) = bytes.get(at + 1..end) else {
            break;
        };
        let (record, until) = entry.split_at(len);
        let until = i64::from_be_bytes(until.try_into().expect("8 bytes"));
        out.push((record.to_vec(), until));
        at = end;
    }
    (out, at)
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("revocations-{generation}.log"))
}

/// The highest generation present.
fn current(dir: &Path) -> io::Result<Option<u64>> {
    let mut best = None;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(g) = name
            .strip_prefix("revocations-")
            .and_then(|rest| rest.strip_suffix(".log"))
            .and_then(|g| g.parse::<u64>().ok())
        {
            best = best.max(Some(g));
        }
    }
    Ok(best)
}

/// The exclusive lock appends and compactions take (released on drop).
fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("revocations.lock"))?;
    file.lock()?;
    Ok(file)
}

/// Writes the live records of `generation` to the next one, then removes it.
fn compact(dir: &Path, generation: u64) -> io::Result<()> {
    let bytes = fs::read(log_path(dir, generation))?;
    let (records, _) = parse(&bytes);
    let now = unix_now();
    let next = generation + 1;
    let temp = dir.join(format!(".revocations-{next}.tmp"));
    {
        let mut out = File::create(&temp)?;
        for (record, until) in records.iter().filter(|(_, until)| *until > now) {
            out.write_all(&[record.len() as u8])?;
            out.write_all(record)?;
            out.write_all(&until.to_be_bytes())?;
        }
        out.sync_all()?;
    }
    fs::rename(&temp, log_path(dir, next))?;
    fs::remove_file(log_path(dir, generation))
}

/// Runs blocking file work on Tokio's blocking pool within [`TIMEOUT`].
async fn blocking<T, F>(op: &'static str, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    match tokio::time::timeout(TIMEOUT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(Error::store(op, e)),
        Ok(Err(join)) => Err(Error::store(op, join)),
        Err(_) => Err(Error::store(
            op,
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the revocation log did not answer within {TIMEOUT:?}"),
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_record_waits_for_the_next_read() {
        let mut bytes = Vec::new();
        for n in 0..3u8 {
            bytes.push(2);
            bytes.extend_from_slice(&[n, n]);
            bytes.extend_from_slice(&100i64.to_be_bytes());
        }
        let full = bytes.len();
        bytes.extend_from_slice(&[5, 1, 2]);
        let (records, used) = parse(&bytes);
        assert_eq!(records.len(), 3);
        assert_eq!(used, full);
    }

    #[tokio::test]
    async fn appends_survive_compaction_and_readers_follow() {
        let dir =
            std::env::temp_dir().join(format!("sealed-session-revlog-{}", std::process::id()));
        let log = FileRevocations::open(&dir).await.unwrap();
        let now = unix_now();
        log.append(b"old", now - 1).await.unwrap();
        log.append(b"live-1", now + 600).await.unwrap();
        let (all, cursor) = log.read(None).await.unwrap();
        assert_eq!(
            all,
            vec![b"live-1".to_vec()],
            "expired records are not served"
        );
        compact(&dir, 1).unwrap();
        log.append(b"live-2", now + 600).await.unwrap();
        // The old generation is gone: the reader gets the new one whole.
        let (after, _) = log.read(Some(cursor)).await.unwrap();
        assert_eq!(after, vec![b"live-1".to_vec(), b"live-2".to_vec()]);
        let _ = fs::remove_dir_all(&dir);
    }
}
