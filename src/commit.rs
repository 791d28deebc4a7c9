//! Recording a run: snapshot code, data and artifacts, read params and metrics, publish.
//!
//! All inputs are parsed and checked before anything is written. Content is stored without
//! holding the index; the run object, index entries and the branch move are published in one
//! short session, in the order pack fsync → index batch → ref compare-and-swap → flush. Only
//! after that does the caller learn the run id.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::capture::{git, metrics, params};
use crate::error::{io_err, Error, Result};
use crate::hash::ObjectId;
use crate::object::{
    ArtifactsRef, CodeState, DataRef, EntryKind, GitInfo, Kind, MetricSummary, Run, RUN_FORMAT,
};
use crate::progress::Progress;
use crate::refs::{self, Head, BRANCH_PREFIX};
use crate::repo::{host_name, now_ms, Repo};
use crate::snapshot::ingest::{Ingest, Snapshot};
use crate::snapshot::walk::{self, WalkEntry, WalkKind};
use crate::store::{Batch, RefValue};

/// What to record. Paths may be relative to `cwd`.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Folder relative paths are resolved against.
    pub cwd: PathBuf,
    /// The message.
    pub message: String,
    /// Code folder to snapshot.
    pub code: Option<PathBuf>,
    /// Data snapshots: optional name and path.
    pub data: Vec<(Option<String>, PathBuf)>,
    /// Params files, merged in order.
    pub params_files: Vec<PathBuf>,
    /// `KEY=VALUE` params, applied after the files.
    pub params: Vec<String>,
    /// Metrics files, merged in order.
    pub metrics_files: Vec<PathBuf>,
    /// Metrics already parsed (for example live metrics of a wrapped command).
    pub metrics: Option<metrics::Metrics>,
    /// Artifact files and folders.
    pub artifacts: Vec<PathBuf>,
    /// `KEY=VALUE` user tags.
    pub tags: Vec<String>,
    /// Commit onto this branch instead of HEAD's.
    pub branch: Option<String>,
    /// The command, when known.
    pub command: Option<Vec<String>>,
    /// Status (`completed` by default).
    pub status: Option<crate::object::RunStatus>,
    /// Exit code of the command.
    pub exit_code: Option<i32>,
    /// Start time (ms); now when absent.
    pub started_at: Option<i64>,
    /// Recorded environment.
    pub env: BTreeMap<String, String>,
    /// End time (ms) of the command; commit time when absent.
    pub ended_at: Option<i64>,
    /// Record this run as a child of this run instead of the branch tip. The tip, when the
    /// branch has one and it differs, is kept as a second parent so no history is lost.
    pub parent: Option<ObjectId>,
    /// Files stored in the artifacts tree under a given relative path: `(path in the tree,
    /// file on disk)`, for example the captured log of a wrapped command.
    pub named_artifacts: Vec<(PathBuf, PathBuf)>,
    /// Code already stored (see [`store_code`], or a run being reproduced); takes the place of
    /// `code`. The commit fails with [`crate::store::StoreError::Vanished`] if a gc removed it.
    pub code_state: Option<CodeState>,
    /// Data snapshots already stored (a run being reproduced), recorded alongside `data`.
    pub data_refs: BTreeMap<String, DataRef>,
    /// Outputs of a wrapped command that it did not write (recorded, not stored).
    pub stale: Vec<crate::object::StaleOutput>,
}

