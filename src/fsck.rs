//! Verifying a store: every object's hash and structure, every reference, every ref.
//!
//! Each indexed object is read back from its pack, decompressed with a size cap and hashed; its
//! content is decoded by kind and every id it names must be in the store with the right kind.
//! Refs must name present objects. Objects no ref reaches are counted (gc removes them).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{references, Kind};
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
