//! Notes: annotations attached to runs after the fact, without rewriting them.
//!
//! Notes form one append-only chain: each note names the run it annotates and the previous head
//! of the chain, and the ref `refs/notes/runs` points at the newest note. Content is JSON.

use serde::{Deserialize, Serialize};

use super::{DecodeError, Kind};
use crate::hash::ObjectId;

/// One annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Document version (1).
    pub format: u32,
    /// The run annotated.
    pub run: ObjectId,
    /// The note's text.
    pub text: String,
    /// Who wrote it.
    pub author: String,
    /// When, milliseconds since the Unix epoch.
    pub time: i64,
    /// The previous head of the notes chain.
    #[serde(default)]
    pub previous: Option<ObjectId>,
}

impl Note {
    /// The canonical content bytes (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes content bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        super::decode_json(Kind::Note, buf, "note", 1, |n: &Note| n.format)
    }
}
