//! How the values in a session are encoded: CBOR (RFC 8949), self-describing, so a
//! deploy that changes a stored type additively keeps reading old values.
//!
//! Structs are CBOR maps keyed by field name: a new field with `#[serde(default)]`
//! reads old values, a removed field is ignored, a new enum variant at the end
//! leaves old values readable, and a value of another type is an error, never
//! garbage. Decoding is strict: the bytes must hold exactly one data item.
//! (BENCHMARKS.md, "Value encoding", has the measurements behind the choice.)
//!
//! Values a format-v1 envelope carried are postcard, which is not
//! self-describing; they are kept, tagged, until the key is written again:
//! `tag(LEGACY_TAG) bytes(postcard)`. CBOR from serde never starts with a tag, so
//! the two never mix up.

use cbor4ii::core::dec::{Read, Reference};
use cbor4ii::core::error::Never;
use cbor4ii::core::utils::BufWriter;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess};
use serde::Serialize;

use crate::error::BoxError;
use crate::map::ValueMap;
use crate::Error;

/// CBOR tag (RFC 8949 §3.4, first-come-first-served range) marking a postcard value
/// carried over from a format-v1 envelope.
const LEGACY_TAG: u16 = 0x5353;
/// The tag's initial bytes: major type 6 with a two-byte argument.
const LEGACY_HEAD: [u8; 3] = [0xD9, (LEGACY_TAG >> 8) as u8, LEGACY_TAG as u8];
/// Deepest nesting a value may have (arrays and maps inside each other).
const MAX_DEPTH: usize = 64;

/// Encodes a value as CBOR.
#[cfg(test)]
pub(crate) fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    with_encoded(key, value, <[u8]>::to_vec)
}

/// Largest scratch buffer a thread keeps between encodes.
const SCRATCH_KEEP: usize = 16 * 1024;

thread_local! {
    /// The buffer values are encoded into before they are copied into a session's
    /// arena: once a thread has encoded a value, an insert allocates nothing here.
    /// Taken out while in use, so a `Serialize` impl that inserts into a session
    /// itself just gets a fresh buffer.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes a value as CBOR and hands the bytes to `f`.
pub(crate) fn with_encoded<T: Serialize + ?Sized, R>(
    key: &str,
    value: &T,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, Error> {
    let mut buf = SCRATCH.take();
    buf.clear();
    if buf.capacity() == 0 {
        buf.reserve(256);
    }
    let mut ser = cbor4ii::serde::Serializer::new(BufWriter::new(buf));
    let done = value.serialize(&mut ser);
    let buf = ser.into_inner().into_inner();
    let out = match done {
        Ok(()) => Ok(f(&buf)),
        Err(e) => Err(value_error(key, e)),
    };
    if buf.capacity() <= SCRATCH_KEEP {
        SCRATCH.set(buf);
    }
    out
}

/// Decodes a value of type `T`: exactly one CBOR data item, or a tagged legacy
/// postcard value that decodes to `T` with no byte left over.
pub(crate) fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    decode_seed(key, bytes, std::marker::PhantomData::<T>)
}

fn decode_seed<'de, S: DeserializeSeed<'de>>(
    key: &str,
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, Error> {
    if let Some(postcard) = legacy_payload(bytes) {
        let mut de = postcard::Deserializer::from_bytes(postcard);
        let value = seed.deserialize(&mut de).map_err(|e| value_error(key, e))?;
        let rest = de.finalize().map_err(|e| value_error(key, e))?;
        if !rest.is_empty() {
            return Err(value_error(key, trailing(rest.len())));
        }
        return Ok(value);
    }
    let mut de = cbor4ii::serde::Deserializer::new(Strict::new(bytes));
    let value = seed.deserialize(&mut de).map_err(|e| value_error(key, e))?;
    let left = de.into_inner().buf.len();
    if left != 0 {
        return Err(value_error(key, trailing(left)));
    }
    Ok(value)
}

/// Wraps a postcard value from a format-v1 envelope so it keeps its meaning.
pub(crate) fn wrap_legacy(postcard: &[u8]) -> Vec<u8> {
    let len = postcard.len();
    let mut out = Vec::with_capacity(LEGACY_HEAD.len() + 9 + len);
    out.extend_from_slice(&LEGACY_HEAD);
    // A CBOR byte string (major type 2) header for `len`.
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=0xff => out.extend_from_slice(&[0x58, len as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x5b);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(postcard);
    out
}

/// The postcard bytes of a tagged legacy value; `None` for a CBOR value.
fn legacy_payload(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(&LEGACY_HEAD)?;
    let (&head, rest) = rest.split_first()?;
    let (len, rest) = match head {
        0x40..=0x57 => (usize::from(head - 0x40), rest),
        0x58 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x59 => {
            let (n, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*n)), rest)
        }
        0x5b => {
            let (n, rest) = rest.split_first_chunk::<8>()?;
            (usize::try_from(u64::from_be_bytes(*n)).ok()?, rest)
        }
        _ => return None,
    };
    (rest.len() == len).then_some(rest)
}

fn value_error(key: &str, e: impl Into<BoxError>) -> Error {
    Error::Value {
        key: key.to_owned(),
        source: e.into(),
    }
}

fn trailing(n: usize) -> BoxError {
    format!("{n} bytes left over after the value").into()
}

/// A CBOR reader over a slice that can tell how much is left, with a depth limit.
struct Strict<'de> {
    buf: &'de [u8],
    depth: usize,
}

