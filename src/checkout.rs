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
            let first = items.len();
            plan_tree(session, &a.tree, Path::new(""), &mut items)?;
            // The captured output of `cairn run` is the run's record, not an output.
            if run.command.is_some() {
                let log = Path::new(crate::run::LOG_ARTIFACT);
                let mut i = first;
                while i < items.len() {
                    if items[i].rel == log {
                        items.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }
    // The same folder may be planned by several parts; keep the first of each path.
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.rel.clone()));
    Ok(items)
}

/// Restores `run` into `target`. With the code, the params files the run read (recorded by
/// `cairn run`) are written as the run saw them: their values set to the run's params. The
/// captured output (`cairn-run.log`) is not restored: it is the run's record, not one of its
/// outputs (`cairn cat RUN:artifacts/cairn-run.log` prints it).
pub fn checkout(
    session: Session<'_>,
    run: &Run,
    parts: Parts,
    target: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let mut items = plan(&session, run, parts)?;
    let code = parts.all_if_none().code;
    let params = if code {
        run_params_files(&session, run, &items)?
    } else {
        Vec::new()
    };
    // The params files are written here, not restored from the code snapshot; a file that is
    // neither the snapshot's nor the run's version is a conflict, as for any other file.
    let mut writes = Vec::new();
    for (rel, snapshot, bytes) in params {
        let path = target.join(&rel);
        if let Ok(existing) = std::fs::read(&path) {
            if existing == bytes {
                items.retain(|i| i.rel != rel);
                continue;
            }
            if !force && snapshot.as_ref().is_none_or(|s| *s != existing) {
                return Err(crate::snapshot::SnapshotError::WouldOverwrite(vec![path]).into());
            }
        }
        items.retain(|i| i.rel != rel);
        writes.push((path, bytes));
    }
    let mut report = restore::restore(session, target, &items, force, progress)?;
    for (path, bytes) in writes {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(crate::error::io_err(parent))?;
        }
        std::fs::write(&path, &bytes).map_err(crate::error::io_err(&path))?;
        report.written += 1;
        report.bytes += bytes.len() as u64;
    }
    Ok(report)
}

/// A params file to write: (path relative to the target, the snapshot's version, the run's).
type ParamsFile = (PathBuf, Option<Vec<u8>>, Vec<u8>);

/// The params files `run` read, as it saw them: `(path relative to the target, the code
/// snapshot's version if it has one, the run's version)`. Each file's values are set to the
/// run's params; params in no file go to the last one; a file missing from the snapshot is
/// written whole from the run's params (JSON, which YAML readers accept too, or TOML).
fn run_params_files(
    session: &Session,
    run: &Run,
    items: &[RestoreItem],
) -> Result<Vec<ParamsFile>> {
    use crate::capture::params::{self, ParamsFormat};
    let files: Vec<String> = run
        .env
        .get(crate::run::keys::PARAMS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let mut loaded = Vec::new();
    for f in files.iter().filter(|f| !Path::new(f).is_absolute()) {
        let rel = clean_rel(f);
        let Some(format) = ParamsFormat::from_path(&rel) else {
            continue;
        };
        let snapshot = match items
            .iter()
            .find(|i| i.rel == rel && i.kind != EntryKind::Tree)
        {
            Some(item) => {
                let plan = session.content_plan(&item.id)?;
                let mut packs = std::collections::HashMap::new();
                session.open_packs(&plan, &mut packs)?;
                let mut bytes = Vec::new();
                crate::store::write_pieces(&plan, &packs, &mut bytes, &|_| {})?;
                Some(bytes)
            }
            None => None,
        };
        let values = match &snapshot {
            Some(b) => match params::parse_params(b, format, &rel) {
                Ok(v) => Some(v),
                // A file that does not parse is left as the snapshot has it.
                Err(_) => continue,
            },
            None => None,
        };
        loaded.push((rel, format, snapshot, values));
    }
    // Leaf paths of the run's params, and which file (the last) holds each.
    let mut leaves = Vec::new();
    leaf_paths(&run.params, &mut Vec::new(), &mut leaves);
    let mut sets: Vec<Vec<(Vec<String>, serde_json::Value)>> = vec![Vec::new(); loaded.len()];
    for (path, value) in leaves {
        let holder = loaded.iter().rposition(|(_, _, _, v)| {
            v.as_ref()
                .is_some_and(|v| params::get_path(v, &path).is_some())
        });
        match holder {
            Some(i) => {
                let same = loaded[i]
                    .3
                    .as_ref()
                    .and_then(|v| params::get_path(v, &path))
                    == Some(&value);
                if !same {
                    sets[i].push((path, value));
                }
            }
            None => {
                if let Some(last) = loaded.iter().rposition(|l| l.3.is_some()) {
                    sets[last].push((path, value));
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((rel, format, snapshot, _), s) in loaded.into_iter().zip(sets) {
        match snapshot {
            Some(bytes) => {
                if s.is_empty() {
                    continue;
                }
                let new = params::rewrite_params(&bytes, format, &rel, &s)?;
                out.push((rel, Some(bytes), new.bytes));
            }
            None => {
                let text = match format {
                    ParamsFormat::Toml => toml::to_string_pretty(&run.params).map_err(|e| {
                        params::ParamsError::Syntax {
                            path: rel.clone(),
                            line: 1,
                            column: 1,
                            message: format!("cannot write the run's params: {e}"),
                        }
                    })?,
                    _ => serde_json::to_string_pretty(&run.params).unwrap_or_default() + "\n",
                };
                out.push((rel, None, text.into_bytes()));
            }
        }
    }
    Ok(out)
}

fn leaf_paths(
    map: &crate::capture::params::Params,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, serde_json::Value)>,
) {
    for (k, v) in map {
        prefix.push(k.clone());
        match v {
            serde_json::Value::Object(inner) if !inner.is_empty() => leaf_paths(inner, prefix, out),
            _ => out.push((prefix.clone(), v.clone())),
        }
        prefix.pop();
    }
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
