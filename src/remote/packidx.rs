//! Pack indexes on remotes: which objects a remote pack holds and where.
//!
//! A remote holds `packs/NAME.pack` (the local pack format) and `packs/NAME.idx`. Listing the
//! `.idx` files and reading the new ones tells a client every object the remote has, without
//! probing objects one by one. An index is uploaded after its pack, so a listed index always
//! describes a complete pack.
//!
//! Layout: magic `CAIRNIDX`, u32 LE version (1), u32 LE count, then `count` entries sorted by
//! id — id (32), record offset (u64), stored length (u32), raw length (u64), kind (u8),
//! codec (u8) — then the BLAKE3 hash of everything before it (32 bytes).

use crate::hash::ObjectId;
use crate::object::Kind;
use crate::store::pack::{MAX_OBJECT_LEN, RECORD_HEADER_LEN};
use crate::store::Codec;

const MAGIC: &[u8; 8] = b"CAIRNIDX";
const ENTRY: usize = 32 + 8 + 4 + 8 + 1 + 1;

/// One object of a remote pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    /// Object id.
    pub id: ObjectId,
    /// Offset of its record in the pack.
    pub offset: u64,
    /// Stored length.
    pub stored_len: u32,
    /// Raw length.
    pub raw_len: u64,
    /// Kind.
    pub kind: Kind,
    /// Codec.
    pub codec: Codec,
}

/// Encodes entries (sorted here) as an index file.
pub fn encode(mut entries: Vec<IdxEntry>) -> Vec<u8> {
    entries.sort_by_key(|e| e.id);
    let mut out = Vec::with_capacity(16 + entries.len() * ENTRY + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(e.id.as_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.stored_len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
        out.push(e.kind.code());
        out.push(e.codec.code());
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

/// Decodes an index file, verifying its checksum and every field.
pub fn decode(bytes: &[u8]) -> Result<Vec<IdxEntry>, String> {
    if bytes.len() < 16 + 32 || &bytes[..8] != MAGIC {
        return Err("not a cairn pack index".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err("pack index checksum mismatch".into());
    }
    let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
    if version != 1 {
        return Err(format!("pack index version {version} is not supported"));
    }
    let count = u32::from_le_bytes([body[12], body[13], body[14], body[15]]) as usize;
    if body.len() != 16 + count.saturating_mul(ENTRY) {
        return Err("pack index length does not match its count".into());
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = &body[16 + i * ENTRY..16 + (i + 1) * ENTRY];
        let u64_at = |o: usize| u64::from_le_bytes(e[o..o + 8].try_into().unwrap_or([0; 8]));
        let id = ObjectId::from_slice(&e[0..32]).ok_or("bad id")?;
        let stored_len = u32::from_le_bytes(e[40..44].try_into().unwrap_or([0; 4]));
        let raw_len = u64_at(44);
        if raw_len > MAX_OBJECT_LEN || u64::from(stored_len) > MAX_OBJECT_LEN {
            return Err(format!("object {id}: sizes out of range in the pack index"));
        }
        // Readers fetch `offset .. offset + header + stored`; that end must exist.
        let offset = u64_at(32);
        if offset
            .checked_add(RECORD_HEADER_LEN + u64::from(stored_len))
            .is_none()
        {
            return Err(format!(
                "object {id}: offset out of range in the pack index"
            ));
        }
        out.push(IdxEntry {
            id,
            offset,
            stored_len,
            raw_len,
            kind: Kind::from_code(e[52]).ok_or_else(|| format!("object {id}: unknown kind"))?,
            codec: Codec::from_code(e[53]).ok_or_else(|| format!("object {id}: unknown codec"))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_damage() {
        let e = IdxEntry {
            id: ObjectId::from_bytes([3; 32]),
            offset: 16,
            stored_len: 10,
            raw_len: 12,
            kind: Kind::Blob,
            codec: Codec::Zstd,
        };
        let bytes = encode(vec![e]);
        assert_eq!(decode(&bytes).unwrap(), vec![e]);
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn offset_past_the_end_of_u64_is_refused() {
        // Found by fuzzing: an entry whose record range `offset + header + stored` overflows
        // was accepted, and fetching it computed that sum.
        let e = IdxEntry {
            id: ObjectId::from_bytes([4; 32]),
            offset: u64::MAX - 60,
            stored_len: 10,
            raw_len: 10,
            kind: Kind::Blob,
            codec: Codec::Raw,
        };
        let err = decode(&encode(vec![e])).unwrap_err();
        assert!(err.contains("offset out of range"), "{err}");
        let ok = IdxEntry {
            offset: u64::MAX - RECORD_HEADER_LEN - 10,
            ..e
        };
        assert_eq!(decode(&encode(vec![ok])).unwrap(), vec![ok]);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
