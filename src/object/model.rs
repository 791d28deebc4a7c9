//! Model-registry events: registrations and stage changes, one append-only chain per model.
//!
//! The ref `refs/models/NAME` names the newest event; each event names the previous one, so the
//! chain is the model's complete, ordered history and versions and stages are derived from it.
//! Content is JSON.

use serde::{Deserialize, Serialize};

use super::{DecodeError, Kind};
use crate::hash::ObjectId;

/// One registry event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEvent {
    /// Document version (1).
    pub format: u32,
    /// The model's name.
    pub model: String,
    /// `register`, `stage` or `unstage`.
    pub action: String,
    /// The version registered, or moved into the stage (`stage`).
    #[serde(default)]
    pub version: Option<u32>,
    /// For `register`: the run.
    #[serde(default)]
    pub run: Option<ObjectId>,
    /// For `register`: the path in the run's namespace (`artifacts/model.pt`).
    #[serde(default)]
    pub path: Option<String>,
    /// For `register`: the content at that path (file or tree id), pinned.
    #[serde(default)]
    pub content: Option<ObjectId>,
    /// For `stage` and `unstage`: the stage.
    #[serde(default)]
    pub stage: Option<String>,
    /// For `stage` and `unstage`: the version the stage held before.
    #[serde(default)]
    pub from_version: Option<u32>,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// Who.
    pub author: String,
    /// When, ms since the epoch.
    pub time: i64,
    /// The previous event of this model.
    #[serde(default)]
    pub previous: Option<ObjectId>,
}

impl ModelEvent {
    /// The canonical content bytes (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes content bytes, refusing newer formats.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        super::decode_json(Kind::Model, buf, "model event", 1, |e: &ModelEvent| {
            e.format
        })
    }
}
