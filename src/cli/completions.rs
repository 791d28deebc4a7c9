//! `cairn completions`: shell completion scripts.

use clap::CommandFactory;

/// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn completions bash > ~/.local/share/bash-completion/completions/cairn\n  cairn completions zsh > ~/.zfunc/_cairn"
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
