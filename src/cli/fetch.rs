//! `cairn fetch`: receive runs from a remote.

use super::output::size;
use super::Ctx;

/// Receive the remote's branches (as REMOTE/BRANCH), tags and notes, with the runs they reach;
/// or one run, or just the objects one path of a run needs (--only); or one model version
/// (model:NAME@STAGE or @vN): its history, its run's record and only the registered files
/// (--with-run brings the whole run). Everything received is verified against its id.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn fetch\n  cairn fetch origin main v1.0\n  cairn fetch origin 3f2a9c1b --only artifacts/model.pt\n  cairn fetch origin model:resnet@production            # the model files only\n  cairn fetch origin model:resnet@v3 --with-run          # and its whole run\n  cairn log origin/main"
)]
pub struct Args {
    /// The remote (default: origin).
    pub remote: Option<String>,
    /// Branches, tags, run ids or model:NAME[@STAGE] to fetch (default: all refs).
    pub refs: Vec<String>,
    /// Only the objects this path of the named run needs (e.g. artifacts/model.pt).
    #[arg(long, value_name = "PATH")]
    pub only: Option<String>,
    /// With model:NAME@STAGE or @vN: the version's whole run (data, code, every artifact), not
    /// just the registered model files.
    #[arg(long)]
    pub with_run: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let remote = a.remote.unwrap_or_else(|| "origin".into());
    let opts = cairn::remote::sync::FetchOptions {
        refs: a.refs,
        only: a.only,
        with_run: a.with_run,
    };
    let progress = ctx.progress();
    let r = cairn::remote::sync::fetch(&repo, &remote, &opts, &progress)?;
    for (name, id) in &r.updated {
        ctx.status(format!("  {} {name}", id.short()));
    }
    for t in &r.skipped_tags {
        ctx.status(format!("  kept local {t}: the remote's differs"));
    }
    if !r.partial.is_empty() {
        ctx.status(format!(
            "  {} object(s) fetched partially (the rest stays on {remote})",
            r.partial.len()
        ));
    }
    for m in &r.reset_models {
        ctx.status(format!(
            "  {m}: local changes the remote did not take were dropped; it now follows {remote}"
        ));
    }
    ctx.status(format!(
        "Fetched from {remote}: {} object(s), {}",
        r.objects,
        size(r.bytes)
    ));
    Ok(0)
}
