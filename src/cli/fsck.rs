//! `cairn fsck`: verify the store.

use super::output::size;
use super::Ctx;

/// Verify every object (hash, structure, references) and every ref. Exits 1 on any problem.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn fsck\n  cairn fsck --json\n  cairn fsck --rebuild-index   # after damage to .cairn/index"
)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rebuild the index from the pack files (when the index itself is damaged); the old
    /// index is kept aside. Branches, tags, notes and models are recovered.
    #[arg(long)]
    pub rebuild_index: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    if a.rebuild_index {
        let repo = cairn::repo::Repo::discover_for_repair(&ctx.cwd)?;
        let progress = ctx.progress();
        let r = cairn::rebuild::rebuild_index(&repo, &progress)?;
        for (name, id) in &r.refs {
            println!("{} {name}", id.short());
        }
        for p in &r.damaged_packs {
            eprintln!("warning: {p}");
        }
        println!(
            "rebuilt the index: {} object(s), {} damaged record(s) skipped, {} ref(s) recovered; the old index is at {}",
            r.objects,
            r.damaged_records,
            r.refs.len(),
            r.old_index
        );
        return Ok(0);
    }
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let progress = ctx.progress();
    let report = cairn::fsck::fsck(&session, &progress)?;
    if a.json {
        super::output::print_json(&report)?;
    } else {
        for p in &report.problems {
            println!("error: {}", p.what);
        }
        let verdict = if report.problems.is_empty() {
            "ok".to_string()
        } else {
            format!("{} problem(s)", report.problems.len())
        };
        println!(
            "checked {} objects ({}), {} refs: {verdict}; {} unreachable",
            report.objects,
            size(report.bytes),
            report.refs,
            report.unreachable
        );
    }
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}
