//! Why session values are CBOR (cbor4ii): the serde encodings a session value could
//! use, compared on speed, size and what they do when a stored type changes.
//!
//! Contenders (each through serde, each decode strict: exactly one value, no byte
//! left over, as `src/values.rs` requires of ours):
//! - `postcard`: compact, not self-describing (what format-v1 envelopes used for values);
//! - `ciborium`: CBOR;
//! - `minicbor_serde`: CBOR;
//! - `rmp_serde_named`: MessagePack with structs as maps keyed by field name
//!   (`to_vec_named`; the default, positional arrays, could not read old values
//!   after a field is added);
//! - `cbor4ii`: CBOR, called the way `src/values.rs` calls it (a `BufWriter`
//!   serializer; a slice reader that tells how much is left).
//!
//! Timed (medians in BENCHMARKS.md, "Value encoding"):
//! - `value_encoding/small_write_read`: encode a 3-char `String` and a `u64` (two
//!   values, as a session stores them: one encoding per key), decode both;
//! - `value_encoding/cart50_write`: encode a `Vec` of 50 items `{sku: 8 chars,
//!   qty: u32, price: u64}`;
//! - `value_encoding/cart50_read`: decode it back into `Vec<Item>`.
//!
//! Printed before the timings, one `ENC` line per encoding: the sizes (raw, and
//! the cart after lz4 as the crate compresses: `compress_prepend_size`), then the
//! schema-evolution checks, each `true` when the encoding behaves as a session
//! needs:
//! - `+field`: a value written as `Vec<Item>` reads as `Vec<ItemV2>` (a new field
//!   with `#[serde(default)]`);
//! - `+variant`: `Role::Admin` reads as `RoleV2` (a new variant at the end);
//! - `rollback_field`: a `Vec<ItemV2>` reads as `Vec<Item>` (a rolled-back deploy
//!   reads a value with a field it does not know: ignored);
//! - `rollback_variant`: `RoleV2::Auditor` read as `Role` is an error (not another variant);
//! - `str_as_u64`, `300_as_u8`, `seq_as_struct` (`vec![1u8, 1]` as `User {id, admin}`),
//!   `str_as_vec`: a value read as the wrong type is an error, never garbage.
//!
//! Run: `cargo bench -p sealed-session-benches --bench value_encoding` (add `-- --quick` for a fast pass).

use std::hint::black_box;
use std::time::Duration;

use cbor4ii::core::dec::{Read, Reference};
use cbor4ii::core::error::Never;
use cbor4ii::core::utils::BufWriter;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// --- the values -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    qty: u32,
    price: u64,
}

/// `Item` after a deploy added a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ItemV2 {
    sku: String,
    qty: u32,
    price: u64,
    #[serde(default)]
    gift: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Role {
    User,
    Admin,
}

/// `Role` after a deploy added a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RoleV2 {
    User,
    Admin,
    Auditor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    admin: bool,
}

/// `n` items from a fixed xorshift sequence: 8 alphanumeric characters, qty 1-9,
/// price 100-99,999.
fn cart(n: usize) -> Vec<Item> {
    const ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sku = (0..8)
                .map(|i| ALNUM[((x >> (i * 6)) % ALNUM.len() as u64) as usize] as char)
                .collect();
            Item {
                sku,
                qty: (x % 9 + 1) as u32,
                price: 100 + x % 99_900,
            }
        })
        .collect()
}

// --- the encodings ----------------------------------------------------------

/// One encoding: encode a value, decode exactly one value (trailing bytes are an error).
trait Enc {
    const NAME: &'static str;
    fn enc<T: Serialize>(v: &T) -> Vec<u8>;
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String>;
}

struct Postcard;
struct Ciborium;
struct MinicborSerde;
struct RmpNamed;
struct Cbor4ii;

impl Enc for Postcard {
    const NAME: &'static str = "postcard";
    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        postcard::to_stdvec(v).unwrap()
    }
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        let (v, rest) = postcard::take_from_bytes(b).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(v)
    }
}

impl Enc for Ciborium {
    const NAME: &'static str = "ciborium";
    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        let mut rest = b;
        let v = ciborium::from_reader(&mut rest).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(v)
    }
}

impl Enc for MinicborSerde {
    const NAME: &'static str = "minicbor_serde";
    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        minicbor_serde::to_vec(v).unwrap()
    }
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        let mut d = minicbor_serde::Deserializer::new(b);
        let v = T::deserialize(&mut d).map_err(|e| e.to_string())?;
        if d.decoder().position() != b.len() {
            return Err("trailing bytes".into());
        }
        Ok(v)
    }
}

impl Enc for RmpNamed {
    const NAME: &'static str = "rmp_serde_named";
    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        let mut d = rmp_serde::Deserializer::new(std::io::Cursor::new(b));
        let v = T::deserialize(&mut d).map_err(|e| e.to_string())?;
        if d.position() as usize != b.len() {
            return Err("trailing bytes".into());
        }
        Ok(v)
    }
}

/// A slice reader that tells how much is left (cbor4ii's own `SliceReader` does
/// not), with a depth limit: what `src/values.rs` decodes with.
struct Strict<'de> {
    buf: &'de [u8],
    depth: usize,
}

