//! Differences between two trees, found without reading what both share.
//!
//! Entries are merged by name; an entry whose id is the same on both sides is skipped without
//! reading it, so two data snapshots of 100,000 files that differ in three cost a few reads.

use crate::hash::ObjectId;
use crate::object::EntryKind;
use crate::store::{Session, StoreError};

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the new side.
    Added,
    /// Only in the old side.
    Removed,
    /// In both, with other content or mode.
    Modified,
}

/// One side of a changed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Side {
    /// `file`, `exec` or `link`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Content id.
    pub id: ObjectId,
}

/// A changed file (folders are expanded into their files).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// Path relative to the compared trees' roots.
    pub path: String,
    /// What happened.
    pub change: ChangeKind,
    /// The old side, unless added.
    pub old: Option<Side>,
    /// The new side, unless removed.
    pub new: Option<Side>,
}

/// A tree or a single file, as recorded in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// A tree.
    Tree(ObjectId),
    /// A single file or link.
    Leaf(Side),
}

/// The file changes between `old` and `new` (either may be absent).
pub fn diff_roots(
    session: &Session,
    old: Option<Root>,
    new: Option<Root>,
) -> Result<Vec<FileChange>, StoreError> {
    let mut out = Vec::new();
    diff_at(session, "", old, new, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn entry_root(kind: EntryKind, size: u64, id: ObjectId) -> Root {
    if kind == EntryKind::Tree {
        Root::Tree(id)
    } else {
        Root::Leaf(Side {
            kind: kind.as_str(),
            size,
            id,
        })
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn all_files(
    session: &Session,
    prefix: &str,
    root: Root,
    out: &mut Vec<(String, Side)>,
) -> Result<(), StoreError> {
    match root {
        Root::Leaf(s) => out.push((prefix.to_string(), s)),
        Root::Tree(id) => {
            for e in session.read_tree(&id)?.entries {
                all_files(
                    session,
                    &join(prefix, &e.name),
                    entry_root(e.kind, e.size, e.id),
                    out,
                )?;
            }
        }
    }
    Ok(())
}

fn diff_at(
    session: &Session,
    prefix: &str,
    old: Option<Root>,
    new: Option<Root>,
    out: &mut Vec<FileChange>,
) -> Result<(), StoreError> {
    match (old, new) {
        (None, None) => {}
        (Some(a), Some(b)) if a == b => {}
        (Some(Root::Tree(a)), Some(Root::Tree(b))) => {
            let ta = session.read_tree(&a)?;
            let tb = session.read_tree(&b)?;
            let (mut i, mut j) = (0, 0);
            while i < ta.entries.len() || j < tb.entries.len() {
                let ea = ta.entries.get(i);
                let eb = tb.entries.get(j);
                let ord = match (ea, eb) {
                    (Some(x), Some(y)) => x.name.as_bytes().cmp(y.name.as_bytes()),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    _ => std::cmp::Ordering::Greater,
                };
                let (ra, rb, name) = match ord {
                    std::cmp::Ordering::Less => {
                        i += 1;
                        let x = &ta.entries[i - 1];
                        (Some(entry_root(x.kind, x.size, x.id)), None, x.name.clone())
                    }
                    std::cmp::Ordering::Greater => {
                        j += 1;
                        let y = &tb.entries[j - 1];
                        (None, Some(entry_root(y.kind, y.size, y.id)), y.name.clone())
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        j += 1;
                        let (x, y) = (&ta.entries[i - 1], &tb.entries[j - 1]);
                        (
                            Some(entry_root(x.kind, x.size, x.id)),
                            Some(entry_root(y.kind, y.size, y.id)),
                            x.name.clone(),
                        )
                    }
                };
                diff_at(session, &join(prefix, &name), ra, rb, out)?;
            }
        }
        (Some(Root::Leaf(a)), Some(Root::Leaf(b))) => out.push(FileChange {
            path: prefix.to_string(),
            change: ChangeKind::Modified,
            old: Some(a),
            new: Some(b),
        }),
        (a, b) => {
            // One side absent, or a file replaced by a folder (or the reverse).
            let mut olds = Vec::new();
            let mut news = Vec::new();
            if let Some(a) = a {
                all_files(session, prefix, a, &mut olds)?;
            }
            if let Some(b) = b {
                all_files(session, prefix, b, &mut news)?;
            }
            for (path, s) in olds {
                out.push(FileChange {
                    path,
                    change: ChangeKind::Removed,
                    old: Some(s),
                    new: None,
                });
            }
            for (path, s) in news {
                out.push(FileChange {
                    path,
                    change: ChangeKind::Added,
                    old: None,
                    new: Some(s),
                });
            }
        }
    }
    Ok(())
}
