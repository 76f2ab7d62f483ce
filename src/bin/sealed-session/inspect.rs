//! `inspect`: the clear header and sizes of a cookie, read without any key.

use sealed_session::inspect::Inspection;

use crate::failure::{cookie_failure, Failure};
use crate::format::{Flags, KeyId};
use crate::input::{self, CookieInput};
use crate::report::InspectReport;
use crate::InspectArgs;

/// Reads COOKIE and builds its report.
pub fn run(args: &InspectArgs) -> Result<InspectReport, Failure> {
    let input = input::read(args.cookie.as_deref(), args.name.as_deref())?;
    let inspection = sealed_session::inspect::header(&input.value).map_err(cookie_failure)?;
    Ok(report(input, &inspection))
}

/// The report for what the header says.
fn report(input: CookieInput, ins: &Inspection) -> InspectReport {
    let h = &ins.header;
    InspectReport {
        cookie_name: input.name,
        version: h.version,
        algorithm: h.algorithm,
        flags: Flags(h.flags),
        compressed: h.compressed,
        pointer: h.pointer,
        key_id: KeyId(h.key_id),
        text_len: ins.text_len,
        raw_len: ins.raw_len,
        nonce_len: ins.nonce_len,
        ciphertext_len: ins.ciphertext_len,
        tag_len: ins.tag_len,
        authenticated: false,
    }
}
