//! `cairn remote`: manage remotes.

use super::Ctx;

/// List, add or remove remotes: folders (local or mounted) and S3-compatible storage.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn remote add origin /mnt/team/cairn\n  cairn remote add origin s3://ml-runs/team-a\n  cairn remote add minio s3://runs/cairn --endpoint http://127.0.0.1:9000\n  cairn remote -v\n  cairn remote remove old"
)]
pub struct Args {
    /// Show URLs.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// Remote actions.
#[derive(clap::Subcommand)]
pub enum Action {
    /// Add a remote.
    #[command(
        after_help = "Examples:\n  cairn remote add origin /mnt/team/cairn\n  cairn remote add backup ~/backups/cairn/project-x --create\n  cairn remote add origin s3://ml-runs/team-a\n  cairn remote add minio s3://runs/cairn --endpoint http://127.0.0.1:9000"
    )]
    Add {
        /// Its name (e.g. origin).
        name: String,
        /// A folder, file:///path, or s3://bucket/prefix.
        url: String,
        /// S3 endpoint for S3-compatible servers (MinIO, Ceph, R2, SeaweedFS...).
        #[arg(long)]
        endpoint: Option<String>,
        /// S3 region (default: AWS_REGION, else us-east-1).
        #[arg(long)]
        region: Option<String>,
        /// Do not check that the server honours conditional writes.
        #[arg(long)]
        no_check: bool,
        /// Create the remote's folder, and its parent folders, now. Without it a folder whose
        /// parent does not exist is refused (the folder itself is created by the first push).
        #[arg(long)]
        create: bool,
    },
    /// Remove a remote and its remote-tracking refs.
    #[command(alias = "rm", after_help = "Examples:\n  cairn remote remove old")]
    Remove {
        /// The remote.
        name: String,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    match a.action {
        None => {
            for (name, cfg) in cairn::remote::list(&repo)? {
                if a.verbose {
                    let extra = cfg
                        .endpoint
                        .map(|e| format!(" (endpoint {e})"))
                        .unwrap_or_default();
                    println!("{name}\t{}{extra}", cfg.url);
                } else {
                    println!("{name}");
                }
            }
        }
        Some(Action::Add {
            name,
            url,
            endpoint,
            region,
            no_check,
            create,
        }) => {
            let url = cairn::remote::normalize_url(&url, &ctx.cwd)?;
            let cfg = cairn::remote::RemoteConfig {
                url: url.clone(),
                endpoint,
                region,
            };
            cairn::remote::add(&repo, &name, cfg, !no_check, create)?;
            ctx.status(format!("Added remote {name} at {url}"));
        }
        Some(Action::Remove { name }) => {
            cairn::remote::remove(&repo, &name)?;
            ctx.status(format!("Removed remote {name}"));
        }
    }
    Ok(0)
}
