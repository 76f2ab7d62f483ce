//! Store faults as a user meets them on the request path: a FileStore directory
//! holding corrupt or foreign files, a file system that stops answering, and a
//! MemoryStore flooded with big sessions from fresh clients.

#[path = "common/browser.rs"]
mod browser;
#[cfg(feature = "axum")]
#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use browser::{cookie_pair, noise, request, with_cookie, ManualClock};
use http::HeaderMap;
use sealed_session::headers::{load, save};
use sealed_session::store::{FileStore, MemoryStore, SessionStore, StoreKey};
use sealed_session::{Error, ErrorKind, Keyring, Session, SessionConfig};

const T0: i64 = 1_800_000_000;

/// The deadline the file tests give every file operation.
const DEADLINE: Duration = Duration::from_millis(200);

/// Longest a test waits for a call that must not hang, before calling it hung.
const HUNG: Duration = Duration::from_secs(5);

fn config(store: Arc<dyn SessionStore>) -> SessionConfig {
    SessionConfig::builder(Keyring::new([[7u8; 32]]).unwrap())
        .clock(ManualClock::new(T0).clock())
        .secure(false)
        .store_arc(store)
        .build()
        .unwrap()
}

/// A unique temporary directory, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-faults-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Names in the directory, sorted.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file store on `dir` with short deadlines and no background sweep.
async fn file_store(dir: &TestDir) -> FileStore {
    FileStore::open(dir.path())
        .await
        .unwrap()
        .with_fsync(false)
        .with_sweep_probability(0, 1)
        .with_timeout(DEADLINE)
}

/// Where the pointer cookie `pair` (`name=value`) keeps its body in the store.
fn entry_key(cfg: &SessionConfig, pair: &str) -> StoreKey {
    let value = pair.split_once('=').unwrap().1;
    sealed_session::inspect::describe(cfg, value)
        .unwrap()
        .store_key
        .expect("a pointer cookie")
}

/// A store-backed session holding `len` bytes of noise; returns it and its cookie pair.
async fn big_session(cfg: &SessionConfig, len: usize, seed: u64) -> (Session, String) {
    let (s, out) = request(cfg, None, |s| s.insert("blob", &noise(len, seed)).unwrap()).await;
    assert!(s.is_store_backed());
    (s, cookie_pair(&out).unwrap())
}

/// The session that `pair` loads now, or the error; panics if the load hangs.
async fn load_pair(cfg: &SessionConfig, pair: &str) -> Result<Session, Error> {
    tokio::time::timeout(HUNG, load(cfg, &with_cookie(pair)))
        .await
        .unwrap_or_else(|_| panic!("the load did not answer within {HUNG:?}"))
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
fn io_cause(err: &Error) -> &std::io::Error {
    std::error::Error::source(err)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("{err:?} has no io::Error cause"))
}

/// What a crash with fsync off (or a stray writer) can leave under an entry name.
fn corrupt_contents() -> [(&'static str, Vec<u8>); 4] {
    let mut truncated = b"sss1".to_vec();
    truncated.extend_from_slice(&[0, 0, 1]);
    let mut wrong_magic = b"XXXX".to_vec();
    wrong_magic.extend_from_slice(&u64::MAX.to_be_bytes());
    wrong_magic.extend_from_slice(&noise(500, 1));
    [
        ("empty", Vec::new()),
        ("truncated header", truncated),
        ("wrong magic", wrong_magic),
        ("zeros", vec![0; 4096]),
    ]
}

// ---- FileStore: corrupt and foreign files ----

/// A corrupt entry file under a real session's name gives that user a fresh session
/// (200, not a 503 on every request until someone deletes the file), and is removed.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_corrupt_entry_file_gives_a_fresh_session_not_a_503() {
    use axum::http::StatusCode;
    use serde_json::json;

    for (case, contents) in corrupt_contents() {
        let dir = TestDir::new();
        let store = file_store(&dir).await;
        let cfg = config(Arc::new(store.clone()));
        let mut client = demo::Client::new(server::app(cfg.clone()));
        assert_eq!(
            client.post("/cart", json!({"items": 300})).await.status,
            StatusCode::OK
        );
        let name = entry_key(&cfg, client.cookie.as_deref().unwrap()).to_string();
        assert_eq!(dir.names(), vec![name.clone()], "{case}: one entry file");
        std::fs::write(dir.path().join(&name), &contents).unwrap();

        let reply = client.get("/session").await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{case}: a corrupt entry answered {} {}",
            reply.status,
            reply.json
        );
        assert!(reply.json.get("cart").is_none(), "{case}: {}", reply.json);
        assert!(
            !dir.path().join(&name).exists(),
            "{case}: the corrupt file is still there"
        );
        // The user carries on with a new session.
        assert_eq!(
            client.post("/cart", json!({"items": 300})).await.status,
            StatusCode::OK
        );
        let cart = &client.get("/session").await.json["cart"];
        assert_eq!(cart.as_array().map(Vec::len), Some(300), "{case}");
        assert_eq!(store.len().await.unwrap(), Some(1), "{case}");
    }
}

