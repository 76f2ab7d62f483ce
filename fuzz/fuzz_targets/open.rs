//! Arbitrary bytes (as text, and base64url-encoded) through `Codec::open` under a fixed keyring.
//! The check lives in fuzz/checks.rs, shared with tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = checks::open(data);
});
