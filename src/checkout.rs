//! Restoring a run's code, data and artifacts to disk, bit for bit.
//!
//! Code goes back to the folder it was taken from, data snapshots to their recorded paths
//! (`data/NAME` when they came from outside the repository) and artifacts to their paths, all
//! relative to the repository root or to `-o DIR`. Everything is planned and checked before the
//! first byte is written (see [`crate::snapshot::restore`]).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{EntryKind, Run};
use crate::progress::Progress;
use crate::snapshot::restore::{self, plan_tree, RestoreItem, RestoreReport};
use crate::store::Session;

/// Which parts of a run to restore; all when none is chosen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    /// The code snapshot.
    pub code: bool,
    /// The data snapshots.
    pub data: bool,
    /// The artifacts.
    pub artifacts: bool,
}

impl Parts {
    fn all_if_none(self) -> Self {
        if !(self.code || self.data || self.artifacts) {
            Parts {
                code: true,
                data: true,
                artifacts: true,
            }
        } else {
            self
        }
    }
}

fn clean_rel(p: &str) -> PathBuf {
    Path::new(p)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect()
}

/// The restore plan of `run`'s chosen parts, relative to the target folder.
pub fn plan(session: &Session, run: &Run, parts: Parts) -> Result<Vec<RestoreItem>> {
    let parts = parts.all_if_none();
    let mut items = Vec::new();
    if parts.code {
        if let Some(c) = &run.code {
            let base = clean_rel(&c.path);
            plan_tree(session, &c.tree, &base, &mut items)?;
        }
    }
    if parts.data {
        for (name, d) in &run.data {
            let rel = d
                .path
                .as_deref()
                .map(clean_rel)
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| Path::new("data").join(name));
            if d.kind == "tree" {
                plan_tree(session, &d.id, &rel, &mut items)?;
            } else {
                items.push(RestoreItem {
                    rel,
                    kind: if d.executable {
                        EntryKind::Executable
                    } else {
                        EntryKind::File
                    },
                    id: d.id,
                    size: d.size,
                });
            }
        }
    }
    if parts.artifacts {
        if let Some(a) = &run.artifacts {
            plan_tree(session, &a.tree, Path::new(""), &mut items)?;
        }
    }
    // The same folder may be planned by several parts; keep the first of each path.
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.rel.clone()));
    Ok(items)
}

/// Restores `run` into `target`.
pub fn checkout(
    session: Session<'_>,
    run: &Run,
    parts: Parts,
    target: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let items = plan(&session, run, parts)?;
    Ok(restore::restore(session, target, &items, force, progress)?)
}

/// Restores one file or tree of the run's namespace (`view::lookup`) to `dest`.
pub fn restore_node(
    session: Session<'_>,
    kind: EntryKind,
    id: ObjectId,
    size: u64,
    dest: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().map(PathBuf::from).unwrap_or_default();
    let mut items = Vec::new();
    if kind == EntryKind::Tree {
        plan_tree(&session, &id, &name, &mut items)?;
    } else {
        items.push(RestoreItem {
            rel: name,
            kind,
            id,
            size,
        });
    }
    Ok(restore::restore(session, parent, &items, force, progress)?)
}

/// Restores the contents of tree `id` directly into `target`.
pub fn restore_tree_into(
    session: Session<'_>,
    id: ObjectId,
    target: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let mut items = Vec::new();
    plan_tree(&session, &id, Path::new(""), &mut items)?;
    Ok(restore::restore(session, target, &items, force, progress)?)
}
