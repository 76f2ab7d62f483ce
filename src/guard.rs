//! The size guard: how many bytes a value takes where it travels, whether it
//! fits, and, when it does not, the body's move to the store.
//!
//! A browser keeps about 4096 bytes of a cookie's `name=value`; over the budget
//! the body is sealed again, bound to the session id, for the store, and the
//! cookie carries a sealed pointer (the meta alone) instead. The budget
//! arithmetic lives here and nowhere else.

use crate::codec::{self, Codec};
use crate::envelope::Content;
use crate::envelope::{self, Compression};
use crate::id::{Entry, EntryId};
use crate::session::Carrier;
use crate::store::StoreKey;
use crate::{Error, SessionId};

/// Most bytes of a cookie's `name=value` a browser keeps (RFC 6265 §6.1 asks for at
/// least 4096; browsers drop larger cookies without a word). A save never writes
/// more than the configured budget, which is at most this; a load accepts up to
/// this whatever the budget, so lowering the budget in a deploy refuses none of
/// the cookies already out there.
pub(crate) const BROWSER_LIMIT: usize = 4096;

/// The byte budget of a sealed value, measured on the final text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Most bytes of `name=value` (cookie) or of the value (header) a save writes.
    limit: usize,
    /// Length of the cookie name.
    name_len: usize,
}

impl Budget {
    /// A budget of `limit` bytes (at most [`BROWSER_LIMIT`], checked by the config
    /// builder) for a cookie named with `name_len` bytes.
    pub(crate) fn new(limit: usize, name_len: usize) -> Self {
        debug_assert!(limit <= BROWSER_LIMIT);
        Budget { limit, name_len }
    }

    /// The configured limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes a text value of `value_len` takes: `name=value` for a cookie, the value for a header.
    pub(crate) fn size(&self, carrier: Carrier, value_len: usize) -> usize {
        match carrier {
            Carrier::Header => value_len,
            Carrier::Cookie => self.name_len + 1 + value_len,
        }
    }

    /// Refuses, before any decoding, a value that came by `carrier` and takes more
    /// than a browser keeps. Every value a save writes passes (it is within the
    /// budget, which is within the browser's limit), whatever budget wrote it.
    pub(crate) fn check_incoming(&self, carrier: Carrier, value_len: usize) -> Result<(), Error> {
        let size = self.size(carrier, value_len);
        if size > BROWSER_LIMIT {
            return Err(Error::TooLarge {
                what: "session value",
                size,
                limit: BROWSER_LIMIT,
            });
        }
        Ok(())
    }

