//! Arbitrary Cookie / X-Session request headers through `headers::load`: never a panic, a fresh
//! session for junk, and a valid cookie spliced among arbitrary neighbours still opens.
//! The check lives in fuzz/checks.rs, shared with tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = checks::cookie_header(data);
});
