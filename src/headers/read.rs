//! What a request brings: the session values to try (from the Cookie header or
//! the configured header) and the AAD context of a fingerprint.
//!
//! The Cookie header is read from its bytes, pair by pair: browsers send other
//! cookies' values as raw UTF-8 (`lang=español`) and some clients send junk, and
//! no neighbour, whatever bytes it holds and wherever it stands, may hide ours.
//! Pairs are split on `;` and only a pair that starts with our name is parsed,
//! the way the `cookie` crate parses it; the work per request is bounded by
//! [`MAX_COOKIE_PAIRS`].

use http::header::COOKIE;
use http::{HeaderMap, Uri};

use crate::config::Transport;
use crate::session::Carrier;
use crate::SessionConfig;

/// At most this many same-named values are tried, bounding the work one request can cause.
pub(crate) const MAX_CANDIDATES: usize = 4;

/// At most this many `;`-separated pairs are looked at over all Cookie headers of a
/// request (browsers keep at most a few hundred cookies per site), so a header of
/// 100,000 tiny cookies costs a bounded scan, not a parse of each.
pub(crate) const MAX_COOKIE_PAIRS: usize = 1024;

/// The values a request brought, in request order: at most [`MAX_CANDIDATES`] of
/// them are kept (on the stack) and tried.
pub(crate) struct Candidates<'h> {
    values: [&'h str; MAX_CANDIDATES],
    len: usize,
    /// The request brought at least one value.
    pub(crate) any: bool,
    /// How they came.
    pub(crate) carrier: Carrier,
}

impl<'h> Candidates<'h> {
    fn new(carrier: Carrier) -> Self {
        Candidates {
            values: [""; MAX_CANDIDATES],
            len: 0,
            any: false,
            carrier,
        }
    }

    /// Keeps `value` if there is room; returns false once full.
    fn push(&mut self, value: &'h str) -> bool {
        self.any = true;
        if self.len < MAX_CANDIDATES {
            self.values[self.len] = value;
            self.len += 1;
        }
        self.len < MAX_CANDIDATES
    }

    /// The values to try, in request order.
    pub(crate) fn values(&self) -> &[&'h str] {
        &self.values[..self.len]
    }
}

/// The values to try, in request order, and which carrier they came in.
pub(crate) fn candidates<'h>(config: &SessionConfig, headers: &'h HeaderMap) -> Candidates<'h> {
    let header = match config.transport() {
        Transport::Cookie => None,
        Transport::Header(h) => Some(h),
        Transport::CookieOrHeader(h) => headers.contains_key(h).then_some(h),
    };
    if let Some(h) = header {
        let mut found = Candidates::new(Carrier::Header);
        let values = headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        for v in values {
            if !found.push(v) {
                break;
            }
        }
        return found;
    }
    let mut found = Candidates::new(Carrier::Cookie);
    let name = config.cookie_name();
    let mut budget = MAX_COOKIE_PAIRS;
    for header in headers.get_all(COOKIE) {
        if !cookie_values(header.as_bytes(), name, &mut budget, &mut found) {
            break;
        }
    }
    found
}

/// Pushes the values of the pairs named `name` in one Cookie header, reading at most
/// `budget` pairs; returns false once no more values are wanted.
///
/// Each pair is split the way the `cookie` crate splits it (at `;`, then at the first
/// `=`, name and value trimmed), but only the name is looked at before the value is
/// known to be ours: a neighbour's value is skipped with one SIMD search for the next
/// `;`, never validated or copied.
fn cookie_values<'h>(
    header: &'h [u8],
    name: &str,
    budget: &mut usize,
    found: &mut Candidates<'h>,
) -> bool {
    let mut rest = Some(header);
    while let Some(bytes) = rest {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let pair = match memchr::memchr(b';', bytes) {
            Some(end) => {
                rest = Some(&bytes[end + 1..]);
                &bytes[..end]
            }
            None => {
                rest = None;
                bytes
            }
        };
        let Some(eq) = memchr::memchr(b'=', pair) else {
            continue;
        };
        // A name that is not UTF-8 cannot be ours; the value is checked only then.
        let Ok(n) = std::str::from_utf8(&pair[..eq]) else {
            continue;
        };
        if n.trim() != name {
            continue;
        }
        if let Ok(value) = std::str::from_utf8(&pair[eq + 1..]) {
            if !found.push(value.trim()) {
                return false;
            }
        }
    }
    true
}

/// The AAD context when a fingerprint is configured: cookie name, 0x01, fingerprint.
/// Without one the context is the cookie name, borrowed from the config.
pub(crate) fn fingerprint_context(
    config: &SessionConfig,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<Vec<u8>> {
    let f = config.fingerprint()?;
    let mut ctx = config.cookie_name().as_bytes().to_vec();
    ctx.push(0x01);
    ctx.extend(f(headers, uri));
    Some(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(header: &[u8]) -> Vec<String> {
        let mut found = Candidates::new(Carrier::Cookie);
        let mut budget = MAX_COOKIE_PAIRS;
        cookie_values(header, "session", &mut budget, &mut found);
        found.values().iter().map(|v| v.to_string()).collect()
    }

    fn the_cookie_crates(header: &str) -> Vec<String> {
        cookie::Cookie::split_parse(header)
            .flatten()
            .filter(|c| c.name() == "session")
            .filter_map(|c| c.value_raw().map(str::to_owned))
            .take(MAX_CANDIDATES)
            .collect()
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("session".to_owned()),
            Just("sessions".to_owned()),
            Just("xsession".to_owned()),
            Just("ses".to_owned()),
            "[a-z]{1,6}",
            "[ \t\u{a0}]{0,2}session[ \t]{0,2}",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_=\"\\- \t\u{e9}\u{65e5}]{0,12}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// On any valid header the scan finds exactly the values the `cookie` crate does.
        #[test]
        fn agrees_with_the_cookie_crate(
            pairs in proptest::collection::vec((name(), value(), "[ ;]{0,2}"), 0..12),
        ) {
            let header: String = pairs
                .iter()
                .map(|(n, v, sep)| format!("{n}={v}{sep}"))
                .collect::<Vec<_>>()
                .join(";");
            prop_assert_eq!(ours(header.as_bytes()), the_cookie_crates(&header));
        }

        /// Bytes that are not UTF-8, anywhere around our pair, never hide it.
        #[test]
        fn junk_around_ours_never_hides_it(
            before in proptest::collection::vec(any::<u8>(), 0..40),
            after in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let strip = |b: &[u8]| b.iter().copied().filter(|&c| c != b';').collect::<Vec<u8>>();
            let mut header = strip(&before);
            header.extend_from_slice(b"; session=AbC-_1; ");
            header.extend_from_slice(&strip(&after));
            prop_assert_eq!(ours(&header), vec!["AbC-_1".to_owned()]);
        }
    }

    #[test]
    fn the_scan_is_bounded() {
        let mut header = "a=; ".repeat(100_000).into_bytes();
        header.extend_from_slice(b"session=late");
        assert!(
            ours(&header).is_empty(),
            "pairs past the limit are not read"
        );
        let mut header = "a=; ".repeat(MAX_COOKIE_PAIRS - 1).into_bytes();
        header.extend_from_slice(b"session=last");
        assert_eq!(ours(&header), vec!["last".to_owned()]);
    }
}
