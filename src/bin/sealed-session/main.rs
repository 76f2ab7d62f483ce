//! `sealed-session`: the operator tool for sealed session cookies.
//!
//! - `keygen` prints a fresh secret for `SESSION_KEYS` (and how to rotate).
//! - `inspect COOKIE` reads the clear header and sizes of a cookie; it needs no
//!   key and proves nothing about the cookie.
//! - `open COOKIE` opens a cookie with the keys from `--keys` or `SESSION_KEYS`
//!   and prints its metadata: id, times, expiry, which key opened it, storage,
//!   and each entry's key and size. It never prints values, the CSRF token or
//!   any key; `--store` fetches the body of a pointer cookie from its store.
//!
//! COOKIE may be the bare value, `name=value`, or a whole `Cookie:` or
//! `Set-Cookie:` header line; `-` (or nothing) reads it from standard input,
//! which keeps a live cookie out of the shell history.
//!
//! `inspect` and `open` each build one report ([`report`]) and print it as text
//! or, with `--json`, as one JSON object.
//!
//! Exit codes: 0 success, 1 bad input (cookie, keys, store), 2 usage error.
#![forbid(unsafe_code)]

mod failure;
mod format;
mod input;
mod inspect;
mod keygen;
mod open;
mod report;
mod store;

use std::fmt::Display;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};
use sealed_session::Algorithm;
use serde::Serialize;

use crate::failure::Failure;

/// Exit code for bad input: a cookie, keys or a store the tool cannot use.
const EXIT_BAD_INPUT: u8 = 1;

/// Operator tool for sealed-session cookies: make keys, inspect and open cookies.
///
/// Never prints a key, a secret, a session value or a CSRF token.
#[derive(Debug, Parser)]
#[command(name = "sealed-session", version, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 bad input (cookie, keys, store), 2 usage error.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new random secret (base64url, 32 bytes) for SESSION_KEYS.
    ///
    /// The secret goes to stdout on one line; rotation advice goes to stderr.
    Keygen,
    /// Show a cookie's format version, algorithm, flags, key id and sizes, without any key.
    ///
    /// This reads only the unencrypted header: it proves nothing about who made the cookie.
    Inspect(InspectArgs),
    /// Open a cookie with the keys and show its metadata and entry sizes.
    ///
    /// Shows the session id, created / last activity / expiry times (an expired cookie is
    /// shown as expired, not refused), which key opened it, whether it is inline or a pointer
    /// to a store, compression, whether a CSRF token exists, and each entry's key and size.
    /// Values, the CSRF token and keys are never printed.
    Open(OpenArgs),
}

/// Arguments of `inspect`.
#[derive(Debug, Args)]
struct InspectArgs {
    /// The cookie: its value, `name=value`, or a `Cookie:`/`Set-Cookie:` header line; `-` or
    /// nothing reads standard input.
    #[arg(value_name = "COOKIE", allow_hyphen_values = true)]
    cookie: Option<String>,

    /// With a header line holding several cookies, pick the one with this name (default: the
    /// first).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `open`.
#[derive(Debug, Args)]
struct OpenArgs {
    /// Comma-separated base64 secrets, newest (primary) first, as in SESSION_KEYS=new,old
    /// (required, here or in the environment).
    ///
    /// Prefer the environment variable: command-line arguments are visible to other users
    /// of the machine and end up in shell history.
    #[arg(
        long,
        env = "SESSION_KEYS",
        hide_env_values = true,
        value_name = "K1,K2,..."
    )]
    keys: Option<String>,

    /// Cookie name the value was sealed for (it is bound into the seal) [default: the name in
    /// COOKIE if it has one, else "session"].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Purpose the keys were derived for (the application's `purpose` setting).
    #[arg(long, value_name = "PURPOSE", default_value = "session")]
    purpose: String,

    /// AEAD the application uses [default: the one the cookie's header names].
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    algorithm: Option<AlgorithmArg>,

    /// Store holding the bodies of pointer cookies: `file:DIR` or `redis://host:port[/db]`.
    ///
    /// Without it, a pointer cookie shows only its metadata.
    #[arg(long, value_name = "file:DIR|redis://...")]
    store: Option<String>,

    /// Key prefix of a Redis store.
    #[arg(long, value_name = "PREFIX", default_value = "sealed-session:")]
    redis_prefix: String,

    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,

    /// The cookie: its value, `name=value`, or a `Cookie:`/`Set-Cookie:` header line; `-` or
    /// nothing reads standard input.
    #[arg(value_name = "COOKIE", allow_hyphen_values = true)]
    cookie: Option<String>,
}

/// `--algorithm` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AlgorithmArg {
    /// AES-256-GCM-SIV (the library's default).
    #[value(name = "aes-256-gcm-siv")]
    Aes256GcmSiv,
    /// XChaCha20-Poly1305.
    #[value(name = "xchacha20-poly1305")]
    XChaCha20Poly1305,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Self {
        match a {
            AlgorithmArg::Aes256GcmSiv => Algorithm::Aes256GcmSiv,
            AlgorithmArg::XChaCha20Poly1305 => Algorithm::XChaCha20Poly1305,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen => keygen::run(),
        Command::Inspect(args) => inspect::run(&args).and_then(|r| emit(&r, args.json)),
        Command::Open(args) => {
            let Some(keys) = args.keys.as_deref() else {
                missing_keys();
            };
            open::run(&args, keys).and_then(|r| emit(&r, args.json))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprint!("{f}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// No `--keys` and no `SESSION_KEYS`: a usage error, in clap's format and with its exit code 2.
fn missing_keys() -> ! {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand_mut("open")
        .expect("the open subcommand exists")
        .error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "no keys given: pass --keys K1,K2 or set SESSION_KEYS \
             (comma-separated base64 secrets, newest first)",
        )
        .exit()
}

/// Prints one report on stdout: its text form, or with `json` one JSON object on one line.
fn emit<R: Serialize + Display>(report: &R, json: bool) -> Result<(), Failure> {
    let text = if json {
        let mut line = serde_json::to_string(report)
            .map_err(|e| Failure::msg(format!("could not write the report as JSON: {e}")))?;
        line.push('\n');
        line
    } else {
        report.to_string()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::msg(format!("could not write to stdout: {e}")))
}
