//! A throwaway PostgreSQL for tests: `initdb` in a private temp dir, `pg_ctl start`
//! on a free port of 127.0.0.1 only, trust authentication, the unix socket in the
//! temp dir; stopped (immediately) and its directory removed on drop.
//!
//! Use it from a test file with
//! `#[path = "common/postgres_server.rs"] mod postgres_server;`.
//!
//! The binaries are looked up on `PATH`, then under `/usr/lib/postgresql/*/bin`
//! (Debian's package keeps `initdb` off `PATH`), newest version first. When they
//! are missing, [`PostgresServer::start`] panics with an install hint, unless
//! `SEALED_SESSION_SKIP_SERVERS=1` asks to skip: then it prints a SKIPPED line and
//! returns `None` (see `servers.rs`).
//!
//! The first `initdb` of a PostgreSQL version leaves a copy of its pristine cluster
//! under `target/tmp`; later servers start from a copy of it (much quicker).
//!
//! `initdb` and `postgres` refuse to run as root. As root (CI), they run as the
//! `postgres` system user (Debian's `postgresql` package creates it) through
//! `runuser` (or `su`), with the temp dir given to that user.
#![allow(dead_code)]

// Also loaded by `redis_server.rs` when a test uses both servers: one small file twice.
#[allow(clippy::duplicate_mod)]
#[path = "servers.rs"]
mod servers;

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser `initdb` creates, and the database the URL names.
const USER: &str = "postgres";

/// How long `pg_ctl` waits for the server to start or stop, in seconds.
const PG_CTL_WAIT_SECS: &str = "30";

/// A running PostgreSQL cluster of its own.
pub struct PostgresServer {
    bin: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    running: bool,
    // Dropped last, after `Drop::drop` stopped the server.
    dir: tempfile::TempDir,
}

/// How to run a command as the `postgres` system user when we are root.
#[derive(Clone, Copy)]
enum RunAs {
    Runuser,
    Su,
}

impl PostgresServer {
    /// Makes a cluster (`initdb`) and starts it on a free port, or returns `None`
    /// (after printing the SKIPPED line) when PostgreSQL is not installed and
    /// `SEALED_SESSION_SKIP_SERVERS=1`.
    ///
    /// # Panics
    /// If PostgreSQL is missing and skipping was not asked for; if running as root
    /// and neither `runuser` nor `su` can run it as the `postgres` user; if `initdb`
    /// or the server fails.
    pub fn start() -> Option<PostgresServer> {
        let Some(bin) = find_binaries() else {
            servers::missing(
                "PostgreSQL (initdb, pg_ctl)",
                "apt-get install -y postgresql",
            );
            return None;
        };
        let run_as = if is_root() { Some(root_runner()) } else { None };
        // The postgres user must be able to reach the dir: as root, a private TMPDIR
        // (say, under /root) will not do, so /tmp is used instead.
        let base = std::env::temp_dir();
        let base = if run_as.is_some() && !world_traversable(&base) {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let dir = tempfile::Builder::new()
            .prefix("sealed-session-pg-")
            .tempdir_in(base)
            .expect("create the PostgreSQL temp dir");
        if run_as.is_some() {
            give_to_postgres(dir.path());
        }
        let mut server = PostgresServer {
            bin,
            run_as,
            port: free_port(),
            running: false,
            dir,
        };
        server.make_cluster();
        // Another process may take the port between our probe and the server binding it.
        for _ in 0..2 {
            if server.launch().is_ok() {
                return Some(server);
            }
            server.port = free_port();
        }
        server.start_again();
        Some(server)
    }

    /// The port the server listens on (kept across [`start_again`](Self::start_again)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `postgres://` URL for the superuser and its database, over TCP.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{USER}", self.port)
    }

    /// Whether the server is running (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): connections drop as in a
    /// crash; committed data survives (the next start recovers it).
    ///
    /// # Panics
    /// If `pg_ctl` fails while the server runs.
    pub fn stop_immediate(&mut self) {
        if !self.running {
            return;
        }
        let stop = self.pg_ctl_stop();
        assert!(
            stop.status.success(),
            "pg_ctl stop failed: {}",
            describe(&stop)
        );
        self.running = false;
    }

