//! What a request brings: the session values to try (from the Cookie header or
//! the configured header) and the AAD context of a fingerprint.

use cookie::Cookie;
use http::header::COOKIE;
use http::{HeaderMap, Uri};

use crate::config::Transport;
use crate::session::Carrier;
use crate::SessionConfig;

/// At most this many same-named values are tried, bounding the work one request can cause.
pub(crate) const MAX_CANDIDATES: usize = 4;

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
    'headers: for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == name {
                if let Some(v) = cookie.value_raw() {
                    if !found.push(v) {
                        break 'headers;
                    }
                }
            }
        }
    }
    found
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
