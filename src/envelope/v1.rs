//! Format v1, read only: what this crate wrote before format v2. A v1 value opens,
//! is served, and is sealed as v2 on its next write.

use serde::{Deserialize, Serialize};

use super::{Body, Meta, Policy, CSRF_LEN};
use crate::map::ValueMap;
use crate::{values, Error, SessionId};

/// `postcard(MetaV1)` on the wire: absolute times, no policy, no subject.
#[derive(Serialize, Deserialize)]
struct WireMeta {
    id: SessionId,
    created: i64,
    last_active: i64,
    expires_at: i64,
    csrf: Option<[u8; CSRF_LEN]>,
}

/// Decodes the v1 meta at the start of `plaintext`; returns it and the rest.
pub(super) fn decode_meta(plaintext: &[u8]) -> Result<(Meta, &[u8]), Error> {
    let (w, rest): (WireMeta, &[u8]) = postcard::take_from_bytes(plaintext)?;
    let meta = Meta {
        id: w.id,
        created: w.created,
        last_active: w.last_active,
        expires_at: w.expires_at,
        policy: Policy::Default,
        subject: None,
        fingerprint: None,
        csrf: w.csrf,
    };
    Ok((meta, rest))
}

/// The values of a v1 body are postcard: they are tagged so they keep their meaning
/// next to the CBOR values written now.
pub(super) fn upgrade_body(body: Body) -> Body {
    let upgrade = |map: &ValueMap| {
        let mut out = ValueMap::new();
        for (k, v) in map.iter() {
            out.insert(k, &values::wrap_legacy(v));
        }
        out
    };
    Body {
        values: upgrade(&body.values),
        flash: upgrade(&body.flash),
    }
}

/// `postcard(MetaV1)`, for the frozen v1 vectors.
#[cfg(any(test, feature = "test-util"))]
pub(super) fn encode_meta(meta: &Meta) -> Result<Vec<u8>, Error> {
    let w = WireMeta {
        id: meta.id,
        created: meta.created,
        last_active: meta.last_active,
        expires_at: meta.expires_at,
        csrf: meta.csrf,
    };
    Ok(postcard::to_stdvec(&w)?)
}
