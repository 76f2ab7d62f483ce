//! `keygen`: one fresh secret on stdout, how to use and rotate it on stderr.
//!
//! The advice goes to stderr so that `SESSION_KEYS=$(sealed-session keygen)` captures the
//! secret alone, and it never repeats the secret.

use std::io::Write as _;

use sealed_session::Keyring;
use zeroize::Zeroizing;

use crate::failure::Failure;

/// How to install and rotate a secret.
const ADVICE: &str = "\
Set it as the only key:   SESSION_KEYS=<this secret>
Rotate:   put the new secret first and keep the old one after it,
          SESSION_KEYS=new,old   (the first key seals, every key opens;
          sessions under the old key are re-sealed on their next response).
Retire the old secret once the longest session lifetime has passed.
";

/// Prints a new secret (base64url, no padding) and the advice.
pub fn run() -> Result<(), Failure> {
    let secret = Zeroizing::new(Keyring::generate_secret_base64()?);
    let mut line = Zeroizing::new(String::with_capacity(secret.len() + 1));
    line.push_str(&secret);
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::msg(format!("could not write to stdout: {e}")))?;
    eprint!("{ADVICE}");
    Ok(())
}
