//! The `sealed-session` operator tool, run as a process against cookies made by the library.
#![cfg(feature = "cli")]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::SET_COOKIE;
use http::HeaderMap;
use sealed_session::store::FileStore;
use sealed_session::{Algorithm, Clock, Expiry, Keyring, Session, SessionConfig};
use time::OffsetDateTime;

#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;

const BIN: &str = env!("CARGO_BIN_EXE_sealed-session");

// ---------------------------------------------------------------------------------------------
// helpers

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("the tool exited normally"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs the tool with `SESSION_KEYS` set to `keys` (or unset).
fn run_env(keys: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("SESSION_KEYS");
    if let Some(k) = keys {
        cmd.env("SESSION_KEYS", k);
    }
    finish(cmd.output().expect("the tool runs"))
}

fn run(args: &[&str]) -> Run {
    run_env(None, args)
}

fn run_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("SESSION_KEYS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    finish(child.wait_with_output().unwrap())
}

fn ok(r: &Run) -> &Run {
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

fn json(r: &Run) -> serde_json::Value {
    ok(r);
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.stdout))
}

fn secret() -> String {
    Keyring::generate_secret_base64().unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A made cookie: the `name=value` pair, the value, the session as saved.
struct Made {
    pair: String,
    value: String,
    set_cookie: String,
    session: Session,
}

/// Makes a session through the library and returns what `Set-Cookie` carried.
fn make(config: &SessionConfig, fill: impl FnOnce(&Session)) -> Made {
    block_on(make_async(config, fill))
}

async fn make_async(config: &SessionConfig, fill: impl FnOnce(&Session)) -> Made {
    let session = sealed_session::headers::load(config, &HeaderMap::new())
        .await
        .unwrap();
    fill(&session);
    let mut headers = HeaderMap::new();
    sealed_session::headers::save(config, &session, &mut headers)
        .await
        .unwrap();
    let set_cookie = headers[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    let value = pair.split_once('=').unwrap().1.to_owned();
    Made {
        pair,
        value,
        set_cookie,
        session,
    }
}

fn config(keys: &str) -> SessionConfig {
    SessionConfig::builder(Keyring::from_base64(keys).unwrap())
        .build()
        .unwrap()
}

fn small_session(s: &Session) {
    s.insert("user", "alice").unwrap();
    s.insert("views", &3u32).unwrap();
    s.flash("notice", "hi").unwrap();
    s.csrf_token();
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sealed-session-cli-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Incompressible-ish text, so the session really outgrows the cookie.
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(x % 62) as usize],
            )
        })
        .collect()
}

