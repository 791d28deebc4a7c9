//! Wrapping a training command: run it, capture what it prints and measures, commit it once.
//!
//! [`execute`] stores the code as it is when the command starts, runs the command with its
//! output piped (and handed to a [`RunObserver`], which shows it live) and streamed into a log
//! file, forwards SIGINT, SIGTERM and SIGHUP to the command's process group, and when the command
//! ends commits one run whatever happened: `completed`, `failed` (non-zero exit) or `killed`
//! (interrupted, or ended by a signal), with the metrics the command appended to
//! `$CAIRN_METRICS`, the log as the artifact [`LOG_ARTIFACT`], and whatever outputs exist.
//!
//! While the command runs, `.cairn/runs/<id>/` holds an [`InProgress`] record (`run.json`), the
//! log, the live metrics file and the params file; `cairn status` and `cairn watch` read it. The
//! folder is removed once the run is committed, and kept (with the log and metrics) if the
//! commit fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::capture::{git, metrics, params};
use crate::commit::{self, CommitOutcome, CommitRequest};
use crate::error::{io_err, Error, Result};
use crate::object::RunStatus;
use crate::progress::Progress;
use crate::project::{CodeSetting, RunDefaults};
use crate::repo::{now_ms, Repo, DOT_DIR};
use crate::store::StoreError;

/// The folder under `.cairn/` holding runs in progress.
pub const RUNS_DIR: &str = "runs";

/// What a run in progress needs to be committed, in its folder.
const PLAN_FILE: &str = "plan.json";

/// The name of the captured output in a run's artifacts tree.
pub const LOG_ARTIFACT: &str = "cairn-run.log";

/// Environment variables recorded by default (`*` matches any text).
pub const DEFAULT_ENV: &[&str] = &[
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "CONDA_DEFAULT_ENV",
    "VIRTUAL_ENV",
    "HOSTNAME",
];

/// Parts of names whose values are never recorded, whatever the allow-list says.
const SECRET_WORDS: &[&str] = &["KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// Keys of [`crate::object::Run::env`] that describe how `cairn run` was set up (paths relative
/// to the repository root), used by `cairn reproduce`.
pub mod keys {
    /// The working folder.
    pub const CWD: &str = "cairn.cwd";
    /// Outputs, a JSON array of paths.
    pub const OUTPUTS: &str = "cairn.outputs";
    /// Metrics files, a JSON array of paths.
    pub const METRICS: &str = "cairn.metrics";
    /// Params files, a JSON array of paths.
    pub const PARAMS: &str = "cairn.params";
    /// The GPU model(s) reported by nvidia-smi.
    pub const GPU: &str = "gpu";
    /// The user who ran the command.
    pub const USER: &str = "user";
}

/// After the command exits, output still arriving is read for at most this long...
const DRAIN_MAX: Duration = Duration::from_secs(2);
/// ...and reading stops once nothing has arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// How long nvidia-smi may take.
const GPU_TIMEOUT: Duration = Duration::from_secs(3);
/// Interrupts forwarded before the command's process group is killed outright.
const INTERRUPTS_BEFORE_KILL: u32 = 3;

/// What to run and record.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// What to record. `command` is required and `cwd` is where it runs. `code` is stored when
    /// the command starts (unless `code_state` is given); `artifacts` are the outputs, stored
    /// when it ends (missing ones are skipped with a warning); `metrics_files` are read when it
    /// ends, leniently; `params_files`, `params_override` and `params` are merged in that order.
    pub request: CommitRequest,
    /// Environment variables to record besides [`DEFAULT_ENV`] (`*` matches any text).
    pub env_allow: Vec<String>,
    /// Variables set for the command (over cairn's own environment).
    pub child_env: Vec<(String, String)>,
    /// Params merged over the params files (those of a run being reproduced).
    pub params_override: Option<params::Params>,
    /// Paths recorded for reproduction (working folder, outputs, metrics and params files) are
    /// relative to this folder; the repository root when absent.
    pub path_root: Option<PathBuf>,
    /// A `--param` whose key is in no params file adds it (to the last file) instead of being
    /// an error.
    pub new_params: bool,
}

/// Receives what happens during a run; the command line shows it. All methods have empty
/// defaults.
pub trait RunObserver {
    /// The command was started.
    fn started(&mut self, _record: &InProgress) {}
    /// The command wrote to its stdout.
    fn stdout(&mut self, _bytes: &[u8]) {}
    /// The command wrote to its stderr.
    fn stderr(&mut self, _bytes: &[u8]) {}
    /// Something was skipped or could not be read; the run goes on.
    fn warning(&mut self, _message: &str) {}
    /// cairn received `signal`; `action` says what it did with it.
    fn signal(&mut self, _signal: i32, _action: &str) {}
    /// The command ended; the run is about to be committed.
    fn ended(&mut self, _status: &RunStatus, _exit_code: i32, _duration_ms: i64) {}
}

/// An observer that ignores everything.
pub struct Silent;

impl RunObserver for Silent {}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The commit.
    pub commit: CommitOutcome,
    /// What cairn should exit with: the command's exit code, `128 + N` when it was ended by
    /// signal N, or when cairn was interrupted and the command still exited with 0.
    pub exit_code: i32,
    /// Bytes of output captured.
    pub log_bytes: u64,
    /// Outputs the run did not write (they predate it), by their paths in the artifacts tree;
    /// they are not stored with the run.
    pub stale: Vec<String>,
}

/// The record of a run in progress, `.cairn/runs/<id>/run.json`.
/// Where a run in progress is, as its record says (stored under these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    /// cairn is preparing: snapshotting the code, writing the params files.
    #[serde(rename = "starting")]
    Starting,
    /// The command runs.
    #[serde(rename = "running")]
    Running,
    /// The command has ended; its run is being committed.
    #[serde(rename = "committing")]
    Committing,
    /// The commit failed; the record stays for `cairn run --salvage`.
    #[serde(rename = "failed to commit")]
    FailedToCommit,
}

impl RunState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Committing => "committing",
            RunState::FailedToCommit => "failed to commit",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InProgress {
    /// Its id (8 hex digits; not a run id, which only exists once committed).
    pub id: String,
    /// The cairn process.
    pub pid: u32,
    /// The command's process (and process group), once started.
    #[serde(default)]
    pub child_pid: Option<u32>,
    /// Where the run is.
    pub state: RunState,
    /// The command.
    pub command: Vec<String>,
    /// Where it runs.
    pub cwd: PathBuf,
    /// Start time, ms since the epoch.
    pub started_at: i64,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The branch it will be committed on (the current one when absent).
    #[serde(default)]
    pub branch: Option<String>,
    /// The live metrics file (`$CAIRN_METRICS`).
    pub metrics: PathBuf,
    /// The captured output.
    pub log: PathBuf,
    /// The merged params (`$CAIRN_PARAMS`).
    pub params: PathBuf,
}

/// A run in progress found on disk.
#[derive(Debug, Clone)]
pub struct LiveRun {
    /// Its record.
    pub record: InProgress,
    /// Its folder.
    pub dir: PathBuf,
    /// Whether the cairn process that runs it is still alive (false: it was killed before it
    /// could commit; the folder keeps the log and metrics).
    pub alive: bool,
}

