//! The view counter on bare hyper with the http-level API only: no tower, no axum.
//!
//! ```text
//! SESSION_SECURE=0 cargo run --example hyper     # then: curl -c j -b j http://127.0.0.1:3001/
//! ```

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sealed_session::{headers, store::MemoryStore, Keyring, SessionConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let keyring = match std::env::var("SESSION_KEYS") {
        Ok(keys) if !keys.trim().is_empty() => Keyring::from_base64(&keys)?,
        _ => {
            eprintln!("SESSION_KEYS is not set: generated a random key; sessions will not survive a restart");
            Keyring::generate()
        }
    };
    let config = SessionConfig::builder(keyring)
        .secure(std::env::var("SESSION_SECURE").map_or(true, |v| v != "0"))
        .store(MemoryStore::default())
        .build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let config = config.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(config.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}

async fn handle(
    config: SessionConfig,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // A bad cookie gives a fresh session; only a failing store is an error here.
    let session = match headers::load_request(&config, &req).await {
        Ok(session) => session,
        Err(e) => return Ok(text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))),
    };
    let views = match session.get_or("views", 0u64) {
        Ok(v) => v + 1,
        Err(e) => return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))),
    };
    let mut response = text(StatusCode::OK, format!("{{\"views\": {views}}}\n"));
    if let Err(e) = session.insert("views", &views) {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")));
    }
    if let Err(e) = headers::save(&config, &session, response.headers_mut()).await {
        return Ok(text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")));
    }
    Ok(response)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
