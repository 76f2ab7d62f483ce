//! End to end: the built example server binary on a free port, over real HTTP.
#![cfg(feature = "axum")]

#[path = "common/demo_process.rs"]
mod demo_process;

use demo_process::{Browser, Server};
use serde_json::json;

#[tokio::test]
async fn the_example_server_over_real_http_survives_a_key_rotation_restart() {
    let old = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA";
    let new = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8";
    let dir = std::env::temp_dir().join(format!("sealed-session-e2e-{}", std::process::id()));
    let store = format!("file:{}", dir.display());
    let mut b = Browser::default();
    let first_key_id;
    {
        let server = Server::start(old, &store, &[]);
        for n in 1..=3 {
            let r = b.call(&server, "GET", "/", None).await;
            let (status, body) = (r.status, r.json);
            assert_eq!(status, 200);
            assert_eq!(body, json!({"views": n}));
        }
        let r = b
            .call(&server, "POST", "/login", Some(json!({"user": "ada"})))
            .await;
        let (status, body) = (r.status, r.json);
        assert_eq!((status, body), (200, json!({"user": "ada"})));
        let r = b
            .call(&server, "POST", "/cart", Some(json!({"items": 300})))
            .await;
        let (status, body) = (r.status, r.json);
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
    let server = Server::start(&format!("{new},{old}"), &store, &[]);
    let r = b.call(&server, "GET", "/session", None).await;
    let (status, body, set) = (r.status, r.json, r.set_cookie);
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
    let body = b.call(&server, "GET", "/", None).await.json;
    assert_eq!(body, json!({"views": 4}));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
