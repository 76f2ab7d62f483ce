#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod config;
mod envelope;
mod error;
mod expiry;
mod guard;
mod id;
mod keyring;
mod map;
mod session;
mod usage;
mod values;
mod warn_limit;

pub mod forge;
pub mod headers;
pub mod inspect;
pub mod revocation;
pub mod store;

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "tower")]
mod layer;

pub use codec::{Codec, Header, Opened};
pub use config::{
    FingerprintMode, SessionConfig, SessionConfigBuilder, Transport, DEFAULT_COOKIE_BUDGET,
    DEFAULT_COOKIE_NAME,
};
pub use cookie::SameSite;
pub use error::{BoxError, Error, ErrorKind};
pub use expiry::{Clock, Expiry, SessionExpiry};
pub use id::SessionId;
pub use keyring::{Algorithm, Keyring};
pub use session::Session;
pub use usage::KeyUsage;

#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
#[cfg(feature = "tower")]
pub use layer::{ResponseBody, ResponseFuture, SessionLayer, SessionService};

#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod testing;
