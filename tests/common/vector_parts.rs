//! Reads the session part of a frozen vector (tests/vectors/v1.json, v2.json).
#![allow(dead_code)]

use sealed_session::testing::{EnvelopeParts, Policy};
use serde_json::Value;

fn hex16(v: &Value) -> [u8; 16] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn encoded(v: &Value) -> Vec<(String, Vec<u8>)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), hex::decode(v.as_str().unwrap()).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// The session envelope's policy field of a v2 vector.
fn policy(v: &Value) -> Policy {
    match v["kind"].as_str() {
        None | Some("default") => Policy::Default,
        Some("browser_session") => Policy::BrowserSession,
        Some("absolute") => Policy::Absolute {
            start: v["start"].as_i64().unwrap(),
            ttl: v["ttl"].as_u64().unwrap(),
        },
        Some("idle") => Policy::Idle {
            timeout: v["timeout"].as_u64().unwrap(),
            renew: v["renew"].as_u64().unwrap(),
        },
        Some(other) => panic!("unknown policy {other}"),
    }
}

/// The fixed envelope of a session vector (v1 vectors have no version field).
pub fn parts(v: &Value) -> EnvelopeParts {
    let s = &v["session"];
    EnvelopeParts {
        version: v["version"].as_u64().map_or(1, |n| n as u8),
        id: hex16(&s["id"]),
        created: s["created"].as_i64().unwrap(),
        last_active: s["last_active"].as_i64().unwrap(),
        expires_at: s["expires_at"].as_i64().unwrap(),
        csrf: s["csrf"]
            .as_str()
            .map(|c| hex::decode(c).unwrap().try_into().unwrap()),
        policy: policy(&s["policy"]),
        subject: s.get("subject").filter(|x| !x.is_null()).map(|x| {
            (
                x["key_id"].as_u64().unwrap() as u32,
                hex16(&x["hash"]),
                x["since"].as_i64().unwrap(),
            )
        }),
        fingerprint: s["fingerprint"]
            .as_str()
            .map(|f| hex::decode(f).unwrap().try_into().unwrap()),
        values: encoded(&s["values"]),
        flash: encoded(&s["flash"]),
        pointer: s["pointer"]
            .as_str()
            .map(|p| hex16(&Value::String(p.into()))),
    }
}
