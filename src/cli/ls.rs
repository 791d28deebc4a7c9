//! `cairn ls`: files of a run.

use super::output::size;
use super::Ctx;

/// List the files of a run's trees with sizes: code/, data/NAME/, artifacts/.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn ls HEAD\n  cairn ls HEAD artifacts\n  cairn ls 3f2a data/train --json"
)]
pub struct Args {
    /// The run.
    #[arg(default_value = "HEAD")]
    pub run: String,
    /// A path inside the run (code, data/NAME, artifacts, or below).
    pub path: Option<String>,
    /// Only the entries directly at PATH, not below.
    #[arg(short = 'd', long)]
    pub shallow: bool,
    /// Print JSON: an array of {path, kind, size, id}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let id = super::resolve(&session, &a.run)?;
    let run = session.read_run(&id)?;
    let path = a.path.unwrap_or_default();
    let path = path.trim_matches('/');
    let node = cairn::view::lookup(&session, &run, &a.run, path)?;
    let items = cairn::view::list(&session, &run, &node, path, !a.shallow)?;
    // Printed without the index: a slow reader keeps no one waiting.
    drop(session);
    if a.json {
        super::output::print_json(&items)?;
        return Ok(0);
    }
    for i in items {
        let suffix = if i.kind == "tree" { "/" } else { "" };
        println!("{:<4} {:>10}  {}{suffix}", i.kind, size(i.size), i.path);
    }
    Ok(0)
}
