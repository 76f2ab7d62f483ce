//! What revocation costs a request, and what a sync costs.
//!
//! `revocation/request`: an axum `Router` with `SessionLayer` (driven with tower's
//! `oneshot`, as `request.rs`), a logged-in user's inline session (`set_subject` at
//! login), and a read request (a typed get of the user name; nothing written back).
//! Every load checks the session against the config's in-memory replica: its id in
//! the revoked sessions, its subject in the revoked subjects, and, with a backend,
//! how stale the replica is. Contenders:
//! - `no_backend`: the default config (no revocation backend; its own replica, empty);
//! - `no_backend_100k`: the same with 100,000 revoked sessions and 100,000 revoked
//!   subjects in that replica (recorded in this process: logouts and `revoke_subject`);
//! - `memory_backend_0`, `memory_backend_1k`, `memory_backend_100k`: a
//!   `MemoryRevocations` backend and a replica holding 0, 1,000 + 1,000 and
//!   100,000 + 100,000 revoked sessions + subjects. Its sync loop runs every 500 ms
//!   (the default) on the runtime's worker thread;
//! - `file_backend_0`: `FileRevocations` in a temp dir, empty;
//! - `sqlite_backend_0`: `SqlRevocations` on a SQLite file in a temp dir
//!   (`SqlPool::connect`), empty;
//! - `redis_backend_0`, `redis_backend_100k`: `RedisRevocations` on a
//!   `redis-server` this bench starts (each its own key prefix), empty and with
//!   100,000 + 100,000 revoked sessions + subjects;
//! - `postgres_backend_0`, `postgres_backend_100k`: `SqlRevocations` on a PostgreSQL
//!   this bench starts (the test harness's server, fsync off; each its own database),
//!   likewise.
//!
//! The file and SQLite backends are measured empty only: each append syncs to disk,
//! so 200,000 of them take many minutes (`FILE100K` below measures that for the
//! file backend). With every backend the check itself is the replica's (no I/O on
//! the request); what differs is the background sync loop beside it.
//!
//! Before timing, each contender checks that the path is live: a session logged out
//! through the router (`/logout`, `destroy()`) is refused on its next request.
//!
//! The revoked sessions are real logouts (`headers::load` of a session's cookie,
//! `destroy()`, `headers::save`: the public path of a logout), the subjects
//! `SessionConfig::revoke_subject`. Populating is timed and printed (`POPULATE`), with
//! the resident memory it added (`MEMORY`: VmRSS of /proc/self/status before and
//! after; freed temporaries the allocator keeps count too, so it is an upper bound).
//!
//! `revocation/sync`: one `SessionConfig::sync_revocations` of a reader config that
//! pulls 1,000 records another config appended to the shared backend since the
//! reader's last sync (the same 1,000 subjects logged out everywhere again, so the
//! replica holds 1,000 subjects before and after; the appends are not timed). The
//! reader's background loop is set to an hour so that it never pulls them first.
//! - `file_1000_new`: `FileRevocations` in a temp dir (a fresh one every 15 rounds,
//!   so the log stays under the 1 MiB where compaction starts);
//! - `redis_1000_new`: `RedisRevocations` on the `redis-server` this bench starts;
//! - `memory_1000_new`: `MemoryRevocations`, the in-process reference;
//! - `memory_nothing_new_100k`: the `memory_backend_100k` config's own sync with
//!   nothing new: what its background loop pays every 500 ms (read, then prune).
//!
//! `FILE100K` (opt-in, `SEALED_SESSION_BENCH_FILE_100K=1`, minutes): 100,000
//! `revoke_subject` through a `FileRevocations`, with progress, then a new reader's
//! first sync of that log.
//!
//! Run: `cargo bench -p sealed-session-benches --bench revocation` (add `-- --quick` for a fast pass).

#[path = "common/router.rs"]
mod router;
use router::{call, request};

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, StatusCode};
use sealed_session::revocation::{
    FileRevocations, MemoryRevocations, RedisRevocations, RevocationBackend, SqlRevocations,
};
use sealed_session::store::SqlPool;
use sealed_session::{headers, Keyring, Session, SessionConfig, SessionLayer};
use tokio::runtime::Runtime;

#[path = "common/mod.rs"]
mod common;
#[path = "common/real_servers.rs"]
mod real_servers;

const USER: &str = "user-42";

// --- the request ------------------------------------------------------------

async fn login(session: Session) -> &'static str {
    session.regenerate();
    session.set_subject(USER);
    session.insert("user", USER).unwrap();
    "logged in"
}

async fn whoami(session: Session) -> String {
    session.get::<String>("user").unwrap().unwrap_or_default()
}

