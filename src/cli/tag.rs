//! `cairn tag`: name runs for good.

use super::output::Style;
use super::Ctx;
use cairn::refs::{self, TAG_PREFIX};

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
        let full = format!("{TAG_PREFIX}{name}");
        let Some(old) = refs::get_id(&session, &full)? else {
            return Err(cairn::Error::NoSuchRef { kind: "tag", name }.into());
        };
        refs::update(&session, &full, Some(old), None)?;
        session.flush()?;
        ctx.status(format!("Deleted tag {name} (was {})", old.short()));
        return Ok(0);
    }
    if let Some(name) = a.name {
        refs::validate("tag", &name)?;
        let full = format!("{TAG_PREFIX}{name}");
        let target = super::resolve(&session, a.run.as_deref().unwrap_or("HEAD"))?;
        let old = refs::get_id(&session, &full)?;
        if old.is_some() && !a.force {
            return Err(
                anyhow::Error::new(cairn::Error::RefExists { kind: "tag", name })
                    .context("tags do not move; use -f to move it"),
            );
        }
        refs::update(&session, &full, old, Some(target))?;
        session.flush()?;
        ctx.status(format!("Tagged {} as {name}", target.short()));
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