/// A FIFO under an entry name (it is not ours and not a session) reads as missing at
/// once instead of blocking the request in `open`, and no operation removes it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_under_an_entry_name_neither_hangs_nor_is_removed() {
    use std::os::unix::fs::FileTypeExt;

    let dir = TestDir::new();
    let store = file_store(&dir).await;
    let cfg = config(Arc::new(store.clone()));
    let (_, pair) = big_session(&cfg, 8000, 2).await;
    let key = entry_key(&cfg, &pair);
    let fifo = dir.path().join(key.to_string());
    std::fs::remove_file(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let is_fifo = || {
        std::fs::symlink_metadata(&fifo)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false)
    };
    // If a call does block on the FIFO, a writer lets it go (before the directory is
    // removed), so the test fails rather than hangs.
    let unblock = || {
        let fifo = fifo.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = std::fs::OpenOptions::new().write(true).open(fifo);
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(Duration::from_secs(2));
    };

    let started = Instant::now();
    let Ok(loaded) = tokio::time::timeout(HUNG, load(&cfg, &with_cookie(&pair))).await else {
        unblock();
        panic!("the load blocked for {HUNG:?} on a FIFO under the entry name");
    };
    let took = started.elapsed();
    let s = loaded.unwrap_or_else(|e| panic!("a FIFO entry gave {e:?}, not a fresh session"));
    assert!(s.is_new() && s.is_empty());
    assert_eq!(
        s.load_error().map(|e| e.kind()),
        Some(ErrorKind::MissingInStore)
    );
    assert!(took < DEADLINE, "the load took {took:?}");
    assert!(is_fifo(), "the load removed the FIFO");

    let Ok(len) = tokio::time::timeout(HUNG, store.len()).await else {
        unblock();
        panic!("len blocked on the FIFO");
    };
    assert_eq!(len.unwrap(), Some(0), "a FIFO is not an entry");
    let Ok(swept) = tokio::time::timeout(HUNG, store.sweep()).await else {
        unblock();
        panic!("sweep blocked on the FIFO");
    };
    assert_eq!(swept.unwrap(), 0);
    store.delete(&key).await.unwrap();
    store.clear().await.unwrap();
    assert!(is_fifo(), "sweep, delete or clear removed the FIFO");
}

/// The sweep removes corrupt entry files as well as expired ones, and nothing that is
/// not ours: other names, directories, files of another format version.
#[tokio::test]
async fn the_sweep_removes_corrupt_entries_and_leaves_what_is_not_ours() {
    let dir = TestDir::new();
    let store = file_store(&dir).await;
    let key = |n: u8| StoreKey::from_bytes([n; 16]).to_string();
    let corrupt = corrupt_contents();
    for (n, (_, contents)) in corrupt.iter().enumerate() {
        std::fs::write(dir.path().join(key(n as u8)), contents).unwrap();
    }
    let live = StoreKey::from_bytes([0xa0; 16]);
    store
        .save(&live, b"live", Duration::from_secs(3600))
        .await
        .unwrap();
    store
        .save(
            &StoreKey::from_bytes([0xa1; 16]),
            b"expiring",
            Duration::from_millis(1),
        )
        .await
        .unwrap();
    let foreign_files = [
        ("notes.txt".to_owned(), b"not yours".to_vec()),
        (key(0xb0).to_uppercase(), Vec::new()),
        (format!("{}.bak", key(0xb1)), b"garbage".to_vec()),
        (
            key(0xb2),
            b"sss2 an entry of a later format version".to_vec(),
        ),
    ];
    for (name, contents) in &foreign_files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let key_named_dir = dir.path().join(key(0xb3));
    std::fs::create_dir(&key_named_dir).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    assert_eq!(
        store.len().await.unwrap(),
        Some(1),
        "only the live entry counts"
    );
    let removed = store.sweep().await.unwrap();
    assert_eq!(
        removed,
        corrupt.len() + 1,
        "the {} corrupt entries and the expired one",
        corrupt.len()
    );
    for (n, (case, _)) in corrupt.iter().enumerate() {
        assert!(!dir.path().join(key(n as u8)).exists(), "{case}");
    }
    for (name, _) in &foreign_files {
        assert!(dir.path().join(name).exists(), "the sweep removed {name}");
    }
    assert!(key_named_dir.is_dir());
    assert_eq!(
        store.load(&live).await.unwrap().as_deref(),
        Some(&b"live"[..])
    );
    assert_eq!(store.sweep().await.unwrap(), 0);

    // Clear removes every regular file under an entry name, and nothing else.
    store.clear().await.unwrap();
    assert_eq!(store.len().await.unwrap(), Some(0));
    assert!(key_named_dir.is_dir(), "clear removed a directory");
    for (name, _) in &foreign_files[..3] {
        assert!(dir.path().join(name).exists(), "clear removed {name}");
    }
}