async fn logout(session: Session) -> &'static str {
    session.destroy();
    "logged out"
}

fn router(config: SessionConfig) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/logout", get(logout))
        .layer(SessionLayer::new(config))
}

// --- configs and populating them --------------------------------------------

fn keyring() -> Keyring {
    Keyring::new([[0x5a; 32]]).unwrap()
}

fn config(backend: Option<impl RevocationBackend>, interval: Option<Duration>) -> SessionConfig {
    let mut b = SessionConfig::builder(keyring());
    if let Some(backend) = backend {
        b = b.revocation(backend);
    }
    if let Some(interval) = interval {
        b = b.revocation_sync_interval(interval);
    }
    b.build().unwrap()
}

/// Resident memory of this process, in kB (VmRSS of /proc/self/status).
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `n` logouts through the public path: a session is saved (its cookie sent back),
/// loaded from that cookie, destroyed and saved again, which records its id.
async fn log_out_sessions(cfg: &SessionConfig, n: usize) {
    for i in 0..n {
        let s = headers::load(cfg, &HeaderMap::new()).await.unwrap();
        s.insert("n", &i).unwrap();
        let mut out = HeaderMap::new();
        headers::save(cfg, &s, &mut out).await.unwrap();
        let s = headers::load(cfg, &common::cookie_request(&out))
            .await
            .unwrap();
        assert!(!s.is_new());
        s.destroy();
        let mut out = HeaderMap::new();
        headers::save(cfg, &s, &mut out).await.unwrap();
    }
}

/// Subjects `prefix-<i>` for each `i` in `range`, logged out everywhere.
async fn revoke_subjects(cfg: &SessionConfig, prefix: &str, range: std::ops::Range<usize>) {
    for i in range {
        cfg.revoke_subject(&format!("{prefix}-{i}")).await.unwrap();
    }
}

/// Revokes `n` sessions and `n` subjects in `cfg`, printing the time and memory each took.
fn populate(rt: &Runtime, name: &str, cfg: &SessionConfig, n: usize) {
    let before = cfg.revocation_status().entries;
    let rss0 = rss_kb();
    let t = Instant::now();
    rt.block_on(log_out_sessions(cfg, n));
    let sessions = t.elapsed();
    let rss1 = rss_kb();
    let t = Instant::now();
    rt.block_on(revoke_subjects(cfg, "revoked", 0..n));
    let subjects = t.elapsed();
    let rss2 = rss_kb();
    assert_eq!(cfg.revocation_status().entries, before + 2 * n, "{name}");
    println!(
        "POPULATE {name}: {n} logouts in {:.2} s ({:.2} µs each), {n} revoke_subject in {:.2} s ({:.2} µs each)",
        sessions.as_secs_f64(),
        sessions.as_secs_f64() * 1e6 / n as f64,
        subjects.as_secs_f64(),
        subjects.as_secs_f64() * 1e6 / n as f64,
    );
    if let (Some(a), Some(b), Some(c)) = (rss0, rss1, rss2) {
        let per = |from: u64, to: u64| (to.saturating_sub(from) as f64 * 1024.0) / n as f64;
        println!(
            "MEMORY {name}: VmRSS {a} kB -> {b} kB after the logouts (+{} kB, {:.0} B per session) \
             -> {c} kB after the subjects (+{} kB, {:.0} B per subject)",
            b.saturating_sub(a),
            per(a, b),
            c.saturating_sub(b),
            per(b, c),
        );
    }
}

// --- benches ----------------------------------------------------------------

/// The servers and temp dir the backends live in, kept for the whole run.
struct Servers {
    redis: Option<real_servers::RedisServer>,
    postgres: Option<real_servers::PostgresServer>,
    dir: tempfile::TempDir,
}

/// A new database `name` on the PostgreSQL server at `url`, and its URL.
async fn postgres_database(url: &str, name: &str) -> String {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let (server, _) = url.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}

