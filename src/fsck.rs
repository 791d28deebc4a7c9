//! Verifying a store: every object's hash and structure, every reference, every ref.
//!
//! Each indexed object is read back from its pack, decompressed with a size cap and hashed; its
//! content is decoded by kind and every id it names must be in the store with the right kind.
//! Refs must name present objects. Objects no ref reaches are counted (gc removes them).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{ChunkedFile, EntryKind, Kind, Note, Run, Tree};
use crate::progress::Progress;
use crate::refs;
use crate::store::{Location, Session};

/// One problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// The damaged object, when one is to blame.
    pub id: Option<ObjectId>,
    /// What is wrong.
    pub what: String,
}

/// What fsck found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FsckReport {
    /// Objects checked.
    pub objects: u64,
    /// Raw bytes checked.
    pub bytes: u64,
    /// Refs checked.
    pub refs: u64,
    /// Objects no ref reaches.
    pub unreachable: u64,
    /// Problems; empty when the store is sound.
    pub problems: Vec<Problem>,
}

/// What an object refers to, with the kinds each reference must have.
pub(crate) fn references(
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
            let e = crate::object::ModelEvent::decode(raw).map_err(|e| e.to_string())?;
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
            let e = crate::object::TagEvent::decode(raw).map_err(|e| e.to_string())?;
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

/// Checks the whole store.
pub fn fsck(session: &Session, progress: &dyn Progress) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let mut index: HashMap<ObjectId, Location> = HashMap::new();
    for item in session.objects() {
        let (id, loc) = item?;
        match loc {
            Some(l) => {
                index.insert(id, l);
            }
            None => report.problems.push(Problem {
                id: Some(id),
                what: "its index entry is damaged".into(),
            }),
        }
    }
    let total: u64 = index.values().map(|l| l.raw_len).sum();
    progress.begin("verifying", Some(total));
    let entries: Vec<(ObjectId, Location)> = index.iter().map(|(k, v)| (*k, *v)).collect();
    type Checked = (
        ObjectId,
        std::result::Result<Vec<(ObjectId, &'static [Kind])>, String>,
    );
    let checked: Vec<Checked> = entries
        .par_iter()
        .map(|(id, loc)| {
            let r = session
                .read_at(id, loc)
                .map_err(|e| e.to_string())
                .and_then(|raw| {
                    references(loc.kind, &raw).map_err(|e| format!("object {id}: {e}"))
                });
            progress.advance(loc.raw_len);
            (*id, r)
        })
        .collect();
    progress.end();
    let mut graph: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    for (id, r) in checked {
        report.objects += 1;
        match r {
            Err(what) => report.problems.push(Problem { id: Some(id), what }),
            Ok(refs) => {
                let partial = session.is_partial(&id)?;
                for (child, kinds) in &refs {
                    match index.get(child) {
                        None if partial => {}
                        None => report.problems.push(Problem {
                            id: Some(id),
                            what: format!("object {id} refers to missing object {child}"),
                        }),
                        Some(l) if !kinds.contains(&l.kind) => report.problems.push(Problem {
                            id: Some(id),
                            what: format!(
                                "object {id} refers to {child}, a {}, where a {} belongs",
                                l.kind, kinds[0]
                            ),
                        }),
                        _ => {}
                    }
                }
                if !refs.is_empty() {
                    graph.insert(id, refs.into_iter().map(|(c, _)| c).collect());
                }
            }
        }
    }
    report.bytes = total;
    // Refs and reachability.
    let mut reached: HashSet<ObjectId> = HashSet::new();
    let mut stack = Vec::new();
    for (name, id) in refs::all_targets(session)? {
        report.refs += 1;
        if !index.contains_key(&id) {
            report.problems.push(Problem {
                id: Some(id),
                what: format!("ref {name} points to missing object {id}"),
            });
        }
        stack.push(id);
    }
    while let Some(id) = stack.pop() {
        if reached.insert(id) {
            if let Some(children) = graph.get(&id) {
                stack.extend(children.iter().copied());
            }
        }
    }
    report.unreachable = index.keys().filter(|id| !reached.contains(id)).count() as u64;
    report.problems.sort_by(|a, b| a.what.cmp(&b.what));
    Ok(report)
}
