//! `sealed_session::forge`: sessions built for tests open like real ones, and a
//! response's session reads back, for every transport; misuse is an error.

#[path = "common/browser.rs"]
mod browser;

use std::sync::Arc;

use browser::noise;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use sealed_session::forge::{self, Written};
use sealed_session::store::{MemoryStore, SessionStore as _};
use sealed_session::{headers, ErrorKind, Keyring, SessionConfig, Transport};

const KEY: [u8; 32] = [0x42; 32];

fn builder() -> sealed_session::SessionConfigBuilder {
    SessionConfig::builder(Keyring::new([KEY]).unwrap())
}

fn x_session() -> HeaderName {
    HeaderName::from_static("x-session")
}

#[tokio::test]
async fn a_forged_cookie_opens_as_the_app_would_open_it() {
    // Even where a new session is written only on an explicit save.
    let config = builder().create_on_missing(false).build().unwrap();
    let cookie = forge::cookie(&config, |s| {
        s.insert("user", "ada")?;
        s.flash("notice", "welcome")
    })
    .await
    .unwrap();
    let text = cookie.to_str().unwrap();
    assert!(
        text.starts_with("session=") && !text.contains(';'),
        "{text}"
    );
    let mut request = HeaderMap::new();
    request.insert(header::COOKIE, cookie);
    let session = headers::load(&config, &request).await.unwrap();
    assert!(session.load_error().is_none());
    assert!(!session.is_new());
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("ada")
    );
    assert_eq!(
        session.get_flash::<String>("notice").unwrap().as_deref(),
        Some("welcome")
    );
    // Two forged cookies are two sessions, sealed with fresh nonces.
    let again = forge::cookie(&config, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    assert_ne!(again, request[header::COOKIE]);
}

#[tokio::test]
async fn read_tells_set_removed_and_unchanged_apart() {
    let config = builder().build().unwrap();
    assert!(matches!(
        forge::read(&config, &HeaderMap::new()).await.unwrap(),
        Written::Unchanged
    ));
    let session = headers::load(&config, &HeaderMap::new()).await.unwrap();
    session.insert("n", &3u8).unwrap();
    let mut response = HeaderMap::new();
    // Another cookie next to ours is not mistaken for it.
    response.append(
        header::SET_COOKIE,
        HeaderValue::from_static("theme=dark; Path=/"),
    );
    headers::save(&config, &session, &mut response)
        .await
        .unwrap();
    let read = forge::read(&config, &response)
        .await
        .unwrap()
        .session()
        .unwrap();
    assert_eq!(read.get::<u8>("n").unwrap(), Some(3));
    assert_eq!(read.id(), session.id());

    session.destroy();
    let mut response = HeaderMap::new();
    headers::save(&config, &session, &mut response)
        .await
        .unwrap();
    assert!(matches!(
        forge::read(&config, &response).await.unwrap(),
        Written::Removed
    ));
}

#[tokio::test]
async fn a_value_that_does_not_open_is_an_error_not_an_empty_session() {
    let config = builder().build().unwrap();
    let cookie = forge::cookie(&config, |s| s.insert("user", "ada"))
        .await
        .unwrap();
    let mut response = HeaderMap::new();
    let set = format!("{}; Path=/; HttpOnly", cookie.to_str().unwrap());
    response.insert(header::SET_COOKIE, HeaderValue::try_from(set).unwrap());
    let other = SessionConfig::builder(Keyring::new([[0x43; 32]]).unwrap())
        .build()
        .unwrap();
    let err = forge::read(&other, &response).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownKeyId);
    assert!(forge::read(&config, &response).await.is_ok());
}

#[tokio::test]
async fn header_transport() {
    let config = builder()
        .transport(Transport::Header(x_session()))
        .build()
        .unwrap();
    let err = forge::cookie(&config, |_| Ok(())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let token = forge::header(&config, |s| s.insert("user", "grace"))
        .await
        .unwrap();
    let mut request = HeaderMap::new();
    request.insert(x_session(), token);
    let session = headers::load(&config, &request).await.unwrap();
    assert_eq!(
        session.get::<String>("user").unwrap().as_deref(),
        Some("grace")
    );

    session.insert("user", "hopper").unwrap();
    let mut response = HeaderMap::new();
    headers::save(&config, &session, &mut response)
        .await
        .unwrap();
    let read = forge::read(&config, &response)
        .await
        .unwrap()
        .session()
        .unwrap();
    assert_eq!(
        read.get::<String>("user").unwrap().as_deref(),
        Some("hopper")
    );

    session.destroy();
    let mut response = HeaderMap::new();
    headers::save(&config, &session, &mut response)
        .await
        .unwrap();
    assert!(matches!(
        forge::read(&config, &response).await.unwrap(),
        Written::Removed
    ));

    // Cookie-only configurations have no header to forge.
    let cookies = builder().build().unwrap();
    let err = forge::header(&cookies, |_| Ok(())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    // Cookie-or-header configurations forge both.
    let both = builder()
        .transport(Transport::CookieOrHeader(x_session()))
        .build()
        .unwrap();
    assert!(forge::cookie(&both, |_| Ok(())).await.is_ok());
    assert!(forge::header(&both, |_| Ok(())).await.is_ok());
}

#[tokio::test]
async fn a_big_forged_session_goes_to_the_store_like_a_real_one() {
    let store = Arc::new(MemoryStore::new());
    let config = builder().store_arc(store.clone()).build().unwrap();
    let cookie = forge::cookie(&config, |s| s.insert("blob", &noise(6000, 3)))
        .await
        .unwrap();
    assert_eq!(store.len().await.unwrap(), Some(1));
    let mut request = HeaderMap::new();
    request.insert(header::COOKIE, cookie);
    let session = headers::load(&config, &request).await.unwrap();
    assert!(session.is_store_backed());
    assert_eq!(
        session.get::<serde_bytes::ByteBuf>("blob").unwrap(),
        Some(noise(6000, 3))
    );

    // With no store it fails as the app would: too large, nothing forged.
    let no_store = builder().build().unwrap();
    let err = forge::cookie(&no_store, |s| s.insert("blob", &noise(6000, 3)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge);
}

#[tokio::test]
async fn fingerprinted_configurations_are_refused_with_a_reason() {
    let config = builder()
        .fingerprint(|h, _| {
            h.get(header::USER_AGENT)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default()
        })
        .build()
        .unwrap();
    for err in [
        forge::cookie(&config, |_| Ok(())).await.unwrap_err(),
        forge::read(&config, &HeaderMap::new()).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("load_request"), "{err}");
    }
}

#[tokio::test]
async fn what_fill_returns_is_passed_on() {
    let config = builder().build().unwrap();
    let err = forge::cookie(&config, |s| {
        s.insert("a", &1u8)?;
        Err(sealed_session::Error::Config("my fixture failed".into()))
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("my fixture failed"));
}
