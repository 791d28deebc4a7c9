//! Differences between two runs, as data: params, metrics, code, data, artifacts, environment.
//!
//! Nothing here prints; the command line renders a [`RunDiff`] as text or as JSON (the schema
//! is documented in `docs/guide/diff.md`).

pub mod metrics;
pub mod text;
pub mod tree;

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::capture::params::flatten;
use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{EntryKind, Run};
use crate::store::Session;
pub use metrics::{Direction, MetricChange};
pub use tree::{ChangeKind, FileChange, Root, Side};

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Compute line diffs of text files and row counts of large tables.
    pub patch: bool,
    /// Metrics known to be better when higher.
    pub higher_is_better: Vec<String>,
    /// Metrics known to be better when lower.
    pub lower_is_better: Vec<String>,
}

/// A changed parameter (nested keys flattened with '.').
#[derive(Debug, Clone, Serialize)]
pub struct ParamChange {
    /// Flattened key.
    pub key: String,
    /// added, removed or modified.
    pub change: ChangeKind,
    /// Value in A.
    pub old: Option<Value>,
    /// Value in B.
    pub new: Option<Value>,
}

/// A changed file, with its line diff or row counts when asked for.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    /// The change.
    #[serde(flatten)]
    pub file: FileChange,
    /// Unified diff, for text files with `patch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// True when either side is not text (with `patch`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// Row counts [old, new] of large tables (with `patch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<[Option<u64>; 2]>,
}

/// Code versions and file changes.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CodeDiff {
    /// Git commit of A.
    pub old_commit: Option<String>,
    /// Git commit of B.
    pub new_commit: Option<String>,
    /// Whether A had uncommitted changes.
    pub old_dirty: bool,
    /// Whether B had uncommitted changes.
    pub new_dirty: bool,
    /// Files changed between the two code snapshots.
    pub files: Vec<FileDiff>,
}

/// A data snapshot compared.
#[derive(Debug, Clone, Serialize)]
pub struct DataDiff {
    /// Snapshot name.
    pub name: String,
    /// added, removed or modified.
    pub change: ChangeKind,
    /// True when the snapshot is a single file (its one entry is named after the snapshot).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub single_file: bool,
    /// Files changed.
    pub files: Vec<FileDiff>,
}

/// A difference in how the run was made.
#[derive(Debug, Clone, Serialize)]
pub struct EnvChange {
    /// `command`, `host`, `cwd`, `status`, `exit_code`, `branch`, `author`, or `env.NAME`.
    pub field: String,
    /// Value in A.
    pub old: Option<String>,
    /// Value in B.
    pub new: Option<String>,
}

/// Everything that differs between runs A and B.
#[derive(Debug, Clone, Serialize)]
pub struct RunDiff {
    /// Schema version of this document.
    pub schema: u32,
    /// Run A.
    pub a: ObjectId,
    /// Run B.
    pub b: ObjectId,
    /// Changed params.
    pub params: Vec<ParamChange>,
    /// Every metric of either run (unchanged ones included, with their values).
    pub metrics: Vec<MetricChange>,
    /// Code changes.
    pub code: CodeDiff,
    /// Changed data snapshots.
    pub data: Vec<DataDiff>,
    /// Changed artifacts.
    pub artifacts: Vec<FileDiff>,
    /// Changes of command, host and environment.
    pub env: Vec<EnvChange>,
}

impl RunDiff {
    /// True when the runs differ in params, metric values, code, data, artifacts or env.
    pub fn differs(&self) -> bool {
        !self.params.is_empty()
            || self.metrics.iter().any(|m| {
                m.a.as_ref().map(|s| s.last.map(f64::to_bits))
                    != m.b.as_ref().map(|s| s.last.map(f64::to_bits))
                    || m.a.as_ref().map(|s| s.count) != m.b.as_ref().map(|s| s.count)
            })
            || !self.code.files.is_empty()
            || self.code.old_commit != self.code.new_commit
            || !self.data.is_empty()
            || !self.artifacts.is_empty()
            || !self.env.is_empty()
    }
}

fn params_diff(a: &Run, b: &Run) -> Vec<ParamChange> {
    let fa: Vec<(String, Value)> = flatten(&a.params);
    let fb: Vec<(String, Value)> = flatten(&b.params);
    let mb: std::collections::HashMap<&str, &Value> =
        fb.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ma: std::collections::HashMap<&str, &Value> =
        fa.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Vec::new();
    for (k, v) in &fa {
        match mb.get(k.as_str()) {
            None => out.push(ParamChange {
                key: k.clone(),
                change: ChangeKind::Removed,
                old: Some(v.clone()),
                new: None,
            }),
            Some(w) if *w != v => out.push(ParamChange {
                key: k.clone(),
                change: ChangeKind::Modified,
                old: Some(v.clone()),
                new: Some((*w).clone()),
            }),
            _ => {}
        }
    }
    for (k, v) in &fb {
        if !ma.contains_key(k.as_str()) {
            out.push(ParamChange {
                key: k.clone(),
                change: ChangeKind::Added,
                old: None,
                new: Some(v.clone()),
            });
        }
    }
    out.sort_by(|x, y| x.key.cmp(&y.key));
    out
}