impl<'de> Strict<'de> {
    fn new(buf: &'de [u8]) -> Self {
        Strict { buf, depth: 0 }
    }
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
        self.depth <= MAX_DEPTH
    }

    fn step_out(&mut self) {
        self.depth -= 1;
    }
}

/// Reads every value of a session as the fields of one struct (or as a map).
pub(crate) fn decode_all<T: DeserializeOwned>(values: &ValueMap) -> Result<T, Error> {
    let mut access = Entries {
        map: values,
        next: 0,
        current: None,
    };
    T::deserialize(AllValues(&mut access)).map_err(|e| match e.0 {
        Some(err) => err,
        None => value_error("", e.1),
    })
}

/// The error of [`decode_all`]: a value's own error, or serde's (a missing field...).
#[derive(Debug)]
struct AllError(Option<Error>, String);

impl std::fmt::Display for AllError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(e) => e.fmt(f),
            None => f.write_str(&self.1),
        }
    }
}

impl std::error::Error for AllError {}

impl serde::de::Error for AllError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        AllError(None, msg.to_string())
    }
}

/// The session's values as a serde map.
struct AllValues<'a, 'm>(&'a mut Entries<'m>);

struct Entries<'m> {
    map: &'m ValueMap,
    next: usize,
    current: Option<(&'m str, &'m [u8])>,
}

impl<'de> serde::Deserializer<'de> for AllValues<'_, 'de> {
    type Error = AllError;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, AllError> {
        visitor.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = AllError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, AllError> {
        let Some((key, value)) = self.map.entry(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        self.current = Some((key, value));
        seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, AllError> {
        let (key, bytes) = self
            .current
            .take()
            .ok_or_else(|| <AllError as serde::de::Error>::custom("a value without a key"))?;
        decode_seed(key, bytes, seed).map_err(|e| AllError(Some(e), String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        id: u64,
        admin: bool,
    }

    fn round<T: Serialize + DeserializeOwned>(v: &T) -> T {
        decode("k", &encode("k", v).unwrap()).unwrap()
    }

    #[test]
    fn a_wrong_type_is_an_error_never_a_value() {
        assert!(decode::<u64>("k", &encode("k", "abc").unwrap()).is_err());
        assert!(decode::<u8>("k", &encode("k", &300u64).unwrap()).is_err());
        assert!(decode::<User>("k", &encode("k", &vec![1u8, 1]).unwrap()).is_err());
        assert!(decode::<Vec<u64>>("k", &encode("k", "ann").unwrap()).is_err());
        assert_eq!(
            round(&User { id: 2, admin: true }),
            User { id: 2, admin: true }
        );
    }

    #[test]
    fn trailing_bytes_and_deep_nesting_are_refused() {
        let mut bytes = encode("k", &7u8).unwrap();
        bytes.push(0);
        let err = decode::<u8>("k", &bytes).unwrap_err();
        assert!(
            matches!(&err, Error::Value { key, .. } if key == "k"),
            "{err:?}"
        );
        // 100 nested one-element arrays, then 0.
        let mut deep = vec![0x81u8; 100];
        deep.push(0);
        assert!(decode::<serde_json_like::Any>("k", &deep).is_err());
    }

    /// A value that accepts anything (to reach the depth limit, not a type error).
    mod serde_json_like {
        #[derive(Debug)]
        pub struct Any;
        impl<'de> serde::Deserialize<'de> for Any {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde::de::IgnoredAny::deserialize(d).map(|_| Any)
            }
        }
    }

    #[test]
    fn legacy_postcard_values_keep_their_meaning() {
        for len in [0usize, 5, 23, 24, 255, 256, 70_000] {
            let value = vec![9u8; len];
            let wrapped = wrap_legacy(&postcard::to_stdvec(&value).unwrap());
            assert_eq!(
                decode::<Vec<u8>>("k", &wrapped).unwrap(),
                value,
                "len {len}"
            );
        }
        let wrapped = wrap_legacy(&postcard::to_stdvec("ada").unwrap());
        assert_eq!(decode::<String>("k", &wrapped).unwrap(), "ada");
        assert!(
            decode::<u64>("k", &wrapped).is_err(),
            "trailing postcard bytes"
        );
        // CBOR values never look like the legacy tag.
        assert!(legacy_payload(&encode("k", &vec![0xD9u8; 3]).unwrap()).is_none());
    }
}
