//! `cairn commit`: record a run.

use std::path::PathBuf;

use super::output::size;
use super::Ctx;

/// Record a run: code, data snapshots, params, metrics and artifacts.
///
/// Prints the new run's id on stdout (and a summary on stderr), so scripts can capture it.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn commit -m baseline --code . --data train=data/train --data data/val \\\n      --params params.yaml --param lr=0.01 --metrics metrics.json \\\n      --artifact model.pt --artifact outputs/\n  RUN=$(cairn commit -q -m sweep --param lr=0.1 --metrics metrics.jsonl)"
)]
pub struct Args {
    /// Message describing the run.
    #[arg(short, long, default_value = "", hide_default_value = true)]
    pub message: String,
    /// Snapshot the code in this folder (git-tracked files and git state when it is a git repository).
    #[arg(long, value_name = "PATH")]
    pub code: Option<PathBuf>,
    /// A data snapshot: a folder or a file, named NAME or after the folder.
    #[arg(long, value_name = "[NAME=]PATH")]
    pub data: Vec<String>,
    /// A params file (YAML, JSON or TOML); several are merged in order.
    #[arg(long, value_name = "FILE")]
    pub params: Vec<PathBuf>,
    /// One parameter, KEY=VALUE (dotted keys nest: optimizer.lr=0.1); overrides files.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub param: Vec<String>,
    /// A metrics file: JSON/YAML name->number, or CSV/JSONL step series.
    #[arg(long, value_name = "FILE")]
    pub metrics: Vec<PathBuf>,
    /// A model file or output folder to store with the run.
    #[arg(long, value_name = "PATH")]
    pub artifact: Vec<PathBuf>,
    /// A user tag, KEY=VALUE.
    #[arg(long, short = 't', value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// Commit onto this branch instead of the current one (created if missing).
    #[arg(long, short = 'b')]
    pub branch: Option<String>,
    /// Print the run as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
}

fn parse_data(s: &str) -> (Option<String>, PathBuf) {
    if let Some((name, path)) = s.split_once('=') {
        if !name.is_empty() && !name.contains('/') && !path.is_empty() {
            return (Some(name.to_string()), PathBuf::from(path));
        }
    }
    (None, PathBuf::from(s))
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let req = cairn::commit::CommitRequest {
        cwd: ctx.cwd.clone(),
        message: a.message,
        code: a.code,
        data: a.data.iter().map(|d| parse_data(d)).collect(),
        params_files: a.params,
        params: a.param,
        metrics_files: a.metrics,
        artifacts: a.artifact,
        tags: a.tag,
        branch: a.branch,
        ..Default::default()
    };
    let progress = ctx.progress();
    let out = cairn::commit::commit(&repo, &req, &progress)?;
    if a.json {
        super::output::print_json(&serde_json::json!({ "id": out.id, "run": out.run }))?;
    } else {
        println!("{}", out.id);
    }
    let run = &out.run;
    let mut parts = vec![format!(
        "{} params",
        cairn::capture::params::flatten(&run.params).len()
    )];
    parts.push(format!("{} metrics", run.metrics.len()));
    if let Some(c) = &run.code {
        parts.push(format!("code {} files", c.files));
    }
    if !run.data.is_empty() {
        let files: u64 = run.data.values().map(|d| d.files).sum();
        let bytes: u64 = run.data.values().map(|d| d.size).sum();
        parts.push(format!(
            "{} data snapshot(s) ({files} files, {})",
            run.data.len(),
            size(bytes)
        ));
    }
    if let Some(art) = &run.artifacts {
        parts.push(format!(
            "artifacts {} files ({})",
            art.files,
            size(art.size)
        ));
    }
    ctx.status(format!(
        "Committed run {} on {}: {}; {} files read, {} new objects, {} stored",
        out.id.short(),
        run.branch.as_deref().unwrap_or("detached HEAD"),
        parts.join(", "),
        out.files_read,
        out.new_objects,
        size(out.stored_bytes)
    ));
    Ok(0)
}
