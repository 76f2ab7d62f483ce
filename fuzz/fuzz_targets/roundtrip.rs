//! Arbitrary session data: seal -> open and save -> Set-Cookie -> load give it back.
//! The check lives in fuzz/checks.rs, shared with tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::roundtrip(data);
});
