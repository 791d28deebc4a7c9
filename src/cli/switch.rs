//! `cairn switch`: make another branch current.

use super::Ctx;
use cairn::refs::{self, BRANCH_PREFIX, HEAD};
use cairn::store::RefValue;

/// Make BRANCH the current branch: the next commit goes on it.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn switch exp/wide-resnet\n  cairn switch -c exp/new-idea")]
pub struct Args {
    /// The branch.
    pub name: String,
    /// Create the branch at the current run first.
    #[arg(short, long)]
    pub create: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    refs::validate("branch", &a.name)?;
    let full = format!("{BRANCH_PREFIX}{}", a.name);
    let exists = refs::get_id(&session, &full)?.is_some();
    if !exists {
        if !a.create {
            let branches = refs::branches(&session)?.into_iter().map(|(b, _)| b);
            let err = cairn::suggest::with_candidates(
                cairn::Error::NoSuchRef {
                    kind: "branch",
                    name: a.name.clone(),
                },
                cairn::suggest::similar(&a.name, branches),
            );
            return Err(anyhow::Error::new(err).context(format!(
                "cannot switch to '{0}': no branch named '{0}'; use `cairn switch -c {0}` to create it",
                a.name
            )));
        }
        match cairn::revision::resolve(&session, "HEAD") {
            Ok(tip) => refs::update(&session, &full, None, Some(tip))?,
            Err(cairn::Error::EmptyBranch(_)) => {}
            Err(e) => return Err(e.into()),
        }
    } else if a.create {
        return Err(cairn::Error::RefExists {
            kind: "branch",
            name: a.name,
        }
        .into());
    }
    let old = session.ref_get(HEAD)?;
    session.ref_cas(HEAD, old.as_ref(), Some(&RefValue::Symbolic(full)))?;
    session.flush()?;
    ctx.status(format!("Switched to branch {}", a.name));
    Ok(0)
}
