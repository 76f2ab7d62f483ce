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
//! Exit codes: 0 success, 1 bad input (cookie, keys, store), 2 usage error.

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sealed_session::http::Description;
use sealed_session::store::{FileStore, SessionStore};
use sealed_session::{Algorithm, Error, Inspection, Keyring, SessionConfig, DEFAULT_COOKIE_NAME};
use time::OffsetDateTime;

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

/// A failure to report: a message and optional hints, all on stderr.
struct Failure {
    message: String,
    hints: Vec<String>,
}

impl Failure {
    fn msg(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hints: Vec::new(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

/// Library errors, with their source chain (store backends keep their cause there).
impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let _ = write!(message, ": {s}");
            source = s.source();
        }
        Failure::msg(message)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen => keygen(),
        Command::Inspect(args) => run_inspect(&args),
        Command::Open(args) => run_open(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            for h in &f.hints {
                eprintln!("hint: {h}");
            }
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// keygen

fn keygen() -> Result<(), Failure> {
    let secret = Keyring::generate_secret_base64()?;
    println!("{secret}");
    eprintln!("Set it as the only key:   SESSION_KEYS=<this secret>");
    eprintln!("Rotate:   put the new secret first and keep the old one after it,");
    eprintln!("          SESSION_KEYS=new,old   (the first key seals, every key opens;");
    eprintln!("          sessions under the old key are re-sealed on their next response).");
    eprintln!("Retire the old secret once the longest session lifetime has passed.");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// reading the cookie argument

/// The cookie the user gave: the value and, when the input said, the cookie's name.
#[derive(Debug)]
struct CookieInput {
    name: Option<String>,
    value: String,
}

fn read_cookie_arg(arg: Option<&str>, wanted: Option<&str>) -> Result<CookieInput, Failure> {
    let text = match arg {
        Some(a) if a != "-" => a.to_owned(),
        _ => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .map_err(|e| Failure::msg(format!("could not read the cookie from stdin: {e}")))?;
            buf
        }
    };
    parse_cookie_input(&text, wanted)
}

/// Accepts a bare value, `name=value`, or a `Cookie:`/`Set-Cookie:` line (prefix optional).
///
/// A sealed value is base64url without padding, so it never holds `=` or `;`: any `=` means
/// the input is a cookie string, which the `cookie` crate splits into pairs. With several
/// pairs, the one named `wanted` wins, else the first (a Set-Cookie line's attributes come
/// after its pair).
fn parse_cookie_input(input: &str, wanted: Option<&str>) -> Result<CookieInput, Failure> {
    let mut text = strip_quotes(input.trim());
    for prefix in ["set-cookie:", "cookie:"] {
        if text.len() >= prefix.len()
            && text.is_char_boundary(prefix.len())
            && text[..prefix.len()].eq_ignore_ascii_case(prefix)
        {
            text = strip_quotes(text[prefix.len()..].trim());
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

fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.trim();
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// inspect

fn run_inspect(args: &InspectArgs) -> Result<(), Failure> {
    let input = read_cookie_arg(args.cookie.as_deref(), args.name.as_deref())?;
    let ins = sealed_session::inspect(&input.value).map_err(cookie_failure)?;
    if args.json {
        println!("{}", inspection_json(&input, &ins));
    } else {
        print!("{}", inspection_text(&input, &ins));
    }
    Ok(())
}

fn inspection_text(input: &CookieInput, ins: &Inspection) -> String {
    let h = &ins.header;
    let mut out = String::new();
    if let Some(name) = &input.name {
        let _ = writeln!(out, "cookie name     {name}");
    }
    let _ = writeln!(out, "version         {}", h.version);
    let _ = writeln!(out, "algorithm       {}", h.algorithm);
    let _ = writeln!(
        out,
        "flags           {:#04x} (compressed: {}, pointer: {})",
        h.flags(),
        yes_no(h.compressed),
        yes_no(h.pointer)
    );
    let _ = writeln!(out, "key id          {:08x}", h.key_id);
    let _ = writeln!(out, "text length     {} chars", ins.text_len);
    let _ = writeln!(out, "raw length      {} bytes", ins.raw_len);
    let _ = writeln!(out, "nonce           {} bytes", ins.nonce_len);
    let _ = writeln!(
        out,
        "ciphertext      {} bytes (+ {} byte tag)",
        ins.ciphertext_len,
        sealed_session::format::TAG_LEN
    );
    if let Some(name) = &input.name {
        let size = name.len() + 1 + ins.text_len;
        let budget = sealed_session::DEFAULT_COOKIE_BUDGET;
        let verdict = if size <= budget {
            "within"
        } else {
            "OVER (browsers drop it)"
        };
        let _ = writeln!(
            out,
            "name=value      {size} bytes, {verdict} the default {budget}-byte budget"
        );
    }
    out.push_str(
        "(header only: nothing here is authenticated; `open` with the keys verifies it)\n",
    );
    out
}

fn inspection_json(input: &CookieInput, ins: &Inspection) -> String {
    let h = &ins.header;
    let mut j = JsonObject::new();
    j.opt_str("cookie_name", input.name.as_deref());
    j.num("version", h.version);
    j.str("algorithm", h.algorithm.name());
    j.str("flags", &format!("{:#04x}", h.flags()));
    j.bool("compressed", h.compressed);
    j.bool("pointer", h.pointer);
    j.str("key_id", &format!("{:08x}", h.key_id));
    j.num("text_len", ins.text_len);
    j.num("raw_len", ins.raw_len);
    j.num("nonce_len", ins.nonce_len);
    j.num("ciphertext_len", ins.ciphertext_len);
    j.num("tag_len", sealed_session::format::TAG_LEN);
    j.bool("authenticated", false);
    j.finish()
}

// ---------------------------------------------------------------------------------------------
// open

/// Where the session body is, as far as `open` could tell.
enum BodyView {
    /// Inline cookie: the body is in the cookie.
    Inline {
        entries: Vec<(String, usize)>,
        flash: Vec<(String, usize)>,
    },
    /// Pointer cookie, no `--store`: the body is in the store, not looked at.
    InStore,
    /// Pointer cookie loaded through `--store`.
    Loaded {
        entries: Vec<(String, usize)>,
        flash: Vec<(String, usize)>,
        /// The store body (not the cookie) was sealed with an old key.
        body_old_key: bool,
    },
    /// Pointer cookie with `--store`, but expired: servers ignore it, so the body was not fetched.
    ExpiredNotLoaded,
}

struct OpenReport {
    name: String,
    text_len: usize,
    desc: Description,
    primary_key_id: u32,
    body: BodyView,
    now: OffsetDateTime,
}

fn run_open(args: &OpenArgs) -> Result<(), Failure> {
    let Some(keys) = &args.keys else {
        // A usage error: clap's format and exit code 2.
        let mut cli = <Cli as clap::CommandFactory>::command();
        cli.build();
        cli.find_subcommand_mut("open")
            .expect("the open subcommand exists")
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no keys given: pass --keys K1,K2 or set SESSION_KEYS \
                 (comma-separated base64 secrets, newest first)",
            )
            .exit();
    };
    let keyring = Keyring::from_base64(keys).map_err(|e| {
        Failure::from(e).hint(
            "--keys / SESSION_KEYS takes comma-separated base64 secrets of at least 32 bytes, \
             newest first (`sealed-session keygen` makes one)",
        )
    })?;
    let input = read_cookie_arg(args.cookie.as_deref(), args.name.as_deref())?;
    let name = args
        .name
        .clone()
        .or_else(|| input.name.clone())
        .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
    // The clear header first: malformed, version and flag errors need no key.
    let ins = sealed_session::inspect(&input.value).map_err(cookie_failure)?;
    let algorithm = args
        .algorithm
        .map(Algorithm::from)
        .unwrap_or(ins.header.algorithm);

    let config = SessionConfig::builder(keyring)
        .cookie_name(name.clone())
        .purpose(args.purpose.clone())
        .algorithm(algorithm)
        // A tool reads whatever it is given; the browser budget is the app's business.
        .cookie_budget(1 << 20)
        .build()?;
    let primary_key_id = config.codec().keyring().primary_key_id();

    let desc = sealed_session::http::describe(&config, &input.value)
        .map_err(|e| open_failure(e, &config, &name, &args.purpose, algorithm, &ins))?;

    let body = if !desc.header.pointer {
        BodyView::Inline {
            entries: desc.entries.clone().unwrap_or_default(),
            flash: desc.flash.clone().unwrap_or_default(),
        }
    } else if let Some(spec) = &args.store {
        if desc.expired {
            BodyView::ExpiredNotLoaded
        } else {
            load_from_store(args, spec, &config, &input.value, &desc)?
        }
    } else {
        BodyView::InStore
    };

    let report = OpenReport {
        name,
        text_len: ins.text_len,
        desc,
        primary_key_id,
        body,
        now: config.clock().now(),
    };
    if args.json {
        println!("{}", open_json(&report));
    } else {
        print!("{}", open_text(&report));
    }
    Ok(())
}

fn load_from_store(
    args: &OpenArgs,
    spec: &str,
    config: &SessionConfig,
    value: &str,
    desc: &Description,
) -> Result<BodyView, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("could not start the async runtime: {e}")))?;
    runtime.block_on(async {
        let store = open_store(spec, &args.redis_prefix).await?;
        // Same settings as `config` (the cloned keyring keeps purpose and algorithm), plus
        // the store.
        let keyring = config.codec().keyring().clone();
        let with_store = SessionConfig::builder(keyring)
            .cookie_name(config.cookie_name())
            .cookie_budget(config.cookie_budget())
            .store_arc(store)
            .build()?;
        let session = sealed_session::http::open(&with_store, value)
            .await
            .map_err(|e| {
                let f = Failure::from(e);
                f.hint(format!(
                    "session id {} (the store key), expires {}",
                    desc.id,
                    rfc3339(desc.expires_at)
                ))
            })?;
        if session.id() != desc.id {
            return Err(Failure::msg(
                "the store returned a body for another session id",
            ));
        }
        Ok(BodyView::Loaded {
            entries: session.entries(),
            flash: session.flash_entries(),
            body_old_key: session.opened_with_old_key() && !desc.old_key,
        })
    })
}

async fn open_store(
    spec: &str,
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))] redis_prefix: &str,
) -> Result<std::sync::Arc<dyn SessionStore>, Failure> {
    if let Some(dir) = spec.strip_prefix("file:") {
        if dir.is_empty() {
            return Err(Failure::msg(
                "--store file: needs a directory, e.g. file:/var/lib/sessions",
            ));
        }
        // Opening a FileStore creates a missing directory: a typo should not do that.
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Failure::msg(format!("store path {dir} is not a directory"))),
            Err(e) => {
                return Err(Failure::msg(format!(
                    "cannot use store directory {dir}: {e}"
                )))
            }
        }
        return Ok(std::sync::Arc::new(FileStore::open(dir).await?));
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        #[cfg(feature = "redis")]
        {
            let store =
                sealed_session::store::RedisStore::connect_with_prefix(spec, redis_prefix).await?;
            return Ok(std::sync::Arc::new(store));
        }
        #[cfg(not(feature = "redis"))]
        {
            return Err(Failure::msg(
                "this build has no Redis support; rebuild with --features cli,redis",
            ));
        }
    }
    Err(Failure::msg(format!(
        "unknown --store {spec:?}: use file:DIR or redis://host:port"
    )))
}

