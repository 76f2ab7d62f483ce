//! `ValueMap`: the session's key → encoded-value map, kept in two arenas.
//!
//! Sessions hold a handful of keys, decoded and dropped once per request. A
//! `BTreeMap<String, Vec<u8>>` costs two allocations per entry plus nodes on
//! every decode; here all keys share one `String`, all values one `Vec<u8>`, and
//! a slot vector sorted by key finds them by binary search: three allocations
//! whatever the number of entries. Each slot also keeps a 32-bit hash of its key:
//! a lookup in a session of up to [`SCAN_MAX`] keys compares hashes, and compares
//! key bytes only on a hash match (no string compares on the way). It serializes
//! exactly like a
//! `BTreeMap<String, Vec<u8>>` (a postcard map in key order), so the wire format
//! is unchanged. Replaced or removed bytes stay in the arenas until they make
//! up more than half of them; then the arenas are compacted.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Slots reserved up front when decoding, whatever length the input claims.
const DECODE_RESERVE_MAX: usize = 32;
/// Dead arena bytes tolerated before compaction is considered.
const COMPACT_MIN_DEAD: usize = 1024;
/// Up to this many keys a lookup scans the slots' hashes; above, it binary-searches.
const SCAN_MAX: usize = 16;
/// What a map reserves on its first insert (a typical session fits), so the first
/// inserts of a request do not reallocate their way up: slots, key bytes, value bytes.
const FIRST_RESERVE: (usize, usize, usize) = (8, 64, 256);

#[derive(Clone, Debug)]
struct Slot {
    key: Range<usize>,
    value: Range<usize>,
    hash: u32,
}

