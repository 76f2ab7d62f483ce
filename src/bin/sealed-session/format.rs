//! How single values are written, the same in the text and the JSON reports: key ids,
//! the flags byte, and times (RFC 3339 by `time`, never by hand).

use std::fmt;

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A key id: 8 lowercase hex digits, in text and JSON alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The flags byte: `0x05`, in text and JSON alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A point in time, shown as RFC 3339 in UTC with whole seconds (`2023-11-14T22:13:20Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The time `unix` seconds after the epoch; out of range reads as the epoch.
    pub fn from_unix(unix: i64) -> Self {
        Timestamp(OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    /// RFC 3339 text; fails for a year outside 0000-9999.
    pub fn rfc3339(self) -> Result<String, time::error::Format> {
        self.0
            .to_offset(UtcOffset::UTC)
            .replace_nanosecond(0)
            .expect("0 is a valid nanosecond")
            .format(&Rfc3339)
    }

    /// "in 6d 23h", "5m 0s ago", "now": this time seen from `now`.
    pub fn relative_to(self, now: OffsetDateTime) -> String {
        let secs = (self.0 - now).whole_seconds();
        let abs = secs.unsigned_abs();
        let (d, h, m, s) = (abs / 86_400, abs / 3600 % 24, abs / 60 % 60, abs % 60);
        let span = if d > 0 {
            format!("{d}d {h}h")
        } else if h > 0 {
            format!("{h}h {m}m")
        } else if m > 0 {
            format!("{m}m {s}s")
        } else {
            format!("{s}s")
        };
        match secs {
            0 => "now".to_owned(),
            s if s > 0 => format!("in {span}"),
            _ => format!("{span} ago"),
        }
    }
}

/// RFC 3339, or the unix time for a year RFC 3339 cannot write.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "unix time {}", self.0.unix_timestamp()),
        }
    }
}

/// RFC 3339 or an error: a JSON reader is promised RFC 3339.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.rfc3339().map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

/// Serializes a field by its `Display` text.
pub fn display<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        let t = Timestamp::from_unix(1_700_000_000);
        assert_eq!(t.to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(t.relative_to(t.0 + time::Duration::minutes(5)), "5m 0s ago");
        let later = Timestamp(t.0 + time::Duration::days(2));
        assert_eq!(later.relative_to(t.0), "in 2d 0h");
        assert_eq!(t.relative_to(t.0), "now");
        let offset = Timestamp(t.0.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap()));
        assert_eq!(offset.to_string(), "2023-11-14T22:13:20Z", "always UTC");
    }

    #[test]
    fn out_of_range_time_is_not_rfc3339() {
        // Year -1199: `time` holds it, RFC 3339 has no negative years.
        let far = Timestamp::from_unix(-100_000_000_000);
        assert_eq!(far.to_string(), "unix time -100000000000");
        assert!(serde_json::to_string(&far).is_err());
    }

    #[test]
    fn ids_and_flags_serialize_as_their_text() {
        let json = serde_json::to_string(&(KeyId(0xab), Flags(5))).unwrap();
        assert_eq!(json, r#"["000000ab","0x05"]"#);
    }
}
