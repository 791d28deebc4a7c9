//! The object model: what cairn stores and how each object is encoded and named.
//!
//! Every object has a [`Kind`] and a content byte string. Its id is the BLAKE3 hash of its
//! canonical encoding: the kind's name, one space, the content length in decimal, a NUL byte,
//! then the content (`"blob 5\0hello"`). The id therefore depends only on the uncompressed
//! content, never on how a store compresses or packs it. `docs/format.md` specifies each kind.

mod chunked;
mod model;
mod note;
mod references;
mod run;
mod tag;
mod tree;

pub use chunked::{ChunkRef, ChunkedFile};
pub use model::ModelEvent;
pub use note::Note;
pub use references::references;
pub use run::{
    ArtifactsRef, CodeState, DataRef, GitInfo, MetricSummary, Run, RunStatus, StaleOutput,
    RUN_FORMAT,
};
pub use tag::TagEvent;
pub use tree::{validate_name, EntryKind, Tree, TreeEntry};

use crate::hash::ObjectId;

/// The kinds of object a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Raw bytes: a small file, one chunk of a large file, a symlink target, a diff, a series.
    Blob,
    /// A large file: the ordered list of its content-defined chunks.
    Chunked,
    /// A folder: sorted, named entries.
    Tree,
    /// One recorded training run.
    Run,
    /// An annotation attached to a run after the fact.
    Note,
    /// A model-registry event.
    Model,
    /// An entry of the tag journal (a tag set, moved or deleted).
    Tag,
}

impl Kind {
    /// The kind's name as it appears in the canonical encoding.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Chunked => "chunked",
            Kind::Tree => "tree",
            Kind::Run => "run",
            Kind::Note => "note",
            Kind::Model => "model",
            Kind::Tag => "tag",
        }
    }

    /// The kind's one-byte code in pack records and index entries.
    pub fn code(self) -> u8 {
        match self {
            Kind::Blob => 1,
            Kind::Chunked => 2,
            Kind::Tree => 3,
            Kind::Run => 4,
            Kind::Note => 5,
            Kind::Model => 6,
            Kind::Tag => 7,
        }
    }

    /// The kind for a one-byte code, if it is one.
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Blob,
            2 => Kind::Chunked,
            3 => Kind::Tree,
            4 => Kind::Run,
            5 => Kind::Note,
            6 => Kind::Model,
            7 => Kind::Tag,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The canonical header that precedes the content in the hashed encoding.
pub fn header(kind: Kind, len: u64) -> Vec<u8> {
    format!("{} {}\0", kind.name(), len).into_bytes()
}

/// The id of an object of `kind` with `content`.
pub fn hash_object(kind: Kind, content: &[u8]) -> ObjectId {
    let mut h = blake3::Hasher::new();
    h.update(&header(kind, content.len() as u64));
    h.update(content);
    ObjectId::from_bytes(*h.finalize().as_bytes())
}

/// An object whose content failed to decode.
#[derive(Debug, thiserror::Error)]
#[error("malformed {kind} object: {reason}")]
pub struct DecodeError {
    /// The kind that was being decoded.
    pub kind: Kind,
    /// What is wrong with it.
    pub reason: String,
}

/// Decodes a JSON document of `kind` (notes, model events, tag events) and refuses one whose
/// `format` is newer than `supported`; `what` names the document in that message.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    kind: Kind,
    buf: &[u8],
    what: &str,
    supported: u32,
    format: impl Fn(&T) -> u32,
) -> Result<T, DecodeError> {
    let doc: T = serde_json::from_slice(buf).map_err(|e| DecodeError::new(kind, e.to_string()))?;
    let found = format(&doc);
    if found > supported {
        return Err(DecodeError::new(
            kind,
            format!(
                "{what} format {found} is newer than this cairn understands ({supported}); upgrade cairn"
            ),
        ));
    }
    Ok(doc)
}

impl DecodeError {
    pub(crate) fn new(kind: Kind, reason: impl Into<String>) -> Self {
        DecodeError {
            kind,
            reason: reason.into(),
        }
    }
}

/// A small cursor over a byte slice that never panics.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: Kind,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], kind: Kind) -> Self {
        Reader { buf, pos: 0, kind }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| DecodeError::new(self.kind, "truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn id(&mut self) -> Result<ObjectId, DecodeError> {
        let b = self.take(32)?;
        ObjectId::from_slice(b).ok_or_else(|| DecodeError::new(self.kind, "truncated id"))
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::new(self.kind, "trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_depends_on_kind_and_content() {
        let a = hash_object(Kind::Blob, b"hello");
        let mut h = blake3::Hasher::new();
        h.update(b"blob 5\0hello");
        assert_eq!(a.as_bytes(), h.finalize().as_bytes());
        assert_ne!(a, hash_object(Kind::Tree, b"hello"));
        for code in 0..=255u8 {
            if let Some(k) = Kind::from_code(code) {
                assert_eq!(k.code(), code);
            }
        }
    }
}