// ---- FileStore: a file system that stops answering ----

/// While file calls cannot run (every blocking thread is stuck, as on a hung network
/// mount), a request that needs the store fails within the store's deadline with
/// `Error::Store`, and the layer answers 503; a save that timed out never lands later;
/// once the file system answers again, the same store serves the session.
#[cfg(feature = "axum")]
#[test]
fn a_file_system_that_stops_answering_fails_requests_within_the_deadline() {
    use axum::http::StatusCode;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = TestDir::new();
        let store = file_store(&dir).await;
        let cfg = config(Arc::new(store.clone()));
        let (s, pair) = big_session(&cfg, 8000, 3).await;
        let entry = entry_key(&cfg, &pair).to_string();

        // Occupy the only blocking thread until `release` is dropped.
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::task::spawn_blocking(move || {
            let _ = stuck.recv();
        });

        let started = Instant::now();
        let err = load_pair(&cfg, &pair).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, Error::Store { op: "load", .. }), "{err:?}");
        assert_eq!(io_cause(&err).kind(), std::io::ErrorKind::TimedOut);
        assert!(
            took >= DEADLINE && took < DEADLINE * 4,
            "failed after {took:?}"
        );

        // A save that needs the store: an error, and no Set-Cookie.
        let fresh = load(&cfg, &HeaderMap::new()).await.unwrap();
        fresh.insert("blob", &noise(9000, 4)).unwrap();
        let mut out = HeaderMap::new();
        let saved = tokio::time::timeout(HUNG, save(&cfg, &fresh, &mut out))
            .await
            .expect("the save did not answer");
        let err = saved.unwrap_err();
        assert!(matches!(err, Error::Store { op: "save", .. }), "{err:?}");
        assert!(out.is_empty(), "{out:?}");

        // Through the layer: 503, the cookie kept.
        let mut client = demo::Client::new(server::app(cfg.clone()));
        client.cookie = Some(pair.clone());
        let reply = tokio::time::timeout(HUNG, client.get("/session"))
            .await
            .expect("the request did not answer");
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(client.cookie.as_deref(), Some(&pair[..]));

        // The file system answers again: the steps queued meanwhile find that their
        // callers gave up and change nothing; the session loads as before.
        drop(release);
        blocker.await.unwrap();
        let back = load_pair(&cfg, &pair).await.unwrap();
        assert_eq!(back.id(), s.id());
        assert_eq!(
            back.get::<serde_bytes::ByteBuf>("blob").unwrap(),
            Some(noise(8000, 3))
        );
        assert_eq!(
            dir.names(),
            vec![entry],
            "the save reported failed left a file"
        );
        assert_eq!(store.len().await.unwrap(), Some(1));
    });
}

// ---- MemoryStore: a flood of big sessions ----