fn env_diff(a: &Run, b: &Run) -> Vec<EnvChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, x: Option<String>, y: Option<String>| {
        if x != y {
            out.push(EnvChange {
                field: field.to_string(),
                old: x,
                new: y,
            });
        }
    };
    push(
        "command",
        a.command.as_ref().map(|c| c.join(" ")),
        b.command.as_ref().map(|c| c.join(" ")),
    );
    push("host", Some(a.host.clone()), Some(b.host.clone()));
    push("cwd", a.cwd.clone(), b.cwd.clone());
    push(
        "status",
        Some(a.status.to_string()),
        Some(b.status.to_string()),
    );
    push(
        "exit_code",
        a.exit_code.map(|c| c.to_string()),
        b.exit_code.map(|c| c.to_string()),
    );
    push("branch", a.branch.clone(), b.branch.clone());
    push("author", Some(a.author.clone()), Some(b.author.clone()));
    let keys: BTreeSet<&String> = a.env.keys().chain(b.env.keys()).collect();
    for k in keys {
        push(
            &format!("env.{k}"),
            a.env.get(k).cloned(),
            b.env.get(k).cloned(),
        );
    }
    out
}

fn with_patches(
    session: &Session,
    files: Vec<FileChange>,
    opts: &DiffOptions,
) -> Result<Vec<FileDiff>> {
    files
        .into_iter()
        .map(|file| {
            let mut d = FileDiff {
                file,
                patch: None,
                binary: false,
                rows: None,
            };
            if opts.patch {
                annotate(session, &mut d)?;
            }
            Ok(d)
        })
        .collect()
}

fn annotate(session: &Session, d: &mut FileDiff) -> Result<()> {
    let sides = [d.file.old, d.file.new];
    if sides.iter().flatten().any(|s| s.kind == "link") {
        return Ok(());
    }
    let small = sides
        .iter()
        .flatten()
        .all(|s| s.size <= text::MAX_PATCH_BYTES);
    if small {
        let mut texts = Vec::new();
        for s in sides {
            let bytes = match s {
                Some(s) => text::read_content(session, &s.id)?,
                None => Vec::new(),
            };
            if !text::is_text(&bytes) {
                d.binary = true;
                return Ok(());
            }
            texts.push(String::from_utf8(bytes).unwrap_or_default());
        }
        d.patch = Some(text::unified(&d.file.path, &texts[0], &texts[1]));
    } else if text::is_table(&d.file.path) {
        let mut rows = [None, None];
        for (i, s) in sides.iter().enumerate() {
            if let Some(s) = s {
                rows[i] = Some(text::count_lines(session, &s.id)?);
            }
        }
        d.rows = Some(rows);
    } else {
        d.binary = true;
    }
    Ok(())
}

fn leaf(kind: &str, executable: bool, id: ObjectId, size: u64) -> Root {
    if kind == "tree" {
        Root::Tree(id)
    } else {
        Root::Leaf(Side {
            kind: if executable {
                EntryKind::Executable.as_str()
            } else {
                EntryKind::File.as_str()
            },
            size,
            id,
        })
    }
}

/// Compares runs `a` and `b`.
pub fn diff_runs(
    session: &Session,
    a_id: ObjectId,
    a: &Run,
    b_id: ObjectId,
    b: &Run,
    opts: &DiffOptions,
) -> Result<RunDiff> {
    let params = params_diff(a, b);
    let names: BTreeSet<&String> = a.metrics.keys().chain(b.metrics.keys()).collect();
    let mut metrics = Vec::new();
    for n in names {
        metrics.push(metrics::compare(
            session,
            n,
            a.metrics.get(n),
            b.metrics.get(n),
            &opts.higher_is_better,
            &opts.lower_is_better,
        )?);
    }
    let code_files = tree::diff_roots(
        session,
        a.code.as_ref().map(|c| Root::Tree(c.tree)),
        b.code.as_ref().map(|c| Root::Tree(c.tree)),
    )?;
    let git = |r: &Run| r.code.as_ref().and_then(|c| c.git.clone());
    let code = CodeDiff {
        old_commit: git(a).and_then(|g| g.commit),
        new_commit: git(b).and_then(|g| g.commit),
        old_dirty: git(a).is_some_and(|g| g.dirty),
        new_dirty: git(b).is_some_and(|g| g.dirty),
        files: with_patches(session, code_files, &opts.clone())?,
    };
    let mut data = Vec::new();
    let names: BTreeSet<&String> = a.data.keys().chain(b.data.keys()).collect();
    for n in names {
        let ra = a
            .data
            .get(n)
            .map(|d| leaf(&d.kind, d.executable, d.id, d.size));
        let rb = b
            .data
            .get(n)
            .map(|d| leaf(&d.kind, d.executable, d.id, d.size));
        if ra == rb {
            continue;
        }
        let change = match (ra, rb) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Modified,
        };
        let mut files = tree::diff_roots(session, ra, rb)?;
        let single_file = matches!(
            (ra, rb),
            (Some(Root::Leaf(_)), _) | (_, Some(Root::Leaf(_)))
        );
        for f in files.iter_mut().filter(|f| f.path.is_empty()) {
            f.path = n.clone();
        }
        data.push(DataDiff {
            name: n.clone(),
            change,
            single_file,
            files: with_patches(session, files, opts)?,
        });
    }
    let art = tree::diff_roots(
        session,
        a.artifacts.as_ref().map(|x| Root::Tree(x.tree)),
        b.artifacts.as_ref().map(|x| Root::Tree(x.tree)),
    )?;
    Ok(RunDiff {
        schema: 1,
        a: a_id,
        b: b_id,
        params,
        metrics,
        code,
        data,
        artifacts: with_patches(session, art, opts)?,
        env: env_diff(a, b),
    })
}
