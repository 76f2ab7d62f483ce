//! A throwaway `redis-server` for tests: no persistence, a free port on
//! 127.0.0.1, a private temp dir, killed on drop.
//!
//! Use it from a test file with
//! `#[path = "common/redis_server.rs"] mod redis_server;` (or from a
//! `tests/common/mod.rs` as `pub mod redis_server;`).
//!
//! When `redis-server` is not on `PATH`, [`RedisServer::start`] panics with an
//! install hint, unless `SEALED_SESSION_SKIP_SERVERS=1` asks to skip: then it
//! prints a SKIPPED line past the output capture and returns `None`, so the test
//! returns early (see `servers.rs`).
#![allow(dead_code)]

#[path = "servers.rs"]
mod servers;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a starting server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` child process.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, or returns `None` (after printing the SKIPPED
    /// line) when `redis-server` is not installed and `SEALED_SESSION_SKIP_SERVERS=1`.
    ///
    /// # Panics
    /// If the server does not start, or it is missing and skipping was not asked for.
    pub fn start() -> Option<RedisServer> {
        let Some(binary) = find_on_path("redis-server") else {
            servers::missing("redis-server", "apt-get install -y redis-server");
            return None;
        };
        let mut server = RedisServer {
            binary,
            port: free_port(),
            dir: unique_dir(),
            child: None,
        };
        std::fs::create_dir_all(&server.dir).expect("create redis temp dir");
        // Another process may grab the port between our probe and redis binding it.
        for _ in 0..2 {
            if server.launch().is_ok() {
                return Some(server);
            }
            server.port = free_port();
        }
        server.restart();
        Some(server)
    }

    /// The port the server listens on (kept across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `redis://` URL for this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Whether the server process is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL also ends a frozen process
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: while frozen, the kernel
    /// still accepts connections but nothing answers, like a hung server.
    #[cfg(unix)]
    pub fn set_frozen(&mut self, frozen: bool) {
        let Some(child) = &self.child else {
            return;
        };
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// (Re)starts the server on the same port and waits until it answers `PING`.
    ///
    /// # Panics
    /// If it exits or does not answer within 10 s.
    pub fn restart(&mut self) {
        if let Err(message) = self.launch() {
            panic!("{message}");
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        self.kill();
        let log = self.dir.join("redis.log");
        let child = Command::new(&self.binary)
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if ping(self.port) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                self.kill();
                return Err(format!(
                    "redis-server on port {} did not start ({:?}); log:\n{}",
                    self.port,
                    exited,
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a raw `PING` and checks for `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A port that was free a moment ago: bind to port 0, read it, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "sealed-session-redis-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
