//! What a test does when a server binary it needs (redis-server, PostgreSQL's
//! initdb/pg_ctl) is not installed: it fails with an install hint, unless the
//! user opted out explicitly with `SEALED_SESSION_SKIP_SERVERS=1`. A skipped test
//! then says so on the terminal (past the test harness's output capture), so a
//! skip is never mistaken for a pass.
#![allow(dead_code)]

use std::io::Write as _;

/// Set to `1` to let tests that need a missing server skip instead of failing.
pub const SKIP_ENV: &str = "SEALED_SESSION_SKIP_SERVERS";

/// Call when `what` is not installed. Panics with `install` as the hint unless
/// [`SKIP_ENV`] is `1`; then prints a SKIPPED line straight to the terminal and
/// returns, so the caller returns early.
///
/// # Panics
/// When the server is missing and skipping was not asked for.
pub fn missing(what: &str, install: &str) {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        // `eprintln!` would be captured by the test harness and shown only on failure.
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "SKIPPED {test}: {what} is not installed ({SKIP_ENV}=1); install it with `{install}`"
        );
        return;
    }
    panic!(
        "{what} is not installed: install it with `{install}`, or set {SKIP_ENV}=1 to skip \
         the tests that need it (they then print SKIPPED)"
    );
}
