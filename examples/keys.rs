//! Prints a fresh secret for `SESSION_KEYS` and how to rotate keys.
//!
//! ```text
//! cargo run --example keys
//! ```

use sealed_session::Keyring;

fn main() -> Result<(), sealed_session::Error> {
    let secret = Keyring::generate_secret_base64()?;
    println!("{secret}");
    eprintln!();
    eprintln!("Use it:      SESSION_KEYS={secret}");
    eprintln!("Rotate:      put the new secret first, keep the old one after it:");
    eprintln!("             SESSION_KEYS=<new>,{secret}");
    eprintln!("             The first key seals; every key opens. Sessions sealed with an old key");
    eprintln!("             are re-sealed with the new one on their next response.");
    eprintln!("Retire:      drop the old secret once the longest session lifetime has passed.");
    Ok(())
}
