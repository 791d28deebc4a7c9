//! `cairn branch`: list, create and delete experiment branches.

use super::output::Style;
use super::Ctx;
use cairn::refs::{self, Head, BRANCH_PREFIX};

/// List branches, create one at a run (HEAD by default), or delete one.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn branch\n  cairn branch exp/wide-resnet\n  cairn branch exp/from-best 3f2a\n  cairn branch -d exp/dead-end"
)]
pub struct Args {
    /// Name of the branch to create.
    pub name: Option<String>,
    /// Run the new branch starts at (HEAD by default).
    pub run: Option<String>,
    /// Delete the named branch.
    #[arg(short, long, value_name = "NAME", conflicts_with_all = ["name", "run"])]
    pub delete: Option<String>,
    /// Move an existing branch.
    #[arg(short, long)]
    pub force: bool,
    /// Also list remote-tracking branches (origin/main...).
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let head = refs::head(&session)?;
    if let Some(name) = a.delete {
        let full = format!("{BRANCH_PREFIX}{name}");
        let Some(old) = refs::get_id(&session, &full)? else {
            return Err(cairn::Error::NoSuchRef {
                kind: "branch",
                name,
            }
            .into());
        };
        if head == Head::Branch(name.clone()) {
            anyhow::bail!(
                "cannot delete branch '{name}': it is the current branch (switch to another first)"
            );
        }
        refs::update(&session, &full, Some(old), None)?;
        session.flush()?;
        ctx.status(format!("Deleted branch {name} (was {})", old.short()));
        return Ok(0);
    }
    if let Some(name) = a.name {
        refs::validate("branch", &name)?;
        let full = format!("{BRANCH_PREFIX}{name}");
        let target = super::resolve(&session, a.run.as_deref().unwrap_or("HEAD"))?;
        let old = refs::get_id(&session, &full)?;
        if old.is_some() && !a.force {
            return Err(cairn::Error::RefExists {
                kind: "branch",
                name,
            }
            .into());
        }
        refs::update(&session, &full, old, Some(target))?;
        session.flush()?;
        let verb = if old.is_some() { "Moved" } else { "Created" };
        ctx.status(format!("{verb} branch {name} to {}", target.short()));
        if refs::get_id(&session, &format!("{}{name}", refs::TAG_PREFIX))?.is_some() {
            eprintln!(
                "warning: '{name}' is also a tag; a RUN argument '{name}' now names the branch (refs/tags/{name} names the tag)"
            );
        }
        return Ok(0);
    }
    let s = Style::stdout();
    let current = match &head {
        Head::Branch(b) => Some(b.clone()),
        Head::Detached(_) => None,
    };
    let branches = refs::branches(&session)?;
    if let (Some(c), false) = (
        &current,
        branches.iter().any(|(b, _)| Some(b) == current.as_ref()),
    ) {
        println!("* {} {}", s.name(c), s.dim("(no runs yet)"));
    }
    for (b, id) in branches {
        let mark = if Some(&b) == current.as_ref() {
            "*"
        } else {
            " "
        };
        let subject = session
            .read_run(&id)
            .map(|r| r.subject().to_string())
            .unwrap_or_default();
        println!("{mark} {}  {}  {subject}", s.name(&b), s.id(&id.short()));
    }
    if a.all {
        for (name, v) in session.refs("refs/remotes/")? {
            let short = &name["refs/remotes/".len()..];
            if short.contains("/notes/") || short.contains("/models/") {
                continue;
            }
            if let cairn::store::RefValue::Id(id) = v {
                let subject = session
                    .read_run(&id)
                    .map(|r| r.subject().to_string())
                    .unwrap_or_default();
                println!("  {}  {}  {subject}", s.dim(short), s.id(&id.short()));
            }
        }
    }
    Ok(0)
}
