//! A run's files as one namespace: `code/…`, `data/NAME/…`, `artifacts/…`.
//!
//! `cairn ls`, `cairn cat RUN:PATH` and selective checkout address files through this view.

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{EntryKind, Run};
use crate::store::Session;

/// A node of a run's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The run's root (`code`, `data`, `artifacts`).
    Root,
    /// The `data` folder listing the named snapshots.
    DataRoot,
    /// A stored tree.
    Tree(ObjectId),
    /// A stored file or link.
    Leaf {
        /// File, executable or link.
        kind: EntryKind,
        /// Content id.
        id: ObjectId,
        /// Size.
        size: u64,
    },
}

/// One listed path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    /// Path within the run's namespace.
    pub path: String,
    /// `file`, `exec`, `link` or `tree`.
    pub kind: &'static str,
    /// Size in bytes (total for trees).
    pub size: u64,
    /// Content id.
    pub id: ObjectId,
}

fn children(session: &Session, run: &Run, node: &Node) -> Result<Vec<(String, Node, u64)>> {
    Ok(match node {
        Node::Root => {
            let mut v = Vec::new();
            if let Some(c) = &run.code {
                v.push(("code".to_string(), Node::Tree(c.tree), c.size));
            }
            if !run.data.is_empty() {
                v.push((
                    "data".to_string(),
                    Node::DataRoot,
                    run.data.values().map(|d| d.size).sum(),
                ));
            }
            if let Some(a) = &run.artifacts {
                v.push(("artifacts".to_string(), Node::Tree(a.tree), a.size));
            }
            v
        }
        Node::DataRoot => run
            .data
            .iter()
            .map(|(name, d)| {
                let node = if d.kind == "tree" {
                    Node::Tree(d.id)
                } else {
                    Node::Leaf {
                        kind: if d.executable {
                            EntryKind::Executable
                        } else {
                            EntryKind::File
                        },
                        id: d.id,
                        size: d.size,
                    }
                };
                (name.clone(), node, d.size)
            })
            .collect(),
        Node::Tree(id) => session
            .read_tree(id)?
            .entries
            .into_iter()
            .map(|e| {
                let node = if e.kind == EntryKind::Tree {
                    Node::Tree(e.id)
                } else {
                    Node::Leaf {
                        kind: e.kind,
                        id: e.id,
                        size: e.size,
                    }
                };
                (e.name, node, e.size)
            })
            .collect(),
        Node::Leaf { .. } => Vec::new(),
    })
}

/// Finds `path` (slash-separated; empty for the root) in `run`. A path that is not there comes
/// with the paths probably meant: the same path deeper down (`artifacts/model.npz` for
/// `model.npz`), or a close name where it went astray.
pub fn lookup(session: &Session, run: &Run, run_name: &str, path: &str) -> Result<Node> {
    let found = find(session, run, path).map_err(|e| not_fetched(session, e, run_name, path))?;
    let (parent, node, missing) = match found {
        Ok(node) => return Ok(node),
        Err(miss) => miss,
    };
    let error = Error::NoSuchPath {
        run: run_name.to_string(),
        path: path.to_string(),
    };
    let parts = path_parts(path);
    // The same path deeper down (only looked for when the path is not there, so walking
    // every folder of the run costs nothing otherwise).
    let tail = format!("/{}", parts.join("/"));
    // Best effort: a run fetched partially lacks some folders.
    let mut candidates: Vec<String> = list(session, run, &Node::Root, "", true)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.path.ends_with(&tail))
        .map(|l| l.path)
        .collect();
    candidates.sort_by_key(|p| (p.matches('/').count(), p.clone()));
    candidates.truncate(3);
    if candidates.is_empty() {
        let names: Vec<String> = children(session, run, &node)
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        let rest = &parts[parent.len() + 1..];
        for name in crate::suggest::similar(missing, names) {
            let full: Vec<&str> = parent
                .iter()
                .copied()
                .chain(std::iter::once(name.as_str()))
                .chain(rest.iter().copied())
                .collect();
            candidates.push(full.join("/"));
        }
    }
    Err(crate::suggest::with_candidates(error, candidates))
}

/// `e`, or, when it is an object missing from a partially fetched store, the error that says
/// `run_name:path` was not fetched and how to fetch it.
pub fn not_fetched(session: &Session, e: Error, run_name: &str, path: &str) -> Error {
    let missing = matches!(
        e,
        Error::Store(crate::store::StoreError::Missing(_))
            | Error::Snapshot(crate::snapshot::SnapshotError::Store(
                crate::store::StoreError::Missing(_)
            ))
    );
    if !missing {
        return e;
    }
    // The remote to name: the only one with remote-tracking refs, if there is just one.
    let remotes: std::collections::BTreeSet<String> = session
        .refs("refs/remotes/")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(r, _)| {
            r.strip_prefix("refs/remotes/")?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect();
    Error::PathNotFetched {
        run: run_name.to_string(),
        path: path.to_string(),
        remote: (remotes.len() == 1)
            .then(|| remotes.into_iter().next())
            .flatten(),
    }
}

fn path_parts(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

/// What went astray in a walk: the parts found, the node they lead to, the part missing there.
type Miss<'p> = (Vec<&'p str>, Node, &'p str);

/// Walks `path` from the root of `run`.
fn find<'p>(
    session: &Session,
    run: &Run,
    path: &'p str,
) -> Result<std::result::Result<Node, Miss<'p>>> {
    let mut node = Node::Root;
    let mut found = Vec::new();
    for part in path_parts(path) {
        let next = children(session, run, &node)?
            .into_iter()
            .find(|(name, _, _)| name == part)
            .map(|(_, n, _)| n);
        match next {
            Some(n) => {
                node = n;
                found.push(part);
            }
            None => return Ok(Err((found, node, part))),
        }
    }
    Ok(Ok(node))
}

/// Lists everything below `node` (files, links and folders), depth first, sorted.
pub fn list(
    session: &Session,
    run: &Run,
    node: &Node,
    prefix: &str,
    recursive: bool,
) -> Result<Vec<Listing>> {
    let mut out = Vec::new();
    if let Node::Leaf { kind, id, size } = node {
        out.push(Listing {
            path: prefix.to_string(),
            kind: kind.as_str(),
            size: *size,
            id: *id,
        });
        return Ok(out);
    }
    walk(session, run, node, prefix, recursive, &mut out)?;
    Ok(out)
}

fn walk(
    session: &Session,
    run: &Run,
    node: &Node,
    prefix: &str,
    recursive: bool,
    out: &mut Vec<Listing>,
) -> Result<()> {
    for (name, child, size) in children(session, run, node)? {
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match &child {
            Node::Leaf { kind, id, size } => out.push(Listing {
                path,
                kind: kind.as_str(),
                size: *size,
                id: *id,
            }),
            Node::Tree(id) => {
                out.push(Listing {
                    path: path.clone(),
                    kind: "tree",
                    size,
                    id: *id,
                });
                if recursive {
                    walk(session, run, &child, &path, recursive, out)?;
                }
            }
            Node::DataRoot | Node::Root => {
                out.push(Listing {
                    path: path.clone(),
                    kind: "tree",
                    size,
                    id: ObjectId::from_bytes([0; 32]),
                });
                if recursive {
                    walk(session, run, &child, &path, recursive, out)?;
                }
            }
        }
    }
    Ok(())
}