/// `.cairn/runs`.
pub fn runs_dir(repo: &Repo) -> PathBuf {
    repo.root().join(DOT_DIR).join(RUNS_DIR)
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Every run in progress (and every abandoned one), oldest first.
pub fn list_in_progress(repo: &Repo) -> Result<Vec<LiveRun>> {
    let dir = runs_dir(repo);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let path = ent.path().join("run.json");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<InProgress>(&bytes) else {
            continue;
        };
        let alive = process_alive(record.pid);
        out.push(LiveRun {
            record,
            dir: ent.path(),
            alive,
        });
    }
    out.sort_by(|a, b| {
        (a.record.started_at, &a.record.id).cmp(&(b.record.started_at, &b.record.id))
    });
    Ok(out)
}

/// The run in progress whose id starts with `spec`, or the only (else the newest) live one.
pub fn find_in_progress(repo: &Repo, spec: Option<&str>) -> Result<Option<LiveRun>> {
    let all = list_in_progress(repo)?;
    match spec {
        Some(s) => {
            let found: Vec<LiveRun> = all
                .into_iter()
                .filter(|r| r.record.id.starts_with(s))
                .collect();
            if found.len() > 1 {
                return Err(Error::AmbiguousRevision {
                    rev: s.to_string(),
                    candidates: found.iter().map(|r| r.record.id.clone()).collect(),
                });
            }
            Ok(found.into_iter().next())
        }
        None => Ok(all.iter().rev().find(|r| r.alive).or(all.last()).cloned()),
    }
}

/// The run committed from the run in progress `record` (same command and start time), found
/// near the tips of the branches (HEAD's included); `None` when it was not committed.
pub fn committed_from(
    repo: &Repo,
    record: &InProgress,
) -> Result<Option<(crate::hash::ObjectId, String)>> {
    let session = repo.store().session()?;
    let mut tips: Vec<crate::hash::ObjectId> = crate::refs::branches(&session)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    if let crate::refs::Head::Detached(id) = crate::refs::head(&session)? {
        tips.push(id);
    }
    for tip in tips {
        let mut cur = Some(tip);
        // Runs committed since on the same branch are few; stop at older ones.
        for _ in 0..64 {
            let Some(id) = cur else { break };
            let run = session.read_run(&id)?;
            if run.started_at == record.started_at
                && run.command.as_deref() == Some(record.command.as_slice())
            {
                let branch = run.branch.clone().unwrap_or_default();
                return Ok(Some((id, branch)));
            }
            if run.started_at < record.started_at {
                break;
            }
            cur = run.parents.first().copied();
        }
    }
    Ok(None)
}

/// Reads a live metrics file (JSON Lines), keeping every good line.
pub fn read_live_metrics(path: &Path) -> (metrics::Metrics, Vec<metrics::MetricsError>) {
    match std::fs::File::open(path) {
        Ok(f) => {
            metrics::parse_jsonl_lenient(std::io::BufReader::new(f), Path::new("CAIRN_METRICS"))
        }
        Err(_) => (metrics::Metrics::default(), Vec::new()),
    }
}

/// The last non-empty line of a log, read from its last few KiB.
pub fn last_log_line(path: &Path) -> Option<String> {
    use std::io::Seek;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(4096);
    f.seek(std::io::SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split(['\n', '\r'])
        .map(str::trim_end)
        .rfind(|l| !l.trim().is_empty())
        .map(str::to_string)
}

// ---- environment -----------------------------------------------------------------------------

/// Whether `pattern` (`*` matches any text) matches `name`.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a variable's name looks like it holds a secret (its value is never recorded).
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// The variables of `vars` that [`DEFAULT_ENV`] or `extra` allow, secrets excepted.
pub fn select_env(
    vars: impl IntoIterator<Item = (String, String)>,
    extra: &[String],
) -> BTreeMap<String, String> {
    let patterns: Vec<&str> = DEFAULT_ENV
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    vars.into_iter()
        .filter(|(k, _)| !is_secret(k) && patterns.iter().any(|p| glob_match(p, k)))
        .collect()
}

/// The environment the command gets: cairn's own with `child_env` on top.
fn child_vars(child_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .collect();
    for (k, v) in child_env {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter().collect()
}

/// The login name of the user running cairn.
pub fn user_name() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    // SAFETY: getuid cannot fail.
    format!("uid {}", unsafe { libc::getuid() })
}

fn find_on_path(exe: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
}

/// The GPU model(s) nvidia-smi reports (`NVIDIA A100 x2`), when it is installed and answers
/// within `timeout`.
pub fn gpu_model(timeout: Duration) -> Option<String> {
    let exe = find_on_path("nvidia-smi")?;
    let mut child = std::process::Command::new(exe)
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    if !status.success() {
        return None;
    }
    let mut out = String::new();
    child.stdout.take()?.read_to_string(&mut out).ok()?;
    let names: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let first = *names.first()?;
    if names.iter().all(|n| *n == first) {
        Some(if names.len() > 1 {
            format!("{first} x{}", names.len())
        } else {
            first.to_string()
        })
    } else {
        Some(names.join(", "))
    }
}

// ---- options -----------------------------------------------------------------------------------

/// Run options from the project file's `[run]` defaults (paths relative to the repository
/// root). The code folder is the repository root unless the project says otherwise.
pub fn options_from_project(repo: &Repo, defaults: &RunDefaults) -> RunOptions {
    let root = repo.root();
    let code = match &defaults.code {
        None | Some(CodeSetting::Enabled(true)) => Some(root.to_path_buf()),
        Some(CodeSetting::Enabled(false)) => None,
        Some(CodeSetting::Path(p)) => Some(root.join(p)),
    };
    let request = CommitRequest {
        cwd: root.to_path_buf(),
        code,
        params_files: defaults.params.iter().map(|p| root.join(p)).collect(),
        metrics_files: defaults.metrics.iter().map(|p| root.join(p)).collect(),
        data: defaults
            .data
            .iter()
            .map(|(n, p)| (Some(n.clone()), root.join(p)))
            .collect(),
        artifacts: defaults.outputs.iter().map(|p| root.join(p)).collect(),
        tags: defaults
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        branch: defaults.branch.clone(),
        ..Default::default()
    };
    RunOptions {
        request,
        env_allow: defaults.env.clone(),
        ..Default::default()
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// A path as recorded: relative to `root` when inside it (`.` for `root` itself).
fn recorded_path(root: &Path, abs: &Path) -> String {
    let clean = clean_path(abs);
    match clean.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => clean.to_string_lossy().into_owned(),
    }
}

/// Removes `.` and resolves `..` lexically.
fn clean_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The merged params: files, then `params_override`, then `KEY=VALUE` assignments.
pub fn merged_params(opts: &RunOptions) -> Result<params::Params> {
    let req = &opts.request;
    let mut merged = params::Params::new();
    for f in &req.params_files {
        params::merge(
            &mut merged,
            params::load_params_file(&absolute(&req.cwd, f))?,
        );
    }
    if let Some(o) = &opts.params_override {
        params::merge(&mut merged, o.clone());
    }
    for a in &req.params {
        let (path, value) = params::parse_assignment(a)?;
        params::set_path(&mut merged, &path, value);
    }
    Ok(merged)
}

// ---- preview (what the next run would record) ---------------------------------------------------

/// A path and whether it exists now.
#[derive(Debug, Clone, Serialize)]
pub struct PathState {
    /// The path, relative to the repository root when inside it.
    pub path: String,
    /// Whether it exists.
    pub exists: bool,
}

/// The code part of a preview.
#[derive(Debug, Clone, Serialize)]
pub struct CodePreview {
    /// The folder.
    pub path: String,
    /// HEAD commit, when in git.
    pub commit: Option<String>,
    /// Git branch.
    pub branch: Option<String>,
    /// Whether tracked files have uncommitted changes.
    pub dirty: bool,
    /// Number of changed tracked files.
    pub changed_files: usize,
    /// Whether the folder is in a git repository.
    pub git: bool,
}

/// What a run started now would record.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The code, when snapshotted.
    pub code: Option<CodePreview>,
    /// Params files.
    pub params_files: Vec<PathState>,
    /// The merged params, or why they cannot be read.
    pub params: std::result::Result<params::Params, String>,
    /// Data inputs by name.
    pub data: BTreeMap<String, PathState>,
    /// Metrics files.
    pub metrics_files: Vec<PathState>,
    /// Outputs.
    pub outputs: Vec<PathState>,
    /// Environment variables that would be recorded.
    pub env: BTreeMap<String, String>,
    /// The branch the run would be committed on (None: detached HEAD).
    pub branch: Option<String>,
}

/// Describes what a run with `opts` would record, without storing anything.
pub fn preview(repo: &Repo, opts: &RunOptions) -> Result<Preview> {
    let req = &opts.request;
    let state = |p: &Path| {
        let abs = absolute(&req.cwd, p);
        PathState {
            path: recorded_path(repo.root(), &abs),
            exists: std::fs::symlink_metadata(&abs).is_ok(),
        }
    };
    let code = match &req.code {
        None => None,
        Some(c) => {
            let abs = absolute(&req.cwd, c);
            let g = if abs.exists() {
                git::capture(&abs)?
            } else {
                None
            };
            let changed = g.as_ref().map_or(0, |g| {
                g.diff
                    .split(|b| *b == b'\n')
                    .filter(|l| l.starts_with(b"diff --git "))
                    .count()
            });
            Some(CodePreview {
                path: recorded_path(repo.root(), &abs),
                commit: g.as_ref().and_then(|g| g.commit.clone()),
                branch: g.as_ref().and_then(|g| g.branch.clone()),
                dirty: g.as_ref().is_some_and(|g| g.dirty),
                changed_files: changed,
                git: g.is_some(),
            })
        }
    };
    let mut data = BTreeMap::new();
    for (name, p) in &req.data {
        let n = name.clone().unwrap_or_else(|| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into())
        });
        data.insert(n, state(p));
    }
    let branch = match &req.branch {
        Some(b) => Some(b.clone()),
        None => {
            let s = repo.store().session()?;
            match crate::refs::head(&s)? {
                crate::refs::Head::Branch(b) => Some(b),
                crate::refs::Head::Detached(_) => None,
            }
        }
    };
    Ok(Preview {
        code,
        params_files: req.params_files.iter().map(|p| state(p)).collect(),
        params: merged_params(opts).map_err(|e| e.to_string()),
        data,
        metrics_files: req.metrics_files.iter().map(|p| state(p)).collect(),
        outputs: req.artifacts.iter().map(|p| state(p)).collect(),
        env: select_env(child_vars(&opts.child_env), &opts.env_allow),
        branch,
    })
}

