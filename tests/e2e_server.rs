//! End to end: the built example server binary on a free port, over real HTTP.
#![cfg(feature = "axum")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{header, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// The example binary next to this test's binary (`cargo test` builds examples).
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("server{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "building the example server failed");
    }
    bin
}

/// A running server; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(keys: &str, store_dir: &std::path::Path) -> Server {
        let mut child = Command::new(server_binary())
            .env("ADDR", "127.0.0.1:0")
            .env("SESSION_KEYS", keys)
            .env("SESSION_STORE", format!("file:{}", store_dir.display()))
            .env("SESSION_SECURE", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser {
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    cookie: Option<String>,
}

impl Browser {
    async fn call(
        &mut self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{base}{path}"));
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
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(sc) = &set {
            self.cookie = Some(sc.split(';').next().unwrap().to_owned());
        }
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            set,
        )
    }
}

#[tokio::test]
async fn the_example_server_over_real_http_survives_a_key_rotation_restart() {
    let old = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
    let new = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
    let dir = std::env::temp_dir().join(format!("sealed-session-e2e-{}", std::process::id()));
    let mut b = Browser {
        client: Client::builder(TokioExecutor::new()).build_http(),
        cookie: None,
    };
    let first_key_id;
    {
        let server = Server::start(old, &dir);
        for n in 1..=3 {
            let (status, body, _) = b.call(&server.base, "GET", "/", None).await;
            assert_eq!(status, 200);
            assert_eq!(body, json!({"views": n}));
        }
        let (status, body, _) = b
            .call(&server.base, "POST", "/login", Some(json!({"user": "ada"})))
            .await;
        assert_eq!((status, body), (200, json!({"user": "ada"})));
        let (status, body, _) = b
            .call(&server.base, "POST", "/cart", Some(json!({"items": 300})))
            .await;
        assert_eq!((status, body), (200, json!({"items": 300})));
        let value = b
            .cookie
            .as_deref()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        let info = sealed_session::inspect::header(&value).unwrap();
        assert!(info.header.pointer, "a 300-item cart lives in the store");
        assert!(b.cookie.as_ref().unwrap().len() <= 4093);
        first_key_id = info.header.key_id;
    }
    // Restart with a new primary key; the old one still opens.
    let server = Server::start(&format!("{new},{old}"), &dir);
    let (status, body, set) = b.call(&server.base, "GET", "/session", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"], "ada");
    assert_eq!(body["views"], 3);
    assert_eq!(body["cart"].as_array().unwrap().len(), 300);
    assert!(set.is_some(), "re-sealed under the new key");
    let value = b
        .cookie
        .as_deref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    assert_ne!(
        sealed_session::inspect::header(&value)
            .unwrap()
            .header
            .key_id,
        first_key_id
    );
    let (_, body, _) = b.call(&server.base, "GET", "/", None).await;
    assert_eq!(body, json!({"views": 4}));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
