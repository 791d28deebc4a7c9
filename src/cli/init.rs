//! `cairn init`: create a repository.

use std::path::PathBuf;

use super::Ctx;

/// Create a cairn repository (a .cairn folder) in DIR or the current folder, and a commented
/// example project file (cairn.toml, defaults for `cairn run`) when there is none.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn init\n  cairn init ~/experiments/resnet")]
pub struct Args {
    /// Folder to create the repository in.
    pub dir: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let dir = match a.dir {
        Some(d) => ctx.cwd.join(d),
        None => ctx.cwd.clone(),
    };
    let repo = cairn::repo::Repo::init(&dir)?;
    // Keep the store out of git's view when the folder is a git work tree.
    let exclude = repo.root().join(".git").join("info").join("exclude");
    if exclude.parent().is_some_and(|p| p.is_dir()) {
        let cur = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !cur
            .lines()
            .any(|l| l.trim() == ".cairn/" || l.trim() == ".cairn")
        {
            let mut text = cur;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(".cairn/\n");
            let _ = std::fs::write(&exclude, text);
        }
    }
    // A commented example of the project file, unless the project already has one.
    let project = repo.root().join(cairn::project::PROJECT_FILE);
    if !project.exists() {
        let _ = std::fs::write(&project, cairn::project::Project::example_text());
    }
    ctx.status(format!(
        "Initialized empty cairn repository in {}",
        repo.root().join(cairn::repo::DOT_DIR).display()
    ));
    Ok(0)
}
