//! The session data and our write and read paths of `public_path.rs`, shared with
//! `profile_loop.rs` so the profiler sees exactly what the bench times.

#![allow(dead_code)] // not every bench uses every item

use http::HeaderMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealed_session::{headers, Keyring, SessionConfig};
use serde::{Deserialize, Serialize};

use super::common::ready;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
    pub price_cents: u64,
}

/// The fields every contender writes and reads back.
#[derive(Debug, Clone)]
pub struct Data {
    pub user_id: u64,
    pub username: String,
    pub roles: Vec<String>,
    pub flash: String,
    pub last_seen: i64,
    pub cart: Option<Vec<Item>>,
}

pub fn data(cart_items: Option<usize>) -> Data {
    let mut rng = StdRng::seed_from_u64(8);
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let cart = cart_items.map(|n| {
        (0..n)
            .map(|_| Item {
                sku: (0..8)
                    .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                    .collect(),
                qty: rng.random_range(1..10),
                price_cents: rng.random_range(99..99_999),
            })
            .collect()
    });
    Data {
        user_id: 4_211_337,
        username: "alice.martin".into(),
        roles: vec!["admin".into(), "editor".into(), "billing".into()],
        flash: "Your profile was updated successfully :)".into(),
        last_seen: 1_763_800_000,
        cart,
    }
}

/// What a read hands the handler: every field, typed.
#[derive(Debug, PartialEq)]
pub struct Read {
    pub user_id: u64,
    pub username: String,
    pub roles: Vec<String>,
    pub csrf: String,
    pub flash: Option<String>,
    pub last_seen: i64,
    pub cart: Option<Vec<Item>>,
}

pub fn ours_config() -> SessionConfig {
    SessionConfig::builder(Keyring::new([[0x5a; 32]]).unwrap())
        .build()
        .unwrap()
}

pub fn ours_write(cfg: &SessionConfig, d: &Data) -> HeaderMap {
    let s = ready(headers::load(cfg, &HeaderMap::new())).unwrap();
    s.insert("user_id", &d.user_id).unwrap();
    s.insert("username", &d.username).unwrap();
    s.insert("roles", &d.roles).unwrap();
    s.csrf_token();
    s.flash("notice", &d.flash).unwrap();
    s.insert("last_seen", &d.last_seen).unwrap();
    if let Some(cart) = &d.cart {
        s.insert("cart", cart).unwrap();
    }
    let mut out = HeaderMap::new();
    ready(headers::save(cfg, &s, &mut out)).unwrap();
    out
}

pub fn ours_read(cfg: &SessionConfig, request: &HeaderMap) -> Read {
    let s = ready(headers::load(cfg, request)).unwrap();
    Read {
        user_id: s.get("user_id").unwrap().unwrap(),
        username: s.get("username").unwrap().unwrap(),
        roles: s.get("roles").unwrap().unwrap(),
        csrf: s.csrf_token(),
        flash: s.get_flash("notice").unwrap(),
        last_seen: s.get("last_seen").unwrap().unwrap(),
        cart: s.get("cart").unwrap(),
    }
}