    /// Starts the server again on the same port, with the same data.
    ///
    /// # Panics
    /// If it does not start.
    pub fn start_again(&mut self) {
        if let Err(message) = self.launch() {
            panic!("{message}");
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Puts a fresh cluster in the data dir: a copy of the template made by an earlier
    /// `initdb` (about 40 MB copied in a tenth of a second, where `initdb` takes a
    /// second or more), or a new `initdb` whose result then becomes the template.
    fn make_cluster(&self) {
        let data = self.data_dir();
        let template = template_dir(&self.bin);
        if let Some(template) = &template {
            if is_cluster(template) && copy_tree(template, &data) && is_cluster(&data) {
                return;
            }
            let _ = std::fs::remove_dir_all(&data);
        }
        let initdb = self.run(
            "initdb",
            [
                OsString::from("-D"),
                data.clone().into_os_string(),
                format!("--username={USER}").into(),
                "--auth=trust".into(),
                "--encoding=UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
                // 1 MB WAL segments instead of 16: a smaller cluster to make and copy.
                "--wal-segsize=1".into(),
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            describe(&initdb)
        );
        if let Some(template) = template {
            save_template(&data, &template);
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        if self.running {
            return Ok(());
        }
        let socket_dir = self.dir.path().display().to_string();
        // pg_ctl hands these to a shell: the temp dir name has no spaces or quotes.
        let settings = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{socket_dir}' \
             -c fsync=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=50",
            self.port
        );
        let log = self.dir.path().join("server.log");
        let start = self.run(
            "pg_ctl",
            [
                OsString::from("start"),
                "-w".into(),
                "-t".into(),
                PG_CTL_WAIT_SECS.into(),
                "-D".into(),
                self.data_dir().into_os_string(),
                "-l".into(),
                log.clone().into_os_string(),
                "-o".into(),
                settings.into(),
            ],
        );
        if start.status.success() {
            self.running = true;
            return Ok(());
        }
        // A half-started server must not linger.
        let _ = self.pg_ctl_stop();
        Err(format!(
            "PostgreSQL on port {} did not start: {}\nserver log:\n{}",
            self.port,
            describe(&start),
            std::fs::read_to_string(&log).unwrap_or_default()
        ))
    }

    fn pg_ctl_stop(&self) -> Output {
        self.run(
            "pg_ctl",
            [
                OsString::from("stop"),
                "-m".into(),
                "immediate".into(),
                "-w".into(),
                "-t".into(),
                PG_CTL_WAIT_SECS.into(),
                "-D".into(),
                self.data_dir().into_os_string(),
            ],
        )
    }

    /// Runs one of PostgreSQL's binaries, as the `postgres` user when we are root.
    fn run<I>(&self, program: &str, args: I) -> Output
    where
        I: IntoIterator<Item = OsString>,
    {
        let program = self.bin.join(program);
        let args: Vec<OsString> = args.into_iter().collect();
        let mut command = match self.run_as {
            None => {
                let mut c = Command::new(&program);
                c.args(&args);
                c
            }
            Some(RunAs::Runuser) => {
                let mut c = Command::new("runuser");
                c.args(["-u", USER, "--"]).arg(&program).args(&args);
                c
            }
            Some(RunAs::Su) => {
                let line = std::iter::once(program.into_os_string())
                    .chain(args)
                    .map(|a| shell_quote(&a.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(" ");
                let mut c = Command::new("su");
                c.args([USER, "-s", "/bin/sh", "-c"]).arg(line);
                c
            }
        };
        // The postgres user may not be allowed into the test's working directory.
        command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", self.bin.display()))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl_stop();
            self.running = false;
        }
    }
}

/// Where a pristine cluster for these binaries is kept between tests: under cargo's
/// scratch dir for tests (`target/tmp`), named by the server version and the
/// `initdb` options used here.
fn template_dir(bin: &Path) -> Option<PathBuf> {
    let base = option_env!("CARGO_TARGET_TMPDIR")?;
    let version = Command::new(bin.join("pg_ctl"))
        .arg("--version")
        .output()
        .ok()?;
    let tag: String = String::from_utf8_lossy(&version.stdout)
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(PathBuf::from(base).join(format!("pg-template-{tag}-{USER}-trust-utf8-c-wal1")))
}

/// Whether `dir` holds a whole cluster (its version file, control file, databases).
fn is_cluster(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file()
        && dir.join("global/pg_control").is_file()
        && dir.join("base").is_dir()
}

/// Copies a cluster with its owner and modes (`cp -a`); false when that fails.
fn copy_tree(from: &Path, to: &Path) -> bool {
    Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Keeps a copy of a fresh cluster as the template, unless another test was quicker:
/// copied under a private name, then renamed into place in one step.
fn save_template(data: &Path, template: &Path) {
    let Some(parent) = template.parent() else {
        return;
    };
    if template.exists() || std::fs::create_dir_all(parent).is_err() {
        return;
    }
    // Unique per process and thread: tests of one binary start servers in parallel.
    static STAGED: AtomicU32 = AtomicU32::new(0);
    let staging = parent.join(format!(
        ".{}.{}.{}",
        template.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        STAGED.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    if copy_tree(data, &staging)
        && is_cluster(&staging)
        && std::fs::rename(&staging, template).is_ok()
    {
        return;
    }
    let _ = std::fs::remove_dir_all(&staging);
}

/// The directory holding both `initdb` and `pg_ctl`: on `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn find_binaries() -> Option<PathBuf> {
    let has_both =
        |dir: &Path| is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"));
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_both(dir)) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether every user may pass through `dir` and each of its parents.
fn world_traversable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().all(|d| {
        d.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0"),
    }
}

/// `runuser` if it can run a command as `postgres`, else `su`; panics when neither can.
fn root_runner() -> RunAs {
    let works = |command: &mut Command| {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(Command::new("runuser").args(["-u", USER, "--", "true"])) {
        return RunAs::Runuser;
    }
    if works(Command::new("su").args([USER, "-s", "/bin/sh", "-c", "true"])) {
        return RunAs::Su;
    }
    panic!(
        "running as root, and PostgreSQL refuses to: the tests run initdb and pg_ctl as the \
         `{USER}` system user, but neither `runuser -u {USER}` nor `su {USER}` works here \
         (Debian's `apt-get install -y postgresql` creates the user; or run the tests as a \
         non-root user)"
    );
}

/// Hands the temp dir to the `postgres` user (its uid and gid as `id` reports them).
fn give_to_postgres(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, USER])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no `{USER}` user: `id {flag} {USER}` failed"))
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g")))
        .expect("give the temp dir to the postgres user");
}

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A port that was free a moment ago: bind to port 0, read it, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}