fn request_benches(
    c: &mut Criterion,
    rt: &Runtime,
    servers: &Servers,
) -> Vec<(&'static str, SessionConfig)> {
    let no_backend = || config(None::<MemoryRevocations>, None);
    let memory = || config(Some(MemoryRevocations::new()), None);
    let mut contenders = vec![
        ("no_backend", no_backend(), 0),
        ("no_backend_100k", no_backend(), 100_000),
        ("memory_backend_0", memory(), 0),
        ("memory_backend_1k", memory(), 1_000),
        ("memory_backend_100k", memory(), 100_000),
    ];
    let file = rt
        .block_on(FileRevocations::open(servers.dir.path().join("file")))
        .unwrap();
    contenders.push(("file_backend_0", config(Some(file), None), 0));
    let url = format!(
        "sqlite:{}",
        servers.dir.path().join("revocations.db").display()
    );
    let pool = rt.block_on(SqlPool::connect(&url)).unwrap();
    let sqlite = SqlRevocations::new(&pool);
    contenders.push(("sqlite_backend_0", config(Some(sqlite), None), 0));
    if let Some(server) = &servers.redis {
        for (name, n) in [("redis_backend_0", 0), ("redis_backend_100k", 100_000)] {
            let backend = rt
                .block_on(RedisRevocations::connect(&server.url()))
                .unwrap()
                .with_prefix(format!("bench:{name}:"));
            contenders.push((name, config(Some(backend), None), n));
        }
    }
    if let Some(server) = &servers.postgres {
        for (name, n) in [
            ("postgres_backend_0", 0),
            ("postgres_backend_100k", 100_000),
        ] {
            let url = rt.block_on(postgres_database(&server.url(), name));
            let pool = rt.block_on(SqlPool::connect(&url)).unwrap();
            contenders.push((name, config(Some(SqlRevocations::new(&pool)), None), n));
        }
    }
    let prepared: Vec<_> = contenders
        .into_iter()
        .map(|(name, cfg, n)| {
            // The first sync also starts the config's sync loop (it needs the runtime).
            rt.block_on(cfg.sync_revocations()).unwrap();
            if n > 0 {
                populate(rt, name, &cfg, n);
            }
            let router = router(cfg.clone());
            // A logout through the router must refuse the session's cookie next time.
            let (_, h, _) = rt.block_on(call(&router, request("/login", None)));
            let pair = h[SET_COOKIE].to_str().unwrap().split(';').next().unwrap();
            let old = HeaderValue::from_str(pair).unwrap();
            let (status, _, _) = rt.block_on(call(&router, request("/logout", Some(&old))));
            assert_eq!(status, StatusCode::OK, "{name}: logout");
            let (_, _, body) = rt.block_on(call(&router, request("/whoami", Some(&old))));
            assert!(
                body.is_empty(),
                "{name}: a logged-out session must be refused"
            );
            let (status, h, _) = rt.block_on(call(&router, request("/login", None)));
            assert_eq!(status, StatusCode::OK, "{name}: login");
            let pair = h[SET_COOKIE].to_str().unwrap().split(';').next().unwrap();
            let cookie = HeaderValue::from_str(pair).unwrap();
            let (status, h, body) = rt.block_on(call(&router, request("/whoami", Some(&cookie))));
            assert!(
                status == StatusCode::OK && body == USER.as_bytes(),
                "{name}: logged in"
            );
            assert!(h.get(SET_COOKIE).is_none(), "{name}: a read writes nothing");
            println!(
                "REPLICA {name}: {} entries, cookie {} bytes",
                cfg.revocation_status().entries,
                cookie.len()
            );
            (name, cfg, router, cookie)
        })
        .collect();

    let mut g = c.benchmark_group("revocation/request");
    for (name, _, router, cookie) in &prepared {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let (status, _, body) = rt.block_on(call(router, request("/whoami", Some(cookie))));
                assert!(
                    status == StatusCode::OK && body == USER.as_bytes(),
                    "{name}"
                );
            })
        });
    }
    g.finish();
    prepared
        .into_iter()
        .map(|(name, cfg, _, _)| (name, cfg))
        .collect()
}

/// A writer and a reader config on one backend; the reader's loop is set to an hour.
struct Pair {
    writer: SessionConfig,
    reader: SessionConfig,
    /// The temp dir of a file backend.
    _dir: Option<tempfile::TempDir>,
}

impl Pair {
    fn new(
        rt: &Runtime,
        backend: impl RevocationBackend + Clone,
        dir: Option<tempfile::TempDir>,
    ) -> Pair {
        let hour = Some(Duration::from_secs(3600));
        let pair = Pair {
            writer: config(Some(backend.clone()), hour),
            reader: config(Some(backend), hour),
            _dir: dir,
        };
        rt.block_on(pair.writer.sync_revocations()).unwrap();
        rt.block_on(pair.reader.sync_revocations()).unwrap();
        pair
    }

    /// One round: the writer revokes the same 1,000 subjects (not timed), the reader
    /// pulls them (timed).
    fn round(&self, rt: &Runtime) -> Duration {
        rt.block_on(revoke_subjects(&self.writer, "again", 0..1_000));
        let t = Instant::now();
        rt.block_on(self.reader.sync_revocations()).unwrap();
        let took = t.elapsed();
        assert_eq!(self.reader.revocation_status().entries, 1_000);
        took
    }
}

fn file_pair(rt: &Runtime) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let backend = rt.block_on(FileRevocations::open(dir.path())).unwrap();
    Pair::new(rt, backend, Some(dir))
}

