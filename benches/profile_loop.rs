//! A plain loop over the small session of `benches/codec.rs`, for profilers: no
//! criterion, no timing, so `valgrind --tool=callgrind` and `perf` see only the work.
//!
//! ```sh
//! cargo bench -p sealed-session-benches --bench profile_loop --no-run   # prints the binary's path
//! valgrind --tool=callgrind target/release/deps/profile_loop-* open 20000
//! ```
//! Modes: `seal` (`headers::save` into a `HeaderMap`), `open` (`headers::load` from a
//! `Cookie` header), `seal_open` (both, with the browser's Set-Cookie → Cookie step);
//! `write`, `read`, `write50`, `read50`: the public path of `public_path.rs` (typed
//! inserts + save of a fresh session; load + typed gets), small and cart50;
//! `untouched`, `untouched_none`: a request whose handler takes no session, through
//! the layer with a valid cookie, or with no layer.
//! Divide the instruction count by the iterations; setup is under 0.4 M instructions.
//! Run through `cargo bench` it does one short pass, to show that it works.

use std::hint::black_box;

use http::HeaderMap;
use sealed_session::{headers, Keyring, Session, SessionConfig};

#[path = "common/mod.rs"]
mod common;
use common::{cookie_request, ready};
#[path = "common/public.rs"]
mod public;

fn main() {
    // `cargo bench` passes flags such as `--bench`; only positional arguments count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mode = args.first().map_or("seal_open", String::as_str);
    let iterations: usize = args.get(1).map_or(1000, |n| n.parse().expect("iterations"));

    let config = SessionConfig::builder(Keyring::new([[0x5a; 32]]).unwrap())
        .build()
        .unwrap();
    // The "small" session of benches/codec.rs.
    let session: Session = ready(headers::load(&config, &HeaderMap::new())).unwrap();
    session.insert("user_id", &4_211_337u64).unwrap();
    session.insert("username", "alice.martin").unwrap();
    let roles: Vec<String> = vec!["admin".into(), "editor".into(), "billing".into()];
    session.insert("roles", &roles).unwrap();
    session.csrf_token();
    session
        .flash("notice", "Your profile was updated successfully :)")
        .unwrap();
    session.insert("last_seen", &1_763_800_000i64).unwrap();

    let seal = |s: &Session| {
        s.save(); // unchanged after the first save: force the write
        let mut out = HeaderMap::new();
        ready(headers::save(&config, s, &mut out)).unwrap();
        out
    };
    let request = cookie_request(&seal(&session));
    // The public path of `public_path.rs`: typed inserts + save, load + typed gets.
    let small = public::data(None);
    let cart50 = public::data(Some(50));
    let public_config = public::ours_config();
    let small_request = cookie_request(&public::ours_write(&public_config, &small));
    let cart_request = cookie_request(&public::ours_write(&public_config, &cart50));
    // `untouched` / `untouched_none`: a handler that takes no session, through the
    // layer (with a valid cookie) or with no layer, on a current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let plain = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let layered = plain
        .clone()
        .layer(sealed_session::SessionLayer::new(config.clone()));
    let call = |router: &axum::Router| {
        let mut req = http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap();
        *req.headers_mut() = request.clone();
        let response = runtime.block_on(tower::ServiceExt::oneshot(router.clone(), req));
        response.unwrap().headers().len()
    };
    let mut keys = 0usize;
    for _ in 0..iterations {
        keys += match mode {
            "seal" => seal(black_box(&session)).len(),
            "open" => ready(headers::load(&config, black_box(&request)))
                .unwrap()
                .len(),
            "seal_open" => ready(headers::load(&config, &cookie_request(&seal(&session))))
                .unwrap()
                .len(),
            "write" => public::ours_write(&public_config, black_box(&small)).len(),
            "read" => public::ours_read(&public_config, black_box(&small_request))
                .roles
                .len(),
            "write50" => public::ours_write(&public_config, black_box(&cart50)).len(),
            "read50" => public::ours_read(&public_config, black_box(&cart_request))
                .roles
                .len(),
            "untouched" => call(&layered),
            "untouched_none" => call(&plain),
            other => panic!(
                "unknown mode {other:?}: seal, open, seal_open, write, read, write50, read50, \
                 untouched or untouched_none"
            ),
        };
    }
    println!("profile_loop {mode}: {iterations} iterations ({keys} keys seen)");
}