/// FNV-1a of a key: cheap for the short keys sessions use, and only ever compared
/// within one map (a collision costs a byte compare, never a wrong answer).
fn key_hash(key: &str) -> u32 {
    key.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A map from key to postcard-encoded value, sorted by key.
#[derive(Clone, Default)]
pub(crate) struct ValueMap {
    keys: String,
    values: Vec<u8>,
    slots: Vec<Slot>,
    /// Bytes in the arenas no slot refers to any more.
    dead: usize,
}

impl ValueMap {
    /// An empty map (allocates nothing).
    pub(crate) const fn new() -> Self {
        ValueMap {
            keys: String::new(),
            values: Vec::new(),
            slots: Vec::new(),
            dead: 0,
        }
    }

    fn key_of(&self, slot: &Slot) -> &str {
        &self.keys[slot.key.clone()]
    }

    fn value_of(&self, slot: &Slot) -> &[u8] {
        &self.values[slot.value.clone()]
    }

    /// The slot of `key`, or where it would be inserted to keep key order.
    fn find(&self, key: &str) -> Result<usize, usize> {
        if self.slots.len() <= SCAN_MAX {
            if let Some(i) = self.position(key, key_hash(key)) {
                return Ok(i);
            }
        }
        self.slots.binary_search_by(|s| self.key_of(s).cmp(key))
    }

    /// The slot of `key` by its hash, in a small map.
    fn position(&self, key: &str, hash: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.hash == hash && self.key_of(s) == key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        let i = if self.slots.len() <= SCAN_MAX {
            self.position(key, key_hash(key))?
        } else {
            self.find(key).ok()?
        };
        Some(self.value_of(&self.slots[i]))
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reserves the first arenas once, before the first entry goes in.
    fn reserve_first(&mut self) {
        if self.slots.capacity() == 0 {
            let (slots, keys, values) = FIRST_RESERVE;
            self.slots.reserve(slots);
            self.keys.reserve(keys);
            self.values.reserve(values);
        }
    }

    fn push_value(&mut self, value: &[u8]) -> Range<usize> {
        let at = self.values.len();
        self.values.extend_from_slice(value);
        at..self.values.len()
    }

    fn push_key(&mut self, key: &str) -> Range<usize> {
        let at = self.keys.len();
        self.keys.push_str(key);
        at..self.keys.len()
    }

    /// Inserts or replaces the value under `key`.
    pub(crate) fn insert(&mut self, key: &str, value: &[u8]) {
        self.set(key, value);
    }

    /// Inserts or replaces the value under `key` with one lookup; false when it
    /// already held exactly these bytes (nothing changed).
    pub(crate) fn set(&mut self, key: &str, value: &[u8]) -> bool {
        match self.find(key) {
            Ok(i) if self.value_of(&self.slots[i]) == value => false,
            Ok(i) => {
                let old = self.slots[i].value.clone();
                if old.len() == value.len() {
                    self.values[old].copy_from_slice(value);
                } else {
                    self.dead += old.len();
                    self.slots[i].value = self.push_value(value);
                    self.maybe_compact();
                }
                true
            }
            Err(i) => {
                self.insert_at(i, key, value);
                true
            }
        }
    }

    /// Inserts only when `key` is absent.
    pub(crate) fn insert_if_absent(&mut self, key: &str, value: &[u8]) {
        if let Err(i) = self.find(key) {
            self.insert_at(i, key, value);
        }
    }

    fn insert_at(&mut self, i: usize, key: &str, value: &[u8]) {
        self.reserve_first();
        let slot = Slot {
            key: self.push_key(key),
            value: self.push_value(value),
            hash: key_hash(key),
        };
        self.slots.insert(i, slot);
    }

    /// Removes `key`; true if it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Ok(i) => {
                let slot = self.slots.remove(i);
                self.dead += slot.key.len() + slot.value.len();
                if self.slots.is_empty() {
                    self.clear();
                } else {
                    self.maybe_compact();
                }
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.slots.clear();
        self.dead = 0;
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| self.key_of(s))
    }

    /// The `i`-th entry in key order.
    pub(crate) fn entry(&self, i: usize) -> Option<(&str, &[u8])> {
        self.slots
            .get(i)
            .map(|s| (self.key_of(s), self.value_of(s)))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.slots
            .iter()
            .map(|s| (self.key_of(s), self.value_of(s)))
    }

    /// Key and value bytes of the live entries (for sizing an encode buffer).
    pub(crate) fn live_bytes(&self) -> usize {
        self.keys.len() + self.values.len() - self.dead
    }

    /// Rebuilds the arenas once dead bytes outweigh live ones, so replacing a value
    /// over and over cannot grow memory without bound.
    fn maybe_compact(&mut self) {
        if self.dead < COMPACT_MIN_DEAD || self.dead < self.live_bytes() {
            return;
        }
        let mut fresh = ValueMap::new();
        fresh
            .keys
            .reserve(self.slots.iter().map(|s| s.key.len()).sum());
        fresh
            .values
            .reserve(self.slots.iter().map(|s| s.value.len()).sum());
        fresh.slots.reserve(self.slots.len());
        for (s, (k, v)) in self.slots.iter().zip(self.iter()) {
            let slot = Slot {
                key: fresh.push_key(k),
                value: fresh.push_value(v),
                hash: s.hash,
            };
            fresh.slots.push(slot);
        }
        *self = fresh;
    }

    /// Restores the order after appending slots in input order: sorted by key, and
    /// for a repeated key the entry appended last wins (as `BTreeMap` insertion would).
    fn normalize(&mut self) {
        let keys = &self.keys;
        let key = |s: &Slot| &keys[s.key.clone()];
        if self.slots.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return;
        }
        self.slots.reverse();
        self.slots.sort_by(|a, b| key(a).cmp(key(b))); // stable: the last appended comes first
        let before: usize = self.slots.iter().map(|s| s.key.len() + s.value.len()).sum();
        self.slots.dedup_by(|later, first| key(later) == key(first));
        let after: usize = self.slots.iter().map(|s| s.key.len() + s.value.len()).sum();
        self.dead += before - after;
    }
}

impl PartialEq for ValueMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for ValueMap {}

impl fmt::Debug for ValueMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for ValueMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Postcard writes `serialize_bytes` exactly like a `Vec<u8>`: length, then bytes.
                s.serialize_bytes(self.0)
            }
        }
        let mut map = serializer.serialize_map(Some(self.slots.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, &Bytes(v))?;
        }
        map.end()
    }
}

/// Deserializes a key straight into the key arena.
struct KeyInto<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = Range<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Range<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyInto<'_> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Range<usize>, E> {
        let at = self.0.len();
        self.0.push_str(v);
        Ok(at..self.0.len())
    }
}

