//! Arbitrary decrypted plaintext through the envelope decoder and the capped decompressor.
//! The check lives in fuzz/checks.rs, shared with tests/fuzz_corpus.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = checks::envelope(data);
});
