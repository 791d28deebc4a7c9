//! `cairn run`: run a training command and record it as a run.

use std::io::Write;
use std::path::PathBuf;

use super::output::{duration, size};
use super::Ctx;
use cairn::run::{InProgress, RunObserver, RunOptions};

/// Run a command and record it as a run, whatever happens to it.
///
/// The command's output is shown live and stored with the run (artifact cairn-run.log), with
/// its exit status, start and end times, host, user, command line, working folder, selected
/// environment variables, the GPU model, and the code as it was when the command started.
/// Metrics the command appends to the file named by $CAIRN_METRICS (one JSON object per line)
/// become step series. Defaults come from cairn.toml at the repository root. A failed or
/// interrupted command is committed too (status failed or killed); Ctrl-C and SIGTERM are
/// forwarded to it. cairn exits with the command's exit code (128+N when ended by signal N).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn run -- python train.py --lr 0.01\n  cairn run -m 'wider net' -p lr=0.01 --params params.yaml --data train=data/train \\\n      --out model.pt --metrics metrics.json -- python train.py\n  cairn run -b exp/sweep -p lr=0.1 -- python train.py --lr 0.1\n  cairn run --no-code --env 'WANDB_*' -- ./train.sh\n  cairn run --params params.yaml --new-param -p train.momentum=0.9 -- python train.py\n  cairn run --salvage 3f2a9c1e\n\nWith params files, each -p value is written into the file holding its key for the command\nto read, and the file is put back byte for byte when the command ends. Outputs the command\ndid not write (they predate the run) are not stored; `cairn show` lists them as stale.\n\nIn the command, append metrics with one line of JSON per step:\n  echo '{\"step\": 10, \"loss\": 0.41}' >> \"$CAIRN_METRICS\"\nand read the merged params from the JSON file named by $CAIRN_PARAMS.\nDefaults come from cairn.toml at the repository root: `cairn init` writes one with every key\ncommented, and `cairn run --no-project` ignores it."
)]
pub struct Args {
    /// Message describing the run (the command line when omitted).
    #[arg(short, long, default_value = "", hide_default_value = true)]
    pub message: String,
    /// One parameter, KEY=VALUE (dotted keys nest: optimizer.lr=0.1); written into the params
    /// file holding the key while the command runs.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub param: Vec<String>,
    /// A params file (YAML, JSON or TOML); several are merged in order.
    #[arg(long, value_name = "FILE")]
    pub params: Vec<PathBuf>,
    /// A data input: a folder or a file, named NAME or after the folder.
    #[arg(long, value_name = "[NAME=]PATH")]
    pub data: Vec<String>,
    /// An output file or folder to store with the run when the command ends (a missing one is a warning).
    #[arg(long = "out", value_name = "PATH")]
    pub out: Vec<PathBuf>,
    /// A metrics file to read when the command ends: JSON/YAML name->number, or CSV/JSONL series.
    #[arg(long, value_name = "FILE")]
    pub metrics: Vec<PathBuf>,
    /// Commit onto this branch instead of the current one (created if missing).
    #[arg(long, short = 'b')]
    pub branch: Option<String>,
    /// A user tag, KEY=VALUE.
    #[arg(long, short = 't', value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Snapshot the code in this folder instead of the repository root.
    #[arg(long, value_name = "PATH", conflicts_with = "no_code")]
    pub code: Option<PathBuf>,
    /// Do not snapshot any code.
    #[arg(long)]
    pub no_code: bool,
    /// Also record these environment variables (NAME or a pattern such as 'WANDB_*').
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// Ignore cairn.toml.
    #[arg(long)]
    pub no_project: bool,
    /// Let a --param add a key that is in no params file (to the last one) instead of failing.
    #[arg(long)]
    pub new_param: bool,
    /// Commit the abandoned run ID (its cairn process was killed) as killed, with its metrics,
    /// log and the outputs written since it started; puts back params files it had overridden.
    #[arg(long, value_name = "ID", conflicts_with = "command")]
    pub salvage: Option<String>,
    /// A command given without `--` (refused with a hint).
    #[arg(hide = true, allow_hyphen_values = true, value_name = "ARG")]
    pub stray: Vec<String>,
    /// The command to run, after `--`.
    #[arg(
        last = true,
        value_name = "COMMAND",
        required_unless_present_any = ["salvage", "stray"]
    )]
    pub command: Vec<String>,
}

/// Splits `[NAME=]PATH`.
pub(super) fn parse_data(s: &str) -> (Option<String>, PathBuf) {
    if let Some((name, path)) = s.split_once('=') {
        if !name.is_empty() && !name.contains('/') && !path.is_empty() {
            return (Some(name.to_string()), PathBuf::from(path));
        }
    }
    (None, PathBuf::from(s))
}

/// Run options from cairn.toml (unless `no_project`), for a command run in `cwd`.
pub(super) fn project_options(
    repo: &cairn::repo::Repo,
    ctx: &Ctx,
    no_project: bool,
) -> anyhow::Result<RunOptions> {
    let defaults = if no_project {
        None
    } else {
        cairn::project::Project::load(repo.root())?
    };
    let mut opts = cairn::run::options_from_project(repo, &defaults.unwrap_or_default().run);
    opts.request.cwd = ctx.cwd.clone();
    Ok(opts)
}

