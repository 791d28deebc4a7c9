//! `cairn fsck`: verify the store.

use super::output::size;
use super::Ctx;

/// Verify every object (hash, structure, references) and every ref. Exits 1 on any problem.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn fsck\n  cairn fsck --json")]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
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
