//! `cairn tag`: name runs for good.

use super::output::Style;
use super::Ctx;
use cairn::refs;

/// List tags, tag a run, or delete a tag. Tags never move unless -f.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn tag\n  cairn tag v1.0 HEAD\n  cairn tag -f best 3f2a\n  cairn tag -d old"
)]
pub struct Args {
    /// Tag name.
    pub name: Option<String>,
    /// The run to tag (HEAD by default).
    pub run: Option<String>,
    /// Move an existing tag.
    #[arg(short, long)]
    pub force: bool,
    /// Delete the named tag.
    #[arg(short, long, value_name = "NAME", conflicts_with_all = ["name", "run"])]
    pub delete: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    if let Some(name) = a.delete {
        let old = cairn::tags::delete(&repo, &session, &name)?;
        ctx.status(format!("Deleted tag {name} (was {})", old.short()));
        return Ok(0);
    }
    if let Some(name) = a.name {
        let target = super::resolve(&session, a.run.as_deref().unwrap_or("HEAD"))?;
        match cairn::tags::set(&repo, &session, &name, target, a.force) {
            Err(e @ cairn::Error::RefExists { .. }) => {
                return Err(anyhow::Error::new(e).context("tags do not move; use -f to move it"))
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        ctx.status(format!("Tagged {} as {name}", target.short()));
        if refs::branch_tip(&session, &name)?.is_some() {
            eprintln!(
                "warning: '{name}' is also a branch; a RUN argument '{name}' names the branch (refs/tags/{name} names the tag)"
            );
        }
        return Ok(0);
    }
    let s = Style::stdout();
    for (t, id) in refs::tags(&session)? {
        let subject = session
            .read_run(&id)
            .map(|r| r.subject().to_string())
            .unwrap_or_default();
        println!("{}  {}  {subject}", s.name(&t), s.id(&id.short()));
    }
    Ok(0)
}
