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
    let err = s.push("n", 1u8).unwrap_err();
    assert_eq!(err.kind(), sealed_session::ErrorKind::Value, "{err:?}");
    assert_eq!(
        s.get::<u8>("n").unwrap(),
        Some(5),
        "a non-list is refused and left as it was, never turned into a list"
    );
}

#[tokio::test]
async fn entries_show_every_key_with_its_size_and_typed_access() {
    let s = Session::new();
    s.insert("user", "ada").unwrap();
    s.insert("id", &300u64).unwrap();
    s.insert("blob", &vec![0u8; 100]).unwrap();
    let entries = s.entries();
    // The sizes of the CBOR encodings: an array header of 2 bytes and 100 zeros,
    // 0x19 0x012c, and a text header with "ada".
    assert_eq!(
        entries,
        vec![
            ("blob".to_owned(), 102),
            ("id".to_owned(), 3),
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
    let b_pair = saved(&cfg, &b).await.unwrap();
    a.insert("unsaved", &true).unwrap();
    reload(&cfg, &a).await.unwrap();
    // Every write goes to an entry of its own, named only by its own pointer: `a`
    // reads back the body its pointer names (b's write did not touch it), never a
    // body written under other meta.
    assert_eq!(
        a.get::<u8>("v").unwrap(),
        Some(1),
        "the body a's pointer names"
    );
    assert!(!a.contains("unsaved"));
    assert_eq!(
        a.get::<serde_bytes::ByteBuf>("blob")
            .unwrap()
            .unwrap()
            .len(),
        6000
    );
    let b = load(&cfg, &with_cookie(&b_pair)).await.unwrap();
    assert_eq!(
        b.get::<u8>("v").unwrap(),
        Some(2),
        "b's pointer names b's write"
    );
    // It really is read from the store again: once the entry is gone, reload says so.
    let d = sealed_session::inspect::describe(&cfg, pair.split_once('=').unwrap().1).unwrap();
    cfg.store()
        .unwrap()
        .delete(&d.store_key.unwrap())
        .await
        .unwrap();
    assert!(matches!(
        reload(&cfg, &a).await,
        Err(sealed_session::Error::MissingInStore)
    ));
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
