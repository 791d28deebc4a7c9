//! `cairn clone`: a new repository from a remote.

use std::path::PathBuf;

use super::Ctx;

/// Create a repository from a remote: every branch, tag and run, with `origin` configured.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn clone /mnt/team/cairn experiments\n  cairn clone s3://ml-runs/team-a --endpoint http://127.0.0.1:9000 runs --branch exp/wide"
)]
pub struct Args {
    /// A folder, file:///path, or s3://bucket/prefix.
    pub url: String,
    /// The new repository's folder (default: the URL's last component).
    pub dir: Option<PathBuf>,
    /// The branch to make current.
    #[arg(short, long)]
    pub branch: Option<String>,
    /// S3 endpoint for S3-compatible servers.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub region: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let url = cairn::remote::normalize_url(&a.url, &ctx.cwd)?;
    let dir = match a.dir {
        Some(d) => cairn::repo::clean_path(&ctx.cwd.join(d)),
        None => {
            let last = url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("repo")
                .to_string();
            ctx.cwd
                .join(if last.is_empty() { "repo".into() } else { last })
        }
    };
    if dir.join(cairn::repo::DOT_DIR).exists() {
        anyhow::bail!("{}: already a cairn repository", dir.display());
    }
    let cfg = cairn::remote::RemoteConfig {
        url: url.clone(),
        endpoint: a.endpoint,
        region: a.region,
    };
    let progress = ctx.progress();
    let repo = cairn::remote::sync::clone(&dir, cfg, a.branch.as_deref(), &progress)?;
    ctx.status(format!("Cloned {url} into {}", repo.root().display()));
    Ok(0)
}
