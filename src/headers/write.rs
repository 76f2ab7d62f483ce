//! Writing: a sealed value as a Set-Cookie (built in one buffer) or as the
//! configured header, and the removal after `destroy`.

use std::io::Write as _;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::codec;
use crate::session::Carrier;
use crate::{Error, SessionConfig};

/// Writes a sealed value the way the session travels: as the header, or as a
/// Set-Cookie built in one buffer (`name=` + base64url + the preformatted
/// attributes + `Max-Age={ttl}` when the session's policy makes it `persistent`).
///
/// # Errors
/// [`Error::InvalidHeader`] if the text is not a valid header value (it always is).
pub(crate) fn write_value(
    config: &SessionConfig,
    raw: &[u8],
    carrier: Carrier,
    persistent: bool,
    ttl: i64,
    headers: &mut HeaderMap,
) -> Result<(), Error> {
    let text_len = codec::text_len(raw.len());
    if let (Carrier::Header, Some(h)) = (carrier, config.transport().header()) {
        let mut text = Vec::with_capacity(text_len);
        codec::encode_text_into(raw, &mut text);
        let v = HeaderValue::try_from(text).map_err(|_| Error::InvalidHeader("session"))?;
        headers.insert(h.clone(), v);
        return Ok(());
    }
    let spec = config.cookie();
    let name = spec.name().as_bytes();
    let attributes = spec.attributes().as_bytes();
    let mut text = Vec::with_capacity(name.len() + 1 + text_len + attributes.len() + 32);
    text.extend_from_slice(name);
    text.push(b'=');
    codec::encode_text_into(raw, &mut text);
    text.extend_from_slice(attributes);
    if persistent {
        // The cookie crate writes Max-Age right after Path/Domain, where the attributes end.
        let _ = write!(text, "; Max-Age={ttl}");
    }
    let v = HeaderValue::try_from(text).map_err(|_| Error::InvalidHeader("Set-Cookie"))?;
    headers.append(SET_COOKIE, v);
    Ok(())
}

/// Tells the client to drop its value: an empty header, or a removal cookie with the
/// same name, path and domain.
pub(crate) fn write_removal(config: &SessionConfig, carrier: Carrier, headers: &mut HeaderMap) {
    if let (Carrier::Header, Some(h)) = (carrier, config.transport().header()) {
        headers.insert(h.clone(), HeaderValue::from_static(""));
        return;
    }
    let mut cookie = config.cookie().cookie("");
    cookie.make_removal();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, v);
    }
}
