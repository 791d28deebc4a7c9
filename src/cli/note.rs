//! `cairn note`: annotate a run after the fact.

use super::output::time;
use super::Ctx;

/// Add a note to a run (or list its notes). The run itself never changes.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn note HEAD -m \"diverged after epoch 40: lr too high\"\n  cairn note 3f2a"
)]
pub struct Args {
    /// The run.
    pub run: String,
    /// The note's text; without it, list the run's notes.
    #[arg(short, long)]
    pub message: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let id = {
        let session = repo.store().session()?;
        let id = super::resolve(&session, &a.run)?;
        if a.message.is_none() {
            for n in cairn::notes::for_run(&session, &id)? {
                println!("{}  {}  {}", time(n.time), n.author, n.text);
            }
            return Ok(0);
        }
        id
    };
    let text = a.message.unwrap_or_default();
    if text.trim().is_empty() {
        anyhow::bail!("-m: the note is empty");
    }
    cairn::notes::add(&repo, id, &text)?;
    ctx.status(format!("Added a note to run {}", id.short()));
    Ok(0)
}