/// Sessions that were read back survive any number of one-shot big sessions from fresh
/// clients; the flood's saves are either stored (and then load) or refused with
/// `Error::Store` (no Set-Cookie), never reported saved and then missing.
#[tokio::test]
async fn a_flood_of_new_big_sessions_does_not_evict_sessions_in_use() {
    // The store's bound (its per-entry cap is then 8 KiB), and the sessions' sizes.
    const STORE_BYTES: u64 = 512 * 1024;
    const USER: usize = 5_000;
    const FLOOD: usize = 7_000;

    let store = Arc::new(MemoryStore::new().with_max_bytes(STORE_BYTES));
    let cfg = config(store.clone());

    // 20 users whose sessions spilled to the store and were read back.
    let mut users = Vec::new();
    for n in 0..20 {
        let (s, pair) = big_session(&cfg, USER, 100 + n).await;
        let again = load_pair(&cfg, &pair).await.unwrap();
        assert_eq!(again.id(), s.id());
        users.push((s.id(), pair, n));
    }
    let check_users = |phase: &'static str| {
        let cfg = cfg.clone();
        let users = users.clone();
        async move {
            for (id, pair, n) in users {
                let s = load_pair(&cfg, &pair).await.unwrap();
                assert!(
                    s.id() == id,
                    "after {phase}: user {n}'s session was evicted ({:?})",
                    s.load_error()
                );
                assert_eq!(
                    s.get::<serde_bytes::ByteBuf>("blob").unwrap(),
                    Some(noise(USER, 100 + n))
                );
            }
        }
    };

    // One-shot sessions from fresh clients: 840 KB through a 512 KiB store.
    let mut admitted = 0;
    for n in 0..120 {
        let s = load(&cfg, &HeaderMap::new()).await.unwrap();
        s.insert("blob", &noise(FLOOD, 1_000 + n)).unwrap();
        let mut out = HeaderMap::new();
        match save(&cfg, &s, &mut out).await {
            Ok(()) => admitted += 1,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Store, "{e:?}");
                assert!(out.is_empty(), "a refused save wrote {out:?}");
            }
        }
    }
    assert!(
        admitted > 0,
        "new sessions still get in while there are sessions nobody read"
    );
    check_users("a flood of one-shot sessions").await;

    // Fresh clients that also come back for their session: each save is stored and
    // loads, or is refused once the store holds only sessions in use.
    let (mut stored, mut refused) = (0, 0);
    for n in 0..90 {
        let data = noise(FLOOD, 5_000 + n);
        let s = load(&cfg, &HeaderMap::new()).await.unwrap();
        s.insert("blob", &data).unwrap();
        let mut out = HeaderMap::new();
        match save(&cfg, &s, &mut out).await {
            Ok(()) => {
                let pair = cookie_pair(&out).unwrap();
                let back = load_pair(&cfg, &pair).await.unwrap();
                assert!(
                    back.id() == s.id(),
                    "flood session {n} was reported saved, then missing ({:?})",
                    back.load_error()
                );
                assert_eq!(
                    back.get::<serde_bytes::ByteBuf>("blob").unwrap(),
                    Some(data)
                );
                stored += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Store, "{e:?}");
                assert!(out.is_empty(), "a refused save wrote {out:?}");
                refused += 1;
            }
        }
    }
    assert!(
        stored > 0 && refused > 0,
        "{stored} stored, {refused} refused"
    );
    check_users("a flood of sessions read back").await;
    assert!(store.charged_bytes() <= STORE_BYTES);
}

/// Sessions in use that keep writing survive a flood of one-shot sessions. Every write
/// of a store-backed session goes to a new store key (`save_replacing`) and retires the
/// previous one (`expire_in`), so each write is a new entry: it is in use because the
/// entry it replaces was, and the previous states it leaves behind make room for the
/// flood instead of filling the store.
#[tokio::test]
async fn sessions_in_use_that_keep_writing_survive_a_flood_of_one_shot_sessions() {
    const STORE_BYTES: u64 = 512 * 1024;
    const USER: usize = 5_000;
    const FLOOD: usize = 7_000;

    let store = Arc::new(MemoryStore::new().with_max_bytes(STORE_BYTES));
    let cfg = config(store.clone());

    // 10 users whose sessions spilled to the store and were read back.
    let mut users = Vec::new();
    for n in 0..10 {
        let (s, pair) = big_session(&cfg, USER, 100 + n).await;
        assert_eq!(load_pair(&cfg, &pair).await.unwrap().id(), s.id());
        users.push((s.id(), pair));
    }

    let (mut admitted, mut refused) = (0, 0);
    for round in 0..4u64 {
        // Each user writes: a new entry under a new key, the previous one retired.
        for (n, (id, pair)) in users.iter_mut().enumerate() {
            let seed = 1_000 * (round + 1) + n as u64;
            let s = load_pair(&cfg, pair).await.unwrap();
            assert!(
                s.id() == *id,
                "round {round}: user {n}'s session was lost ({:?})",
                s.load_error()
            );
            s.insert("blob", &noise(USER, seed)).unwrap();
            let mut out = HeaderMap::new();
            save(&cfg, &s, &mut out)
                .await
                .unwrap_or_else(|e| panic!("round {round}: user {n}'s write refused: {e:?}"));
            let previous = std::mem::replace(pair, cookie_pair(&out).unwrap());
            assert_ne!(
                entry_key(&cfg, &previous),
                entry_key(&cfg, pair),
                "each write goes to its own store key"
            );
            // A request still in flight with the previous cookie reads the previous state.
            let in_flight = load_pair(&cfg, &previous).await.unwrap();
            assert_eq!(
                in_flight.id(),
                *id,
                "round {round}: user {n}'s previous entry"
            );
        }
        // Then a flood of one-shot sessions from fresh clients, 1.3 times the store.
        for f in 0..100 {
            let s = load(&cfg, &HeaderMap::new()).await.unwrap();
            s.insert("blob", &noise(FLOOD, 1_000_000 + round * 1_000 + f))
                .unwrap();
            let mut out = HeaderMap::new();
            match save(&cfg, &s, &mut out).await {
                Ok(()) => admitted += 1,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Store, "{e:?}");
                    assert!(out.is_empty(), "a refused save wrote {out:?}");
                    refused += 1;
                }
            }
        }
    }
    for (n, (id, pair)) in users.iter().enumerate() {
        let s = load_pair(&cfg, pair).await.unwrap();
        assert!(s.id() == *id, "user {n}'s session was lost");
        assert_eq!(
            s.get::<serde_bytes::ByteBuf>("blob").unwrap(),
            Some(noise(USER, 4_000 + n as u64))
        );
    }
    assert_eq!(
        refused, 0,
        "the flood always finds an unread or retired entry to displace"
    );
    assert!(admitted > 0);
    assert!(store.charged_bytes() <= STORE_BYTES);
}

