//! A format-v2 cookie whose sealed policy is over the config's ceiling, zero, or
//! built to overflow the expiry arithmetic opens clamped or not at all: never past
//! what today's config allows, never a panic. (Such a cookie can only come from a
//! holder of a key, e.g. an older build with other limits; the envelope is
//! authenticated, so this is about arithmetic, not forgery.)
#![cfg(feature = "test-util")]

#[path = "common/browser.rs"]
mod browser;

use browser::{with_cookie, ManualClock};
use sealed_session::testing::{seal_session_with_nonce, EnvelopeParts, Policy};
use sealed_session::{headers, Keyring, Session, SessionConfig};

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
/// The default policy's absolute limit, which is also the default `max_lifetime`.
const WEEK: i64 = 7 * DAY;

fn config(clock: &ManualClock) -> SessionConfig {
    SessionConfig::builder(Keyring::new([[0x61; 32]]).unwrap())
        .clock(clock.clock())
        .build()
        .unwrap()
}

fn parts(created: i64, last_active: i64, expires_at: i64, policy: Policy) -> EnvelopeParts {
    EnvelopeParts {
        version: 2,
        id: [0x11; 16],
        created,
        last_active,
        expires_at,
        csrf: None,
        policy,
        subject: None,
        fingerprint: None,
        values: Vec::new(),
        flash: Vec::new(),
        pointer: None,
    }
}

async fn load(config: &SessionConfig, parts: &EnvelopeParts) -> Session {
    let text = seal_session_with_nonce(config.codec(), "session", parts, &[7; 12], None)
        .expect("the test envelope seals");
    headers::load(config, &with_cookie(&format!("session={text}")))
        .await
        .expect("a load never fails on a cookie")
}

/// Envelopes an hour old (last active a minute ago) whose own terms claim more
/// than the config allows, or overflow.
fn hostile() -> Vec<(&'static str, EnvelopeParts)> {
    let (created, active) = (T0 - 3600, T0 - 60);
    let forever = Policy::Absolute {
        start: 0,
        ttl: u64::MAX,
    };
    vec![
        (
            "absolute, u64::MAX ttl",
            parts(created, active, i64::MAX, forever),
        ),
        (
            "absolute, start at i64::MAX",
            parts(
                created,
                active,
                i64::MAX,
                Policy::Absolute {
                    start: i64::MAX,
                    ttl: u64::MAX,
                },
            ),
        ),
        (
            "absolute, start at i64::MIN",
            parts(
                created,
                active,
                i64::MAX,
                Policy::Absolute {
                    start: i64::MIN,
                    ttl: u64::MAX,
                },
            ),
        ),
        (
            "idle, u64::MAX timeout and renew",
            parts(
                created,
                active,
                i64::MAX,
                Policy::Idle {
                    timeout: u64::MAX,
                    renew: u64::MAX,
                },
            ),
        ),
        (
            "default policy, sealed expiry i64::MAX",
            parts(created, active, i64::MAX, Policy::Default),
        ),
        (
            "browser session, sealed expiry i64::MAX",
            parts(created, active, i64::MAX, Policy::BrowserSession),
        ),
        (
            "absolute, one year",
            parts(
                created,
                active,
                created + 365 * DAY,
                Policy::Absolute {
                    start: 0,
                    ttl: 365 * DAY as u64,
                },
            ),
        ),
    ]
}

#[tokio::test]
async fn policies_over_the_ceiling_or_overflowing_open_clamped_to_it() {
    for (what, p) in hostile() {
        let clock = ManualClock::new(T0);
        let config = config(&clock);
        let session = load(&config, &p).await;
        if !session.is_new() {
            let expires = session.expires_at().unix_timestamp();
            assert!(
                expires <= p.created + WEEK,
                "{what}: opened with expiry {expires}, past the ceiling {}",
                p.created + WEEK
            );
            assert!(
                expires > T0,
                "{what}: opened although already expired ({expires} <= {T0})"
            );
        }
        // Whatever it claims, it is over once the config's lifetime has passed.
        clock.advance(WEEK);
        let later = load(&config, &p).await;
        assert!(
            later.is_new(),
            "{what}: still open a week after its creation (expires {})",
            later.expires_at()
        );
    }
}

#[tokio::test]
async fn a_zero_lifetime_never_opens() {
    let clock = ManualClock::new(T0);
    let config = config(&clock);
    for (what, policy) in [
        ("absolute, ttl 0", Policy::Absolute { start: 0, ttl: 0 }),
        (
            "idle, timeout 0",
            Policy::Idle {
                timeout: 0,
                renew: 0,
            },
        ),
    ] {
        let p = parts(T0 - 3600, T0 - 60, T0 - 3600, policy);
        let session = load(&config, &p).await;
        assert!(session.is_new(), "{what}: opened");
        assert!(
            session.load_error().is_some(),
            "{what}: refused without a reason"
        );
    }
}

#[tokio::test]
async fn times_at_the_ends_of_the_range_never_panic_nor_open_long() {
    let clock = ManualClock::new(T0);
    let config = config(&clock);
    for (created, active) in [
        (i64::MAX, i64::MAX),
        (i64::MIN, i64::MIN),
        (i64::MIN, i64::MAX),
        (T0 + 10 * 365 * DAY, T0 + 10 * 365 * DAY),
    ] {
        for policy in [
            Policy::Default,
            Policy::Absolute {
                start: i64::MAX,
                ttl: u64::MAX,
            },
            Policy::Idle {
                timeout: u64::MAX,
                renew: 0,
            },
        ] {
            let p = parts(created, active, i64::MAX, policy);
            let session = load(&config, &p).await;
            if !session.is_new() {
                let left = session.expires_at().unix_timestamp() - T0;
                assert!(
                    left <= WEEK,
                    "created {created}, active {active}, {policy:?}: opened for {left} s"
                );
            }
        }
    }
}

/// The subject slot holds a keyed hash: the user's name is nowhere in the sealed
/// plaintext (so a leaked key id or a decrypted cookie in a log does not name them).
#[tokio::test]
async fn the_subject_name_is_not_in_the_plaintext() {
    let clock = ManualClock::new(T0);
    let config = config(&clock);
    let name = "ada.lovelace@example.org";
    let (_, out) = browser::request(&config, None, |s| s.set_subject(name)).await;
    let pair = browser::cookie_pair(&out).expect("a cookie");
    let value = pair.split_once('=').unwrap().1;
    let (plaintext, _) =
        sealed_session::testing::open_inflated(config.codec(), "session", value, 1 << 16).unwrap();
    assert!(!plaintext.is_empty());
    for needle in [name.as_bytes(), b"ada.lovelace", b"example.org"] {
        assert!(
            !plaintext.windows(needle.len()).any(|w| w == needle),
            "the plaintext contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let back = headers::load(&config, &with_cookie(&pair)).await.unwrap();
    assert!(
        back.has_subject(),
        "the subject is still known to the server"
    );
}