impl<'de> Read<'de> for Strict<'de> {
    type Error = Never;

    fn fill<'short>(&'short mut self, want: usize) -> Result<Reference<'de, 'short>, Never> {
        let len = want.min(self.buf.len());
        Ok(Reference::Long(&self.buf[..len]))
    }

    fn advance(&mut self, n: usize) {
        self.buf = &self.buf[n.min(self.buf.len())..];
    }

    fn step_in(&mut self) -> bool {
        self.depth += 1;
        self.depth <= 64
    }

    fn step_out(&mut self) {
        self.depth -= 1;
    }
}

impl Enc for Cbor4ii {
    const NAME: &'static str = "cbor4ii";
    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        let mut ser = cbor4ii::serde::Serializer::new(BufWriter::new(Vec::new()));
        v.serialize(&mut ser).unwrap();
        ser.into_inner().into_inner()
    }
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        let mut d = cbor4ii::serde::Deserializer::new(Strict { buf: b, depth: 0 });
        let v = T::deserialize(&mut d).map_err(|e| e.to_string())?;
        if !d.into_inner().buf.is_empty() {
            return Err("trailing bytes".into());
        }
        Ok(v)
    }
}

// --- sizes and schema evolution ---------------------------------------------

/// Prints one `ENC` line: sizes, then each check (`true` = what a session needs).
fn report<E: Enc>() {
    let user = E::enc(&"ada".to_string());
    let views = E::enc(&7u64);
    let cart50 = E::enc(&cart(50));
    let cart50_lz4 = lz4_flex::block::compress_prepend_size(&cart50).len();

    let new_field = E::dec::<Vec<ItemV2>>(&cart50).is_ok_and(|v| {
        v.len() == 50
            && v.iter()
                .zip(cart(50))
                .all(|(a, b)| a.sku == b.sku && !a.gift)
    });
    let new_variant = E::dec::<RoleV2>(&E::enc(&Role::Admin)) == Ok(RoleV2::Admin);
    let v2 = vec![ItemV2 {
        sku: "a".into(),
        qty: 1,
        price: 2,
        gift: true,
    }];
    let rollback_field = E::dec::<Vec<Item>>(&E::enc(&v2)).is_ok_and(|v| {
        v == [Item {
            sku: "a".into(),
            qty: 1,
            price: 2,
        }]
    });
    let rollback_variant = E::dec::<Role>(&E::enc(&RoleV2::Auditor)).is_err();
    let str_as_u64 = E::dec::<u64>(&E::enc(&"abc".to_string())).is_err();
    let big_as_u8 = E::dec::<u8>(&E::enc(&300u64)).is_err();
    let seq_as_struct = E::dec::<User>(&E::enc(&vec![1u8, 1])).is_err();
    let str_as_vec = E::dec::<Vec<u64>>(&E::enc(&"ann".to_string())).is_err();

    println!(
        "ENC {:<16} small={}+{} B cart50={} B cart50_lz4={} B | +field={new_field} \
         +variant={new_variant} rollback_field={rollback_field} \
         rollback_variant={rollback_variant} str_as_u64={str_as_u64} 300_as_u8={big_as_u8} \
         seq_as_struct={seq_as_struct} str_as_vec={str_as_vec}",
        E::NAME,
        user.len(),
        views.len(),
        cart50.len(),
        cart50_lz4,
    );
}

// --- timings ----------------------------------------------------------------

fn small_write_read<E: Enc>(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let name = "ada".to_string();
    g.bench_function(E::NAME, |b| {
        b.iter(|| {
            let u = E::enc(black_box(&name));
            let v = E::enc(black_box(&7u64));
            let u: String = E::dec(&u).unwrap();
            let v: u64 = E::dec(&v).unwrap();
            (u, v)
        })
    });
}

fn cart50_write<E: Enc>(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let items = cart(50);
    g.bench_function(E::NAME, |b| b.iter(|| E::enc(black_box(&items))));
}

fn cart50_read<E: Enc>(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let bytes = E::enc(&cart(50));
    assert_eq!(
        E::dec::<Vec<Item>>(&bytes).unwrap(),
        cart(50),
        "{}",
        E::NAME
    );
    g.bench_function(E::NAME, |b| {
        b.iter(|| E::dec::<Vec<Item>>(black_box(&bytes)).unwrap())
    });
}

/// Runs `$f::<E>` for every encoding, in one group.
macro_rules! each_encoding {
    ($c:expr, $group:literal, $f:ident) => {{
        let mut g = $c.benchmark_group(concat!("value_encoding/", $group));
        $f::<Postcard>(&mut g);
        $f::<Ciborium>(&mut g);
        $f::<MinicborSerde>(&mut g);
        $f::<RmpNamed>(&mut g);
        $f::<Cbor4ii>(&mut g);
        g.finish();
    }};
}

fn value_encoding_benches(c: &mut Criterion) {
    report::<Postcard>();
    report::<Ciborium>();
    report::<MinicborSerde>();
    report::<RmpNamed>();
    report::<Cbor4ii>();

    each_encoding!(c, "small_write_read", small_write_read);
    each_encoding!(c, "cart50_write", cart50_write);
    each_encoding!(c, "cart50_read", cart50_read);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = value_encoding_benches
}
criterion_main!(benches);
