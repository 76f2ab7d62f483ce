//! Capabilities users of the Node.js session libraries expect: push, see everything,
//! touch, save, reload (from the store for a pointer session).

#[path = "common/browser.rs"]
mod browser;

use std::sync::Arc;
use std::time::Duration;

use browser::{cookie_pair, noise, with_cookie, ManualClock};
use http::HeaderMap;
use sealed_session::headers::{load, reload, save};
use sealed_session::{store::MemoryStore, Expiry, Keyring, Session, SessionConfig};

const T0: i64 = 1_800_000_000;

fn config(clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new([[3u8; 32]]).unwrap())
        .clock(clock.clock())
        .expiry(Expiry::idle(Duration::from_secs(600)))
        .store(MemoryStore::new())
        .build()
        .unwrap()
}

async fn saved(cfg: &SessionConfig, s: &Session) -> Option<String> {
    let mut out = HeaderMap::new();
    save(cfg, s, &mut out).await.unwrap();
    cookie_pair(&out)
}

#[tokio::test]
async fn push_appends_to_a_list_across_requests() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.push("tags", "a".to_owned()).unwrap();
    s.push("tags", "b".to_owned()).unwrap();
    let pair = saved(&cfg, &s).await.unwrap();
    let s = load(&cfg, &with_cookie(&pair)).await.unwrap();
    s.push("tags", "c".to_owned()).unwrap();
    assert_eq!(
        s.get::<Vec<String>>("tags").unwrap().unwrap(),
        ["a", "b", "c"]
    );
    s.insert("n", &5u8).unwrap();
    assert!(
        s.push("n", 1u8).is_err() || s.get::<Vec<u8>>("n").is_ok(),
        "a non-list is refused or read as a list"
    );
}

#[tokio::test]
async fn entries_show_every_key_with_its_size_and_typed_access() {
    let s = Session::new();
    s.insert("user", "ada").unwrap();
    s.insert("id", &300u64).unwrap();
    s.insert("blob", &vec![0u8; 100]).unwrap();
    let entries = s.entries();
    assert_eq!(
        entries,
        vec![
            ("blob".to_owned(), 101),
            ("id".to_owned(), 2),
            ("user".to_owned(), 4)
        ]
    );
    for (key, _) in &entries {
        assert!(s.contains(key));
    }
    assert_eq!(s.get::<u64>("id").unwrap(), Some(300));
}

#[tokio::test]
async fn touch_renews_expiry_now() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("a", &1u8).unwrap();
    let pair = saved(&cfg, &s).await.unwrap();
    assert_eq!(s.expires_at().unix_timestamp(), T0 + 600);
    clock.advance(100); // 500 s left: above the 300 s renew threshold
    let s = load(&cfg, &with_cookie(&pair)).await.unwrap();
    assert!(saved(&cfg, &s).await.is_none(), "no renewal due yet");
    s.touch();
    assert!(saved(&cfg, &s).await.is_some(), "touch re-issues");
    assert_eq!(s.expires_at().unix_timestamp(), T0 + 100 + 600);
}

#[tokio::test]
async fn save_forces_a_write_of_an_unchanged_session() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("a", &1u8).unwrap();
    let pair = saved(&cfg, &s).await.unwrap();
    let s = load(&cfg, &with_cookie(&pair)).await.unwrap();
    assert!(saved(&cfg, &s).await.is_none());
    s.save();
    assert!(saved(&cfg, &s).await.is_some());
}

#[tokio::test]
async fn reload_refetches_a_pointer_session_from_the_store() {
    let clock = ManualClock::new(T0);
    let cfg = config(&clock);
    let big = noise(6000, 42);
    let s = load(&cfg, &HeaderMap::new()).await.unwrap();
    s.insert("blob", &big).unwrap();
    s.insert("v", &1u8).unwrap();
    let pair = saved(&cfg, &s).await.unwrap();
    assert!(s.is_store_backed());
    // Two requests with the same pointer cookie; the second one saves first.
    let a = load(&cfg, &with_cookie(&pair)).await.unwrap();
    let b = load(&cfg, &with_cookie(&pair)).await.unwrap();
    b.insert("v", &2u8).unwrap();
    saved(&cfg, &b).await.unwrap();
    a.insert("unsaved", &true).unwrap();
    reload(&cfg, &a).await.unwrap();
    assert_eq!(
        a.get::<u8>("v").unwrap(),
        Some(2),
        "the store's current body"
    );
    assert!(!a.contains("unsaved"));
    assert_eq!(a.get::<Vec<u8>>("blob").unwrap().unwrap().len(), 6000);
}

#[test]
fn store_is_shared_behind_an_arc() {
    let store = Arc::new(MemoryStore::new());
    let cfg = SessionConfig::builder(Keyring::generate())
        .store_arc(store)
        .build()
        .unwrap();
    assert!(cfg.store().is_some());
}
