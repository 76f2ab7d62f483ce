//! The sweep: removes expired and corrupt entries and the temporary files a crash
//! left behind, and nothing else.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::dir::{is_key_name, is_temp_name, list};
use super::entry::{is_stale, now_ms, read_header, remove_if_stale};

/// Temporary files older than this are leftovers of a crash and swept.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Removes the expired or corrupt entries and stale temporary files among `names`
/// (in `dir`); returns how many. Files that vanish or cannot be read are skipped.
pub(super) fn sweep_names(dir: &Path, names: &[String]) -> usize {
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
pub(super) fn sweep_dir(dir: &Path) -> io::Result<usize> {
    Ok(sweep_names(dir, &list(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::entry::load_entry;
    use crate::store::file::tests::{temp_dir, NAME};

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
}
