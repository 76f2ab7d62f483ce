//! Real Redis and PostgreSQL servers for the benches, through the test harnesses in
//! `tests/common` (a free port on 127.0.0.1, a private temp dir, stopped on drop).
//! A server that cannot be started skips its contender with a `SKIPPED` line that
//! says why; it never fails the other contenders nor passes for a measurement.

#![allow(dead_code)] // not every bench uses both servers

#[path = "../../tests/common/postgres_server.rs"]
pub mod postgres_server;
#[path = "../../tests/common/redis_server.rs"]
pub mod redis_server;

pub use postgres_server::PostgresServer;
pub use redis_server::RedisServer;

/// Starts `redis-server`, or prints why the `contender` is skipped.
pub fn redis(contender: &str) -> Option<RedisServer> {
    start(contender, "redis-server", RedisServer::start)
}

/// Starts PostgreSQL (fsync off, as the harness runs it), or prints why the
/// `contender` is skipped.
pub fn postgres(contender: &str) -> Option<PostgresServer> {
    start(contender, "PostgreSQL", PostgresServer::start)
}

/// The harnesses panic when the binary is missing (with an install hint) unless
/// `SEALED_SESSION_SKIP_SERVERS=1`, when they return `None`: both become a skip.
fn start<S>(contender: &str, what: &str, start: fn() -> Option<S>) -> Option<S> {
    match std::panic::catch_unwind(start) {
        Ok(Some(server)) => Some(server),
        Ok(None) => {
            println!(
                "SKIPPED {contender}: {what} is not installed (SEALED_SESSION_SKIP_SERVERS=1)"
            );
            None
        }
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("it panicked");
            println!("SKIPPED {contender}: {what} could not be started: {why}");
            None
        }
    }
}