fn rfc3339(t: OffsetDateTime) -> String {
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

fn assert_no_secrets(r: &Run, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !r.stdout.contains(s),
            "stdout shows a secret:\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.contains(s),
            "stderr shows a secret:\n{}",
            r.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// keygen

#[test]
fn keygen_prints_one_usable_secret() {
    let r = run(&["keygen"]);
    ok(&r);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {:?}", r.stdout);
    let key = lines[0];
    let bytes = URL_SAFE_NO_PAD
        .decode(key)
        .expect("base64url without padding");
    assert!(bytes.len() >= 32, "{} bytes", bytes.len());
    assert!(r.stderr.contains("SESSION_KEYS=new,old"), "{}", r.stderr);
    assert!(
        !r.stderr.contains(key),
        "the hint must not repeat the secret"
    );

    let other = run(&["keygen"]);
    assert_ne!(other.stdout.trim(), key, "two runs give two secrets");

    // It works as a key: the library seals with it and the tool opens with it.
    let made = make(&config(key), small_session);
    let opened = run_env(Some(key), &["open", &made.pair]);
    ok(&opened);
    assert!(opened.stdout.contains("(primary key)"), "{}", opened.stdout);
    assert_no_secrets(&opened, &[key]);
}

// ---------------------------------------------------------------------------------------------
// inspect

#[test]
fn inspect_reads_header_and_sizes_without_a_key() {
    let keys = secret();
    let cfg = config(&keys);
    let made = make(&cfg, small_session);
    let key_id = format!("{:08x}", cfg.codec().keyring().primary_key_id());
    let raw_len = URL_SAFE_NO_PAD.decode(&made.value).unwrap().len();

    let r = run(&["inspect", &made.pair]);
    ok(&r);
    for want in [
        "cookie name     session".to_owned(),
        "version         2".to_owned(),
        "algorithm       AES-256-GCM-SIV".to_owned(),
        "compressed: no, pointer: no".to_owned(),
        format!("key id          {key_id}"),
        format!("text length     {} chars", made.value.len()),
        format!("raw length      {raw_len} bytes"),
        "nonce           12 bytes".to_owned(),
        format!("ciphertext      {} bytes", raw_len - 6 - 12 - 16),
    ] {
        assert!(
            r.stdout.contains(&want),
            "missing {want:?} in:\n{}",
            r.stdout
        );
    }

    // Every input form gives the same answer.
    let plain = json(&run(&["inspect", "--json", &made.value]));
    for form in [
        made.pair.clone(),
        made.set_cookie.clone(),
        format!("Set-Cookie: {}", made.set_cookie),
        format!("Cookie: {}; theme=dark", made.pair),
        format!("  \"{}\"\n", made.value),
        format!("session=\"{}\"", made.value),
    ] {
        let j = json(&run(&["inspect", "--json", &form]));
        for field in ["key_id", "text_len", "raw_len", "ciphertext_len", "flags"] {
            assert_eq!(j[field], plain[field], "{field} for input {form:?}");
        }
    }
    assert_eq!(plain["version"], 2);
    assert_eq!(plain["algorithm"], "AES-256-GCM-SIV");
    assert_eq!(plain["key_id"], key_id);
    assert_eq!(plain["text_len"], made.value.len());
    assert_eq!(plain["raw_len"], raw_len);
    assert_eq!(plain["nonce_len"], 12);
    assert_eq!(plain["ciphertext_len"], raw_len - 6 - 12 - 16);
    assert_eq!(plain["compressed"], false);
    assert_eq!(plain["pointer"], false);
    assert_eq!(plain["cookie_name"], serde_json::Value::Null);

    // From stdin as well.
    let j = json(&run_stdin(&["inspect", "--json", "-"], &made.set_cookie));
    assert_eq!(j["key_id"], key_id);
    assert_eq!(j["cookie_name"], "session");
}

#[test]
fn inspect_xchacha_and_compressed_cookie() {
    let keys = secret();
    let cfg = SessionConfig::builder(Keyring::from_base64(&keys).unwrap())
        .algorithm(Algorithm::XChaCha20Poly1305)
        .build()
        .unwrap();
    let made = make(&cfg, |s| {
        s.insert("text", &"hello world ".repeat(60)).unwrap()
    });
    let j = json(&run(&["inspect", "--json", &made.pair]));
    assert_eq!(j["algorithm"], "XChaCha20-Poly1305");
    assert_eq!(j["nonce_len"], 24);
    assert_eq!(j["compressed"], true);
    assert_eq!(j["flags"], "0x05");

    // `open` picks the algorithm from the header unless told otherwise.
    let r = run_env(Some(&keys), &["open", &made.pair]);
    assert!(
        ok(&r).stdout.contains("compressed      yes"),
        "{}",
        r.stdout
    );
    let r = run_env(
        Some(&keys),
        &["open", "--algorithm", "aes-256-gcm-siv", &made.pair],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: unknown key id"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("XChaCha20-Poly1305"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// open

#[test]
fn open_inline_cookie_lists_entries_and_sizes() {
    let keys = secret();
    let made = make(&config(&keys), small_session);
    let csrf = made.session.csrf_token();
    let s = &made.session;

    let r = run_env(Some(&keys), &["open", &made.pair]);
    ok(&r);
    let out = &r.stdout;
    for want in [
        format!("session id      {}", s.id()),
        format!("created         {}", rfc3339(s.created_at())),
        format!("last activity   {}", rfc3339(s.last_activity())),
        format!("expires         {}", rfc3339(s.expires_at())),
        "status          valid (not expired)".to_owned(),
        "(primary key)".to_owned(),
        "storage         inline".to_owned(),
        "csrf token      present (not shown)".to_owned(),
        "entries         2 (7 bytes encoded)".to_owned(),
        "  user   6 bytes".to_owned(),
        "  views  1 byte\n".to_owned(),
        "pending flash   1 (3 bytes encoded)".to_owned(),
        "  notice  3 bytes".to_owned(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("alice"), "values are never shown:\n{out}");
    assert_no_secrets(&r, &[&keys, &csrf]);

    let j = json(&run_env(Some(&keys), &["open", "--json", &made.value]));
    assert_eq!(j["id"], s.id().to_string());
    assert_eq!(j["expires"], rfc3339(s.expires_at()));
    assert_eq!(j["expired"], false);
    assert_eq!(j["old_key"], false);
    assert_eq!(j["storage"], "inline");
    assert_eq!(j["csrf_token"], true);
    assert_eq!(j["body"], "cookie");
    assert_eq!(
        j["entries"],
        serde_json::json!([{"key": "user", "size": 6}, {"key": "views", "size": 1}])
    );
    assert_eq!(
        j["flash"],
        serde_json::json!([{"key": "notice", "size": 3}])
    );
    assert_eq!(
        j["key_id"],
        format!(
            "{:08x}",
            Keyring::from_base64(&keys).unwrap().primary_key_id()
        )
    );

    // Keys on the command line work the same, and the secret is still not echoed.
    let r = run(&["open", "--keys", &keys, &made.pair]);
    assert!(ok(&r).stdout.contains("  user   6 bytes"));
    assert_no_secrets(&r, &[&keys, &csrf]);
}

#[test]
fn open_pointer_cookie_with_and_without_store() {
    let keys = secret();
    let dir = temp_dir();
    let store = block_on(FileStore::open(&dir)).unwrap();
    let cfg = SessionConfig::builder(Keyring::from_base64(&keys).unwrap())
        .cookie_budget(256)
        .store(store)
        .build()
        .unwrap();
    let made = make(&cfg, |s| {
        s.insert("user", "bob").unwrap();
        s.insert("cart", &noise(3000)).unwrap();
        s.flash("notice", "hi").unwrap();
    });
    let entries = made.session.entries();
    let cart_size = entries.iter().find(|(k, _)| k == "cart").unwrap().1;
    assert!(cart_size > 3000);

    let ins = json(&run(&["inspect", "--json", &made.pair]));
    assert_eq!(
        ins["pointer"], true,
        "the session must have moved to the store"
    );

    // Without --store: metadata only.
    let r = run_env(Some(&keys), &["open", &made.pair]);
    ok(&r);
    assert!(r.stdout.contains("storage         pointer"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("in the store under key {}", made.session.id())),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("cart"), "{}", r.stdout);
    let j = json(&run_env(Some(&keys), &["open", "--json", &made.pair]));
    assert_eq!(j["storage"], "pointer");
    assert_eq!(j["body"], "in_store");
    assert_eq!(j["entries"], serde_json::Value::Null);

    // With --store: the body is loaded and listed.
    let spec = format!("file:{}", dir.display());
    let r = run_env(Some(&keys), &["open", "--store", &spec, &made.pair]);
    ok(&r);
    assert!(r.stdout.contains("loaded from the store"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("  cart  {cart_size} bytes")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("  user  4 bytes"), "{}", r.stdout);
    assert!(
        r.stdout.contains("pending flash   1 (3 bytes encoded)"),
        "{}",
        r.stdout
    );
    let j = json(&run_env(
        Some(&keys),
        &["open", "--json", "--store", &spec, &made.pair],
    ));
    assert_eq!(j["body"], "loaded_from_store");
    assert_eq!(
        j["flash"],
        serde_json::json!([{"key": "notice", "size": 3}])
    );
    assert_eq!(
        j["entries"],
        serde_json::json!([{"key": "cart", "size": cart_size}, {"key": "user", "size": 4}])
    );

    // A store that does not hold the body, or no such directory: errors, exit 1.
    let empty = temp_dir();
    let r = run_env(
        Some(&keys),
        &[
            "open",
            "--store",
            &format!("file:{}", empty.display()),
            &made.pair,
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr
            .starts_with("error: the session body is missing from the store"),
        "{}",
        r.stderr
    );
    let missing = empty.join("nope");
    let r = run_env(
        Some(&keys),
        &[
            "open",
            "--store",
            &format!("file:{}", missing.display()),
            &made.pair,
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: cannot use store directory"),
        "{}",
        r.stderr
    );
    assert!(
        !missing.exists(),
        "the tool must not create a store directory"
    );
    let r = run_env(Some(&keys), &["open", "--store", "memory", &made.pair]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: unknown --store"),
        "{}",
        r.stderr
    );

    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&empty).ok();
}

#[test]
fn wrong_key_is_an_unknown_key_id() {
    let keys = secret();
    let cfg = config(&keys);
    let made = make(&cfg, small_session);
    let other = secret();
    let r = run_env(Some(&other), &["open", &made.pair]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    let id = cfg.codec().keyring().primary_key_id();
    assert!(
        r.stderr
            .starts_with(&format!("error: unknown key id {id:08x}")),
        "{}",
        r.stderr
    );
    assert_no_secrets(&r, &[&keys, &other]);

    // Another purpose derives other key ids, so it reads the same way.
    let r = run_env(Some(&keys), &["open", "--purpose", "admin", &made.pair]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: unknown key id"),
        "{}",
        r.stderr
    );
}

#[test]
fn tampered_or_renamed_cookie_fails_authentication() {
    let keys = secret();
    let made = make(&config(&keys), small_session);
    let mut bytes = made.value.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    // Still a well-formed value: `inspect` cannot tell.
    ok(&run(&["inspect", &tampered]));

    let r = run_env(Some(&keys), &["open", &tampered]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: session value failed authentication"),
        "{}",
        r.stderr
    );

    // The cookie name is bound into the seal.
    let r = run_env(Some(&keys), &["open", "--name", "other", &made.value]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("failed authentication"), "{}", r.stderr);
    assert!(r.stderr.contains("\"other\""), "{}", r.stderr);
    let r = run_env(Some(&keys), &["open", &format!("other={}", made.value)]);
    assert!(r.stderr.contains("failed authentication"), "{}", r.stderr);
}

#[test]
fn bad_values_give_clear_errors() {
    let keys = secret();
    let raw = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let cases: Vec<(String, &str)> = vec![
        (
            "this is not a cookie!!".into(),
            "error: malformed session value: not base64url",
        ),
        (
            raw(&[1, 0, 1]),
            "error: malformed session value: too short for a header",
        ),
        (
            raw(&[1, 0, 1, 2, 3, 4, 5, 6]),
            "error: malformed session value: too short for nonce and tag",
        ),
        (raw(&[3; 40]), "error: unsupported session format version 3"),
        (
            raw(&[&[1u8, 0x10][..], &[0; 38]].concat()),
            "error: unsupported session flags 0x10",
        ),
        (
            raw(&[&[1u8, 0x03][..], &[0; 38]].concat()),
            "error: unsupported session flags 0x03",
        ),
    ];
    for (value, want) in &cases {
        for args in [
            vec!["inspect", value.as_str()],
            vec!["open", value.as_str()],
        ] {
            let r = run_env(Some(&keys), &args);
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert!(
                r.stderr.starts_with(want),
                "{args:?}: want {want:?}, got {}",
                r.stderr
            );
            assert_eq!(r.stdout, "", "{args:?}");
        }
    }
    let r = run(&["inspect", "   "]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("error: no cookie given"),
        "{}",
        r.stderr
    );
    let r = run(&["inspect", "session="]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("empty value"), "{}", r.stderr);
}

#[test]
fn rotated_keys_report_the_old_key() {
    let old = secret();
    let new = secret();
    let old_cfg = config(&old);
    let made = make(&old_cfg, small_session);
    let rotated = format!("{new},{old}");

    let r = run_env(Some(&rotated), &["open", &made.pair]);
    ok(&r);
    let old_id = format!("{:08x}", old_cfg.codec().keyring().primary_key_id());
    let new_id = format!("{:08x}", config(&new).codec().keyring().primary_key_id());
    assert!(
        r.stdout
            .contains(&format!("opened by key   {old_id} (old key")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("primary {new_id}")),
        "{}",
        r.stdout
    );
    assert_no_secrets(&r, &[&old, &new]);

    let j = json(&run_env(Some(&rotated), &["open", "--json", &made.pair]));
    assert_eq!(j["old_key"], true);
    assert_eq!(j["key_id"], old_id);
    assert_eq!(j["primary_key_id"], new_id);

    let j = json(&run_env(Some(&old), &["open", "--json", &made.pair]));
    assert_eq!(j["old_key"], false);
}

#[test]
fn expired_cookie_is_shown_as_expired() {
    let keys = secret();
    let past = OffsetDateTime::now_utc() - time::Duration::days(2);
    let cfg = SessionConfig::builder(Keyring::from_base64(&keys).unwrap())
        .clock(Clock::from_fn(move || past))
        .expiry(Expiry::absolute(Duration::from_secs(60)))
        .build()
        .unwrap();
    let made = make(&cfg, small_session);

    let r = run_env(Some(&keys), &["open", &made.pair]);
    ok(&r);
    assert!(r.stdout.contains("status          EXPIRED"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "expires         {}",
            rfc3339(past + time::Duration::seconds(60))
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(" ago)"), "{}", r.stdout);
    assert!(r.stdout.contains("  user   6 bytes"), "{}", r.stdout);
    let j = json(&run_env(Some(&keys), &["open", "--json", &made.pair]));
    assert_eq!(j["expired"], true);

    // A fresh one is not.
    let fresh = make(&config(&keys), small_session);
    let j = json(&run_env(Some(&keys), &["open", "--json", &fresh.pair]));
    assert_eq!(j["expired"], false);
}

#[test]
fn key_errors_and_usage_errors() {
    let made = make(&config(&secret()), small_session);

    // Missing keys: a usage error (exit 2) that names both ways to give them.
    let r = run(&["open", &made.pair]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("SESSION_KEYS"), "{}", r.stderr);

    // Bad keys: bad input (exit 1), and the bad text is not echoed.
    let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
    let r = run_env(Some(&short), &["open", &made.pair]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: invalid key: secret #1 is 16 bytes"),
        "{}",
        r.stderr
    );
    assert_no_secrets(&r, &[&short]);
    let r = run_env(Some(&format!("{},%%%", secret())), &["open", &made.pair]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("error: invalid key: secret #2 is not valid base64"),
        "{}",
        r.stderr
    );

    // Usage errors from clap: exit 2.
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["frobnicate"]).code, 2);
    assert_eq!(
        run(&["open", "--algorithm", "rot13", "--keys", "x", "y"]).code,
        2
    );

    // --help never shows the environment's keys.
    let keys = secret();
    let r = run_env(Some(&keys), &["open", "--help"]);
    ok(&r);
    assert!(r.stdout.contains("SESSION_KEYS"), "{}", r.stdout);
    assert_no_secrets(&r, &[&keys]);
}

#[test]
fn value_starting_with_a_hyphen_is_not_an_option() {
    // A v1 value always starts with 'A' (version byte 1), but other text that reaches the
    // tool can begin with '-', which must be read as the cookie, not as a flag.
    let value = URL_SAFE_NO_PAD.encode([0xF8u8; 40]);
    assert!(value.starts_with('-'));
    let r = run(&["inspect", &value]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: unsupported session format version 248"),
        "{}",
        r.stderr
    );
}

#[test]
fn expired_pointer_cookie_is_not_loaded_from_the_store() {
    let keys = secret();
    let dir = temp_dir();
    let store = block_on(FileStore::open(&dir)).unwrap();
    let past = OffsetDateTime::now_utc() - time::Duration::days(2);
    let cfg = SessionConfig::builder(Keyring::from_base64(&keys).unwrap())
        .cookie_budget(256)
        .store(store)
        .clock(Clock::from_fn(move || past))
        .expiry(Expiry::absolute(Duration::from_secs(60)))
        .build()
        .unwrap();
    let made = make(&cfg, |s| s.insert("cart", &noise(2000)).unwrap());
    let spec = format!("file:{}", dir.display());
    let r = run_env(Some(&keys), &["open", "--store", &spec, &made.pair]);
    ok(&r);
    assert!(r.stdout.contains("status          EXPIRED"), "{}", r.stdout);
    assert!(
        r.stdout.contains("not loaded: the session has expired"),
        "{}",
        r.stdout
    );
    let j = json(&run_env(
        Some(&keys),
        &["open", "--json", "--store", &spec, &made.pair],
    ));
    assert_eq!(j["expired"], true);
    assert_eq!(j["body"], "expired_not_loaded");
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "redis")]
#[test]
fn open_pointer_cookie_from_redis() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    let keys = secret();
    for prefix in [None, Some("app1:")] {
        // One runtime for connecting and saving: the connection manager lives on it.
        let made = block_on(async {
            let url = server.url();
            let store = match prefix {
                None => sealed_session::store::RedisStore::connect(&url).await,
                Some(p) => sealed_session::store::RedisStore::connect(&url)
                    .await
                    .map(|s| s.with_prefix(p)),
            }
            .unwrap();
            let cfg = SessionConfig::builder(Keyring::from_base64(&keys).unwrap())
                .cookie_budget(256)
                .store(store)
                .build()
                .unwrap();
            make_async(&cfg, |s| s.insert("cart", &noise(2000)).unwrap()).await
        });
        let url = server.url();
        let mut args = vec!["open", "--json", "--store", url.as_str()];
        if let Some(p) = prefix {
            args.extend(["--redis-prefix", p]);
        }
        args.push(&made.pair);
        let j = json(&run_env(Some(&keys), &args));
        assert_eq!(j["body"], "loaded_from_store", "prefix {prefix:?}");
        assert_eq!(j["entries"][0]["key"], "cart");

        // The wrong prefix finds nothing.
        let r = run_env(
            Some(&keys),
            &[
                "open",
                "--store",
                &url,
                "--redis-prefix",
                "elsewhere:",
                &made.pair,
            ],
        );
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("missing from the store"), "{}", r.stderr);
    }
}

/// `inspect` and `open` read format v1 cookies too (the frozen v1 session vector):
/// version 1, its entries, its times; expired, since v1 vectors date from 2026-09.
#[test]
fn inspect_and_open_read_a_format_v1_cookie() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/v1.json"
    ))
    .expect("tests/vectors/v1.json");
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let v = vectors
        .iter()
        .find(|v| v["description"] == "AES-256-GCM-SIV, session envelope")
        .expect("the v1 session vector");
    let pair = format!("session={}", v["sealed"].as_str().unwrap());

    let j = json(ok(&run(&["inspect", "--json", &pair])));
    assert_eq!(j["version"], 1);
    assert_eq!(j["pointer"], false);

    let secret = hex::decode(v["secrets"][0].as_str().unwrap()).unwrap();
    let keys = URL_SAFE_NO_PAD.encode(secret);
    let r = run_env(Some(&keys), &["open", &pair]);
    let out = &ok(&r).stdout;
    for want in [
        "session id      00112233445566778899aabbccddeeff",
        "created         2026-09-21T14:13:20Z",
        "status          EXPIRED",
        "storage         inline",
        "csrf token      present (not shown)",
        "entries         2",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let j = json(&run_env(Some(&keys), &["open", "--json", &pair]));
    assert_eq!(j["expired"], true);
    // Sizes as a v2 build holds them: each v1 (postcard) value wrapped in the 4-byte
    // CBOR tag that marks it as legacy.
    assert_eq!(
        j["entries"],
        serde_json::json!([{"key": "user", "size": 8}, {"key": "views", "size": 5}])
    );
}
