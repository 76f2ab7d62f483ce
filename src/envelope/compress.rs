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

    /// lz4 with a size prefix, kept only when it saves at least 10%; not even
    /// tried when a cheap scan finds too few repeats for that.
    fn compress(&self, body: &[u8]) -> Option<Vec<u8>> {
        let threshold = self.threshold?;
        if body.len() < threshold || body.is_empty() || !worth_trying(body) {
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

/// Whether lz4 might save 10%: scans for repeated 4-byte sequences the way lz4's
/// match finder does, without writing output, skipping faster through bytes with
/// no repeats and stopping once 5% of the body is covered (a margin, so a body
/// lz4 would shrink by 10% is never refused). A few times cheaper than a
/// compression attempt that is then thrown away.
fn worth_trying(body: &[u8]) -> bool {
    const BITS: u32 = 10;
    const HASH: u32 = 2_654_435_761;
    let n = body.len();
    let Some(last) = n.checked_sub(4) else {
        return false;
    };
    let word = |at: usize| {
        body.get(at..at + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    let slot = |w: u32| (w.wrapping_mul(HASH) >> (32 - BITS)) as usize;
    let need = n / 20;
    let mut table = [0u32; 1 << BITS];
    let (mut covered, mut misses, mut at) = (0usize, 0usize, 1usize);
    while at < last {
        let Some(w) = word(at) else { break };
        let h = slot(w);
        let seen = table[h] as usize;
        table[h] = at as u32;
        if seen < at && word(seen) == Some(w) {
            let len = 4 + body[seen + 4..]
                .iter()
                .zip(&body[at + 4..])
                .take_while(|(a, b)| a == b)
                .count();
            // A match costs lz4 about 3 bytes of token and offset.
            covered += len.saturating_sub(3);
            if covered >= need {
                return true;
            }
            at += len;
            misses = 0;
        } else {
            misses += 1;
            at += 1 + (misses >> 5);
        }
    }
    false
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

    /// Mixes of repeated text and noise in every proportion: whenever lz4 would
    /// save 10%, the estimate lets it try, and pure noise is never tried.
    #[test]
    fn the_estimate_never_refuses_a_body_that_compression_pays_for() {
        let text = b"the quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet ";
        let mut x: u32 = 0x9E37_79B9;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let (mut tried, mut paid) = (0, 0);
        for len in [300usize, 600, 1400, 3000, 20_000] {
            for pct in (0..=100).step_by(2) {
                for chunk in [8usize, 32, 64] {
                    let mut body = Vec::new();
                    while body.len() < len {
                        if next() % 100 < pct {
                            let from = next() as usize % (text.len() - chunk);
                            body.extend_from_slice(&text[from..from + chunk]);
                        } else {
                            body.extend((0..chunk).map(|_| next() as u8));
                        }
                    }
                    body.truncate(len);
                    let packed = lz4_flex::block::compress_prepend_size(&body);
                    let pays = packed.len() <= body.len() - body.len() / 10;
                    let worth = worth_trying(&body);
                    assert!(
                        worth || !pays,
                        "len {len}, {pct}% text in {chunk}-byte chunks: lz4 saves {} of {len} bytes but was not tried",
                        len - packed.len()
                    );
                    tried += usize::from(worth);
                    paid += usize::from(pays);
                }
            }
        }
        // The estimate is a filter, not a yes to everything.
        assert!(tried < paid + paid / 4, "tried {tried}, paid {paid}");
        let noise: Vec<u8> = (0..4000).map(|_| next() as u8).collect();
        assert!(!worth_trying(&noise));
        assert!(!worth_trying(b"abc"));
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