/// What a commit produced.
#[derive(Debug, Clone)]
pub struct CommitOutcome {
    /// The new run's id.
    pub id: ObjectId,
    /// The run.
    pub run: Run,
    /// Files read (not served by the stat cache).
    pub files_read: u64,
    /// New objects written.
    pub new_objects: usize,
    /// Bytes added to packs.
    pub stored_bytes: u64,
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Makes `p` absolute and clean (symlinks in the final component are kept as links).
fn resolve_input(cwd: &Path, p: &Path, what: &str) -> Result<PathBuf> {
    let abs = absolute(cwd, p);
    let parent = abs.parent().map(Path::to_path_buf);
    let name = abs.file_name().map(|n| n.to_os_string());
    let canon = match (parent, name) {
        (Some(parent), Some(name)) if name != ".." => {
            let parent = parent.canonicalize().map_err(|e| Error::BadArgument {
                arg: format!("{what} {}", p.display()),
                reason: e.to_string(),
            })?;
            parent.join(name)
        }
        _ => abs.canonicalize().map_err(io_err(&abs))?,
    };
    if std::fs::symlink_metadata(&canon).is_err() {
        return Err(Error::BadArgument {
            arg: format!("{what} {}", p.display()),
            reason: "no such file or folder".into(),
        });
    }
    Ok(canon)
}

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in tags {
        let (k, v) = t.split_once('=').ok_or_else(|| Error::BadArgument {
            arg: format!("--tag {t}"),
            reason: "expected KEY=VALUE".into(),
        })?;
        if k.trim().is_empty() {
            return Err(Error::BadArgument {
                arg: format!("--tag {t}"),
                reason: "empty key".into(),
            });
        }
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// Summarises a series and stores it as a blob when it has more than one point.
fn summarise(series: &metrics::Series) -> (MetricSummary, Option<Vec<u8>>) {
    let finite = |v: f64| v.is_finite().then_some(v);
    let mut last: Option<(i64, f64)> = None;
    for p in &series.points {
        if last.is_none_or(|(s, _)| p.step >= s) {
            last = Some((p.step, p.value));
        }
    }
    let values = series
        .points
        .iter()
        .map(|p| p.value)
        .filter(|v| v.is_finite());
    let min = values
        .clone()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
    let max = values.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let blob = (series.points.len() > 1).then(|| {
        let pairs: Vec<(i64, Option<f64>)> = series
            .points
            .iter()
            .map(|p| (p.step, finite(p.value)))
            .collect();
        serde_json::to_vec(&pairs).unwrap_or_default()
    });
    (
        MetricSummary {
            last: last.and_then(|(_, v)| finite(v)),
            min,
            max,
            count: series.points.len() as u64,
            last_step: last.map(|(s, _)| s).unwrap_or(0),
            series: None,
            final_value: series.final_value.and_then(finite),
        },
        blob,
    )
}

/// A run ready to publish, with the stat-cache entries to publish with it.
struct Prepared {
    run: Run,
    stat_updates: crate::snapshot::ingest::StatUpdates,
    files_read: u64,
}

/// Data snapshot names: `NAME=PATH` or the folder's file name.
fn data_name(name: &Option<String>, path: &Path) -> Result<String> {
    let n = match name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into()),
    };
    crate::object::validate_name(&n).map_err(|reason| Error::BadArgument {
        arg: format!("--data {n}"),
        reason,
    })?;
    Ok(n)
}

