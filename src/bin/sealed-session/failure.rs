//! What the tool says when it fails: one `error:` line and any `hint:` lines, on stderr.
//!
//! The library's `Display` texts are for people, not API, so the errors an operator
//! meets with a cookie or keys (the tool's contract, see `tests/cli.rs`) are worded
//! here from the error's variant and kind; anything else falls back to the library's
//! text and its `source()` chain (store backends keep their cause there).

use std::fmt;

use sealed_session::{Algorithm, Error, ErrorKind, Keyring};

use crate::format::{KeyId, Timestamp};

/// Bytes before the nonce in wire format v1: version, flags and a 4-byte key id.
const HEADER_LEN: usize = 6;

/// A failure to report: a message and optional hints.
#[derive(Debug)]
pub struct Failure {
    message: String,
    hints: Vec<String>,
}

impl Failure {
    /// A failure with this message and no hint.
    pub fn msg(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a hint line.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

/// `error: ...` then `hint: ...` lines, each ending in a newline.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        for h in &self.hints {
            writeln!(f, "hint: {h}")?;
        }
        Ok(())
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::msg(message(&e))
    }
}

/// The tool's wording of a library error.
fn message(e: &Error) -> String {
    match e {
        Error::NotBase64 => "malformed session value: not base64url".to_owned(),
        Error::Truncated { len } if *len < HEADER_LEN => format!(
            "malformed session value: too short for a header ({len} bytes; the header is \
             {HEADER_LEN})"
        ),
        Error::Truncated { len } => {
            format!("malformed session value: too short for nonce and tag ({len} bytes in all)")
        }
        Error::UnsupportedVersion(v) => {
            format!("unsupported session format version {v} (this build reads version 1)")
        }
        Error::UnsupportedFlags(flags) => format!("unsupported session flags {flags:#04x}"),
        Error::UnknownKeyId(id) => format!(
            "unknown key id {}: the cookie was sealed with a key the given keys do not hold",
            KeyId(*id)
        ),
        Error::Authentication => "session value failed authentication".to_owned(),
        Error::Expired { expired_at } => format!(
            "the session expired at {}",
            Timestamp::from_unix(*expired_at)
        ),
        Error::MissingInStore => {
            "the session body is missing from the store (expired or evicted)".to_owned()
        }
        Error::InvalidKey(why) => format!("invalid key: {why}"),
        other => with_sources(other),
    }
}

/// The library's text followed by each `source()` in turn.
fn with_sources(e: &Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Errors from reading the clear header (no key involved), with a hint on what to check.
pub fn cookie_failure(e: Error) -> Failure {
    let hint = match (&e, e.kind()) {
        (Error::NotBase64, _) => Some(
            "a sealed value is URL-safe base64 without padding; pass the value alone, \
             `name=value`, or a Cookie:/Set-Cookie: header line, and check it was not cut off",
        ),
        (_, ErrorKind::Malformed) => {
            Some("the value is too short to be a sealed session: was it cut off?")
        }
        (_, ErrorKind::UnsupportedVersion) => {
            Some("it was written by another program or a newer format; this build reads version 1")
        }
        (_, ErrorKind::UnsupportedFlags) => Some(
            "reserved flag bits are set or the algorithm is unknown: not a value this build wrote",
        ),
        _ => None,
    };
    let f = Failure::from(e);
    match hint {
        Some(h) => f.hint(h),
        None => f,
    }
}

/// What `open` was trying when the keys did not open the cookie.
pub struct OpenAttempt<'a> {
    /// The keys, derived for `purpose` and `algorithm`.
    pub keyring: &'a Keyring,
    /// Cookie name used as context.
    pub name: &'a str,
    /// The `--purpose`.
    pub purpose: &'a str,
    /// The algorithm tried.
    pub algorithm: Algorithm,
    /// The algorithm the cookie's header names.
    pub header_algorithm: Algorithm,
}

/// Errors from opening with the keys, with hints on which setting to check.
pub fn open_failure(e: Error, attempt: &OpenAttempt<'_>) -> Failure {
    let algorithm = attempt.algorithm;
    match e.kind() {
        ErrorKind::UnknownKeyId => {
            let ids: Vec<String> = attempt
                .keyring
                .key_ids()
                .into_iter()
                .map(|id| KeyId(id).to_string())
                .collect();
            let mut f = Failure::from(e).hint(format!(
                "the given keys have ids {} for purpose {:?} and {algorithm}",
                ids.join(", "),
                attempt.purpose
            ));
            if algorithm != attempt.header_algorithm {
                f = f.hint(format!(
                    "the cookie says it was sealed with {}, not {algorithm} (--algorithm)",
                    attempt.header_algorithm
                ));
            }
            f.hint(
                "it was sealed with another secret (rotated out, or another app's), \
                 or for another --purpose",
            )
        }
        ErrorKind::Authentication => Failure::from(e).hint(format!(
            "the value was changed or truncated, or it was sealed for a cookie name other than \
             {:?} (--name)",
            attempt.name
        )),
        _ => cookie_failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_says_which_part_is_missing() {
        let header = Failure::from(Error::Truncated { len: 3 }).message;
        assert!(header.contains("too short for a header"), "{header}");
        let tail = Failure::from(Error::Truncated { len: 8 }).message;
        assert!(tail.contains("too short for nonce and tag"), "{tail}");
    }

    #[test]
    fn store_errors_keep_their_cause() {
        let e = Error::store("load", std::io::Error::other("disk on fire"));
        let text = Failure::from(e).to_string();
        assert!(text.starts_with("error: "), "{text}");
        assert!(text.ends_with(": disk on fire\n"), "{text}");
    }

    #[test]
    fn hints_follow_the_error() {
        let text = cookie_failure(Error::NotBase64).to_string();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("error: malformed session value: not base64url")
        );
        assert!(lines.next().is_some_and(|l| l.starts_with("hint: ")));
    }
}
