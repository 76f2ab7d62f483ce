//! Reading the COOKIE argument: from the command line or standard input, as a bare
//! value, `name=value`, or a `Cookie:`/`Set-Cookie:` header line.

use std::io::Read as _;

use crate::failure::Failure;

/// The cookie the user gave: the value and, when the input said, the cookie's name.
#[derive(Debug)]
pub struct CookieInput {
    /// The cookie's name, when the input was `name=value` or a header line.
    pub name: Option<String>,
    /// The sealed value.
    pub value: String,
}

/// Reads COOKIE from `arg`, or from standard input when it is `-` or absent; with
/// several cookies in a header line, `wanted` picks one by name.
pub fn read(arg: Option<&str>, wanted: Option<&str>) -> Result<CookieInput, Failure> {
    match arg {
        Some(a) if a != "-" => parse(a, wanted),
        _ => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| Failure::msg(format!("could not read the cookie from stdin: {e}")))?;
            parse(&buf, wanted)
        }
    }
}

/// Accepts a bare value, `name=value`, or a `Cookie:`/`Set-Cookie:` line (prefix optional).
///
/// A sealed value is base64url without padding, so it never holds `=` or `;`: any `=` means
/// the input is a cookie string, which the `cookie` crate splits into pairs. With several
/// pairs, the one named `wanted` wins, else the first (a Set-Cookie line's attributes come
/// after its pair).
pub fn parse(input: &str, wanted: Option<&str>) -> Result<CookieInput, Failure> {
    let mut text = strip_quotes(input.trim());
    for prefix in ["set-cookie:", "cookie:"] {
        if let Some(rest) = strip_prefix_ignore_case(text, prefix) {
            text = strip_quotes(rest.trim());
            break;
        }
    }
    if !text.contains('=') {
        let value = strip_quotes(text.split(';').next().unwrap_or("").trim());
        if value.is_empty() {
            return Err(Failure::msg("no cookie given (the input is empty)"));
        }
        return Ok(CookieInput {
            name: None,
            value: value.to_owned(),
        });
    }
    let pairs: Vec<_> = cookie::Cookie::split_parse(text).flatten().collect();
    let chosen = wanted
        .and_then(|w| pairs.iter().find(|c| c.name() == w))
        .or_else(|| pairs.first())
        .ok_or_else(|| {
            Failure::msg("no name=value pair found in the cookie text")
                .hint("pass the value alone, `name=value`, or a Cookie:/Set-Cookie: header line")
        })?;
    let value = strip_quotes(chosen.value_trimmed().trim());
    if value.is_empty() {
        return Err(Failure::msg(format!(
            "cookie {:?} has an empty value (a removal cookie, or the value was cut off)",
            chosen.name()
        )));
    }
    let name = chosen.name().trim();
    Ok(CookieInput {
        name: (!name.is_empty()).then(|| name.to_owned()),
        value: value.to_owned(),
    })
}

/// `text` without an ASCII `prefix` matched case-insensitively, if it starts with it.
fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `s` without one pair of surrounding double or single quotes.
fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.trim();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_input_forms() {
        let v = "AQAAAAAA";
        for text in [
            v.to_owned(),
            format!("  {v}\n"),
            format!("\"{v}\""),
            format!("session={v}"),
            format!("session=\"{v}\""),
            format!("Cookie: session={v}; other=x"),
            format!("Set-Cookie: session={v}; Path=/; HttpOnly; Secure"),
            format!("set-cookie:session={v}"),
        ] {
            let got = parse(&text, None).unwrap_or_else(|f| panic!("{text}: {f}"));
            assert_eq!(got.value, v, "{text}");
        }
        let got = parse(&format!("Cookie: a=1; sid={v}"), Some("sid")).unwrap();
        assert_eq!((got.name.as_deref(), got.value.as_str()), (Some("sid"), v));
        let got = parse(&format!("a=1; sid={v}"), None).unwrap();
        assert_eq!(got.value, "1");
        assert!(parse("  ", None).is_err());
        assert!(parse("session=", None).is_err());
    }

    #[test]
    fn prefix_match_is_safe_on_multibyte_text() {
        assert_eq!(strip_prefix_ignore_case("COOKIE: x", "cookie:"), Some(" x"));
        assert_eq!(strip_prefix_ignore_case("cooki\u{e9}: x", "cookie:"), None);
        assert_eq!(strip_prefix_ignore_case("é", "cookie:"), None);
    }
}
