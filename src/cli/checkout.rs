//! `cairn checkout`: restore a run's files.

use std::path::PathBuf;

use super::output::size;
use super::Ctx;

/// Restore a run's code, data and artifacts, bit for bit, to where they were recorded from
/// (relative to the repository root) or into -o DIR. Refuses to overwrite files that differ
/// unless --force; never writes outside the target folder.
///
/// The params files a `cairn run` read are written as the run saw them (its -p overrides
/// included); its captured output (cairn-run.log) is not restored: `cairn cat
/// RUN:artifacts/cairn-run.log` prints it.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn checkout HEAD~1 -o /tmp/previous\n  cairn checkout best --artifacts\n  cairn checkout 3f2a --data --force"
)]
pub struct Args {
    /// The run.
    pub run: String,
    /// Restore the code snapshot.
    #[arg(long)]
    pub code: bool,
    /// Restore the data snapshots.
    #[arg(long)]
    pub data: bool,
    /// Restore the artifacts.
    #[arg(long)]
    pub artifacts: bool,
    /// Restore into this folder instead of the repository root.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Overwrite files that differ.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    // A model version restores its registered files, unless parts of its run are asked for
    // (or a run before it, `model:NAME@vN~1`, which is a run like any other).
    let version = matches!(cairn::revision::split_ancestry(&a.run), Ok((_, 0)));
    if let Some(parsed) = cairn::registry::parse_spec(&a.run).filter(|_| version) {
        if !(a.code || a.data || a.artifacts) {
            let (name, sel) = parsed?;
            let v = cairn::registry::resolve(&session, &name, &sel)?;
            let run = session.read_run(&v.run)?;
            let target = match &a.output {
                Some(o) => cairn::repo::clean_path(&ctx.cwd.join(o)),
                None => ctx.cwd.clone(),
            };
            let node = cairn::view::lookup(&session, &run, &a.run, &v.path)?;
            let leaf = v.path.rsplit('/').next().unwrap_or("model").to_string();
            let progress = ctx.progress();
            let report = match node {
                cairn::view::Node::Leaf { kind, id, size } => cairn::checkout::restore_node(
                    session,
                    kind,
                    id,
                    size,
                    &target.join(&leaf),
                    a.force,
                    &progress,
                )?,
                cairn::view::Node::Tree(id) => {
                    cairn::checkout::restore_tree_into(session, id, &target, a.force, &progress)?
                }
                _ => anyhow::bail!("{}: the registered path is not a file or folder", a.run),
            };
            ctx.status(format!(
                "Restored {name}@v{} into {}: {} file(s) written ({}), {} unchanged",
                v.version,
                target.display(),
                report.written,
                size(report.bytes),
                report.unchanged
            ));
            return Ok(0);
        }
    }
    let id = super::resolve(&session, &a.run)?;
    let run = session.read_run(&id)?;
    let target = match &a.output {
        Some(o) => cairn::repo::clean_path(&ctx.cwd.join(o)),
        None => repo.root().to_path_buf(),
    };
    let parts = cairn::checkout::Parts {
        code: a.code,
        data: a.data,
        artifacts: a.artifacts,
    };
    let progress = ctx.progress();
    let report = cairn::checkout::checkout(session, &run, parts, &target, a.force, &progress)?;
    ctx.status(format!(
        "Restored run {} into {}: {} file(s) written ({}), {} unchanged",
        id.short(),
        target.display(),
        report.written,
        size(report.bytes),
        report.unchanged
    ));
    Ok(0)
}
