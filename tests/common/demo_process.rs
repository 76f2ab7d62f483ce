//! The demo server (`examples/server.rs`) as a child process on a free port, and a
//! browser of one cookie that talks to it over real HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{header, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The keys every test process shares unless it says otherwise.
pub const KEYS: &str = "XFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFw";

/// The example binary, built once per test process by `cargo build` with exactly
/// this test's features: a no-op when `cargo test` has just built it, a rebuild
/// when it is stale (`cargo test --test NAME` builds no examples).
pub fn server_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let features: Vec<&str> = [
                ("tower", cfg!(feature = "tower")),
                ("axum", cfg!(feature = "axum")),
                ("redis", cfg!(feature = "redis")),
                ("postgres", cfg!(feature = "postgres")),
                ("sqlite", cfg!(feature = "sqlite")),
                ("cli", cfg!(feature = "cli")),
                ("test-util", cfg!(feature = "test-util")),
                ("conformance", cfg!(feature = "conformance")),
            ]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--quiet",
                    "--example",
                    "server",
                    "--no-default-features",
                ])
                .arg("--features")
                .arg(features.join(","))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "building the example server failed");
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("examples")
                .join(format!("server{}", std::env::consts::EXE_SUFFIX))
        })
        .clone()
}

/// A running demo server; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts the demo with `SESSION_KEYS=keys`, `SESSION_STORE=store` and `extra`
    /// environment variables, on a free port of 127.0.0.1.
    pub fn start(keys: &str, store: &str, extra: &[(&str, &str)]) -> Server {
        let mut command = Command::new(server_binary());
        command
            .env("ADDR", "127.0.0.1:0")
            .env("SESSION_KEYS", keys)
            .env("SESSION_STORE", store)
            .env("SESSION_SECURE", "0")
            .env("RUST_LOG", "warn");
        for (k, v) in extra {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            panic!("the demo server did not start with SESSION_STORE={store}: {line:?} {err}");
        };
        Server {
            base: base.to_owned(),
            child,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer: status, JSON body, and the Set-Cookie header if any.
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub set_cookie: Option<String>,
}

/// A browser of one cookie.
#[derive(Clone)]
pub struct Browser {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    pub cookie: Option<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookie: None,
        }
    }
}

impl Browser {
    /// Sends one request to `server` and keeps the cookie it sets (a removal cookie
    /// clears it).
    pub async fn call(
        &mut self,
        server: &Server,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.base));
        if let Some(c) = &self.cookie {
            req = req.header(header::COOKIE, c);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(b.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            self.client.request(req.body(body).unwrap()),
        )
        .await
        .expect("server answered in time")
        .unwrap();
        let status = res.status().as_u16();
        let set_cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(sc) = &set_cookie {
            let pair = sc.split(';').next().unwrap().to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            set_cookie,
        }
    }

    /// The cookie's value (after `name=`).
    pub fn value(&self) -> String {
        self.cookie
            .as_deref()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }
}
