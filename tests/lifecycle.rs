//! Session lifecycle v2: remember-me, policies that clamp old cookies, passive
//! requests, values that survive deploys, and v1 cookies re-sealed as v2.
#![cfg(feature = "axum")]

#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

#[path = "common/demo.rs"]
mod demo;

#[path = "common/browser.rs"]
mod browser;

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::routing::get;
use axum::Router;
use browser::{cookie_pair, request, ManualClock};
use demo::{call, Reply};
use sealed_session::store::MemoryStore;
use sealed_session::{
    headers, Expiry, Keyring, Session, SessionConfig, SessionExpiry, SessionLayer,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
const KEY: [u8; 32] = [0x3C; 32];

fn demo_config(clock: &ManualClock, idle: Option<u64>, absolute: Option<u64>) -> SessionConfig {
    let builder = SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .secure(false)
        .clock(clock.clock())
        .store(MemoryStore::new());
    server::limits(
        builder,
        idle.map(Duration::from_secs),
        absolute.map(Duration::from_secs),
    )
    .build()
    .unwrap()
}

/// A browser of one cookie against the demo router.
struct Browser {
    app: Router,
    cookie: Option<String>,
    last_set_cookie: Option<String>,
}

impl Browser {
    fn new(app: Router) -> Self {
        Browser {
            app,
            cookie: None,
            last_set_cookie: None,
        }
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<serde_json::Value>) -> Reply {
        let headers = self
            .cookie
            .iter()
            .map(|c| ("cookie", HeaderValue::from_str(c).unwrap()))
            .collect();
        let r = call(&self.app, method, path, headers, body).await;
        self.last_set_cookie = r
            .headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(pair) = r.set_cookie() {
            self.cookie = Some(pair);
        }
        r
    }

    fn max_age(&self) -> Option<i64> {
        let sc = self.last_set_cookie.as_deref()?;
        sc.split(';')
            .find_map(|a| a.trim().strip_prefix("Max-Age="))
            .map(|v| v.parse().unwrap())
    }
}

#[tokio::test]
async fn remember_me_lasts_30_days_through_renewals_and_the_other_user_gets_a_browser_cookie() {
    let clock = ManualClock::new(T0);
    let app = server::app(demo_config(&clock, None, None));
    let mut remembered = Browser::new(app.clone());
    let mut plain = Browser::new(app);
    remembered.send(Method::GET, "/", None).await;
    plain.send(Method::GET, "/", None).await;
    let r = remembered
        .send(
            Method::POST,
            "/login",
            Some(json!({"user": "ada", "remember": true})),
        )
        .await;
    assert_eq!(r.json, json!({"user": "ada"}));
    let max_age = remembered.max_age().expect("a persistent cookie");
    assert!(
        (30 * DAY - 60..=30 * DAY).contains(&max_age),
        "Max-Age {max_age}"
    );
    plain
        .send(Method::POST, "/login", Some(json!({"user": "bob"})))
        .await;
    assert_eq!(
        plain.max_age(),
        None,
        "a browser-session cookie: no Max-Age"
    );
    assert!(!plain
        .last_set_cookie
        .as_deref()
        .unwrap()
        .contains("Expires"));

    // Five visits, each after 5 days: far past the default 24 h idle and 7-day limit.
    for visit in 1..=5 {
        clock.advance(5 * DAY);
        let r = remembered.send(Method::GET, "/whoami", None).await;
        assert_eq!(r.json, json!({"user": "ada"}), "visit {visit}");
        let r = remembered.send(Method::GET, "/", None).await;
        let max_age = remembered.max_age().expect("still persistent");
        let left = 30 * DAY - visit * 5 * DAY;
        assert!(
            (left - 60..=left).contains(&max_age),
            "visit {visit}: Max-Age {max_age}, want about {left}"
        );
        assert!(r.json["views"].as_u64().is_some());
    }
    // The browser-session user was gone after the first 5 days (24 h idle).
    let r = plain.send(Method::GET, "/whoami", None).await;
    assert_eq!(r.json, json!({"user": null}));
    // And 30 days after login the remembered session ends too.
    clock.advance(5 * DAY + 1);
    let r = remembered.send(Method::GET, "/whoami", None).await;
    assert_eq!(r.json, json!({"user": null}));
}

#[tokio::test]
async fn set_expiry_holds_for_a_store_backed_session() {
    let clock = ManualClock::new(T0);
    let config = demo_config(&clock, None, None);
    let mut b = Browser::new(server::app(config.clone()));
    b.send(
        Method::POST,
        "/login",
        Some(json!({"user": "ada", "remember": true})),
    )
    .await;
    let r = b
        .send(Method::POST, "/cart", Some(json!({"items": 300})))
        .await;
    assert_eq!(r.json, json!({"items": 300}));
    let value = b
        .cookie
        .as_deref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let d = sealed_session::inspect::describe(&config, &value).unwrap();
    assert!(d.header.pointer, "300 items live in the store");
    assert_eq!(d.expiry, SessionExpiry::Absolute(server::REMEMBER));
    assert!(b.max_age().unwrap() > 29 * DAY);
    clock.advance(20 * DAY);
    let r = b.send(Method::GET, "/session", None).await;
    assert_eq!(r.json["cart"].as_array().map(Vec::len), Some(300));
    assert_eq!(r.json["user"], "ada");
}

#[tokio::test]
async fn a_tightened_policy_shortens_cookies_issued_before_it() {
    let clock = ManualClock::new(T0);
    // Issued under the defaults: remember-me for 30 days, and a browser-session one.
    let before = demo_config(&clock, None, None);
    let mut remembered = Browser::new(server::app(before.clone()));
    remembered
        .send(
            Method::POST,
            "/login",
            Some(json!({"user": "ada", "remember": true})),
        )
        .await;
    let mut plain = Browser::new(server::app(before));
    plain
        .send(Method::POST, "/login", Some(json!({"user": "bob"})))
        .await;

    // After an incident the limits go down to 1 hour idle and 2 days absolute.
    let after = demo_config(&clock, Some(3600), Some(2 * DAY as u64));
    remembered.app = server::app(after.clone());
    plain.app = server::app(after);
    clock.advance(1800);
    for b in [&mut remembered, &mut plain] {
        let r = b.send(Method::GET, "/whoami", None).await;
        assert_ne!(r.json, json!({"user": null}), "within both limits");
    }
    // Two hours without activity: the new idle limit ends both, though the
    // remember-me cookie was sealed for 30 days.
    clock.advance(2 * 3600);
    for b in [&mut remembered, &mut plain] {
        let r = b.send(Method::GET, "/whoami", None).await;
        assert_eq!(r.json, json!({"user": null}), "idle past the lowered limit");
    }

    // The absolute limit counts from the session's own creation.
    let clock = ManualClock::new(T0);
    let mut b = Browser::new(server::app(demo_config(&clock, None, None)));
    b.send(
        Method::POST,
        "/login",
        Some(json!({"user": "cy", "remember": true})),
    )
    .await;
    b.app = server::app(demo_config(&clock, None, Some(2 * DAY as u64)));
    for _ in 0..3 {
        clock.advance(DAY / 2);
        let r = b.send(Method::GET, "/whoami", None).await;
        assert_eq!(r.json, json!({"user": "cy"}));
    }
    clock.advance(DAY / 2 + 1);
    let r = b.send(Method::GET, "/whoami", None).await;
    assert_eq!(
        r.json,
        json!({"user": null}),
        "2 days after creation, whatever was sealed"
    );
}

/// A router under an idle policy (1 h, renewed when under 30 min are left) whose
/// `/poll` is passive, and whose `/quiet` marks itself passive.
fn idle_app(clock: &ManualClock) -> Router {
    async fn hit(session: Session) -> String {
        let n = session.get_or("n", 0u32).unwrap() + 1;
        session.insert("n", &n).unwrap();
        n.to_string()
    }
    async fn poll(session: Session) -> String {
        format!("{}", session.get_or("n", 0u32).unwrap())
    }
    async fn quiet(session: Session) -> String {
        session.set_passive();
        format!("{}", session.get_or("n", 0u32).unwrap())
    }
    let config = SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .clock(clock.clock())
        .expiry(Expiry::idle(Duration::from_secs(3600)))
        .passive_path("/poll")
        .build()
        .unwrap();
    Router::new()
        .route("/hit", get(hit))
        .route("/poll", get(poll))
        .route("/quiet", get(quiet))
        .route("/seen", get(poll))
        .layer(SessionLayer::new(config))
}

#[tokio::test]
async fn passive_requests_do_not_keep_an_idle_session_alive() {
    for passive in ["/poll", "/quiet"] {
        let clock = ManualClock::new(T0);
        let mut b = Browser::new(idle_app(&clock));
        b.send(Method::GET, "/hit", None).await;
        // Polling every 10 minutes, past the renew threshold: never re-issued.
        for _ in 0..5 {
            clock.advance(600);
            let r = b.send(Method::GET, passive, None).await;
            assert_eq!(r.json, json!(1));
            assert!(b.last_set_cookie.is_none(), "{passive} renewed the session");
        }
        // Ten minutes later the hour since the last activity is over.
        clock.advance(601);
        let r = b.send(Method::GET, passive, None).await;
        assert_eq!(r.json, json!(0), "{passive} kept an idle session alive");
    }
    // The same pattern through a counted path keeps it alive.
    let clock = ManualClock::new(T0);
    let mut b = Browser::new(idle_app(&clock));
    b.send(Method::GET, "/hit", None).await;
    for _ in 0..6 {
        clock.advance(1000);
        b.send(Method::GET, "/seen", None).await;
    }
    let r = b.send(Method::GET, "/seen", None).await;
    assert_eq!(
        r.json,
        json!(1),
        "a counted request renews the idle session"
    );
}

/// The cart item of the demo, and how a later deploy changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemV1 {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemV2 {
    sku: String,
    qty: u32,
    #[serde(default)]
    gift: bool,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RoleV1 {
    User,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RoleV2 {
    User,
    Admin,
    Auditor,
}

/// Stores `write` under "value" next to "views", sends the cookie to a request that
/// reads "value" as `R`, and returns what it read and whether "views" still reads.
async fn across_a_deploy<W: Serialize, R: serde::de::DeserializeOwned>(
    write: &W,
) -> (Result<Option<R>, sealed_session::Error>, Option<u64>) {
    let clock = ManualClock::new(T0);
    let config = SessionConfig::builder(Keyring::new([KEY]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap();
    let (_, out) = request(&config, None, |s| {
        s.insert("value", write).unwrap();
        s.insert("views", &7u64).unwrap();
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    let (s, _) = request(&config, Some(&pair), |_| {}).await;
    (s.get::<R>("value"), s.get::<u64>("views").unwrap())
}

#[tokio::test]
async fn values_survive_additive_changes_in_both_directions() {
    let v1 = vec![ItemV1 {
        sku: "A1B2C3D4".into(),
        qty: 2,
    }];
    // Old value, new type: the new field takes its default.
    let (read, views) = across_a_deploy::<_, Vec<ItemV2>>(&v1).await;
    assert_eq!(
        read.unwrap().unwrap(),
        vec![ItemV2 {
            sku: "A1B2C3D4".into(),
            qty: 2,
            gift: false,
            note: None
        }]
    );
    assert_eq!(views, Some(7));
    // New value, old type (a rollback): the extra fields are ignored.
    let v2 = vec![ItemV2 {
        sku: "Z9".into(),
        qty: 1,
        gift: true,
        note: Some("wrap it".into()),
    }];
    let (read, _) = across_a_deploy::<_, Vec<ItemV1>>(&v2).await;
    assert_eq!(
        read.unwrap().unwrap(),
        vec![ItemV1 {
            sku: "Z9".into(),
            qty: 1
        }]
    );
    // A new enum variant at the end: old values read; the new variant read by the
    // old type (rollback) is an error for that key alone.
    let (read, _) = across_a_deploy::<_, RoleV2>(&RoleV1::Admin).await;
    assert_eq!(read.unwrap(), Some(RoleV2::Admin));
    let (read, views) = across_a_deploy::<_, RoleV1>(&RoleV2::Auditor).await;
    let err = read.unwrap_err();
    assert_eq!(err.kind(), sealed_session::ErrorKind::Value);
    assert!(matches!(&err, sealed_session::Error::Value { key, .. } if key == "value"));
    assert_eq!(views, Some(7), "the rest of the session keeps working");
    // A wrong type is an error, never a value.
    let (read, _) = across_a_deploy::<_, u64>(&"abc").await;
    assert!(read.is_err());
    let (read, _) = across_a_deploy::<_, u8>(&300u64).await;
    assert!(read.is_err());
}

#[tokio::test]
async fn the_demo_resets_a_value_that_no_longer_decodes_instead_of_answering_500() {
    // A cart written by a build whose Item was a plain list of strings.
    let clock = ManualClock::new(T0);
    let config = demo_config(&clock, None, None);
    let (_, out) = request(&config, None, |s| {
        s.insert("cart", &vec!["sku-1", "sku-2"]).unwrap();
        s.insert("user", "ada").unwrap();
    })
    .await;
    let pair = cookie_pair(&out).unwrap();
    let app = server::app(config);
    let cookie = vec![("cookie", HeaderValue::from_str(&pair).unwrap())];
    let r = call(&app, Method::GET, "/session", cookie.clone(), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json,
        json!({"user": "ada"}),
        "the bad cart is dropped, the rest kept"
    );
    let r = call(
        &app,
        Method::POST,
        "/cart",
        cookie,
        Some(json!({"items": 2})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, json!({"items": 2}));
}

#[tokio::test]
async fn get_all_reads_the_session_as_one_struct() {
    #[derive(Debug, Deserialize)]
    struct Visit {
        user: String,
        views: Option<u64>,
        #[serde(default)]
        cart: Vec<ItemV2>,
    }
    let s = Session::new();
    s.insert("user", "ada").unwrap();
    s.insert(
        "cart",
        &vec![ItemV1 {
            sku: "x".into(),
            qty: 3,
        }],
    )
    .unwrap();
    let v: Visit = s.get_all().unwrap();
    assert_eq!((v.user.as_str(), v.views, v.cart.len()), ("ada", None, 1));
    s.insert("views", "not a number").unwrap();
    let err = s.get_all::<Visit>().unwrap_err();
    assert!(
        matches!(&err, sealed_session::Error::Value { key, .. } if key == "views"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_v1_cookie_opens_keeps_its_data_and_is_resealed_as_v2() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/v1.json"
    ))
    .unwrap();
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let v = vectors
        .iter()
        .find(|v| v["description"] == "AES-256-GCM-SIV, session envelope")
        .unwrap();
    let secret = hex::decode(v["secrets"][0].as_str().unwrap()).unwrap();
    let created = v["session"]["created"].as_i64().unwrap();
    let clock = ManualClock::new(created + 60);
    let config = SessionConfig::builder(Keyring::new([secret]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap();
    let sealed = v["sealed"].as_str().unwrap();
    assert_eq!(
        sealed_session::inspect::header(sealed)
            .unwrap()
            .header
            .version,
        1
    );
    let mut cookie = HeaderMap::new();
    cookie.insert(header::COOKIE, format!("session={sealed}").parse().unwrap());
    let s = headers::load(&config, &cookie).await.unwrap();
    assert!(s.load_error().is_none(), "{:?}", s.load_error());
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    assert_eq!(s.get::<u32>("views").unwrap(), Some(7));
    s.insert("seen", &true).unwrap();
    let mut out = HeaderMap::new();
    headers::save(&config, &s, &mut out).await.unwrap();
    let pair = cookie_pair(&out).unwrap();
    let value = pair.split_once('=').unwrap().1;
    assert_eq!(
        sealed_session::inspect::header(value)
            .unwrap()
            .header
            .version,
        2
    );
    // The v1 values (postcard) and the new one (CBOR) all read from the v2 cookie.
    let (s, _) = request(&config, Some(&pair), |_| {}).await;
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("ada"));
    assert_eq!(s.get::<u32>("views").unwrap(), Some(7));
    assert_eq!(s.get::<bool>("seen").unwrap(), Some(true));
    assert_eq!(s.id().as_bytes()[0], 0x00, "the session id is kept");
}
