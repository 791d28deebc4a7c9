//! What an object refers to: the edges of the object graph that fsck, gc and sync walk.

use super::{ChunkedFile, EntryKind, Kind, ModelEvent, Note, Run, TagEvent, Tree};
use crate::hash::ObjectId;

/// What an object refers to, with the kinds each reference must have.
pub fn references(
    kind: Kind,
    raw: &[u8],
) -> std::result::Result<Vec<(ObjectId, &'static [Kind])>, String> {
    const FILE: &[Kind] = &[Kind::Blob, Kind::Chunked];
    const BLOB: &[Kind] = &[Kind::Blob];
    const TREE: &[Kind] = &[Kind::Tree];
    const RUN: &[Kind] = &[Kind::Run];
    const NOTE: &[Kind] = &[Kind::Note];
    const TREE_OR_FILE: &[Kind] = &[Kind::Tree, Kind::Blob, Kind::Chunked];
    Ok(match kind {
        Kind::Blob => Vec::new(),
        Kind::Chunked => ChunkedFile::decode(raw)
            .map_err(|e| e.to_string())?
            .chunks
            .into_iter()
            .map(|c| (c.id, BLOB))
            .collect(),
        Kind::Tree => Tree::decode(raw)
            .map_err(|e| e.to_string())?
            .entries
            .into_iter()
            .map(|e| {
                let k: &'static [Kind] = match e.kind {
                    EntryKind::Tree => TREE,
                    EntryKind::Symlink => BLOB,
                    _ => FILE,
                };
                (e.id, k)
            })
            .collect(),
        Kind::Run => {
            let run = Run::decode(raw).map_err(|e| e.to_string())?;
            let mut v: Vec<(ObjectId, &'static [Kind])> =
                run.parents.iter().map(|p| (*p, RUN)).collect();
            if let Some(c) = &run.code {
                v.push((c.tree, TREE));
                if let Some(d) = c.git.as_ref().and_then(|g| g.diff) {
                    v.push((d, BLOB));
                }
            }
            v.extend(
                run.metrics
                    .values()
                    .filter_map(|m| m.series)
                    .map(|s| (s, BLOB)),
            );
            v.extend(run.data.values().map(|d| (d.id, TREE_OR_FILE)));
            if let Some(a) = &run.artifacts {
                v.push((a.tree, TREE));
            }
            v
        }
        Kind::Model => {
            const MODEL: &[Kind] = &[Kind::Model];
            let e = ModelEvent::decode(raw).map_err(|e| e.to_string())?;
            let mut v: Vec<(ObjectId, &'static [Kind])> = Vec::new();
            if let Some(p) = e.previous {
                v.push((p, MODEL));
            }
            if let Some(r) = e.run {
                v.push((r, RUN));
            }
            if let Some(c) = e.content {
                v.push((c, TREE_OR_FILE));
            }
            v
        }
        Kind::Tag => {
            // The journal keeps its own history, not the runs its entries once named.
            const TAG: &[Kind] = &[Kind::Tag];
            let e = TagEvent::decode(raw).map_err(|e| e.to_string())?;
            e.previous.map(|p| (p, TAG)).into_iter().collect()
        }
        Kind::Note => {
            let note = Note::decode(raw).map_err(|e| e.to_string())?;
            let mut v = vec![(note.run, RUN)];
            if let Some(p) = note.previous {
                v.push((p, NOTE));
            }
            v
        }
    })
}
