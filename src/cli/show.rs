//! `cairn show`: one run in full.

use super::output::{duration, number, size, time, value, Style};
use super::Ctx;

/// Show a run: params, metrics, code version, data and artifacts with sizes, notes.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cairn show HEAD\n  cairn show 3f2a --json")]
pub struct Args {
    /// The run (id, prefix, branch, tag, HEAD~N).
    #[arg(default_value = "HEAD")]
    pub run: String,
    /// Print JSON: {id, run, notes}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let id = super::resolve(&session, &a.run)?;
    let run = session.read_run(&id)?;
    let notes = cairn::notes::for_run(&session, &id)?;
    let artifacts = match &run.artifacts {
        Some(art) if !a.json => {
            let node = cairn::view::Node::Tree(art.tree);
            cairn::view::list(&session, &run, &node, "", true)?
        }
        _ => Vec::new(),
    };
    // Printed without the index: a slow reader (`cairn show | less`) keeps no one waiting.
    drop(session);
    if a.json {
        super::output::print_json(&serde_json::json!({ "id": id, "run": run, "notes": notes }))?;
        return Ok(0);
    }
    let s = Style::stdout();
    println!("{} {}", s.head("run"), s.id(&id.to_hex()));
    if let Some(b) = &run.branch {
        println!("Branch:   {b}");
    }
    for p in &run.parents {
        println!("Parent:   {}", p.short());
    }
    println!("Author:   {}", run.author);
    println!(
        "Date:     {} ({}){}",
        time(run.started_at),
        duration(run.ended_at - run.started_at),
        if run.host.is_empty() {
            String::new()
        } else {
            format!(" on {}", run.host)
        }
    );
    println!(
        "Status:   {}{}",
        run.status,
        run.exit_code
            .map(|c| format!(" (exit {c})"))
            .unwrap_or_default()
    );
    if let Some(cmd) = &run.command {
        println!("Command:  {}", cmd.join(" "));
    }
    for (k, v) in &run.tags {
        println!("Tag:      {k}={v}");
    }
    if !run.message.is_empty() {
        println!();
        for l in run.message.lines() {
            println!("    {l}");
        }
    }
    if let Some(c) = &run.code {
        println!("\n{}", s.head("Code"));
        if let Some(g) = &c.git {
            let commit = g
                .commit
                .as_deref()
                .map(|c| &c[..c.len().min(12)])
                .unwrap_or("(no commits)");
            println!(
                "  git {commit}{}{}{}",
                g.branch
                    .as_deref()
                    .map(|b| format!(" on {b}"))
                    .unwrap_or_default(),
                if g.dirty {
                    " (dirty: uncommitted changes kept)"
                } else {
                    ""
                },
                g.remote_url
                    .as_deref()
                    .map(|u| format!(" from {u}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "  {} files, {} at {}  {}",
            c.files,
            size(c.size),
            c.path,
            s.dim(&c.tree.short())
        );
    }
    let flat = cairn::capture::params::flatten(&run.params);
    if !flat.is_empty() {
        println!("\n{}", s.head("Params"));
        let w = flat.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &flat {
            println!("  {k:<w$}  {}", value(v));
        }
    }
    if !run.metrics.is_empty() {
        println!("\n{}", s.head("Metrics"));
        let w = run.metrics.keys().map(String::len).max().unwrap_or(0);
        for (k, m) in &run.metrics {
            let reported = m
                .final_value
                .map(|f| {
                    format!(
                        "; final value reported apart: {} (differs from the last step)",
                        number(Some(f))
                    )
                })
                .unwrap_or_default();
            if m.count > 1 {
                println!(
                    "  {k:<w$}  {}  ({} steps, last step {}, min {}, max {}{reported})",
                    number(m.last),
                    m.count,
                    m.last_step,
                    number(m.min),
                    number(m.max)
                );
            } else if m.final_value.is_some() {
                println!(
                    "  {k:<w$}  {}  (1 step, at step {}{reported})",
                    number(m.last),
                    m.last_step
                );
            } else {
                println!("  {k:<w$}  {}", number(m.last));
            }
        }
    }
    if !run.data.is_empty() {
        println!("\n{}", s.head("Data"));
        for (name, d) in &run.data {
            println!(
                "  {name}  {} files, {}{}  {}",
                d.files,
                size(d.size),
                d.path
                    .as_deref()
                    .map(|p| format!(" from {p}"))
                    .unwrap_or_default(),
                s.dim(&d.id.short())
            );
        }
    }
    if let Some(art) = &run.artifacts {
        println!("\n{}", s.head("Artifacts"));
        let files: Vec<_> = artifacts.iter().filter(|i| i.kind != "tree").collect();
        for i in files.iter().take(20) {
            println!("  {:>10}  {}", size(i.size), i.path);
        }
        if files.len() > 20 {
            println!(
                "  ... and {} more ({} in all)",
                files.len() - 20,
                size(art.size)
            );
        }
    }
    if !run.stale.is_empty() {
        println!(
            "\n{}",
            s.head("Stale outputs (not written by this run; not stored with it)")
        );
        for st in &run.stale {
            println!(
                "  {}  last modified {}, before the run started",
                st.path,
                time(st.modified_at)
            );
        }
    }
    if !notes.is_empty() {
        println!("\n{}", s.head("Notes"));
        for n in &notes {
            println!("  {} {}: {}", time(n.time), n.author, n.text);
        }
    }
    Ok(0)
}
