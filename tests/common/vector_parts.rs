//! Reads the session part of a frozen vector (tests/vectors/v1.json).
#![allow(dead_code)]

use sealed_session::testing::EnvelopeParts;
use serde_json::Value;

/// The fixed envelope of a session vector.
pub fn parts(v: &Value) -> EnvelopeParts {
    let s = &v["session"];
    EnvelopeParts {
        id: hex::decode(s["id"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        created: s["created"].as_i64().unwrap(),
        last_active: s["last_active"].as_i64().unwrap(),
        expires_at: s["expires_at"].as_i64().unwrap(),
        csrf: s["csrf"]
            .as_str()
            .map(|c| hex::decode(c).unwrap().try_into().unwrap()),
        values: s["values"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), hex::decode(v.as_str().unwrap()).unwrap()))
            .collect(),
    }
}