/// Records a run. See the module docs for the order of work.
pub fn commit(repo: &Repo, req: &CommitRequest, progress: &dyn Progress) -> Result<CommitOutcome> {
    let started_at = req.started_at.unwrap_or_else(now_ms);
    // ---- parse and check every input first ------------------------------------------------
    let mut params = params::Params::new();
    for f in &req.params_files {
        params::merge(
            &mut params,
            params::load_params_file(&absolute(&req.cwd, f))?,
        );
    }
    for a in &req.params {
        let (path, value) = params::parse_assignment(a)?;
        params::set_path(&mut params, &path, value);
    }
    let mut all_metrics = req.metrics.clone().unwrap_or_default();
    for f in &req.metrics_files {
        all_metrics.merge(metrics::load_metrics_file(&absolute(&req.cwd, f))?);
    }
    let tags = parse_tags(&req.tags)?;
    if let Some(b) = &req.branch {
        refs::validate("branch", b)?;
    }
    let code_dir = req
        .code
        .as_ref()
        .map(|c| resolve_input(&req.cwd, c, "--code"))
        .transpose()?;
    let mut data_inputs = Vec::new();
    let mut seen_names: std::collections::HashSet<String> = req.data_refs.keys().cloned().collect();
    for (name, p) in &req.data {
        let abs = resolve_input(&req.cwd, p, "--data")?;
        let name = data_name(name, &abs)?;
        if !seen_names.insert(name.clone()) {
            return Err(Error::BadArgument {
                arg: format!("--data {}", p.display()),
                reason: format!("the name '{name}' is used twice; name them with NAME=PATH"),
            });
        }
        data_inputs.push((name, abs));
    }
    let artifact_inputs: Vec<PathBuf> = req
        .artifacts
        .iter()
        .map(|p| resolve_input(&req.cwd, p, "--artifact"))
        .collect::<Result<_>>()?;
    let mut named_inputs = Vec::new();
    for (rel, p) in &req.named_artifacts {
        walk::check_rel(rel, p)?;
        named_inputs.push((rel.clone(), resolve_input(&req.cwd, p, "--artifact")?));
    }

    // ---- store content (no lock held) -----------------------------------------------------
    let store = repo.store();
    let mut writer = store.writer();
    // Memory must not grow with the size of the data: index content as it is written.
    writer.index_early();
    let result = (|| -> Result<Prepared> {
        let mut ingest = Ingest::new(&mut writer, progress);
        let mut extra_blobs: Vec<Vec<u8>> = Vec::new();

        let code = match &code_dir {
            None => None,
            Some(dir) => Some(snapshot_code(
                repo,
                &mut ingest,
                dir,
                &[],
                &mut extra_blobs,
            )?),
        };
        let mut data = req.data_refs.clone();
        for (name, abs) in &data_inputs {
            let snap = snapshot_path(&mut ingest, repo.root(), abs)?;
            data.insert(
                name.clone(),
                DataRef {
                    kind: if snap.kind == EntryKind::Tree {
                        "tree"
                    } else {
                        "file"
                    }
                    .into(),
                    id: snap.id,
                    size: snap.size,
                    files: snap.files,
                    path: repo.relative(abs).map(|p| p.to_string_lossy().into_owned()),
                    executable: snap.kind == EntryKind::Executable,
                },
            );
        }
        let artifacts = if artifact_inputs.is_empty() && named_inputs.is_empty() {
            None
        } else {
            let snap = snapshot_artifacts(repo, &mut ingest, &artifact_inputs, &named_inputs)?;
            Some(ArtifactsRef {
                tree: snap.id,
                size: snap.size,
                files: snap.files,
            })
        };
        let mut metrics_out = BTreeMap::new();
        let mut series_blobs = Vec::new();
        for (name, series) in &all_metrics.series {
            let (summary, blob) = summarise(series);
            if let Some(b) = blob {
                series_blobs.push((name.clone(), b));
            }
            metrics_out.insert(name.clone(), summary);
        }
        let files_read = ingest.files_read;
        let stat_updates = ingest.take_stats();
        // Series and diff blobs.
        let names: Vec<String> = series_blobs.iter().map(|(n, _)| n.clone()).collect();
        let mut items: Vec<(Kind, Vec<u8>)> = series_blobs
            .into_iter()
            .map(|(_, b)| (Kind::Blob, b))
            .collect();
        let n_series = items.len();
        items.extend(extra_blobs.into_iter().map(|b| (Kind::Blob, b)));
        let ids = if items.is_empty() {
            Vec::new()
        } else {
            writer.put_batch(items, None)?
        };
        for (name, id) in names.iter().zip(&ids) {
            if let Some(m) = metrics_out.get_mut(name) {
                m.series = Some(*id);
            }
        }
        let code = code
            .map(|mut c: CodeState| {
                if let Some(g) = c.git.as_mut() {
                    if g.dirty {
                        g.diff = ids.get(n_series).copied();
                    }
                }
                c
            })
            .or_else(|| req.code_state.clone());
        let run = Run {
            format: RUN_FORMAT,
            parents: Vec::new(),
            branch: None,
            message: req.message.clone(),
            author: repo.author(),
            started_at,
            ended_at: started_at,
            host: host_name(),
            command: req.command.clone(),
            cwd: req
                .command
                .as_ref()
                .map(|_| req.cwd.to_string_lossy().into_owned()),
            status: req.status.clone().unwrap_or_default(),
            exit_code: req.exit_code,
            code,
            params,
            metrics: metrics_out,
            data,
            artifacts,
            tags,
            env: req.env.clone(),
            stale: req.stale.clone(),
        };
        Ok(Prepared {
            run,
            stat_updates,
            files_read,
        })
    })();
    let Prepared {
        mut run,
        stat_updates,
        files_read,
    } = result?;

    // ---- publish (short session) ----------------------------------------------------------
    let session = writer.publishing_session()?;
    let head = refs::head(&session)?;
    // `old` is what the branch ref holds now (for compare-and-swap); the parent is the branch
    // tip, or HEAD's run when committing onto a new branch.
    let (branch_ref, old, parent) = match (&req.branch, &head) {
        (Some(b), _) => {
            let full = format!("{BRANCH_PREFIX}{b}");
            let tip = refs::get_id(&session, &full)?;
            let parent = match (tip, &head) {
                (Some(t), _) => Some(t),
                (None, Head::Branch(h)) => refs::branch_tip(&session, h)?,
                (None, Head::Detached(id)) => Some(*id),
            };
            (Some(full), tip, parent)
        }
        (None, Head::Branch(b)) => {
            let full = format!("{BRANCH_PREFIX}{b}");
            let tip = refs::get_id(&session, &full)?;
            (Some(full), tip, tip)
        }
        (None, Head::Detached(id)) => (None, Some(*id), Some(*id)),
    };
    run.parents = match req.parent {
        Some(p) => std::iter::once(p)
            .chain(parent.filter(|t| *t != p))
            .collect(),
        None => parent.into_iter().collect(),
    };
    run.branch = branch_ref
        .as_deref()
        .map(|f| f.trim_start_matches(BRANCH_PREFIX).to_string());
    run.ended_at = req.ended_at.unwrap_or_else(now_ms).max(run.started_at);
    let id = (|| -> Result<ObjectId> {
        // Content stored earlier must still be there (a gc may have run since).
        let reused = req
            .code_state
            .iter()
            .map(|c| c.tree)
            .chain(req.data_refs.values().map(|d| d.id));
        for id in reused {
            if !session.contains(&id)? {
                return Err(crate::store::StoreError::Vanished(1).into());
            }
        }
        let id = writer.put(Kind::Run, run.encode(), Some(&session))?;
        let mut batch = Batch::default();
        writer.publish(&session, &mut batch)?;
        crate::snapshot::ingest::stage_stats(&mut batch, &stat_updates);
        batch.put_run(&id, run.started_at);
        batch.put_summary(&id, &crate::summary::encode(&id, &run));
        writer.apply(&session, batch)?;
        Ok(id)
    })()?;
    match &branch_ref {
        Some(full) => refs::update(&session, full, old, Some(id))?,
        None => session.ref_cas(
            refs::HEAD,
            old.map(RefValue::Id).as_ref(),
            Some(&RefValue::Id(id)),
        )?,
    }
    session.flush()?;
    Ok(CommitOutcome {
        id,
        run,
        files_read,
        new_objects: writer.new_objects(),
        stored_bytes: writer.stored_bytes(),
    })
}