/// Deserializes a value (bytes, or a sequence of u8) straight into the value arena.
struct ValueInto<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for ValueInto<'_> {
    type Value = Range<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Range<usize>, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for ValueInto<'_> {
    type Value = Range<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Range<usize>, E> {
        let at = self.0.len();
        self.0.extend_from_slice(v);
        Ok(at..self.0.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Range<usize>, A::Error> {
        let at = self.0.len();
        while let Some(b) = seq.next_element::<u8>()? {
            self.0.push(b);
        }
        Ok(at..self.0.len())
    }
}

/// Decodes a `ValueMap` whose keys and values together take at most `input_len`
/// bytes (the length of the encoded input bounds them): a non-empty map gets its
/// arenas sized once.
pub(crate) struct ValueMapSeed {
    input_len: usize,
}

impl ValueMap {
    /// A seed that decodes a map from an encoded input of `input_len` bytes.
    pub(crate) fn seed(input_len: usize) -> ValueMapSeed {
        ValueMapSeed { input_len }
    }
}

impl<'de> DeserializeSeed<'de> for ValueMapSeed {
    type Value = ValueMap;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ValueMap, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueMapSeed {
    type Value = ValueMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of string keys to byte strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<ValueMap, A::Error> {
        let mut map = ValueMap::new();
        // The claimed length is attacker-controlled: reserve a bounded amount.
        let claimed = access.size_hint().unwrap_or(0);
        if claimed > 0 {
            map.slots.reserve(claimed.min(DECODE_RESERVE_MAX));
            map.keys.reserve(self.input_len);
            map.values.reserve(self.input_len);
        }
        while let Some(key) = access.next_key_seed(KeyInto(&mut map.keys))? {
            let value = access.next_value_seed(ValueInto(&mut map.values))?;
            let hash = key_hash(&map.keys[key.clone()]);
            map.slots.push(Slot { key, value, hash });
        }
        map.normalize();
        Ok(map)
    }
}

impl<'de> Deserialize<'de> for ValueMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ValueMap::seed(0).deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Same contents, same bytes, and same decoding as a `BTreeMap` (the previous
        /// representation), including unsorted input with repeated keys.
        #[test]
        fn behaves_like_a_btreemap(
            ops in proptest::collection::vec(("[a-d]{0,2}", proptest::collection::vec(any::<u8>(), 0..4), any::<u8>()), 0..40)
        ) {
            let mut ours = ValueMap::new();
            let mut model = BTreeMap::new();
            for (k, v, op) in &ops {
                match op % 4 {
                    0 | 1 => {
                        ours.insert(k, v);
                        model.insert(k.clone(), v.clone());
                    }
                    2 => prop_assert_eq!(ours.remove(k), model.remove(k).is_some()),
                    _ => {
                        ours.insert_if_absent(k, v);
                        model.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                prop_assert_eq!(ours.get(k), model.get(k).map(Vec::as_slice));
                prop_assert_eq!(ours.contains_key(k), model.contains_key(k));
            }
            prop_assert_eq!(ours.len(), model.len());
            prop_assert!(ours.iter().eq(model.iter().map(|(k, v)| (k.as_str(), v.as_slice()))));
            prop_assert!(ours.live_bytes() >= ours.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
            let bytes = postcard::to_stdvec(&ours).unwrap();
            prop_assert_eq!(&bytes, &postcard::to_stdvec(&model).unwrap());
            prop_assert_eq!(postcard::from_bytes::<ValueMap>(&bytes).unwrap(), ours);

            // Unsorted, repeated keys (not what we write, but what an input may hold).
            let pairs: Vec<(String, Vec<u8>)> = ops.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
            let unsorted = postcard::to_stdvec(&pairs_as_map(&pairs)).unwrap();
            let ours: ValueMap = postcard::from_bytes(&unsorted).unwrap();
            let model: BTreeMap<String, Vec<u8>> = postcard::from_bytes(&unsorted).unwrap();
            prop_assert!(ours.iter().eq(model.iter().map(|(k, v)| (k.as_str(), v.as_slice()))));
            prop_assert_eq!(ours.live_bytes(), ours.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
        }
    }

    /// Serializes pairs as a map in the given order, duplicates included.
    fn pairs_as_map(pairs: &[(String, Vec<u8>)]) -> impl Serialize + '_ {
        struct Pairs<'a>(&'a [(String, Vec<u8>)]);
        impl Serialize for Pairs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        Pairs(pairs)
    }

    #[test]
    fn replacing_a_value_over_and_over_stays_bounded() {
        let mut map = ValueMap::new();
        map.insert("other", &[1; 100]);
        for n in 0..100_000u32 {
            let value = vec![0u8; 1 + (n % 7) as usize * 50];
            map.insert("counter", &value);
            assert_eq!(map.get("counter"), Some(value.as_slice()));
        }
        assert!(
            map.values.capacity() < 8 * 1024,
            "{}",
            map.values.capacity()
        );
        assert_eq!(map.get("other"), Some(&[1; 100][..]));
        assert!(map.remove("counter") && map.remove("other"));
        assert!(map.is_empty() && map.values.is_empty() && map.keys.is_empty());
    }

    #[test]
    fn a_huge_claimed_length_reserves_little() {
        // postcard: map length varint u64::MAX-ish, then nothing.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(postcard::from_bytes::<ValueMap>(&bytes).is_err());
    }
}
