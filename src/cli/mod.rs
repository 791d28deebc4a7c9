//! Command-line interface: one module per command; parsing and printing only.

mod branch;
mod cat;
mod checkout;
mod clone;
mod commit;
mod compare;
mod completions;
mod diff;
mod fetch;
mod find;
mod fsck;
mod gc;
mod init;
mod log;
mod ls;
mod model;
mod note;
mod output;
mod progress;
mod pull;
mod push;
mod reindex;
mod remote;
mod reproduce;
mod run;
mod show;
mod status;
mod switch;
mod tag;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Git-style versioning for machine-learning runs.
///
/// Every training run becomes an immutable, content-addressed commit of its code, data,
/// params, metrics and model artifacts.
#[derive(Parser)]
#[command(name = "cairn", version, about, long_about = None, after_help = "Examples:\n  cairn init\n  cairn commit -m baseline --code . --data train=data/train --params params.yaml --metrics metrics.json --artifact model.pt\n  cairn log\n  cairn show HEAD\n  cairn checkout HEAD~1 -o /tmp/previous")]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(
        short = 'C',
        global = true,
        value_name = "DIR",
        id = "chdir",
        help_heading = "Global options"
    )]
    pub dir: Option<PathBuf>,
    /// Print no progress or status messages.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    Init(init::Args),
    Commit(commit::Args),
    Log(log::Args),
    Show(show::Args),
    Ls(ls::Args),
    Cat(cat::Args),
    Checkout(checkout::Args),
    Branch(branch::Args),
    Switch(switch::Args),
    Tag(tag::Args),
    Note(note::Args),
    Diff(diff::Args),
    Compare(compare::Args),
    Find(find::Args),
    Reindex(reindex::Args),
    Remote(remote::Args),
    Model(model::Args),
    Push(push::Args),
    Fetch(fetch::Args),
    Pull(pull::Args),
    Clone(clone::Args),
    Run(run::Args),
    Status(status::Args),
    Watch(watch::Args),
    Reproduce(reproduce::Args),
    Fsck(fsck::Args),
    Gc(gc::Args),
    Completions(completions::Args),
}

/// What a command needs from its surroundings.
pub struct Ctx {
    /// The working folder.
    pub cwd: PathBuf,
    /// Quiet mode.
    pub quiet: bool,
}

impl Ctx {
    /// Opens the repository containing the working folder.
    pub fn repo(&self) -> anyhow::Result<cairn::repo::Repo> {
        let mut repo = cairn::repo::Repo::discover(&self.cwd)?;
        if !self.quiet {
            repo.set_wait_hook(Box::new(|| {
                eprintln!("waiting for another cairn process to release the repository...");
            }));
        }
        Ok(repo)
    }

    /// A progress reporter.
    pub fn progress(&self) -> progress::Bar {
        progress::Bar::new(self.quiet)
    }

    /// Prints a status line on stderr unless quiet.
    pub fn status(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let cwd = std::env::current_dir()?;
    let cwd = match cli.dir {
        Some(d) => {
            let d = cwd.join(d);
            if !d.is_dir() {
                anyhow::bail!("-C {}: no such folder", d.display());
            }
            d
        }
        None => cwd,
    };
    let ctx = Ctx {
        cwd,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Commit(a) => commit::run(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Cat(a) => cat::run(&ctx, a),
        Command::Checkout(a) => checkout::run(&ctx, a),
        Command::Branch(a) => branch::run(&ctx, a),
        Command::Switch(a) => switch::run(&ctx, a),
        Command::Tag(a) => tag::run(&ctx, a),
        Command::Note(a) => note::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Compare(a) => compare::run(&ctx, a),
        Command::Find(a) => find::run(&ctx, a),
        Command::Reindex(a) => reindex::run(&ctx, a),
        Command::Remote(a) => remote::run(&ctx, a),
        Command::Model(a) => model::run(&ctx, a),
        Command::Push(a) => push::run(&ctx, a),
        Command::Fetch(a) => fetch::run(&ctx, a),
        Command::Pull(a) => pull::run(&ctx, a),
        Command::Clone(a) => clone::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Watch(a) => watch::run(&ctx, a),
        Command::Reproduce(a) => reproduce::run(&ctx, a),
        Command::Fsck(a) => fsck::run(&ctx, a),
        Command::Gc(a) => gc::run(&ctx, a),
        Command::Completions(a) => completions::run(a),
    }
}

/// Runs the command line; returns the exit code (0 success, 1 failure, 2 usage).
pub fn main() -> i32 {
    // A shell asking for completions gets them and nothing else (first: it may set variables).
    completions::complete_if_asked();
    // Behave like other Unix tools when the reader of our output goes away (`cairn log | head`).
    // SAFETY: resetting a signal disposition at start-up, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cairn::store::raise_open_file_limit();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(mut e) => {
            best_suggestion_first(&mut e);
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// clap lists its "similar" names from the least to the most similar (`cairn comit` suggested
/// 'completions' before 'commit'); the most similar comes first here.
fn best_suggestion_first(e: &mut clap::Error) {
    use clap::error::{ContextKind, ContextValue};
    for kind in [
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
    ] {
        if let Some(ContextValue::Strings(list)) = e.get(kind) {
            let mut list = list.clone();
            list.reverse();
            e.insert(kind, ContextValue::Strings(list));
        }
    }
}

/// Prints an error: one line, its causes, and a hint when there is one.
fn report(e: &anyhow::Error) {
    // Context first, then each cause that the message does not already include.
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    eprintln!("error: {msg}");
    let mut hint = None;
    for cause in e.chain() {
        if let Some(ce) = cause.downcast_ref::<cairn::Error>() {
            hint = hint.or_else(|| ce.hint());
        }
        if let Some(se) = cause.downcast_ref::<cairn::store::StoreError>() {
            hint = hint.or_else(|| cairn::error::store_hint(se));
        }
    }
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
}

/// Resolves a RUN argument in a session.
pub fn resolve(session: &cairn::store::Session, spec: &str) -> anyhow::Result<cairn::ObjectId> {
    Ok(cairn::revision::resolve(session, spec)?)
}
