//! `cairn gc`: remove unreachable objects.

use super::output::size;
use super::Ctx;

/// Remove objects no branch, tag or note reaches. Objects published within the grace period
/// (an hour by default) are kept, so a commit running at the same time is never harmed.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn gc --dry-run\n  cairn gc\n  cairn gc --prune-now")]
pub struct Args {
    /// Report what would be removed without removing anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Keep objects published less than SECONDS ago.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub grace: u64,
    /// No grace period: remove every unreachable object now.
    #[arg(long, conflicts_with = "grace")]
    pub prune_now: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let opts = cairn::gc::GcOptions {
        dry_run: a.dry_run,
        grace_secs: if a.prune_now { 0 } else { a.grace },
    };
    let r = cairn::gc::gc(&session, opts)?;
    let (verb, rewrite) = if a.dry_run {
        ("would remove", "would rewrite")
    } else {
        ("removed", "rewrote")
    };
    println!(
        "{verb} {} object(s) ({}) and {} pack file(s); {rewrite} {} pack(s); kept {} object(s)",
        r.removed_objects,
        size(r.removed_bytes),
        r.removed_packs,
        r.rewritten_packs,
        r.kept_objects
    );
    Ok(0)
}