    /// Refuses a text value of `value_len` that would not fit where it travels.
    fn check_outgoing(
        &self,
        carrier: Carrier,
        value_len: usize,
        what: &'static str,
    ) -> Result<(), Error> {
        let size = self.size(carrier, value_len);
        if size > self.limit {
            return Err(Error::TooLarge {
                what,
                size,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// Where a sealed session goes.
pub(crate) enum Placement {
    /// The whole session, sealed for the cookie or header.
    Inline(Vec<u8>),
    /// Too big for the client: the body goes to the store.
    Spill {
        /// The sealed pointer (the meta and the entry's id) for the cookie or header.
        pointer: Vec<u8>,
        /// The store entry this write goes to: fresh for every write.
        entry: Entry,
        /// The body sealed again for the store, bound to the session id and the entry.
        sealed: Vec<u8>,
    },
}

/// What the guard needs to decide: how to seal, pack and measure.
pub(crate) struct Guard<'a> {
    pub(crate) codec: &'a Codec,
    /// Compression and the cap for a body inline in a cookie or header.
    pub(crate) compression: &'a Compression,
    /// Compression and the cap for a body kept in the store.
    pub(crate) store_compression: &'a Compression,
    pub(crate) budget: &'a Budget,
    pub(crate) cookie_name: &'a str,
    pub(crate) has_store: bool,
}

impl Guard<'_> {
    /// Seals `meta || body` inline when it fits the budget, else a pointer plus a store
    /// entry under a fresh [`EntryId`].
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the session does not fit and no store is configured,
    /// when even the pointer would not fit, or when the body is over the cap of
    /// where it would go (`max_decompressed` inline, `max_store_body` in the store).
    pub(crate) fn place(
        &self,
        carrier: Carrier,
        aad: &[u8],
        id: SessionId,
        meta: &[u8],
        body: &[u8],
    ) -> Result<Placement, Error> {
        // Only a body the cookie cap allows may go inline; a bigger one can only spill.
        match self.compression.pack(body) {
            Ok(packed) => {
                let inline_len =
                    codec::text_len(self.codec.sealed_len(meta.len() + packed.bytes.len()));
                if self.budget.size(carrier, inline_len) <= self.budget.limit {
                    let content = Content {
                        compressed: packed.compressed,
                        ..Content::default()
                    };
                    let raw = self
                        .codec
                        .seal_parts(aad, content, &[meta, &packed.bytes], None)?;
                    return Ok(Placement::Inline(raw));
                }
                if !self.has_store {
                    return Err(Error::TooLarge {
                        what: "session cookie (and no store is configured to hold the body)",
                        size: self.budget.size(carrier, inline_len),
                        limit: self.budget.limit,
                    });
                }
            }
            Err(e) if !self.has_store => return Err(e),
            Err(_) => {}
        }
        let packed = self.store_compression.pack(body)?;
        let entry_id = EntryId::random();
        let pointer_content = Content {
            pointer: true,
            ..Content::default()
        };
        let pointer = self.codec.seal_parts(
            aad,
            pointer_content,
            &envelope::pointer_parts(meta, &entry_id),
            None,
        )?;
        self.budget
            .check_outgoing(carrier, codec::text_len(pointer.len()), "pointer cookie")?;
        let entry = Entry::Written(id, entry_id);
        let content = Content {
            compressed: packed.compressed,
            ..Content::default()
        };
        let sealed = self.codec.seal_parts(
            &entry_context(self.cookie_name, &entry),
            content,
            &[&packed.bytes],
            None,
        )?;
        Ok(Placement::Spill {
            pointer,
            entry,
            sealed,
        })
    }
}

/// AAD context of a store entry: the cookie name, a 0 byte (never in a cookie name),
/// the session id, and (format v2) the entry's id, so an entry opens only for the
/// session and the write it belongs to.
pub(crate) fn entry_context(cookie_name: &str, entry: &Entry) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(cookie_name.len() + 1 + 32);
    ctx.extend_from_slice(cookie_name.as_bytes());
    ctx.push(0x00);
    match entry {
        Entry::Legacy(id) => ctx.extend_from_slice(id.as_bytes()),
        Entry::Written(id, e) => {
            ctx.extend_from_slice(id.as_bytes());
            ctx.extend_from_slice(e.as_bytes());
        }
    }
    ctx
}

/// The store key an entry is kept under.
pub(crate) fn entry_key(entry: &Entry) -> StoreKey {
    match entry {
        Entry::Legacy(id) => StoreKey::from_bytes(*id.as_bytes()),
        Entry::Written(_, e) => StoreKey::from_bytes(*e.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_the_name_only_for_cookies() {
        let b = Budget::new(4093, 7);
        assert_eq!(b.size(Carrier::Cookie, 100), 108);
        assert_eq!(b.size(Carrier::Header, 100), 100);
        assert!(b.check_incoming(Carrier::Cookie, 4088).is_ok());
        assert!(b.check_incoming(Carrier::Cookie, 4089).is_err());
        assert!(b.check_incoming(Carrier::Header, 4096).is_ok());
        assert!(b.check_incoming(Carrier::Header, 4097).is_err());
        // A lower budget still reads what a higher one wrote.
        let low = Budget::new(1024, 7);
        assert!(low.check_incoming(Carrier::Cookie, 4088).is_ok());
    }
}
