//! Revocation across two demo server processes sharing a file store or Redis
//! (the SQL stores: tests/sql_server.rs): a logout or logout-all on one holds on
//! the other within 2 s.
#![cfg(feature = "axum")]

#[path = "common/demo_process.rs"]
mod demo_process;

#[path = "common/redis_server.rs"]
mod redis_server;

#[path = "common/revocation_across.rs"]
mod revocation_across;

use demo_process::{Browser, Server, KEYS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_file_store_share_revocations() {
    let dir =
        std::env::temp_dir().join(format!("sealed-session-revoke-e2e-{}", std::process::id()));
    let store = format!("file:{}", dir.display());
    let one = Server::start(KEYS, &store, &[]);
    let two = Server::start(KEYS, &store, &[]);
    revocation_across::revocation_across(&one, &two, Browser::default()).await;
    drop((one, two));
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_redis_share_revocations() {
    let Some(redis) = redis_server::RedisServer::start() else {
        return;
    };
    let one = Server::start(KEYS, &redis.url(), &[]);
    let two = Server::start(KEYS, &redis.url(), &[]);
    revocation_across::revocation_across(&one, &two, Browser::default()).await;
}
