//! The reports of `inspect` and `open`: one value per run, serialized as JSON (`--json`)
//! or shown as text by its `Display`, so both forms always say the same thing.

use std::fmt;

use sealed_session::{Algorithm, SessionId, DEFAULT_COOKIE_BUDGET};
use serde::Serialize;
use time::OffsetDateTime;

use crate::format::{display, Flags, KeyId, Timestamp};

/// What `inspect` read from the clear header, without any key.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// The cookie's name, when the input carried one.
    pub cookie_name: Option<String>,
    /// Format version (byte 0).
    pub version: u8,
    /// The algorithm the flags name.
    #[serde(serialize_with = "display")]
    pub algorithm: Algorithm,
    /// The flags byte (byte 1).
    pub flags: Flags,
    /// Flag bit 2.
    pub compressed: bool,
    /// Flag bit 3.
    pub pointer: bool,
    /// The id of the key the header names.
    pub key_id: KeyId,
    /// Characters of the text value.
    pub text_len: usize,
    /// Bytes after base64 decoding.
    pub raw_len: usize,
    /// Nonce bytes.
    pub nonce_len: usize,
    /// Ciphertext bytes without the tag (the sealed plaintext's length).
    pub ciphertext_len: usize,
    /// AEAD tag bytes.
    pub tag_len: usize,
    /// Always false: nothing in a clear header is verified.
    pub authenticated: bool,
}

/// What `open` learned from the cookie, and from the store when asked.
#[derive(Debug, Serialize)]
pub struct OpenReport {
    /// The cookie name the value was opened for.
    pub cookie_name: String,
    /// Characters of the text value.
    pub text_len: usize,
    /// The session id (also the store key of a pointer).
    #[serde(serialize_with = "display")]
    pub id: SessionId,
    /// Creation time.
    pub created: Timestamp,
    /// Last write.
    pub last_activity: Timestamp,
    /// Expiry recorded in the cookie.
    pub expires: Timestamp,
    /// The expiry has passed: a server ignores the cookie.
    pub expired: bool,
    /// The key that opened it.
    pub key_id: KeyId,
    /// A key other than the primary opened it.
    pub old_key: bool,
    /// The primary (sealing) key of the given keys.
    pub primary_key_id: KeyId,
    /// The algorithm that opened it.
    #[serde(serialize_with = "display")]
    pub algorithm: Algorithm,
    /// Where the session body lives.
    pub storage: Storage,
    /// `storage` is `pointer`.
    pub pointer: bool,
    /// The body is compressed.
    pub compressed: bool,
    /// A CSRF token was issued (the token is never shown).
    pub csrf_token: bool,
    /// Where the listed entries came from, or why there are none.
    pub body: Body,
    /// The store body was sealed with an old key (only when loaded from the store).
    pub body_old_key: bool,
    /// Each entry's key and encoded size; `None` when the body was not read.
    pub entries: Option<Vec<Entry>>,
    /// Each pending flash entry's key and encoded size; `None` when the body was not read.
    pub flash: Option<Vec<Entry>>,
    /// The time the relative times in the text are counted from (not in the JSON).
    #[serde(skip)]
    pub now: OffsetDateTime,
}

/// Where a session body lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// The whole session is in the cookie.
    Inline,
    /// The cookie points at a store entry.
    Pointer,
}

/// What `open` did about the session body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Read from the cookie (inline).
    Cookie,
    /// A pointer, and no `--store`: the body was not looked at.
    InStore,
    /// A pointer that has expired: servers ignore it, so the store was not asked.
    ExpiredNotLoaded,
    /// A pointer whose body `--store` returned.
    LoadedFromStore,
}

/// One session entry: its key and encoded size (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The entry's key.
    pub key: String,
    /// Its encoded size in bytes.
    pub size: usize,
}

