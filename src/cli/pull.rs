//! `cairn pull`: fetch, then fast-forward the local branch.

use super::output::size;
use super::Ctx;

/// Fetch a branch from a remote and fast-forward the local branch of the same name to it.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn pull\n  cairn pull origin exp/wide")]
pub struct Args {
    /// The remote (default: origin).
    pub remote: Option<String>,
    /// The branch (default: the current one).
    pub branch: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let remote = a.remote.unwrap_or_else(|| "origin".into());
    let progress = ctx.progress();
    let (r, tip) = cairn::remote::sync::pull(&repo, &remote, a.branch.as_deref(), &progress)?;
    ctx.status(format!(
        "Pulled from {remote}: {} object(s), {}; branch at {}",
        r.objects,
        size(r.bytes),
        tip.map(|t| t.short()).unwrap_or_default()
    ));
    Ok(0)
}
