//! `cairn watch`: live metrics of a run in progress, with sparklines.

use std::io::IsTerminal;
use std::time::Duration;

use super::output::{duration, number, Style};
use super::Ctx;
use cairn::capture::metrics::Metrics;

/// Show the metrics of a run in progress with sparklines: once, or, with --follow, refreshed
/// until the run ends. RUN is the in-progress id shown by `cairn run` and `cairn status` (a
/// prefix will do); without it, the newest run in progress. A committed run's recorded metrics
/// are shown too.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn watch\n  cairn watch 3f2a9c1e --follow\n  cairn watch -f --interval 5\n  cairn watch HEAD"
)]
pub struct Args {
    /// The run in progress (its id or a prefix), or a committed run.
    pub run: Option<String>,
    /// Keep refreshing until the run ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Seconds between refreshes with --follow.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,
    /// Width of the sparklines.
    #[arg(long, default_value_t = 40, value_name = "COLUMNS")]
    pub width: usize,
}

/// The lines showing `metrics`: name, last value and step, sparkline, count, min and max.
fn metric_lines(s: &Style, metrics: &[(String, Vec<(i64, f64)>)], width: usize) -> Vec<String> {
    let w = metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for (name, points) in metrics {
        let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
        let last = points.iter().max_by_key(|(st, _)| *st).copied();
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let min = finite.clone().reduce(f64::min);
        let max = finite.reduce(f64::max);
        out.push(format!(
            "  {name:<w$}  {:>10}  step {:<6}  {}  {} points, min {}, max {}",
            number(last.map(|l| l.1)),
            last.map(|l| l.0).unwrap_or(0),
            s.good(&cairn::diff::metrics::sparkline(&values, width)),
            points.len(),
            number(min),
            number(max)
        ));
    }
    out
}

fn series(m: &Metrics) -> Vec<(String, Vec<(i64, f64)>)> {
    m.series
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                s.points.iter().map(|p| (p.step, p.value)).collect(),
            )
        })
        .collect()
}

/// Shows a committed run's recorded metrics.
fn committed(ctx: &Ctx, spec: &str, width: usize) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let id = super::resolve(&session, spec)?;
    let run = session.read_run(&id)?;
    let mut list = Vec::new();
    for (name, m) in &run.metrics {
        let points = match m.series {
            Some(sid) => cairn::diff::metrics::load_series(&session, &sid)?
                .into_iter()
                .map(|(st, v)| (st, v.unwrap_or(f64::NAN)))
                .collect(),
            None => vec![(m.last_step, m.last.unwrap_or(f64::NAN))],
        };
        list.push((name.clone(), points));
    }
    let s = Style::stdout();
    println!(
        "run {}  {} (not in progress)  {}",
        s.id(&id.short()),
        run.status,
        run.command
            .as_ref()
            .map(|c| c.join(" "))
            .unwrap_or_default()
    );
    for l in metric_lines(&s, &list, width) {
        println!("{l}");
    }
    if list.is_empty() {
        println!("  no metrics");
    }
    Ok(0)
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let first = cairn::run::find_in_progress(&repo, a.run.as_deref())?;
    let Some(first) = first else {
        return match &a.run {
            Some(spec) => committed(ctx, spec, a.width),
            None => anyhow::bail!("no run in progress (start one with `cairn run -- COMMAND`)"),
        };
    };
    let id = first.record.id.clone();
    let s = Style::stdout();
    let tty = std::io::stdout().is_terminal();
    let interval = Duration::from_secs_f64(a.interval.clamp(0.05, 3600.0));
    let mut last_seen: Option<(u64, u64)> = None;
    let mut record = first.record.clone();
    loop {
        let current = cairn::run::find_in_progress(&repo, Some(&id))?;
        let Some(live) = current else {
            match cairn::run::committed_from(&repo, &record)? {
                Some((run, branch)) => println!(
                    "run {id} has ended; committed as {} on {}: `cairn show {}` shows it",
                    run.short(),
                    if branch.is_empty() {
                        "detached HEAD"
                    } else {
                        branch.as_str()
                    },
                    run.short()
                ),
                None => println!(
                    "run {id} has ended and no committed run was found for it; `cairn status` \
                     shows whether it was abandoned"
                ),
            }
            return Ok(0);
        };
        record = live.record.clone();
        let size_of = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let seen = (size_of(&live.record.metrics), size_of(&live.record.log));
        if last_seen != Some(seen) || !a.follow {
            last_seen = Some(seen);
            let (m, errors) = cairn::run::read_live_metrics(&live.record.metrics);
            let state = if live.alive {
                format!(
                    "{} {}",
                    live.record.state,
                    duration(cairn::repo::now_ms() - live.record.started_at)
                )
            } else {
                "abandoned (its cairn process is gone)".to_string()
            };
            let mut lines = vec![format!(
                "run {}  {state}  {}",
                s.id(&id),
                live.record.command.join(" ")
            )];
            lines.extend(metric_lines(&s, &series(&m), a.width));
            if m.is_empty() {
                lines.push("  no metrics yet".into());
            }
            if !errors.is_empty() {
                lines.push(format!("  {} bad metrics line(s) skipped", errors.len()));
            }
            if let Some(l) = cairn::run::last_log_line(&live.record.log) {
                let l: String = l.chars().take(120).collect();
                lines.push(format!("  {} {l}", s.dim("output:")));
            }
            if a.follow && tty {
                print!("\x1b[H\x1b[2J");
            }
            println!("{}", lines.join("\n"));
            if a.follow && !tty {
                println!();
            }
        }
        if !a.follow {
            return Ok(0);
        }
        if !live.alive {
            return Ok(1);
        }
        std::thread::sleep(interval);
    }
}