impl Entry {
    /// Entries from the library's `(key, size)` pairs.
    pub fn list(pairs: Vec<(String, usize)>) -> Vec<Entry> {
        pairs
            .into_iter()
            .map(|(key, size)| Entry { key, size })
            .collect()
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.cookie_name {
            writeln!(f, "cookie name     {name}")?;
        }
        writeln!(f, "version         {}", self.version)?;
        writeln!(f, "algorithm       {}", self.algorithm)?;
        writeln!(
            f,
            "flags           {} (compressed: {}, pointer: {})",
            self.flags,
            yes_no(self.compressed),
            yes_no(self.pointer)
        )?;
        writeln!(f, "key id          {}", self.key_id)?;
        writeln!(f, "text length     {} chars", self.text_len)?;
        writeln!(f, "raw length      {} bytes", self.raw_len)?;
        writeln!(f, "nonce           {} bytes", self.nonce_len)?;
        writeln!(
            f,
            "ciphertext      {} bytes (+ {} byte tag)",
            self.ciphertext_len, self.tag_len
        )?;
        if let Some(name) = &self.cookie_name {
            let size = name.len() + 1 + self.text_len;
            let budget = DEFAULT_COOKIE_BUDGET;
            let verdict = if size <= budget {
                "within"
            } else {
                "OVER (browsers drop it)"
            };
            writeln!(
                f,
                "name=value      {size} bytes, {verdict} the default {budget}-byte budget"
            )?;
        }
        if !self.authenticated {
            writeln!(
                f,
                "(header only: nothing here is authenticated; `open` with the keys verifies it)"
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for OpenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: Timestamp| format!("{t} ({})", t.relative_to(self.now));
        writeln!(
            f,
            "cookie          {} ({} chars)",
            self.cookie_name, self.text_len
        )?;
        writeln!(f, "session id      {}", self.id)?;
        writeln!(f, "created         {}", time(self.created))?;
        writeln!(f, "last activity   {}", time(self.last_activity))?;
        writeln!(f, "expires         {}", time(self.expires))?;
        if self.expired {
            writeln!(
                f,
                "status          EXPIRED: a server ignores it and starts a fresh session"
            )?;
        } else {
            writeln!(f, "status          valid (not expired)")?;
        }
        if self.old_key {
            writeln!(
                f,
                "opened by key   {} (old key: the next response re-seals it under the primary {})",
                self.key_id, self.primary_key_id
            )?;
        } else {
            writeln!(f, "opened by key   {} (primary key)", self.key_id)?;
        }
        writeln!(f, "algorithm       {}", self.algorithm)?;
        let storage = match self.storage {
            Storage::Pointer => "pointer (the body lives in the store)",
            Storage::Inline => "inline (the whole session is in the cookie)",
        };
        writeln!(f, "storage         {storage}")?;
        writeln!(f, "compressed      {}", yes_no(self.compressed))?;
        let csrf = if self.csrf_token {
            "present (not shown)"
        } else {
            "none"
        };
        writeln!(f, "csrf token      {csrf}")?;
        match self.body {
            Body::Cookie => {}
            Body::InStore => writeln!(
                f,
                "body            in the store under key {} (pass --store to list its entries)",
                self.id
            )?,
            Body::ExpiredNotLoaded => writeln!(
                f,
                "body            not loaded: the session has expired (store key {})",
                self.id
            )?,
            Body::LoadedFromStore => {
                writeln!(f, "body            loaded from the store (key {})", self.id)?;
                if self.body_old_key {
                    writeln!(
                        f,
                        "                the stored body was sealed with an old key; it is \
                         re-sealed on the next save"
                    )?;
                }
            }
        }
        if let Some(entries) = &self.entries {
            write_entries(f, "entries", entries)?;
        }
        if let Some(flash) = &self.flash {
            write_entries(f, "pending flash", flash)?;
        }
        Ok(())
    }
}

/// A count and total, then one aligned line per entry (keys escaped: they are data).
fn write_entries(f: &mut fmt::Formatter<'_>, label: &str, entries: &[Entry]) -> fmt::Result {
    let total: usize = entries.iter().map(|e| e.size).sum();
    writeln!(f, "{label:<15} {} ({total} bytes encoded)", entries.len())?;
    let keys: Vec<String> = entries
        .iter()
        .map(|e| e.key.escape_debug().to_string())
        .collect();
    let width = keys.iter().map(String::len).max().unwrap_or(0);
    for (key, entry) in keys.iter().zip(entries) {
        writeln!(f, "  {key:<width$}  {}", bytes(entry.size))?;
    }
    Ok(())
}

fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_are_escaped_in_text_not_in_json() {
        let report = OpenReport {
            cookie_name: "session".into(),
            text_len: 10,
            id: SessionId::from_bytes([1; 16]),
            created: Timestamp::from_unix(0),
            last_activity: Timestamp::from_unix(0),
            expires: Timestamp::from_unix(60),
            expired: false,
            key_id: KeyId(1),
            old_key: false,
            primary_key_id: KeyId(1),
            algorithm: Algorithm::Aes256GcmSiv,
            storage: Storage::Inline,
            pointer: false,
            compressed: false,
            csrf_token: false,
            body: Body::Cookie,
            body_old_key: false,
            entries: Some(vec![Entry {
                key: "a\nb\"".into(),
                size: 1,
            }]),
            flash: Some(Vec::new()),
            now: OffsetDateTime::UNIX_EPOCH,
        };
        let text = report.to_string();
        assert!(text.contains("  a\\nb\\\"  1 byte\n"), "{text}");
        assert!(
            text.contains("expires         1970-01-01T00:01:00Z (in 1m 0s)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["entries"][0]["key"], "a\nb\"");
        assert_eq!(json["body"], "cookie");
        assert_eq!(json["storage"], "inline");
        assert!(json.get("now").is_none());
    }
}
