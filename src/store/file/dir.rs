//! The store's directory: which names are entries and temporary files, listing it,
//! creating it.

use std::fs;
use std::io;
use std::path::Path;

use rand::Rng;

/// Length of a store file's name: the key in hex.
const KEY_NAME_LEN: usize = 32;

pub(super) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Names of the entries in `dir` that are valid UTF-8 (ours always are).
pub(super) fn list(dir: &Path) -> io::Result<Vec<String>> {
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
pub(super) fn is_key_name(name: &str) -> bool {
    name.len() == KEY_NAME_LEN && is_lower_hex(name)
}

/// One of our temporary names: `.<32 hex>.<16 hex>.tmp`.
pub(super) fn is_temp_name(name: &str) -> bool {
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

pub(super) fn temp_name(name: &str) -> String {
    format!(".{name}.{:016x}.tmp", rand::rng().random::<u64>())
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
}