/// Stores the code in `code` (relative to `cwd`) now and returns its state, for a commit made
/// later with [`CommitRequest::code_state`] (a wrapped command records the code it started
/// with). Outside git, paths under `exclude` (data, outputs) are left out of the snapshot.
/// The content is published at once; gc keeps it for its grace period even though no run refers
/// to it yet, and the later commit checks that it is still there.
pub fn store_code(
    repo: &Repo,
    cwd: &Path,
    code: &Path,
    exclude: &[PathBuf],
    progress: &dyn Progress,
) -> Result<CodeState> {
    let dir = resolve_input(cwd, code, "--code")?;
    let store = repo.store();
    let mut writer = store.writer();
    writer.index_early();
    use crate::snapshot::ingest::StatUpdates;
    let result = (|| -> Result<(CodeState, StatUpdates)> {
        let mut ingest = Ingest::new(&mut writer, progress);
        let mut extra_blobs = Vec::new();
        let mut state = snapshot_code(repo, &mut ingest, &dir, exclude, &mut extra_blobs)?;
        let stats = ingest.take_stats();
        if let Some(diff) = extra_blobs.pop() {
            let id = writer.put(Kind::Blob, diff, None)?;
            if let Some(g) = state.git.as_mut() {
                g.diff = Some(id);
            }
        }
        Ok((state, stats))
    })();
    let (state, stats) = result?;
    let session = writer.publishing_session()?;
    // Unchanged code (everything already stored, stat cache up to date): nothing to publish.
    if writer.new_objects() == 0 && stats.is_empty() && session.contains(&state.tree)? {
        return Ok(state);
    }
    let mut batch = Batch::default();
    writer.publish(&session, &mut batch)?;
    crate::snapshot::ingest::stage_stats(&mut batch, &stats);
    writer.apply(&session, batch)?;
    session.flush()?;
    Ok(state)
}

