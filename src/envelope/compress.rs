//! lz4 compression of session bodies: only above a threshold, only when it pays,
//! and never past a cap on the way back (a bomb is an error, not an allocation).

use std::borrow::Cow;

use crate::Error;

/// Default: compress bodies of at least this many bytes (when it saves ≥ 10%).
pub(crate) const DEFAULT_THRESHOLD: usize = 256;
/// Default cap on a decompressed body: 64 KiB.
pub(crate) const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024;
/// Length prefix lz4_flex puts before a compressed block.
const SIZE_PREFIX: usize = 4;

/// When to compress and how far a body may expand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compression {
    /// Compress bodies of at least this many bytes; `None` never compresses.
    pub(crate) threshold: Option<usize>,
    /// Cap on a decompressed body, and on an uncompressed body to seal.
    pub(crate) max_decompressed: usize,
    /// What the cap is called where users set it, for error messages.
    pub(crate) cap: &'static str,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: Some(DEFAULT_THRESHOLD),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            cap: "max_decompressed",
        }
    }
}

/// A body ready to seal: compressed when that pays.
pub(crate) struct PackedBody<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    pub(crate) compressed: bool,
}

impl Compression {
    /// Checks the size cap and compresses when that pays.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the body is over the cap (it could never be opened).
    pub(crate) fn pack<'a>(&self, body: &'a [u8]) -> Result<PackedBody<'a>, Error> {
        if body.len() > self.max_decompressed {
            return Err(Error::TooLarge {
                what: self.cap,
                size: body.len(),
                limit: self.max_decompressed,
            });
        }
        Ok(match self.compress(body) {
            Some(packed) => PackedBody {
                bytes: Cow::Owned(packed),
                compressed: true,
            },
            None => PackedBody {
                bytes: Cow::Borrowed(body),
                compressed: false,
            },
        })
    }

    /// lz4 with a size prefix, kept only when it saves at least 10%.
    fn compress(&self, body: &[u8]) -> Option<Vec<u8>> {
        let threshold = self.threshold?;
        if body.len() < threshold || body.is_empty() {
            return None;
        }
        let packed = lz4_flex::block::compress_prepend_size(body);
        (packed.len() <= body.len() - body.len() / 10).then_some(packed)
    }

    /// Inflates a compressed body, refusing any claim over the cap before allocating.
    ///
    /// # Errors
    /// [`Error::DecompressionLimit`] for a claim over the cap, [`Error::Decompression`]
    /// for a corrupt block.
    pub(crate) fn unpack(&self, packed: &[u8]) -> Result<Vec<u8>, Error> {
        let limit = self.max_decompressed;
        let Some((size, block)) = packed.split_first_chunk::<SIZE_PREFIX>() else {
            return Err(Error::Decompression);
        };
        let size = u32::from_le_bytes(*size) as usize;
        if size > limit {
            return Err(Error::DecompressionLimit {
                limit,
                cap: self.cap,
            });
        }
        let mut out = vec![0u8; size];
        match lz4_flex::block::decompress_into(block, &mut out) {
            Ok(n) if n == size => Ok(out),
            _ => Err(Error::Decompression),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_like(len: usize) -> Vec<u8> {
        b"the quick brown fox jumps over the lazy dog; "
            .iter()
            .cycle()
            .take(len)
            .copied()
            .collect()
    }

    #[test]
    fn only_above_the_threshold_and_only_when_it_pays() {
        let c = Compression::default();
        assert!(
            !c.pack(&text_like(100)).unwrap().compressed,
            "under threshold"
        );
        let text = text_like(4000);
        let packed = c.pack(&text).unwrap();
        assert!(packed.compressed && packed.bytes.len() < 1000);
        assert_eq!(c.unpack(&packed.bytes).unwrap(), text_like(4000));
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(!c.pack(&noise).unwrap().compressed, "noise does not shrink");
        let off = Compression {
            threshold: None,
            ..c
        };
        assert!(!off.pack(&text_like(4000)).unwrap().compressed);
    }

    #[test]
    fn the_cap_holds_both_ways() {
        let c = Compression {
            max_decompressed: 1024,
            ..Compression::default()
        };
        assert!(matches!(
            c.pack(&[0; 1025]),
            Err(Error::TooLarge { limit: 1024, .. })
        ));
        let bomb = [0xff, 0xff, 0xff, 0x7f, 0, 0];
        assert!(matches!(
            c.unpack(&bomb),
            Err(Error::DecompressionLimit { limit: 1024, .. })
        ));
        assert!(matches!(c.unpack(&[1, 0]), Err(Error::Decompression)));
    }
}