// ---- signals ------------------------------------------------------------------------------------

mod signals {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

    static PIPE_W: AtomicI32 = AtomicI32::new(-1);
    static PENDING: AtomicU32 = AtomicU32::new(0);
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn errno_ptr() -> *mut libc::c_int {
        // SAFETY: returns the calling thread's errno location.
        unsafe { libc::__errno_location() }
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    fn errno_ptr() -> *mut libc::c_int {
        // SAFETY: returns the calling thread's errno location.
        unsafe { libc::__error() }
    }

    extern "C" fn on_signal(sig: libc::c_int) {
        // Only async-signal-safe work: an atomic update and a write(2); errno is preserved.
        let errno = errno_ptr();
        // SAFETY: errno_ptr points at this thread's errno.
        let saved = unsafe { *errno };
        if (0..32).contains(&sig) {
            PENDING.fetch_or(1 << sig, Ordering::SeqCst);
        }
        let fd = PIPE_W.load(Ordering::SeqCst);
        if fd >= 0 {
            let b = sig as u8;
            // SAFETY: writing one byte from a valid local to a non-blocking pipe.
            unsafe {
                libc::write(fd, (&b as *const u8).cast(), 1);
            }
        }
        // SAFETY: as above.
        unsafe { *errno = saved };
    }

    /// Handlers installed for the life of the guard; the previous ones are restored on drop.
    pub struct Guard {
        read: OwnedFd,
        _write: OwnedFd,
        old: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl Guard {
        /// Installs handlers for `handled`, and ignores SIGPIPE (a reader of cairn's output
        /// going away must not kill it before the run is committed).
        pub fn install(handled: &[libc::c_int]) -> std::io::Result<Guard> {
            if ACTIVE.swap(true, Ordering::SeqCst) {
                return Err(std::io::Error::other(
                    "a run is already in progress in this process",
                ));
            }
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: pipe fills the two descriptors on success.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                ACTIVE.store(false, Ordering::SeqCst);
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: both descriptors were just created and are owned here.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            for fd in [read.as_raw_fd(), write.as_raw_fd()] {
                super::set_flags(fd)?;
            }
            PENDING.store(0, Ordering::SeqCst);
            PIPE_W.store(write.as_raw_fd(), Ordering::SeqCst);
            let mut guard = Guard {
                read,
                _write: write,
                old: Vec::new(),
            };
            for &sig in handled {
                let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                guard.set(sig, handler)?;
            }
            guard.set(libc::SIGPIPE, libc::SIG_IGN)?;
            Ok(guard)
        }

        fn set(&mut self, sig: libc::c_int, handler: libc::sighandler_t) -> std::io::Result<()> {
            // SAFETY: a zeroed sigaction is a valid starting point; every field used is set.
            unsafe {
                // A signal ignored when cairn started (`nohup`, a background job of a script)
                // stays ignored, for cairn and for the command, as shells do.
                let mut current: libc::sigaction = std::mem::zeroed();
                if sig != libc::SIGCHLD
                    && sig != libc::SIGPIPE
                    && libc::sigaction(sig, std::ptr::null(), &mut current) == 0
                    && current.sa_sigaction == libc::SIG_IGN
                {
                    return Ok(());
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = handler;
                sa.sa_flags = libc::SA_RESTART
                    | if sig == libc::SIGCHLD {
                        libc::SA_NOCLDSTOP
                    } else {
                        0
                    };
                libc::sigemptyset(&mut sa.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut old) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                self.old.push((sig, old));
            }
            Ok(())
        }

        /// The descriptor that becomes readable when a signal arrives.
        pub fn fd(&self) -> RawFd {
            self.read.as_raw_fd()
        }

        /// Empties the pipe and returns the signals received since the last call (a bit each).
        pub fn take(&self) -> u32 {
            let mut buf = [0u8; 64];
            // SAFETY: reading into a local buffer from our own non-blocking pipe.
            while unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            PENDING.swap(0, Ordering::SeqCst)
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            for (sig, old) in self.old.drain(..).rev() {
                // SAFETY: restoring the action saved when installing.
                unsafe {
                    libc::sigaction(sig, &old, std::ptr::null_mut());
                }
            }
            PIPE_W.store(-1, Ordering::SeqCst);
            ACTIVE.store(false, Ordering::SeqCst);
        }
    }
}

/// Makes a descriptor non-blocking and close-on-exec.
fn set_flags(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd_flags = libc::fcntl(fd, libc::F_GETFD);
        if fd_flags < 0 || libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The name of a signal, for messages.
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        n => format!("signal {n}"),
    }
}

// ---- running ------------------------------------------------------------------------------------

/// The in-progress folder; removed on drop unless kept.
struct Workdir {
    dir: PathBuf,
    record: InProgress,
    keep: bool,
}

impl Workdir {
    fn create(repo: &Repo, req: &CommitRequest, command: &[String]) -> Result<Workdir> {
        let base = runs_dir(repo);
        std::fs::create_dir_all(&base).map_err(io_err(&base))?;
        let started_at = now_ms();
        let mut attempt = 0u32;
        loop {
            let seed = format!(
                "{}:{}:{:?}:{attempt}",
                std::process::id(),
                started_at,
                Instant::now()
            );
            let id = blake3::hash(seed.as_bytes()).to_hex()[..8].to_string();
            let dir = base.join(&id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let record = InProgress {
                        id,
                        pid: std::process::id(),
                        child_pid: None,
                        state: RunState::Starting,
                        command: command.to_vec(),
                        cwd: req.cwd.clone(),
                        started_at,
                        message: req.message.clone(),
                        branch: req.branch.clone(),
                        metrics: dir.join("metrics.jsonl"),
                        log: dir.join("output.log"),
                        params: dir.join("params.json"),
                    };
                    let w = Workdir {
                        dir,
                        record,
                        keep: false,
                    };
                    w.save()?;
                    return Ok(w);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err(&dir)(e)),
            }
        }
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join("run.json");
        let tmp = self.dir.join("run.json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.record).unwrap_or_default();
        crate::fault::check("run.write").map_err(io_err(&tmp))?;
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    fn save_plan(&self, plan: &Plan) -> Result<()> {
        let path = self.dir.join(PLAN_FILE);
        let bytes = serde_json::to_vec_pretty(plan).unwrap_or_default();
        std::fs::write(&path, bytes).map_err(io_err(&path))
    }

    fn set_state(&mut self, state: RunState) {
        self.record.state = state;
        let _ = self.save();
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// How the command ended.
struct Ended {
    status: RunStatus,
    /// Recorded: the exit code, or 128 + N when ended by signal N.
    code: i32,
    /// What cairn exits with.
    exit: i32,
    ended_at: i64,
    log_bytes: u64,
}

/// Checks every input that can be checked before the command runs.
fn check_inputs(opts: &RunOptions) -> Result<()> {
    let req = &opts.request;
    for t in &req.tags {
        match t.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() => {}
            _ => {
                return Err(Error::BadArgument {
                    arg: format!("--tag {t}"),
                    reason: "expected KEY=VALUE".into(),
                })
            }
        }
    }
    if let Some(b) = &req.branch {
        crate::refs::validate("branch", b)?;
    }
    for (_, p) in &req.data {
        let abs = absolute(&req.cwd, p);
        if std::fs::symlink_metadata(&abs).is_err() {
            return Err(Error::BadArgument {
                arg: format!("--data {}", p.display()),
                reason: "no such file or folder".into(),
            });
        }
    }
    Ok(())
}

/// What the commit of a run needs besides what the command produced, saved as
/// `.cairn/runs/<id>/plan.json` before the command starts so that an abandoned run can still
/// be committed ([`salvage`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    cwd: PathBuf,
    message: String,
    command: Vec<String>,
    data: Vec<(Option<String>, PathBuf)>,
    data_refs: BTreeMap<String, crate::object::DataRef>,
    tags: Vec<String>,
    branch: Option<String>,
    parent: Option<crate::hash::ObjectId>,
    code_state: Option<crate::object::CodeState>,
    /// Recorded environment (without the GPU, found while the command runs).
    env: BTreeMap<String, String>,
    /// Outputs: as given (for messages) and absolute.
    outputs: Vec<(PathBuf, PathBuf)>,
    /// Outputs stored under a given path of the artifacts tree: (path in the tree, as given,
    /// absolute).
    named: Vec<(PathBuf, PathBuf, PathBuf)>,
    /// Metrics files: as given and absolute.
    metrics_files: Vec<(PathBuf, PathBuf)>,
    /// The files of the outputs as they were before the command started, by absolute path.
    before: BTreeMap<String, Stamp>,
    /// Params files holding overridden values while the command runs: (the file, the copy of
    /// the user's original in the run's folder).
    #[serde(default)]
    originals: Vec<(PathBuf, PathBuf)>,
}

/// What identifies a version of a file: when it is rewritten, replaced or touched, one of
/// these changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

/// The files (and links) of `outputs` now, by absolute path.
fn stamp_outputs(root: &Path, outputs: &[PathBuf]) -> BTreeMap<String, Stamp> {
    let mut out = BTreeMap::new();
    for abs in outputs {
        let Ok((entries, _)) = crate::snapshot::walk::walk(abs, Some(root), false) else {
            continue;
        };
        for e in entries {
            if e.kind == crate::snapshot::walk::WalkKind::Dir {
                continue;
            }
            out.insert(
                e.abs.to_string_lossy().into_owned(),
                Stamp {
                    ino: e.ino,
                    size: e.size,
                    mtime_ns: e.mtime_ns,
                    ctime_ns: e.ctime_ns,
                },
            );
        }
    }
    out
}

/// An output that the run did not write, left out of its artifacts.
struct StaleFile {
    /// Its path in the artifacts tree.
    rel: PathBuf,
    /// Its modification time, ms since the epoch.
    modified_at: i64,
}

/// Splits outputs `(path in the artifacts tree, absolute path)` into what the run wrote and
/// what it left untouched. An output file written since the start is kept whole; a folder
/// whose files are all new is kept whole; from a folder holding both, only the new files are
/// kept. Returns the indices of the outputs kept whole, the new files of the others (path in
/// the tree, absolute path) and the stale files.
#[allow(clippy::type_complexity)]
fn fresh_outputs(
    repo: &Repo,
    outputs: &[(PathBuf, PathBuf)],
    before: &BTreeMap<String, Stamp>,
) -> (Vec<usize>, Vec<(PathBuf, PathBuf)>, Vec<StaleFile>) {
    let mut whole = Vec::new();
    let mut files = Vec::new();
    let mut stale = Vec::new();
    for (i, (base, abs)) in outputs.iter().enumerate() {
        let Ok((entries, _)) = crate::snapshot::walk::walk(abs, Some(repo.root()), false) else {
            whole.push(i);
            continue;
        };
        let mut new = Vec::new();
        let mut old = Vec::new();
        for e in entries {
            if e.kind == crate::snapshot::walk::WalkKind::Dir {
                continue;
            }
            let now = Stamp {
                ino: e.ino,
                size: e.size,
                mtime_ns: e.mtime_ns,
                ctime_ns: e.ctime_ns,
            };
            let rel = if e.rel.as_os_str().is_empty() {
                base.clone()
            } else {
                base.join(&e.rel)
            };
            if before.get(e.abs.to_string_lossy().as_ref()) == Some(&now) {
                old.push(StaleFile {
                    rel,
                    modified_at: e.mtime_ns.div_euclid(1_000_000),
                });
            } else {
                new.push((rel, e.abs));
            }
        }
        if old.is_empty() {
            whole.push(i);
        } else {
            files.extend(new);
            stale.extend(old);
        }
    }
    (whole, files, stale)
}

/// Where an output goes in the artifacts tree: its path relative to the repository root, or
/// its name when outside.
fn tree_path(repo: &Repo, abs: &Path) -> PathBuf {
    match repo.relative(abs) {
        Some(r) if r != Path::new(".") => r,
        Some(_) => PathBuf::new(),
        None => abs.file_name().map(PathBuf::from).unwrap_or_default(),
    }
}

/// Puts the user's params files back as they were, byte for byte, and removes the copies.
/// Returns the files that could not be restored, with why.
fn restore_originals(originals: &[(PathBuf, PathBuf)]) -> Vec<(PathBuf, String)> {
    let mut failed = Vec::new();
    for (file, copy) in originals {
        let bytes = match std::fs::read(copy) {
            Ok(b) => b,
            // Already restored.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                failed.push((file.clone(), e.to_string()));
                continue;
            }
        };
        match std::fs::write(file, &bytes) {
            Ok(()) => {
                let _ = std::fs::remove_file(copy);
            }
            Err(e) => failed.push((file.clone(), e.to_string())),
        }
    }
    failed
}

/// Restores the params files when dropped (the command could not start, cairn failed).
struct Originals<'a> {
    list: &'a [(PathBuf, PathBuf)],
    warnings: Vec<String>,
}

impl Originals<'_> {
    fn restore(&mut self) {
        for (f, e) in restore_originals(self.list) {
            self.warnings.push(format!(
                "cannot restore params file {}: {e}; the original is kept in the run's folder",
                f.display()
            ));
        }
    }
}