/// Errors from reading the clear header (no key involved).
fn cookie_failure(e: Error) -> Failure {
    let hint = match &e {
        Error::Malformed("not base64url") => Some(
            "a sealed value is URL-safe base64 without padding; pass the value alone, \
             `name=value`, or a Cookie:/Set-Cookie: header line, and check it was not cut off",
        ),
        Error::Malformed(_) => {
            Some("the value is too short to be a sealed session: was it cut off?")
        }
        Error::UnsupportedVersion(_) => {
            Some("it was written by another program or a newer format; this build reads version 1")
        }
        Error::UnsupportedFlags(_) => Some(
            "reserved flag bits are set or the algorithm is unknown: not a value this build wrote",
        ),
        _ => None,
    };
    let f = Failure::from(e);
    match hint {
        Some(h) => f.hint(h),
        None => f,
    }
}

/// Errors from opening with the keys.
fn open_failure(
    e: Error,
    config: &SessionConfig,
    name: &str,
    purpose: &str,
    algorithm: Algorithm,
    ins: &Inspection,
) -> Failure {
    match &e {
        Error::UnknownKeyId(_) => {
            let ids: Vec<String> = config
                .codec()
                .keyring()
                .key_ids()
                .iter()
                .map(|id| format!("{id:08x}"))
                .collect();
            let mut f = Failure::from(e).hint(format!(
                "the given keys have ids {} for purpose {purpose:?} and {algorithm}",
                ids.join(", ")
            ));
            if algorithm != ins.header.algorithm {
                f = f.hint(format!(
                    "the cookie says it was sealed with {}, not {algorithm} (--algorithm)",
                    ins.header.algorithm
                ));
            }
            f.hint(
                "it was sealed with another secret (rotated out, or another app's), \
                 or for another --purpose",
            )
        }
        Error::Authentication => Failure::from(e).hint(format!(
            "the value was changed or truncated, or it was sealed for a cookie name other than \
             {name:?} (--name)"
        )),
        _ => cookie_failure(e),
    }
}