fn sync_benches(
    c: &mut Criterion,
    rt: &Runtime,
    servers: &Servers,
    configs: &[(&'static str, SessionConfig)],
) {
    let mut g = c.benchmark_group("revocation/sync");
    // Each round appends 1,000 records (not timed: with the file backend each append
    // is fsynced, ~0.3 s per round here), so few rounds are measured.
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_millis(100));

    let mut file = file_pair(rt);
    let mut rounds = 0u32;
    g.bench_function("file_1000_new", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // 15 rounds = 690 KB of log; compaction starts over 1 MiB.
                if rounds == 15 {
                    file = file_pair(rt);
                    rounds = 0;
                }
                rounds += 1;
                total += file.round(rt);
            }
            total
        })
    });
    drop(file);

    if let Some(server) = &servers.redis {
        let backend = rt
            .block_on(RedisRevocations::connect(&server.url()))
            .unwrap()
            .with_prefix("bench:sync:");
        let redis = Pair::new(rt, backend, None);
        g.bench_function("redis_1000_new", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| redis.round(rt)).sum())
        });
    }

    let memory = Pair::new(rt, MemoryRevocations::new(), None);
    g.bench_function("memory_1000_new", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| memory.round(rt)).sum())
    });
    g.finish();

    let (_, big) = configs
        .iter()
        .find(|(name, _)| *name == "memory_backend_100k")
        .expect("the 100k config");
    let mut g = c.benchmark_group("revocation/sync");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    g.bench_function("memory_nothing_new_100k", |b| {
        b.iter(|| rt.block_on(big.sync_revocations()).unwrap())
    });
    g.finish();
}

/// The file backend's log: its generation (1 + compactions so far) and size in bytes.
fn file_log(dir: &std::path::Path) -> (u64, u64) {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let generation = name.strip_prefix("revocations-")?.strip_suffix(".log")?;
            Some((generation.parse().ok()?, e.metadata().ok()?.len()))
        })
        .max()
        .unwrap_or((0, 0))
}

/// Opt-in (`SEALED_SESSION_BENCH_FILE_100K=1`, a few minutes): 100,000
/// `revoke_subject` through a `FileRevocations` (each append is fsynced; past 1 MiB
/// of log, each append compacts it with a 1-in-16 chance), printing progress, then a
/// new reader's first sync of the whole log.
fn file_100k_probe(rt: &Runtime) {
    if std::env::var("SEALED_SESSION_BENCH_FILE_100K").map_or(true, |v| v != "1") {
        println!("FILE100K not run (set SEALED_SESSION_BENCH_FILE_100K=1 to populate 100,000 revocations through the file backend)");
        return;
    }
    let hour = Some(Duration::from_secs(3600));
    let dir = tempfile::tempdir().unwrap();
    let backend = rt.block_on(FileRevocations::open(dir.path())).unwrap();
    let writer = config(Some(backend.clone()), hour);
    rt.block_on(writer.sync_revocations()).unwrap();
    let start = Instant::now();
    const CHUNK: usize = 10_000;
    for chunk in 0..10 {
        let t = Instant::now();
        rt.block_on(revoke_subjects(
            &writer,
            "bulk",
            chunk * CHUNK..(chunk + 1) * CHUNK,
        ));
        let (generation, bytes) = file_log(dir.path());
        println!(
            "FILE100K {} revocations: this 10,000 in {:.1} s ({:.0} µs each), {:.1} s in all; \
             log generation {generation}, {bytes} bytes",
            (chunk + 1) * CHUNK,
            t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64() * 1e6 / CHUNK as f64,
            start.elapsed().as_secs_f64(),
        );
        if start.elapsed() > Duration::from_secs(15 * 60) {
            println!("FILE100K stopped after 15 minutes");
            break;
        }
    }
    let reader = config(Some(backend), hour);
    let t = Instant::now();
    rt.block_on(reader.sync_revocations()).unwrap();
    println!(
        "FILE100K a new reader's first sync: {} entries in {:.1} ms",
        reader.revocation_status().entries,
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn revocation_benches(c: &mut Criterion) {
    // One worker thread runs the sync loops (as a server's runtime would, next to the
    // requests); each request runs on the bench thread (`block_on`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    file_100k_probe(&rt);
    let servers = Servers {
        redis: real_servers::redis("revocation redis contenders"),
        postgres: real_servers::postgres("revocation postgres contenders"),
        dir: tempfile::tempdir().unwrap(),
    };
    let configs = request_benches(c, &rt, &servers);
    sync_benches(c, &rt, &servers, &configs);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = revocation_benches
}
criterion_main!(benches);
