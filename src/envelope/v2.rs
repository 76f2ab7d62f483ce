//! Format v2, written and read: times as deltas from creation, the session's own
//! expiry policy, a subject slot and a fingerprint tag.

use serde::{Deserialize, Serialize};

use super::{Meta, Policy, Subject, CSRF_LEN, FINGERPRINT_TAG_LEN};
use crate::{Error, SessionId};

/// Most bytes `postcard(MetaV2)` takes: id 16, three varint i64 30, policy 1 + 20,
/// subject 1 + 5 + 16 + 10, fingerprint 1 + 8, CSRF 1 + 32.
pub(super) const META_MAX: usize = 16 + 30 + 21 + 32 + 9 + 33;

/// `postcard(MetaV2)` on the wire. Deltas wrap (modular arithmetic), so every
/// `i64` survives the round trip.
#[derive(Serialize, Deserialize)]
struct WireMeta {
    id: SessionId,
    created: i64,
    /// `last_active - created`.
    active_after: i64,
    /// `expires_at - created`.
    expires_after: i64,
    policy: Policy,
    subject: Option<Subject>,
    fingerprint: Option<[u8; FINGERPRINT_TAG_LEN]>,
    csrf: Option<[u8; CSRF_LEN]>,
}

/// Appends `postcard(MetaV2)` through `flavor`.
pub(super) fn encode_meta<F>(meta: &Meta, flavor: F) -> Result<F::Output, Error>
where
    F: postcard::ser_flavors::Flavor,
{
    let w = WireMeta {
        id: meta.id,
        created: meta.created,
        active_after: meta.last_active.wrapping_sub(meta.created),
        expires_after: meta.expires_at.wrapping_sub(meta.created),
        policy: meta.policy,
        subject: meta.subject,
        fingerprint: meta.fingerprint,
        csrf: meta.csrf,
    };
    Ok(postcard::serialize_with_flavor(&w, flavor)?)
}

/// Decodes the v2 meta at the start of `plaintext`; returns it and the rest.
pub(super) fn decode_meta(plaintext: &[u8]) -> Result<(Meta, &[u8]), Error> {
    let (w, rest): (WireMeta, &[u8]) = postcard::take_from_bytes(plaintext)?;
    let meta = Meta {
        id: w.id,
        created: w.created,
        last_active: w.created.wrapping_add(w.active_after),
        expires_at: w.created.wrapping_add(w.expires_after),
        policy: w.policy,
        subject: w.subject,
        fingerprint: w.fingerprint,
        csrf: w.csrf,
    };
    Ok((meta, rest))
}