impl Drop for Originals<'_> {
    fn drop(&mut self) {
        let _ = restore_originals(self.list);
    }
}

/// The overridden params files: for each file, its new content. Every `--param` goes to the
/// last params file that holds its key (the value the command reads, as files are merged in
/// order); a key in no file is an error unless `new_params` is set, when it goes to the last
/// file. Without params files nothing is written (the command reads `$CAIRN_PARAMS`).
fn params_edits(opts: &RunOptions) -> Result<Vec<(PathBuf, Vec<u8>, bool)>> {
    let req = &opts.request;
    if req.params_files.is_empty() || req.params.is_empty() {
        return Ok(Vec::new());
    }
    let files: Vec<PathBuf> = req
        .params_files
        .iter()
        .map(|p| absolute(&req.cwd, p))
        .collect();
    let mut loaded = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|source| params::ParamsError::Io {
            path: f.clone(),
            source,
        })?;
        let format = params::ParamsFormat::from_path(f)
            .ok_or_else(|| params::ParamsError::UnknownFormat { path: f.clone() })?;
        let values = params::parse_params(&bytes, format, f)?;
        loaded.push((bytes, format, values));
    }
    let mut sets: Vec<Vec<(Vec<String>, serde_json::Value)>> = vec![Vec::new(); files.len()];
    for a in &req.params {
        let (path, value) = params::parse_assignment(a)?;
        let holder = loaded
            .iter()
            .rposition(|(_, _, v)| params::get_path(v, &path).is_some());
        let target = match holder {
            Some(i) => i,
            None if opts.new_params => files.len() - 1,
            None => {
                return Err(Error::BadArgument {
                    arg: format!("--param {a}"),
                    reason: format!(
                        "'{}' is in none of the params files ({}); pass --new-param to add it",
                        path.join("."),
                        req.params_files
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        };
        sets[target].push((path, value));
    }
    let mut out = Vec::new();
    for ((f, (bytes, format, _)), s) in files.iter().zip(&loaded).zip(&sets) {
        if s.is_empty() {
            continue;
        }
        let r = params::rewrite_params(bytes, *format, f, s)?;
        if r.bytes != *bytes {
            out.push((f.clone(), r.bytes, r.in_place));
        }
    }
    Ok(out)
}

/// Runs the command and commits it. See the module docs.
pub fn execute(
    repo: &Repo,
    opts: &RunOptions,
    observer: &mut dyn RunObserver,
    progress: &dyn Progress,
) -> Result<RunOutcome> {
    let req = &opts.request;
    let command = match &req.command {
        Some(c) if !c.is_empty() => c.clone(),
        _ => {
            return Err(Error::BadArgument {
                arg: "COMMAND".into(),
                reason: "no command to run".into(),
            })
        }
    };
    let guard =
        signals::Guard::install(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD])
            .map_err(|e| Error::Refused(format!("cannot handle signals: {e}")))?;
    check_inputs(opts)?;
    let merged = merged_params(opts)?;
    let edits = params_edits(opts)?;
    if !edits.is_empty() {
        // Another run's override would be taken for the user's file, and put back for good.
        for other in list_in_progress(repo)? {
            let held = overridden_params(&other);
            if let Some((f, _, _)) = edits.iter().find(|(f, _, _)| held.contains(f)) {
                let what = if other.alive {
                    "wait for it to end".to_string()
                } else {
                    format!(
                        "commit it with `cairn run --salvage {}` or discard it with `cairn \
                         status --clean`, which put the file back",
                        other.record.id
                    )
                };
                return Err(Error::Refused(format!(
                    "{} holds the --param values of run {} ({}); {what}",
                    f.display(),
                    other.record.id,
                    if other.alive {
                        "in progress"
                    } else {
                        "abandoned"
                    },
                )));
            }
        }
    }
    let mut work = Workdir::create(repo, req, &command)?;
    let params_path = work.record.params.clone();
    let text = serde_json::to_vec_pretty(&serde_json::Value::Object(merged)).unwrap_or_default();
    std::fs::write(&params_path, text).map_err(io_err(&params_path))?;
    std::fs::write(&work.record.metrics, b"").map_err(io_err(&work.record.metrics))?;

    // The code as it is now, before the command can change it.
    let outputs_abs: Vec<PathBuf> = req
        .artifacts
        .iter()
        .map(|p| clean_path(&absolute(&req.cwd, p)))
        .collect();
    let metrics_abs: Vec<PathBuf> = req
        .metrics_files
        .iter()
        .map(|p| clean_path(&absolute(&req.cwd, p)))
        .collect();
    let code_state = match (&req.code_state, &req.code) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(code)) => {
            let mut exclude: Vec<PathBuf> = req
                .data
                .iter()
                .map(|(_, p)| clean_path(&absolute(&req.cwd, p)))
                .collect();
            exclude.extend(outputs_abs.iter().cloned());
            exclude.extend(metrics_abs.iter().cloned());
            Some(commit::store_code(
                repo, &req.cwd, code, &exclude, progress,
            )?)
        }
        (None, None) => None,
    };
    if guard.take() & interrupt_mask() != 0 {
        return Err(Error::Refused(
            "interrupted before the command started; nothing was run".into(),
        ));
    }

    let vars = child_vars(&opts.child_env);
    let mut env = select_env(vars.iter().cloned(), &opts.env_allow);
    let gpu = std::thread::spawn(|| gpu_model(GPU_TIMEOUT));
    env.insert(keys::USER.into(), user_name());
    let root = opts.path_root.as_deref().unwrap_or(repo.root());
    env.insert(keys::CWD.into(), recorded_path(root, &req.cwd));
    let list = |paths: &[PathBuf]| {
        serde_json::to_string(
            &paths
                .iter()
                .map(|p| recorded_path(root, p))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
    };
    let named: Vec<(PathBuf, PathBuf, PathBuf)> = req
        .named_artifacts
        .iter()
        .map(|(rel, p)| (rel.clone(), p.clone(), clean_path(&absolute(&req.cwd, p))))
        .collect();
    let all_outputs: Vec<PathBuf> = outputs_abs
        .iter()
        .cloned()
        .chain(named.iter().map(|(_, _, abs)| abs.clone()))
        .collect();
    if !all_outputs.is_empty() {
        env.insert(keys::OUTPUTS.into(), list(&all_outputs));
    }
    if !metrics_abs.is_empty() {
        env.insert(keys::METRICS.into(), list(&metrics_abs));
    }
    if !req.params_files.is_empty() {
        let files: Vec<PathBuf> = req
            .params_files
            .iter()
            .map(|p| absolute(&req.cwd, p))
            .collect();
        env.insert(keys::PARAMS.into(), list(&files));
    }
    let mut plan = Plan {
        cwd: req.cwd.clone(),
        message: req.message.clone(),
        command: command.clone(),
        data: req.data.clone(),
        data_refs: req.data_refs.clone(),
        tags: req.tags.clone(),
        branch: req.branch.clone(),
        parent: req.parent,
        code_state,
        env,
        outputs: req.artifacts.iter().cloned().zip(outputs_abs).collect(),
        named,
        metrics_files: req.metrics_files.iter().cloned().zip(metrics_abs).collect(),
        before: stamp_outputs(repo.root(), &all_outputs),
        originals: Vec::new(),
    };
    // The user's params files are kept in the run's folder before they are overridden, so
    // that they can be put back even if cairn is killed.
    for (i, (file, _, _)) in edits.iter().enumerate() {
        let copy = work.dir.join(format!("original-params-{i}"));
        std::fs::copy(file, &copy).map_err(io_err(file))?;
        plan.originals.push((file.clone(), copy));
    }
    work.save_plan(&plan)?;
    let originals = plan.originals.clone();
    let mut restore = Originals {
        list: &originals,
        warnings: Vec::new(),
    };
    for (file, bytes, in_place) in &edits {
        std::fs::write(file, bytes).map_err(io_err(file))?;
        if !in_place {
            observer.warning(&format!(
                "{} was rewritten from its values for this run (its comments are not in the \
                 command's copy; the original is put back when the command ends)",
                recorded_path(repo.root(), file)
            ));
        }
    }

    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .current_dir(&req.cwd)
        .stdin(stdin_for_child())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    cmd.envs(opts.child_env.iter().map(|(k, v)| (k, v)))
        .env("CAIRN_METRICS", &work.record.metrics)
        .env("CAIRN_PARAMS", &params_path)
        .env("CAIRN_RUN_ID", &work.record.id);
    let log = std::fs::File::create(&work.record.log).map_err(io_err(&work.record.log))?;
    let started_at = now_ms();
    let mut child = cmd.spawn().map_err(|e| Error::BadArgument {
        arg: command[0].clone(),
        reason: format!("cannot run: {e}"),
    })?;
    // From now on the folder holds what the run produced: it is removed only once committed.
    work.keep = true;
    work.record.child_pid = Some(child.id());
    work.record.started_at = started_at;
    work.set_state(RunState::Running);
    observer.started(&work.record);

    let ended = supervise(&mut child, &guard, log, &work.record.log, observer);
    restore.restore();
    for m in std::mem::take(&mut restore.warnings) {
        observer.warning(&m);
    }
    let ended = ended?;
    observer.ended(&ended.status, ended.code, ended.ended_at - started_at);
    work.set_state(RunState::Committing);
    if let Ok(Some(g)) = gpu.join() {
        plan.env.insert(keys::GPU.into(), g);
    }
    let finished = Finished {
        status: ended.status.clone(),
        exit_code: Some(ended.code),
        started_at,
        ended_at: ended.ended_at,
    };
    match finish(repo, &work, &plan, &finished, observer, progress) {
        Ok((commit, stale)) => {
            work.keep = false;
            Ok(RunOutcome {
                commit,
                exit_code: ended.exit,
                log_bytes: ended.log_bytes,
                stale,
            })
        }
        Err(e) => {
            work.set_state(RunState::FailedToCommit);
            Err(Error::Refused(format!(
                "the run could not be committed: {e}; its output and metrics are kept in {}",
                work.dir.display()
            )))
        }
    }
}

/// How a run ended, for [`finish`].
struct Finished {
    status: RunStatus,
    exit_code: Option<i32>,
    started_at: i64,
    ended_at: i64,
}

/// Commits what the run produced: its live metrics and metrics files, its log and the outputs
/// it wrote (outputs it did not write are left out, and listed). Returns the commit and the
/// paths of the outputs left out.
fn finish(
    repo: &Repo,
    work: &Workdir,
    plan: &Plan,
    ended: &Finished,
    observer: &mut dyn RunObserver,
    progress: &dyn Progress,
) -> Result<(CommitOutcome, Vec<String>)> {
    let (mut live, errors) = read_live_metrics(&work.record.metrics);
    for e in errors {
        observer.warning(&format!("bad metrics line skipped: {e}"));
    }
    for (p, abs) in &plan.metrics_files {
        if std::fs::symlink_metadata(abs).is_err() {
            observer.warning(&format!(
                "metrics file {} does not exist; not read",
                p.display()
            ));
            continue;
        }
        let is_jsonl = abs
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
        if is_jsonl {
            match std::fs::File::open(abs) {
                Ok(f) => {
                    let (m, errs) = metrics::parse_jsonl_lenient(std::io::BufReader::new(f), p);
                    for e in errs {
                        observer.warning(&format!("bad metrics line skipped: {e}"));
                    }
                    live.merge(m);
                }
                Err(e) => observer.warning(&format!("{}: {e}; not read", p.display())),
            }
        } else {
            match metrics::load_metrics_file(abs) {
                Ok(m) => live.merge(m),
                Err(e) => observer.warning(&format!("{e}; metrics file not read")),
            }
        }
    }
    let mut outputs = Vec::new();
    let mut log_named = true;
    for (p, abs) in &plan.outputs {
        if std::fs::symlink_metadata(abs).is_err() {
            observer.warning(&format!(
                "output {} does not exist; not stored",
                p.display()
            ));
            continue;
        }
        if repo.relative(abs).as_deref() == Some(Path::new(LOG_ARTIFACT)) {
            observer.warning(&format!(
                "an output is named {LOG_ARTIFACT}; the captured output is not stored"
            ));
            log_named = false;
        }
        outputs.push((p.clone(), abs.clone()));
    }
    let mut named_outputs = Vec::new();
    for (rel, p, abs) in &plan.named {
        if std::fs::symlink_metadata(abs).is_err() {
            observer.warning(&format!(
                "output {} does not exist; not stored",
                p.display()
            ));
            continue;
        }
        if rel == Path::new(LOG_ARTIFACT) {
            log_named = false;
        }
        named_outputs.push((rel.clone(), abs.clone()));
    }
    let n_plain = outputs.len();
    let all: Vec<(PathBuf, PathBuf)> = outputs
        .iter()
        .map(|(_, abs)| (tree_path(repo, abs), abs.clone()))
        .chain(named_outputs.iter().cloned())
        .collect();
    let (whole_idx, mut named, stale) = fresh_outputs(repo, &all, &plan.before);
    let mut whole = Vec::new();
    for i in whole_idx {
        if i < n_plain {
            whole.push(all[i].1.clone());
        } else {
            named.push(all[i].clone());
        }
    }
    if log_named {
        named.insert(0, (PathBuf::from(LOG_ARTIFACT), work.record.log.clone()));
    }
    let stale_paths: Vec<String> = stale
        .iter()
        .map(|s| s.rel.to_string_lossy().into_owned())
        .collect();
    if !stale.is_empty() {
        observer.warning(&format!(
            "{} output file(s) were not written by this run and are not stored with it: {}",
            stale.len(),
            stale_paths.join(", ")
        ));
    }
    let message = if plan.message.is_empty() {
        let line = plan.command.join(" ");
        if line.chars().count() > 72 {
            format!("{}...", line.chars().take(69).collect::<String>())
        } else {
            line
        }
    } else {
        plan.message.clone()
    };
    let full = CommitRequest {
        cwd: plan.cwd.clone(),
        message,
        params_files: vec![work.record.params.clone()],
        metrics: Some(live),
        data: plan.data.clone(),
        data_refs: plan.data_refs.clone(),
        artifacts: whole,
        tags: plan.tags.clone(),
        branch: plan.branch.clone(),
        parent: plan.parent,
        command: Some(plan.command.clone()),
        status: Some(ended.status.clone()),
        exit_code: ended.exit_code,
        started_at: Some(ended.started_at),
        ended_at: Some(ended.ended_at.max(ended.started_at)),
        env: plan.env.clone(),
        named_artifacts: named,
        code_state: plan.code_state.clone(),
        stale: stale
            .into_iter()
            .map(|s| crate::object::StaleOutput {
                path: s.rel.to_string_lossy().into_owned(),
                modified_at: s.modified_at,
            })
            .collect(),
        ..Default::default()
    };
    let commit = commit_once(repo, full, observer, progress)?;
    Ok((commit, stale_paths))
}

/// Commits an abandoned run (its cairn process is gone and its command has ended) as
/// `killed`, with what it left in `.cairn/runs/<id>/`: its metrics, its log and the outputs
/// written since it started. Params files it had overridden are put back first.
pub fn salvage(
    repo: &Repo,
    spec: &str,
    observer: &mut dyn RunObserver,
    progress: &dyn Progress,
) -> Result<RunOutcome> {
    let live = Some(spec)
        .filter(|s| !s.is_empty())
        .map(|s| find_in_progress(repo, Some(s)))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::BadArgument {
            arg: format!("--salvage {spec}"),
            reason: "no run in progress has this id (`cairn status` lists them)".into(),
        })?;
    if live.alive {
        return Err(Error::BadArgument {
            arg: format!("--salvage {spec}"),
            reason: format!(
                "run {} is still running (cairn process {}); it will commit itself",
                live.record.id, live.record.pid
            ),
        });
    }
    if let Some(child) = live.record.child_pid.filter(|p| process_alive(*p)) {
        return Err(Error::BadArgument {
            arg: format!("--salvage {spec}"),
            reason: format!(
                "the command of run {} is still running (process {child}); end it first",
                live.record.id
            ),
        });
    }
    let plan_path = live.dir.join(PLAN_FILE);
    let plan: Plan = std::fs::read(&plan_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Error::BadArgument {
            arg: format!("--salvage {spec}"),
            reason: format!(
                "run {} has no readable {PLAN_FILE} (it never started its command, or an \
                 older cairn started it); remove it with `cairn status --clean`",
                live.record.id
            ),
        })?;
    for (f, e) in restore_originals(&plan.originals) {
        observer.warning(&format!("cannot restore params file {}: {e}", f.display()));
    }
    // The command ended at the latest when it last wrote its log or metrics.
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    };
    let ended_at = mtime(&live.record.log)
        .max(mtime(&live.record.metrics))
        .max(live.record.started_at);
    let mut work = Workdir {
        dir: live.dir.clone(),
        record: live.record.clone(),
        keep: true,
    };
    let finished = Finished {
        status: RunStatus::Killed,
        exit_code: None,
        started_at: live.record.started_at,
        ended_at,
    };
    let log_bytes = std::fs::metadata(&live.record.log).map_or(0, |m| m.len());
    let (commit, stale) = finish(repo, &work, &plan, &finished, observer, progress)?;
    work.keep = false;
    Ok(RunOutcome {
        commit,
        exit_code: 0,
        log_bytes,
        stale,
    })
}