fn open_text(r: &OpenReport) -> String {
    let d = &r.desc;
    let mut out = String::new();
    let storage = if d.header.pointer {
        "pointer (the body lives in the store)"
    } else {
        "inline (the whole session is in the cookie)"
    };
    let _ = writeln!(out, "cookie          {} ({} chars)", r.name, r.text_len);
    let _ = writeln!(out, "session id      {}", d.id);
    let _ = writeln!(
        out,
        "created         {} ({})",
        rfc3339(d.created_at),
        relative(d.created_at, r.now)
    );
    let _ = writeln!(
        out,
        "last activity   {} ({})",
        rfc3339(d.last_activity),
        relative(d.last_activity, r.now)
    );
    let _ = writeln!(
        out,
        "expires         {} ({})",
        rfc3339(d.expires_at),
        relative(d.expires_at, r.now)
    );
    if d.expired {
        let _ = writeln!(
            out,
            "status          EXPIRED: a server ignores it and starts a fresh session"
        );
    } else {
        let _ = writeln!(out, "status          valid (not expired)");
    }
    if d.old_key {
        let _ = writeln!(
            out,
            "opened by key   {:08x} (old key: the next response re-seals it under the primary {:08x})",
            d.header.key_id, r.primary_key_id
        );
    } else {
        let _ = writeln!(out, "opened by key   {:08x} (primary key)", d.header.key_id);
    }
    let _ = writeln!(out, "algorithm       {}", d.header.algorithm);
    let _ = writeln!(out, "storage         {storage}");
    let _ = writeln!(out, "compressed      {}", yes_no(d.header.compressed));
    let _ = writeln!(
        out,
        "csrf token      {}",
        if d.has_csrf_token {
            "present (not shown)"
        } else {
            "none"
        }
    );
    match &r.body {
        BodyView::Inline { entries, flash } => {
            write_entries(&mut out, "entries", entries);
            write_entries(&mut out, "pending flash", flash);
        }
        BodyView::InStore => {
            let _ = writeln!(
                out,
                "body            in the store under key {} (pass --store to list its entries)",
                d.id
            );
        }
        BodyView::ExpiredNotLoaded => {
            let _ = writeln!(
                out,
                "body            not loaded: the session has expired (store key {})",
                d.id
            );
        }
        BodyView::Loaded {
            entries,
            flash,
            body_old_key,
        } => {
            let _ = writeln!(out, "body            loaded from the store (key {})", d.id);
            if *body_old_key {
                let _ = writeln!(
                    out,
                    "                the stored body was sealed with an old key; it is re-sealed on the next save"
                );
            }
            write_entries(&mut out, "entries", entries);
            write_entries(&mut out, "pending flash", flash);
        }
    }
    out
}

