//! `cairn push`: send runs to a remote.

use super::output::size;
use super::Ctx;

/// Send branches and tags, and the runs they reach, to a remote. Only objects the remote lacks
/// travel; remote refs move by compare-and-swap, and a push that is not a fast-forward is
/// refused unless --force.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn push                      # the current branch to origin\n  cairn push origin exp/wide v1.0\n  cairn push origin --all --tags\n  cairn push backup main --force"
)]
pub struct Args {
    /// The remote (default: origin).
    pub remote: Option<String>,
    /// Branches or tags to push (default: the current branch).
    pub refs: Vec<String>,
    /// Push every branch (and the notes).
    #[arg(long)]
    pub all: bool,
    /// Push every tag.
    #[arg(long)]
    pub tags: bool,
    /// Move remote refs even when it is not a fast-forward.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let remote = a.remote.unwrap_or_else(|| "origin".into());
    let opts = cairn::remote::sync::PushOptions {
        refs: a.refs,
        all: a.all,
        tags: a.tags,
        force: a.force,
    };
    let progress = ctx.progress();
    let r = cairn::remote::sync::push(&repo, &remote, &opts, &progress)?;
    for (name, old, new) in &r.updated {
        let from = old.map(|o| o.short()).unwrap_or_else(|| "(new)".into());
        ctx.status(format!("  {from} -> {}  {name}", new.short()));
    }
    for name in &r.up_to_date {
        ctx.status(format!("  up to date  {name}"));
    }
    ctx.status(format!(
        "Pushed to {remote}: {} object(s), {} in {} pack(s)",
        r.objects,
        size(r.bytes),
        r.packs
    ));
    Ok(0)
}
