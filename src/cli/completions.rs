//! `cairn completions`: shell completion scripts, and the names dynamic completion offers.

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

/// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell). The script
/// completes commands and options; for branch, tag, remote and model names too, have the shell
/// ask cairn itself instead: `source <(CAIRN_COMPLETE=bash cairn)` in ~/.bashrc.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn completions bash > ~/.local/share/bash-completion/completions/cairn\n  cairn completions zsh > ~/.zfunc/_cairn\n  echo 'source <(CAIRN_COMPLETE=bash cairn)' >> ~/.bashrc   # with names: branches, tags...\n  echo 'source <(CAIRN_COMPLETE=zsh cairn)' >> ~/.zshrc\n  echo 'CAIRN_COMPLETE=fish cairn | source' >> ~/.config/fish/completions/cairn.fish"
)]
pub struct Args {
    /// The shell.
    pub shell: clap_complete::Shell,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "cairn", &mut std::io::stdout());
    Ok(0)
}

/// The environment variable that asks cairn for completions (`CAIRN_COMPLETE=bash cairn`
/// prints the shell's registration; the shell then sets it to ask for candidates).
pub const COMPLETE_VAR: &str = "CAIRN_COMPLETE";

/// Answers a completion request, and exits, when the shell made one; returns otherwise.
pub fn complete_if_asked() {
    clap_complete::CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .complete();
}

/// Which names an argument takes.
#[derive(Clone, Copy)]
enum Names {
    /// Branches, tags, remote-tracking branches, `HEAD`, `model:NAME`.
    Runs,
    Branches,
    Tags,
    Remotes,
    Models,
    /// What push and fetch take: branches, tags, `model:NAME`.
    Refs,
}

/// The names argument `arg` of the command `path` (`model stage`) takes, if any.
fn names_of(path: &str, arg: &str) -> Option<Names> {
    Some(match (path, arg) {
        ("show" | "log" | "ls" | "checkout" | "note" | "reproduce", "run")
        | ("tag" | "branch" | "model register", "run")
        | ("cat", "spec")
        | ("diff", "a" | "b")
        | ("compare", "runs") => Names::Runs,
        ("switch", "name")
        | ("branch", "delete")
        | ("pull", "branch")
        | ("commit" | "run" | "compare", "branch") => Names::Branches,
        ("tag", "delete") => Names::Tags,
        ("push" | "fetch" | "pull", "remote") | ("remote remove", "name") => Names::Remotes,
        ("model show", "spec") | ("model stage" | "model history" | "model register", "name") => {
            Names::Models
        }
        ("push" | "fetch", "refs") => Names::Refs,
        _ => return None,
    })
}

/// The command line, with a completer on every argument that takes names.
pub fn command() -> clap::Command {
    decorate(super::Cli::command(), "")
}

fn decorate(cmd: clap::Command, path: &str) -> clap::Command {
    let here = path.to_string();
    let cmd = cmd.mut_args(|arg| match names_of(&here, arg.get_id().as_str()) {
        Some(names) => arg.add(ArgValueCandidates::new(move || candidates(names))),
        None => arg,
    });
    cmd.mut_subcommands(|sub| {
        let name = sub.get_name().to_string();
        let sub_path = if path.is_empty() {
            name
        } else {
            format!("{path} {name}")
        };
        decorate(sub, &sub_path)
    })
}

/// The names of the repository the shell is in; none when there is none or it is busy.
fn candidates(names: Names) -> Vec<CompletionCandidate> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let Ok(mut repo) = cairn::repo::Repo::discover(&cwd) else {
        return Vec::new();
    };
    // A completion must not hang while another cairn process holds the repository.
    repo.set_lock_timeout(std::time::Duration::from_millis(500));
    list(&repo, names)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, help)| CompletionCandidate::new(name).help(help.map(Into::into)))
        .collect()
}

fn list(repo: &cairn::repo::Repo, names: Names) -> anyhow::Result<Vec<(String, Option<String>)>> {
    use cairn::refs;
    let session = repo.store().session()?;
    let branches = || -> anyhow::Result<Vec<(String, Option<String>)>> {
        Ok(refs::branches(&session)?
            .into_iter()
            .map(|(b, _)| (b, Some("branch".into())))
            .collect())
    };
    let tags = || -> anyhow::Result<Vec<(String, Option<String>)>> {
        Ok(refs::tags(&session)?
            .into_iter()
            .map(|(t, _)| (t, Some("tag".into())))
            .collect())
    };
    let models = |spec: bool| -> anyhow::Result<Vec<(String, Option<String>)>> {
        Ok(session
            .refs(cairn::registry::MODEL_PREFIX)?
            .into_iter()
            .map(|(r, _)| {
                let name = &r[cairn::registry::MODEL_PREFIX.len()..];
                let value = if spec {
                    format!("model:{name}")
                } else {
                    name.to_string()
                };
                (value, Some("model".into()))
            })
            .collect())
    };
    Ok(match names {
        Names::Branches => branches()?,
        Names::Tags => tags()?,
        Names::Models => models(false)?,
        Names::Remotes => cairn::remote::list(repo)?
            .into_iter()
            .map(|(name, cfg)| (name, Some(cfg.url)))
            .collect(),
        Names::Refs => {
            let mut all = branches()?;
            all.extend(tags()?);
            all.extend(models(true)?);
            all
        }
        Names::Runs => {
            let mut all = vec![("HEAD".to_string(), Some("the current run".into()))];
            all.extend(branches()?);
            all.extend(tags()?);
            for (r, _) in session.refs("refs/remotes/")? {
                let short = &r["refs/remotes/".len()..];
                if !short.contains("/notes/") && !short.contains("/models/") {
                    all.push((short.to_string(), Some("remote-tracking branch".into())));
                }
            }
            all.extend(models(true)?);
            all
        }
    })
}