fn write_entries(out: &mut String, label: &str, entries: &[(String, usize)]) {
    let total: usize = entries.iter().map(|(_, s)| s).sum();
    let _ = writeln!(
        out,
        "{label:<15} {} ({} bytes encoded)",
        entries.len(),
        total
    );
    let width = entries
        .iter()
        .map(|(k, _)| k.escape_debug().to_string().len())
        .max()
        .unwrap_or(0);
    for (key, size) in entries {
        let key = key.escape_debug().to_string();
        let _ = writeln!(out, "  {key:<width$}  {}", bytes(*size));
    }
}

fn open_json(r: &OpenReport) -> String {
    let d = &r.desc;
    let mut j = JsonObject::new();
    j.str("cookie_name", &r.name);
    j.num("text_len", r.text_len);
    j.str("id", &d.id.to_string());
    j.str("created", &rfc3339(d.created_at));
    j.str("last_activity", &rfc3339(d.last_activity));
    j.str("expires", &rfc3339(d.expires_at));
    j.bool("expired", d.expired);
    j.str("key_id", &format!("{:08x}", d.header.key_id));
    j.bool("old_key", d.old_key);
    j.str("primary_key_id", &format!("{:08x}", r.primary_key_id));
    j.str("algorithm", d.header.algorithm.name());
    j.str(
        "storage",
        if d.header.pointer {
            "pointer"
        } else {
            "inline"
        },
    );
    j.bool("pointer", d.header.pointer);
    j.bool("compressed", d.header.compressed);
    j.bool("csrf_token", d.has_csrf_token);
    let (body, entries, flash, body_old_key) = match &r.body {
        BodyView::Inline { entries, flash } => ("cookie", Some(entries), Some(flash), false),
        BodyView::InStore => ("in_store", None, None, false),
        BodyView::ExpiredNotLoaded => ("expired_not_loaded", None, None, false),
        BodyView::Loaded {
            entries,
            flash,
            body_old_key,
        } => (
            "loaded_from_store",
            Some(entries),
            Some(flash),
            *body_old_key,
        ),
    };
    j.str("body", body);
    j.bool("body_old_key", body_old_key);
    j.raw("entries", &entries_json(entries.map(Vec::as_slice)));
    j.raw("flash", &entries_json(flash.map(Vec::as_slice)));
    j.finish()
}

