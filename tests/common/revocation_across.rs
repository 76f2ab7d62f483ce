//! The demo contract's revocation across two server processes sharing one store:
//! a logout on one holds on the other within 2 s, and so does a logout-all.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::demo_process::{Browser, Server};

/// Waits until `b` is served `want` by `server` on `/whoami`, for at most 2 s.
async fn within_two_seconds(b: &mut Browser, server: &Server, want: Value, what: &str) {
    let started = Instant::now();
    loop {
        let r = b.call(server, "GET", "/whoami", None).await;
        if r.json == json!({ "user": want }) {
            eprintln!(
                "{what}: reached the other server in {:?}",
                started.elapsed()
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: still {} after 2 s",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs in on `one`, copies the cookie, logs out on `one`: the copy opens nothing on
/// `two` within 2 s. Then two devices of one user, logout-all on `two`: both refused
/// on `one`. `b` is a browser that may hold a session already.
pub async fn revocation_across(one: &Server, two: &Server, mut b: Browser) {
    let r = b
        .call(one, "POST", "/login", Some(json!({"user": "ada"})))
        .await;
    assert_eq!(r.status, 200);
    let mut copy = b.clone();
    let r = b.call(two, "GET", "/whoami", None).await;
    assert_eq!(r.json, json!({"user": "ada"}), "the session is shared");
    let r = b.call(one, "POST", "/logout", None).await;
    assert_eq!((r.status, r.json), (200, json!({"logged_out": true})));
    within_two_seconds(&mut copy, two, Value::Null, "a copied cookie after logout").await;

    let mut laptop = Browser::default();
    let mut phone = Browser::default();
    laptop
        .call(one, "POST", "/login", Some(json!({"user": "bo"})))
        .await;
    phone
        .call(two, "POST", "/login", Some(json!({"user": "bo"})))
        .await;
    let r = phone.call(two, "POST", "/logout-all", None).await;
    assert_eq!((r.status, r.json), (200, json!({"revoked": true})));
    within_two_seconds(
        &mut laptop,
        one,
        Value::Null,
        "the other device after logout-all",
    )
    .await;
}
