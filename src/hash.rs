//! Object ids: the BLAKE3 hash of an object's canonical encoding.
//!
//! Every object in a cairn store is named by the 32-byte BLAKE3 hash of its kind, its length and
//! its content (see [`crate::object`] for the exact encoding). Ids print as 64 lowercase hex
//! digits; users may abbreviate them to a unique prefix of at least [`MIN_PREFIX_LEN`] digits.

use std::fmt;
use std::str::FromStr;

/// The shortest hex prefix accepted when a user names an object by abbreviation.
pub const MIN_PREFIX_LEN: usize = 4;

/// A 32-byte BLAKE3 object id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The length of an id in bytes.
    pub const LEN: usize = 32;

    /// Wraps raw bytes as an id.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    /// Reads an id from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(ObjectId(arr))
    }

    /// The raw bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        }
        s
    }

    /// The first `n` hex digits, for display.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }

    /// Parses exactly 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        let bytes = s.as_bytes();
        for (i, o) in out.iter_mut().enumerate() {
            let hi = hex_val(bytes[2 * i])?;
            let lo = hex_val(bytes[2 * i + 1])?;
            *o = (hi << 4) | lo;
        }
        Some(ObjectId(out))
    }

    /// True when `prefix` (lowercase hex) is a prefix of this id's hex form.
    pub fn has_hex_prefix(&self, prefix: &str) -> bool {
        self.to_hex().starts_with(prefix)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// True when `s` is a plausible abbreviated id: hex digits only, at least [`MIN_PREFIX_LEN`].
pub fn is_hex_prefix(s: &str) -> bool {
    s.len() >= MIN_PREFIX_LEN && s.len() <= 64 && s.bytes().all(|c| hex_val(c).is_some())
}

/// The bytes of a hex prefix that are fully determined (pairs of digits), for a range scan.
pub fn prefix_bytes(prefix: &str) -> Vec<u8> {
    let b = prefix.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    while i + 1 < b.len() {
        if let (Some(hi), Some(lo)) = (hex_val(b[i]), hex_val(b[i + 1])) {
            out.push((hi << 4) | lo);
        }
        i += 2;
    }
    out
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.short())
    }
}

/// Error for a string that is not a full 64-digit id.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a 64-digit hex object id")]
pub struct ParseIdError(pub String);

impl FromStr for ObjectId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::from_hex(s).ok_or_else(|| ParseIdError(s.to_string()))
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::from_hex(&s).ok_or_else(|| serde::de::Error::custom(ParseIdError(s)))
    }
}

/// A hasher for maps and sets keyed by the ids of content cairn hashed itself: a BLAKE3
/// output is already uniformly distributed, so its first eight bytes are the hash. This saves
/// a SipHash per lookup where a commit touches one id per file. Not for ids a remote chose.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<8>() {
            Some(first) => self.0 ^= u64::from_le_bytes(*first),
            None => {
                for &b in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(b);
                }
            }
        }
    }

    // The length prefix a slice hashes first carries no information for fixed-size ids.
    fn write_usize(&mut self, _: usize) {}
}

/// A set of locally computed object ids (see [`IdHasher`]).
pub type IdSet = std::collections::HashSet<ObjectId, std::hash::BuildHasherDefault<IdHasher>>;
/// A map keyed by locally computed object ids (see [`IdHasher`]).
pub type IdMap<V> = std::collections::HashMap<ObjectId, V, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    #[test]
    fn id_hasher_spreads_ids() {
        let ids: Vec<ObjectId> = (0u32..1000)
            .map(|i| crate::object::hash_object(crate::object::Kind::Blob, &i.to_le_bytes()))
            .collect();
        let set: IdSet = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len());
        assert!(ids.iter().all(|id| set.contains(id)));
        use std::hash::BuildHasher;
        let bh = std::hash::BuildHasherDefault::<IdHasher>::default();
        let hashes: std::collections::HashSet<u64> = ids.iter().map(|id| bh.hash_one(id)).collect();
        assert_eq!(hashes.len(), ids.len());
    }

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hex_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let id = ObjectId::from_bytes(bytes);
            prop_assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
            prop_assert!(id.has_hex_prefix(&id.to_hex()[..7]));
        }
    }

    #[test]
    fn rejects_bad_hex() {
        assert!(ObjectId::from_hex("zz").is_none());
        assert!(ObjectId::from_hex(&"g".repeat(64)).is_none());
        assert!(!is_hex_prefix("abc"));
        assert!(is_hex_prefix("abcd"));
        assert_eq!(prefix_bytes("abcde"), vec![0xab, 0xcd]);
    }
}