/// Snapshots a folder (a tree) or a single file or link.
fn snapshot_path(ingest: &mut Ingest<'_, '_>, top: &Path, abs: &Path) -> Result<Snapshot> {
    let (entries, _skipped) = walk::walk(abs, Some(top), false)?;
    let md = std::fs::metadata(abs).map_err(io_err(abs))?;
    if md.is_dir() {
        Ok(ingest.tree(entries)?)
    } else {
        let e = entries
            .into_iter()
            .next()
            .ok_or_else(|| Error::BadArgument {
                arg: abs.display().to_string(),
                reason: "cannot be snapshotted".into(),
            })?;
        Ok(ingest.single(e)?)
    }
}

/// Snapshots the code: git-tracked files under `dir`, or the whole folder outside git.
fn snapshot_code(
    repo: &Repo,
    ingest: &mut Ingest<'_, '_>,
    dir: &Path,
    exclude: &[PathBuf],
    extra_blobs: &mut Vec<Vec<u8>>,
) -> Result<CodeState> {
    let state = git::capture(dir)?;
    let (entries, git_info) = match state {
        Some(g) => {
            let base = dir
                .strip_prefix(&g.workdir)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            let rel: Vec<PathBuf> = g
                .tracked
                .iter()
                .filter_map(|p| p.strip_prefix(&base).ok().map(Path::to_path_buf))
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            let entries = walk::list_files(dir, &rel)?;
            if g.dirty {
                extra_blobs.push(g.diff.clone());
            }
            let info = GitInfo {
                commit: g.commit.clone(),
                branch: g.branch.clone(),
                remote_url: g.remote_url.clone(),
                dirty: g.dirty,
                diff: None,
            };
            (entries, Some(info))
        }
        None => {
            let (mut entries, _) = walk::walk(dir, Some(repo.root()), true)?;
            entries.retain(|e| !exclude.iter().any(|x| e.abs.starts_with(x)));
            (entries, None)
        }
    };
    let snap = if std::fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        ingest.tree(entries)?
    } else {
        // A single code file: store it as a tree holding that file.
        let name = dir.file_name().map(PathBuf::from).unwrap_or_default();
        let entries: Vec<WalkEntry> = walk::walk(dir, None, false)?
            .0
            .into_iter()
            .map(|mut e| {
                e.rel = name.clone();
                e
            })
            .collect();
        ingest.tree(entries)?
    };
    let path = if std::fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
        repo.relative(dir)
    } else {
        dir.parent().and_then(|p| repo.relative(p))
    }
    .map(|p| p.to_string_lossy().into_owned())
    .unwrap_or_else(|| "code".into());
    Ok(CodeState {
        git: git_info,
        tree: snap.id,
        size: snap.size,
        files: snap.files,
        path,
    })
}

/// Snapshots artifacts into one tree laid out by their paths relative to the root.
fn snapshot_artifacts(
    repo: &Repo,
    ingest: &mut Ingest<'_, '_>,
    inputs: &[PathBuf],
    named: &[(PathBuf, PathBuf)],
) -> Result<Snapshot> {
    let mut all: Vec<WalkEntry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut pairs: Vec<(PathBuf, PathBuf)> = named.to_vec();
    for abs in inputs {
        let rel = match repo.relative(abs) {
            Some(r) if r != Path::new(".") => r,
            Some(_) => PathBuf::new(),
            None => abs.file_name().map(PathBuf::from).unwrap_or_default(),
        };
        pairs.push((rel, abs.clone()));
    }
    for (rel, abs) in &pairs {
        let (entries, _) = walk::walk(abs, Some(repo.root()), false)?;
        let md = std::fs::metadata(abs).map_err(io_err(abs))?;
        if md.is_dir() && !rel.as_os_str().is_empty() {
            let mut root =
                walk::entry_from_metadata(rel.clone(), abs.clone(), &md).ok_or_else(|| {
                    Error::BadArgument {
                        arg: abs.display().to_string(),
                        reason: "cannot be snapshotted".into(),
                    }
                })?;
            root.kind = WalkKind::Dir;
            all.push(root);
        }
        for mut e in entries {
            e.rel = if e.rel.as_os_str().is_empty() {
                rel.clone()
            } else {
                rel.join(&e.rel)
            };
            walk::check_rel(&e.rel, &e.abs)?;
            if !seen.insert(e.rel.clone()) {
                if e.kind == WalkKind::Dir {
                    continue;
                }
                return Err(Error::BadArgument {
                    arg: format!("--artifact {}", abs.display()),
                    reason: format!("{} is given twice", e.rel.display()),
                });
            }
            all.push(e);
        }
    }
    Ok(ingest.tree(all)?)
}