/// One session cannot take a large share of the store: a body over the per-entry cap
/// (1/64 of the byte bound by default) is refused with `Error::Store` saying the cap;
/// the layer answers 503 and the client keeps its old cookie and session.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_session_over_the_per_entry_cap_is_refused_and_the_old_one_kept() {
    use axum::http::StatusCode;
    use serde_json::json;

    let store = Arc::new(MemoryStore::new().with_max_bytes(1 << 20));
    let cfg = config(store.clone());

    // On the request path: an error that names the cap, and no Set-Cookie.
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("blob", &noise(20_000, 9)).unwrap();
    let mut out = HeaderMap::new();
    let err = save(&cfg, &s, &mut out)
        .await
        .expect_err("a 20 KB session body was stored in a 1 MiB memory store");
    assert!(matches!(err, Error::Store { op: "save", .. }), "{err:?}");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("16384-byte"), "{cause}");
    assert!(out.is_empty());

    // Through the demo: a cart that grows past the cap answers 503 and changes nothing.
    let mut client = demo::Client::new(server::app(cfg.clone()));
    assert_eq!(
        client.post("/cart", json!({"items": 300})).await.status,
        StatusCode::OK
    );
    let before = client.cookie.clone();
    let reply = client.post("/cart", json!({"items": 1500})).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a {}-item cart: {}",
        1800,
        reply.json
    );
    assert_eq!(client.cookie, before, "the old cookie is kept");
    let cart = &client.get("/session").await.json["cart"];
    assert_eq!(cart.as_array().map(Vec::len), Some(300));
    assert_eq!(store.len().await.unwrap(), Some(1));
}

/// A browser of one cookie against the demo router.
#[cfg(feature = "axum")]
mod demo {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::Router;
    use http_body_util::BodyExt as _;
    use serde_json::Value;
    use tower::ServiceExt as _;

    pub struct Client {
        app: Router,
        pub cookie: Option<String>,
    }

    pub struct Reply {
        pub status: StatusCode,
        pub json: Value,
    }

    impl Client {
        pub fn new(app: Router) -> Self {
            Client { app, cookie: None }
        }

        async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Reply {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(c) = &self.cookie {
                req = req.header(header::COOKIE, c);
            }
            let req = match body {
                Some(b) => req
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(b.to_string())),
                None => req.body(Body::empty()),
            }
            .unwrap();
            let res = self.app.clone().oneshot(req).await.unwrap();
            let status = res.status();
            if let Some(sc) = res.headers().get(header::SET_COOKIE) {
                let sc = sc.to_str().unwrap();
                let pair = sc.split(';').next().unwrap().to_owned();
                self.cookie = (!sc.contains("Max-Age=0")).then_some(pair);
            }
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            let json = serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
            Reply { status, json }
        }

        pub async fn get(&mut self, path: &str) -> Reply {
            self.send("GET", path, None).await
        }

        pub async fn post(&mut self, path: &str, body: Value) -> Reply {
            self.send("POST", path, Some(body)).await
        }
    }
}