/// Removes the folder of an abandoned run, first putting back the params files it had
/// overridden. Returns the files that could not be put back (their originals stay in the
/// folder, which is then kept).
pub fn discard_abandoned(live: &LiveRun) -> Result<Vec<PathBuf>> {
    let plan: Option<Plan> = std::fs::read(live.dir.join(PLAN_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(plan) = plan {
        let failed = restore_originals(&plan.originals);
        if !failed.is_empty() {
            return Ok(failed.into_iter().map(|(f, _)| f).collect());
        }
    }
    std::fs::remove_dir_all(&live.dir).map_err(io_err(&live.dir))?;
    Ok(Vec::new())
}

/// The params files an abandoned run left overridden (their originals are in its folder).
pub fn overridden_params(live: &LiveRun) -> Vec<PathBuf> {
    std::fs::read(live.dir.join(PLAN_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Plan>(&b).ok())
        .map(|p| {
            p.originals
                .into_iter()
                .filter(|(_, copy)| copy.exists())
                .map(|(f, _)| f)
                .collect()
        })
        .unwrap_or_default()
}

/// The command runs in a process group of its own (so that signals reach all its processes),
/// which is not the terminal's foreground group: reading from the terminal would stop it.
/// So it gets cairn's stdin when that is a file or a pipe, and no input when it is a terminal.
fn stdin_for_child() -> Stdio {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        Stdio::null()
    } else {
        Stdio::inherit()
    }
}

fn interrupt_mask() -> u32 {
    (1 << libc::SIGINT) | (1 << libc::SIGTERM) | (1 << libc::SIGHUP)
}

/// Commits; when that fails before anything was published, tries once more with less (code
/// snapshotted now if the stored code vanished, else without outputs and data) so what the
/// run learned is not lost. Never commits twice: failures after publishing are not retried.
fn commit_once(
    repo: &Repo,
    req: CommitRequest,
    observer: &mut dyn RunObserver,
    progress: &dyn Progress,
) -> Result<CommitOutcome> {
    let err = match commit::commit(repo, &req, progress) {
        Ok(o) => return Ok(o),
        Err(e) => e,
    };
    let retry = match &err {
        Error::Store(StoreError::Vanished(_)) => {
            observer.warning("the code stored at the start was removed by a gc; storing it again");
            let code = req.code_state.as_ref().map(|c| repo.root().join(&c.path));
            CommitRequest {
                code_state: None,
                code,
                ..req
            }
        }
        Error::Store(_) => return Err(err),
        _ => {
            observer.warning(&format!(
                "{err}; committing the run without its outputs and data"
            ));
            CommitRequest {
                artifacts: Vec::new(),
                data: Vec::new(),
                data_refs: BTreeMap::new(),
                ..req
            }
        }
    };
    commit::commit(repo, &retry, progress)
}

/// Pumps the command's output to the log and the observer, forwards signals, and waits for it.
fn supervise(
    child: &mut std::process::Child,
    guard: &signals::Guard,
    mut log: std::fs::File,
    log_path: &Path,
    observer: &mut dyn RunObserver,
) -> Result<Ended> {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    for fd in [
        out.as_ref().map(|o| o.as_raw_fd()),
        err.as_ref().map(|e| e.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_flags(fd).map_err(io_err(log_path))?;
    }
    let pgid = child.id() as i32;
    let mut buf = vec![0u8; 64 * 1024];
    let mut status: Option<std::process::ExitStatus> = None;
    let mut ended_at = 0;
    let mut exited: Option<Instant> = None;
    let mut last_data = Instant::now();
    let mut interrupted: Option<i32> = None;
    let mut interrupts = 0u32;
    let mut log_bytes = 0u64;
    let mut log_ok = true;
    loop {
        if status.is_none() {
            if let Some(s) = child.try_wait().map_err(io_err(log_path))? {
                status = Some(s);
                ended_at = now_ms();
                exited = Some(Instant::now());
            }
        }
        if let Some(t) = exited {
            if (out.is_none() && err.is_none())
                || t.elapsed() > DRAIN_MAX
                || last_data.elapsed() > DRAIN_IDLE
            {
                break;
            }
        }
        let mut fds = vec![libc::pollfd {
            fd: guard.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        for s in [
            out.as_ref().map(|o| o.as_raw_fd()),
            err.as_ref().map(|e| e.as_raw_fd()),
        ] {
            fds.push(libc::pollfd {
                fd: s.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = if exited.is_some() { 50 } else { 1000 };
        // SAFETY: polling a local array of pollfd; negative descriptors are ignored by poll.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(io_err(log_path)(e));
        }
        if fds[0].revents != 0 {
            let pending = guard.take();
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                if pending & (1 << sig) == 0 {
                    continue;
                }
                if status.is_some() {
                    observer.signal(sig, "the command has already ended; committing the run");
                    continue;
                }
                interrupted = Some(sig);
                interrupts += 1;
                let (send, action) = if interrupts >= INTERRUPTS_BEFORE_KILL {
                    (libc::SIGKILL, "killed the command".to_string())
                } else {
                    (
                        sig,
                        format!(
                            "forwarded to the command; the run will be committed as killed \
                             ({} more to kill the command outright)",
                            INTERRUPTS_BEFORE_KILL - interrupts
                        ),
                    )
                };
                // SAFETY: signalling the command's process group.
                unsafe {
                    libc::kill(-pgid, send);
                }
                observer.signal(sig, &action);
            }
        }
        for (i, is_err) in [(1usize, false), (2usize, true)] {
            if fds[i].revents == 0 {
                continue;
            }
            let pipe: &mut dyn Read = match (is_err, out.as_mut(), err.as_mut()) {
                (false, Some(o), _) => o,
                (true, _, Some(e)) => e,
                _ => continue,
            };
            match pipe.read(&mut buf) {
                Ok(0) => {
                    if is_err {
                        err = None;
                    } else {
                        out = None;
                    }
                }
                Ok(k) => {
                    let bytes = &buf[..k];
                    last_data = Instant::now();
                    if log_ok && log.write_all(bytes).is_err() {
                        log_ok = false;
                        observer.warning("cannot write the output log; it will be incomplete");
                    }
                    log_bytes += k as u64;
                    if is_err {
                        observer.stderr(bytes);
                    } else {
                        observer.stdout(bytes);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    if is_err {
                        err = None;
                    } else {
                        out = None;
                    }
                }
            }
        }
    }
    let _ = log.flush();
    let status = match status {
        Some(s) => s,
        None => child.wait().map_err(io_err(log_path))?,
    };
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    let (st, exit) = match interrupted {
        Some(sig) => (RunStatus::Killed, if code == 0 { 128 + sig } else { code }),
        None if status.signal().is_some() => (RunStatus::Killed, code),
        None if code == 0 => (RunStatus::Completed, 0),
        None => (RunStatus::Failed, code),
    };
    Ok(Ended {
        status: st,
        code,
        exit,
        ended_at: if ended_at == 0 { now_ms() } else { ended_at },
        log_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("CUDA_*", "CUDA_VISIBLE_DEVICES"));
        assert!(glob_match("*", "X"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B*C", "AxxC"));
        assert!(!glob_match("AB", "ABC"));
        assert!(glob_match("AB", "AB"));
        assert!(!glob_match("A*A", "A"));
    }

    #[test]
    fn secrets_are_never_selected() {
        let vars = [
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("HF_TOKEN", "t"),
            ("MY_PASSWORD", "p"),
            ("GCP_CREDENTIALS", "c"),
            ("api_key", "k"),
            ("MY_MODE", "m"),
            ("CUDA_VISIBLE_DEVICES", "0"),
            ("UNLISTED", "u"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let got = select_env(vars, &["*".to_string()]);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, ["CUDA_VISIBLE_DEVICES", "MY_MODE", "UNLISTED"]);
        let got = select_env(
            [("HF_TOKEN".to_string(), "t".to_string())],
            &["HF_TOKEN".to_string()],
        );
        assert!(got.is_empty());
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
