//! The tag journal: every change to a tag, recorded as an object.
//!
//! Tags themselves are refs (`refs/tags/NAME` → run). Each time one is set, moved or deleted, a
//! [`TagEvent`] is appended to one chain — each event names the previous head, and the ref
//! `refs/journal/tags` points at the newest — so that the tags can be recovered from the packs
//! alone if the index is ever lost. Events do not keep their runs alive: only the tag refs do.
//! Content is JSON.

use serde::{Deserialize, Serialize};

use super::{DecodeError, Kind};
use crate::hash::ObjectId;

/// One change to a tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagEvent {
    /// Document version (1).
    pub format: u32,
    /// The tag's name (without `refs/tags/`).
    pub name: String,
    /// The run it now names, or `None` when it was deleted.
    pub target: Option<ObjectId>,
    /// Who changed it.
    pub author: String,
    /// When, milliseconds since the Unix epoch.
    pub time: i64,
    /// The previous head of the journal.
    #[serde(default)]
    pub previous: Option<ObjectId>,
}

impl TagEvent {
    /// The canonical content bytes (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes content bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        super::decode_json(Kind::Tag, buf, "tag event", 1, |e: &TagEvent| e.format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_newer_format() {
        let e = TagEvent {
            format: 1,
            name: "v1".into(),
            target: Some(ObjectId::from_bytes([3; 32])),
            author: "a <a@b>".into(),
            time: 5,
            previous: None,
        };
        assert_eq!(TagEvent::decode(&e.encode()).unwrap(), e);
        let newer = TagEvent { format: 2, ..e };
        assert!(TagEvent::decode(&newer.encode()).is_err());
        assert!(TagEvent::decode(b"{").is_err());
    }
}