fn entries_json(entries: Option<&[(String, usize)]>) -> String {
    let Some(entries) = entries else {
        return "null".to_owned();
    };
    let items: Vec<String> = entries
        .iter()
        .map(|(k, size)| format!("{{\"key\":{},\"size\":{size}}}", json_string(k)))
        .collect();
    format!("[{}]", items.join(","))
}

// ---------------------------------------------------------------------------------------------
// formatting helpers

fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// RFC 3339 in UTC, whole seconds (no `time` formatting feature needed).
fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// "in 6d 23h", "5m ago", "now".
fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (t - now).whole_seconds();
    let abs = secs.unsigned_abs();
    let (d, h, m, s) = (abs / 86_400, abs / 3600 % 24, abs / 60 % 60, abs % 60);
    let span = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    };
    match secs {
        0 => "now".to_owned(),
        s if s > 0 => format!("in {span}"),
        _ => format!("{span} ago"),
    }
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A flat JSON object built field by field.
struct JsonObject(Vec<String>);

impl JsonObject {
    fn new() -> Self {
        JsonObject(Vec::new())
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.0.push(format!("{}:{json}", json_string(key)));
    }

    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, &json_string(value));
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    fn num(&mut self, key: &str, value: impl std::fmt::Display) {
        self.raw(key, &value.to_string());
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.raw(key, if value { "true" } else { "false" });
    }

    fn finish(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
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
            let got =
                parse_cookie_input(&text, None).unwrap_or_else(|f| panic!("{text}: {}", f.message));
            assert_eq!(got.value, v, "{text}");
        }
        let got = parse_cookie_input(&format!("Cookie: a=1; sid={v}"), Some("sid"))
            .ok()
            .unwrap();
        assert_eq!((got.name.as_deref(), got.value.as_str()), (Some("sid"), v));
        let got = parse_cookie_input(&format!("a=1; sid={v}"), None)
            .ok()
            .unwrap();
        assert_eq!(got.value, "1");
        assert!(parse_cookie_input("  ", None).is_err());
        assert!(parse_cookie_input("session=", None).is_err());
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn time_formats() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(relative(t, t + time::Duration::minutes(5)), "5m 0s ago");
        assert_eq!(relative(t + time::Duration::days(2), t), "in 2d 0h");
    }
}
