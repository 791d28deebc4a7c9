//! `cairn reproduce`: run a recorded run again and compare.

use std::path::{Path, PathBuf};

use super::Ctx;
use cairn::run::keys;

/// Run a recorded run again: restore its code, data and params into a folder, run its recorded
/// command there (with the environment variables it recorded) as a new run whose parent is RUN,
/// and print the diff of the two runs.
///
/// The new run records the restored code and data as they were (the same snapshots), the same
/// params, and what this run measured and wrote. It is committed on the branch
/// reproduce/<RUN's short id> unless --branch says otherwise. Only runs made with `cairn run`
/// recorded a command.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn reproduce HEAD\n  cairn reproduce 3f2a9c1e -o /tmp/repro\n  cairn reproduce best -b exp/repro --fresh-env"
)]
pub struct Args {
    /// The run to reproduce.
    pub run: String,
    /// Folder to restore into and run in (a new temporary folder when omitted).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Commit the new run onto this branch.
    #[arg(short, long)]
    pub branch: Option<String>,
    /// Message for the new run.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Keep the current environment: do not set the variables the run recorded.
    #[arg(long)]
    pub fresh_env: bool,
    /// Overwrite files in DIR that differ from the run's.
    #[arg(long)]
    pub force: bool,
}

/// A new, empty folder in the system's temporary folder.
fn temp_folder(short: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let name = if i == 0 {
            format!("cairn-reproduce-{short}-{}", std::process::id())
        } else {
            format!("cairn-reproduce-{short}-{}-{i}", std::process::id())
        };
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", dir.display())),
        }
    }
    anyhow::bail!("cannot create a folder in {}", base.display())
}

/// Whether a recorded env key is an environment variable (not `gpu`, `user`, `cairn.*`).
fn is_variable(k: &str) -> bool {
    k != keys::GPU
        && k != keys::USER
        && !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let (id, run) = {
        let session = repo.store().session()?;
        let id = super::resolve(&session, &a.run)?;
        (id, session.read_run(&id)?)
    };
    let short = id.short();
    let Some(command) = run.command.clone().filter(|c| !c.is_empty()) else {
        anyhow::bail!(
            "run {short} recorded no command (it was not made by `cairn run`); nothing to reproduce"
        );
    };
    let branch = a
        .branch
        .clone()
        .unwrap_or_else(|| format!("reproduce/{short}"));
    cairn::refs::validate("branch", &branch)?;
    let dir = match &a.output {
        Some(d) => {
            let d = ctx.cwd.join(d);
            std::fs::create_dir_all(&d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
            d.canonicalize()?
        }
        None => temp_folder(&short[..8])?,
    };
    {
        let session = repo.store().session()?;
        let parts = cairn::checkout::Parts {
            code: true,
            data: true,
            artifacts: false,
        };
        let progress = ctx.progress();
        cairn::checkout::checkout(session, &run, parts, &dir, a.force, &progress)?;
    }
    ctx.status(format!(
        "Restored the code and data of run {short} into {}",
        dir.display()
    ));
    let under = |p: &str| {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            dir.join(p)
        }
    };
    let list = |key: &str| -> Vec<String> {
        run.env
            .get(key)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    };
    // The checkout wrote the params files as the run saw them (those missing from the code
    // snapshot from its params); the run's params are merged over them, so the new run has
    // exactly the same.
    let params_files: Vec<PathBuf> = list(keys::PARAMS)
        .iter()
        .map(|p| under(p))
        .filter(|p| p.exists())
        .collect();
    let cwd = match run.env.get(keys::CWD).map(String::as_str) {
        None | Some(".") => dir.clone(),
        Some(p) => under(p),
    };
    std::fs::create_dir_all(&cwd)?;

    let vars: Vec<(String, String)> = run
        .env
        .iter()
        .filter(|(k, _)| is_variable(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut artifacts = Vec::new();
    let mut named = Vec::new();
    for p in list(keys::OUTPUTS) {
        if Path::new(&p).is_absolute() {
            artifacts.push(PathBuf::from(p));
        } else {
            named.push((PathBuf::from(&p), dir.join(&p)));
        }
    }
    let opts = cairn::run::RunOptions {
        request: cairn::commit::CommitRequest {
            cwd,
            message: a.message.clone().unwrap_or_else(|| {
                format!("reproduce {short}: {}", run.subject())
                    .trim_end_matches(": ")
                    .to_string()
            }),
            command: Some(command),
            code_state: run.code.clone(),
            data_refs: run.data.clone(),
            metrics_files: list(keys::METRICS).iter().map(|p| under(p)).collect(),
            params_files,
            artifacts,
            named_artifacts: named,
            tags: run.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            branch: Some(branch.clone()),
            parent: Some(id),
            ..Default::default()
        },
        env_allow: vars.iter().map(|(k, _)| k.clone()).collect(),
        child_env: if a.fresh_env { Vec::new() } else { vars },
        params_override: Some(run.params.clone()),
        path_root: Some(dir.clone()),
        new_params: false,
    };
    let mut term = super::run::Terminal::new(ctx.quiet);
    let progress = ctx.progress();
    let outcome = cairn::run::execute(&repo, &opts, &mut term, &progress)?;
    let new = outcome.commit.id;
    ctx.status(format!(
        "Reproduced run {short} as {} on {branch} ({}, in {})",
        new.short(),
        outcome.commit.run.status,
        dir.display()
    ));
    super::diff::run(
        ctx,
        super::diff::Args {
            a: id.to_hex(),
            b: Some(new.to_hex()),
            params: false,
            metrics: false,
            code: false,
            data: false,
            artifacts: false,
            env: true,
            stat: false,
            patch: false,
            json: false,
            exit_code: false,
            higher_is_better: Vec::new(),
            lower_is_better: Vec::new(),
        },
    )?;
    Ok(outcome.exit_code)
}
