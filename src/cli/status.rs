//! `cairn status`: runs in progress and what the next run would record.

use super::output::{duration, number, size, value, Style};
use super::Ctx;
use cairn::run::{LiveRun, PathState};

/// Show runs in progress (started by `cairn run`, not yet committed) and what the next
/// `cairn run` would record: branch, code and its git state, params, data, metrics files,
/// outputs and environment, from cairn.toml.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn status\n  cairn status --json | jq '.in_progress[].id'\n  cairn status --clean"
)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Remove the folders of abandoned runs (their cairn process is gone).
    #[arg(long)]
    pub clean: bool,
    /// Ignore cairn.toml.
    #[arg(long)]
    pub no_project: bool,
}

/// The latest value of each live metric: `step N: loss 0.41, acc 0.87`.
fn latest(live: &LiveRun) -> Option<String> {
    let (m, _) = cairn::run::read_live_metrics(&live.record.metrics);
    let step = m
        .series
        .values()
        .flat_map(|s| s.points.iter().map(|p| p.step))
        .max()?;
    let vals: Vec<String> = m
        .series
        .iter()
        .take(6)
        .map(|(k, s)| format!("{k} {}", number(s.last())))
        .collect();
    let more = m.series.len().saturating_sub(6);
    Some(format!(
        "step {step}: {}{}",
        vals.join(", "),
        if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        }
    ))
}

fn live_json(l: &LiveRun) -> serde_json::Value {
    let log = std::fs::metadata(&l.record.log)
        .map(|m| m.len())
        .unwrap_or(0);
    serde_json::json!({
        "id": l.record.id,
        "state": if l.alive { l.record.state.as_str() } else { "abandoned" },
        "pid": l.record.pid,
        "child_pid": l.record.child_pid,
        "command": l.record.command,
        "cwd": l.record.cwd,
        "started_at": l.record.started_at,
        "message": l.record.message,
        "branch": l.record.branch,
        "log_bytes": log,
        "folder": l.dir,
    })
}

fn paths_line(label: &str, list: &[PathState]) {
    if list.is_empty() {
        return;
    }
    let items: Vec<String> = list
        .iter()
        .map(|p| {
            if p.exists {
                p.path.clone()
            } else {
                format!("{} (missing)", p.path)
            }
        })
        .collect();
    println!("  {label:<9}{}", items.join(", "));
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let mut live = cairn::run::list_in_progress(&repo)?;
    if a.clean {
        let (gone, kept): (Vec<LiveRun>, Vec<LiveRun>) = live.into_iter().partition(|l| !l.alive);
        for g in &gone {
            let failed = cairn::run::discard_abandoned(g)?;
            if failed.is_empty() {
                ctx.status(format!("removed abandoned run {}", g.record.id));
            } else {
                eprintln!(
                    "cairn: warning: cannot put back {} (the original stays in {}); run {} kept",
                    failed
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    g.dir.display(),
                    g.record.id
                );
            }
        }
        live = kept;
    }
    let opts = super::run::project_options(&repo, ctx, a.no_project)?;
    let preview = cairn::run::preview(&repo, &opts)?;
    if a.json {
        let params = match &preview.params {
            Ok(p) => serde_json::Value::Object(p.clone()),
            Err(e) => serde_json::json!({ "error": e }),
        };
        super::output::print_json(&serde_json::json!({
            "in_progress": live.iter().map(live_json).collect::<Vec<_>>(),
            "next": {
                "branch": preview.branch,
                "code": preview.code,
                "params_files": preview.params_files,
                "params": params,
                "data": preview.data,
                "metrics_files": preview.metrics_files,
                "outputs": preview.outputs,
                "env": preview.env,
            }
        }))?;
        return Ok(0);
    }
    let s = Style::stdout();
    let now = cairn::repo::now_ms();
    if live.is_empty() {
        println!("No runs in progress.");
    } else {
        println!("{}", s.head("Runs in progress"));
        for l in &live {
            let state = if l.alive {
                format!("{} {}", l.record.state, duration(now - l.record.started_at))
            } else {
                s.bad(&format!(
                    "abandoned (cairn process {} is gone; its output is in {})",
                    l.record.pid,
                    l.dir.display()
                ))
            };
            println!(
                "  {}  {state}  {}",
                s.id(&l.record.id),
                l.record.command.join(" ")
            );
            let log = std::fs::metadata(&l.record.log)
                .map(|m| m.len())
                .unwrap_or(0);
            let metrics = latest(l).unwrap_or_else(|| "no metrics yet".into());
            println!("  {:8}  {metrics}; output {}", "", size(log));
            if !l.alive {
                let files = cairn::run::overridden_params(l);
                if !files.is_empty() {
                    println!(
                        "  {:8}  {} still hold(s) the run's --param values; `cairn status --clean` puts the original back",
                        "",
                        files
                            .iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                println!(
                    "  {:8}  commit it as killed with `cairn run --salvage {}`",
                    "", l.record.id
                );
            }
        }
    }
    println!();
    let source = if a.no_project {
        "cairn.toml ignored"
    } else if repo.root().join(cairn::project::PROJECT_FILE).exists() {
        "defaults from cairn.toml"
    } else {
        "no cairn.toml"
    };
    println!(
        "{}",
        s.head(&format!(
            "Next run ({}; {source})",
            match &preview.branch {
                Some(b) => format!("on branch {b}"),
                None => "detached HEAD".into(),
            }
        ))
    );
    match &preview.code {
        None => println!("  {:<9}none", "code"),
        Some(c) if c.git => println!(
            "  {:<9}{} (git {}{}{})",
            "code",
            c.path,
            c.commit
                .as_deref()
                .map(|x| &x[..x.len().min(12)])
                .unwrap_or("(no commits)"),
            c.branch
                .as_deref()
                .map(|b| format!(" on {b}"))
                .unwrap_or_default(),
            if c.dirty {
                format!(
                    ", dirty: {} changed file(s), the diff is kept",
                    c.changed_files
                )
            } else {
                String::new()
            }
        ),
        Some(c) => println!("  {:<9}{} (not in git: the whole folder)", "code", c.path),
    }
    paths_line("params", &preview.params_files);
    match &preview.params {
        Ok(p) if !p.is_empty() => {
            let flat = cairn::capture::params::flatten(p);
            let shown: Vec<String> = flat
                .iter()
                .take(8)
                .map(|(k, v)| format!("{k}={}", value(v)))
                .collect();
            let more = flat.len().saturating_sub(8);
            println!(
                "  {:<9}{}{}",
                "",
                shown.join(", "),
                if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                }
            );
        }
        Ok(_) => {}
        Err(e) => println!("  {:<9}{}", "", s.bad(&format!("cannot read: {e}"))),
    }
    if !preview.data.is_empty() {
        let items: Vec<String> = preview
            .data
            .iter()
            .map(|(n, p)| format!("{n}={}{}", p.path, if p.exists { "" } else { " (missing)" }))
            .collect();
        println!("  {:<9}{}", "data", items.join(", "));
    }
    paths_line("metrics", &preview.metrics_files);
    paths_line("outputs", &preview.outputs);
    if !preview.env.is_empty() {
        let items: Vec<String> = preview
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("  {:<9}{}", "env", items.join(", "));
    }
    Ok(0)
}