fn data_name(name: &Option<String>, path: &std::path::Path) -> String {
    name.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// Shows the command's output and cairn's messages.
pub(super) struct Terminal {
    quiet: bool,
    out_ok: bool,
    err_ok: bool,
}

impl Terminal {
    pub(super) fn new(quiet: bool) -> Self {
        Terminal {
            quiet,
            out_ok: true,
            err_ok: true,
        }
    }

    fn note(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "cairn: {msg}");
        }
    }
}

impl RunObserver for Terminal {
    fn started(&mut self, record: &InProgress) {
        self.note(format_args!(
            "running `{}` (in progress as {}; follow it with `cairn watch {}`)",
            record.command.join(" "),
            record.id,
            record.id
        ));
    }

    fn stdout(&mut self, bytes: &[u8]) {
        if self.out_ok {
            let mut out = std::io::stdout().lock();
            self.out_ok = out.write_all(bytes).and_then(|()| out.flush()).is_ok();
        }
    }

    fn stderr(&mut self, bytes: &[u8]) {
        if self.err_ok {
            let mut err = std::io::stderr().lock();
            self.err_ok = err.write_all(bytes).and_then(|()| err.flush()).is_ok();
        }
    }

    fn warning(&mut self, message: &str) {
        let _ = writeln!(std::io::stderr(), "cairn: warning: {message}");
    }

    fn signal(&mut self, signal: i32, action: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "cairn: received {}: {action}",
            cairn::run::signal_name(signal)
        );
    }

    fn ended(&mut self, status: &cairn::object::RunStatus, exit_code: i32, duration_ms: i64) {
        self.note(format_args!(
            "command {status} (exit {exit_code}) after {}; committing",
            duration(duration_ms)
        ));
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    if let Some(first) = a.stray.first() {
        anyhow::bail!(
            "unexpected argument '{first}': the command goes after `--`, as in `cairn run -- {}`",
            a.stray.join(" ")
        );
    }
    let repo = ctx.repo()?;
    if let Some(id) = &a.salvage {
        let mut term = Terminal::new(ctx.quiet);
        let progress = ctx.progress();
        let outcome = cairn::run::salvage(&repo, id, &mut term, &progress)?;
        summary(&term, &outcome);
        return Ok(0);
    }
    if a.command.is_empty() {
        anyhow::bail!(
            "no command to run: give it after `--`, as in `cairn run -- python train.py`"
        );
    }
    let mut opts = project_options(&repo, ctx, a.no_project)?;
    let req = &mut opts.request;
    req.message = a.message;
    req.command = Some(a.command);
    req.params_files.extend(a.params);
    req.params.extend(a.param);
    req.metrics_files.extend(a.metrics);
    req.artifacts.extend(a.out);
    req.tags.extend(a.tag);
    if a.branch.is_some() {
        req.branch = a.branch;
    }
    if a.no_code {
        req.code = None;
    } else if let Some(c) = a.code {
        req.code = Some(c);
    }
    for d in &a.data {
        let (name, path) = parse_data(d);
        let n = data_name(&name, &path);
        req.data.retain(|(m, p)| data_name(m, p) != n);
        req.data.push((name, path));
    }
    opts.env_allow.extend(a.env);
    opts.new_params = a.new_param;

    let mut term = Terminal::new(ctx.quiet);
    let progress = ctx.progress();
    let outcome = cairn::run::execute(&repo, &opts, &mut term, &progress)?;
    summary(&term, &outcome);
    Ok(outcome.exit_code)
}

/// The line printed once a run is committed.
pub(super) fn summary(term: &Terminal, outcome: &cairn::run::RunOutcome) {
    let run = &outcome.commit.run;
    let mut parts = vec![format!(
        "{}{}",
        run.status,
        run.exit_code
            .map(|c| format!(" (exit {c})"))
            .unwrap_or_default()
    )];
    parts.push(duration(run.ended_at - run.started_at));
    parts.push(format!("{} metrics", run.metrics.len()));
    parts.push(format!("output {}", size(outcome.log_bytes)));
    if let Some(art) = &run.artifacts {
        parts.push(format!(
            "artifacts {} files ({})",
            art.files,
            size(art.size)
        ));
    }
    if !outcome.stale.is_empty() {
        parts.push(format!(
            "{} stale output(s) not stored (`cairn show {}` lists them)",
            outcome.stale.len(),
            outcome.commit.id.short()
        ));
    }
    let line = format!(
        "committed run {} on {}: {}",
        outcome.commit.id,
        run.branch.as_deref().unwrap_or("detached HEAD"),
        parts.join(", ")
    );
    if outcome.stale.is_empty() {
        term.note(line);
    } else {
        // A warning is shown even with -q.
        let _ = writeln!(std::io::stderr(), "cairn: warning: {line}");
    }
}
