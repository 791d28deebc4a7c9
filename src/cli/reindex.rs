//! `cairn reindex`: rebuild the query index.

use super::Ctx;

/// Rebuild the query index (params, metrics and tags of every run) used by `compare` and
/// `find`. It is kept up to date at commit and repaired automatically when runs are missing
/// from it; run this after restoring an old backup of the index.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn reindex")]
pub struct Args {}

pub fn run(ctx: &Ctx, _a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let n = cairn::summary::rebuild(&session)?;
    ctx.status(format!("Reindexed {n} run(s)"));
    Ok(0)
}
