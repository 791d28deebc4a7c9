//! Chunked files: a large file stored as the ordered list of its content-defined chunks.
//!
//! Encoding (version 1): one version byte `1`, then for each chunk its 32-byte blob id followed
//! by its length as a little-endian u64. The file's bytes are the concatenation of the chunks.

use super::{DecodeError, Kind, Reader};
use crate::hash::ObjectId;

const VERSION: u8 = 1;

/// One chunk of a chunked file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// The id of the blob holding the chunk's bytes.
    pub id: ObjectId,
    /// The chunk's length in bytes.
    pub size: u64,
}

/// A large file as a list of chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkedFile {
    /// The chunks in file order.
    pub chunks: Vec<ChunkRef>,
}

impl ChunkedFile {
    /// The file's total size.
    pub fn size(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    /// The canonical content bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.chunks.len() * 40);
        out.push(VERSION);
        for c in &self.chunks {
            out.extend_from_slice(c.id.as_bytes());
            out.extend_from_slice(&c.size.to_le_bytes());
        }
        out
    }

    /// Decodes content bytes, refusing anything malformed.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf, Kind::Chunked);
        let v = r.u8()?;
        if v != VERSION {
            return Err(DecodeError::new(
                Kind::Chunked,
                format!("unknown version {v}"),
            ));
        }
        if r.remaining() % 40 != 0 {
            return Err(DecodeError::new(Kind::Chunked, "truncated chunk list"));
        }
        let mut chunks = Vec::with_capacity(r.remaining() / 40);
        let mut total: u64 = 0;
        while r.remaining() > 0 {
            let id = r.id()?;
            let size = r.u64()?;
            total = total
                .checked_add(size)
                .ok_or_else(|| DecodeError::new(Kind::Chunked, "size overflow"))?;
            chunks.push(ChunkRef { id, size });
        }
        Ok(ChunkedFile { chunks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(raw in proptest::collection::vec((proptest::array::uniform32(any::<u8>()), 0u64..1<<40), 0..50)) {
            let f = ChunkedFile { chunks: raw.into_iter().map(|(b, size)| ChunkRef { id: ObjectId::from_bytes(b), size }).collect() };
            prop_assert_eq!(ChunkedFile::decode(&f.encode()).unwrap(), f);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ChunkedFile::decode(&bytes);
        }
    }
}
