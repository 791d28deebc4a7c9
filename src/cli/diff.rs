//! `cairn diff`: what changed between two runs.

use super::output::{number, size, value, Style};
use super::Ctx;
use cairn::diff::{ChangeKind, FileDiff, RunDiff};

/// Compare two runs: params, metrics (with series sparklines), code, data, artifacts and, with
/// --env, command, host and environment. Identical subtrees are skipped without being read.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn diff HEAD~1 HEAD\n  cairn diff baseline exp/wide --metrics --higher-is-better throughput\n  cairn diff 3f2a 7b1e --code -p\n  cairn diff A B --json | jq '.metrics'\n  cairn diff A B --exit-code --params || echo 'params differ'"
)]
pub struct Args {
    /// Run A (the old side).
    pub a: String,
    /// Run B (the new side); HEAD when omitted.
    pub b: Option<String>,
    /// Show params.
    #[arg(long)]
    pub params: bool,
    /// Show metrics.
    #[arg(long)]
    pub metrics: bool,
    /// Show code changes.
    #[arg(long)]
    pub code: bool,
    /// Show data changes.
    #[arg(long)]
    pub data: bool,
    /// Show artifact changes.
    #[arg(long)]
    pub artifacts: bool,
    /// Show command, host and environment differences.
    #[arg(long)]
    pub env: bool,
    /// Counts instead of file lists for code, data and artifacts; params and metrics are still
    /// listed (metrics without their sparklines).
    #[arg(long)]
    pub stat: bool,
    /// Line diffs of text files; row counts of large CSV/JSONL.
    #[arg(short = 'p', long = "patch")]
    pub patch: bool,
    /// Print the diff as JSON (one object: schema, a, b, params, metrics, code, data, artifacts, env;
    /// see "JSON output of cairn diff" in the diff guide).
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the runs differ (in the shown sections), 0 when they do not.
    #[arg(long)]
    pub exit_code: bool,
    /// Metrics that are better when higher (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub higher_is_better: Vec<String>,
    /// Metrics that are better when lower (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub lower_is_better: Vec<String>,
}

struct Sections {
    params: bool,
    metrics: bool,
    code: bool,
    data: bool,
    artifacts: bool,
    env: bool,
}

fn sign(change: ChangeKind) -> &'static str {
    match change {
        ChangeKind::Added => "A",
        ChangeKind::Removed => "D",
        ChangeKind::Modified => "M",
    }
}

fn file_line(s: &Style, prefix: &str, f: &FileDiff) -> String {
    let sizes = match (&f.file.old, &f.file.new) {
        (Some(o), Some(n)) => format!("{} -> {}", size(o.size), size(n.size)),
        (Some(o), None) => size(o.size),
        (None, Some(n)) => size(n.size),
        (None, None) => String::new(),
    };
    let mark = sign(f.file.change);
    let mark = match f.file.change {
        ChangeKind::Added => s.good(mark),
        ChangeKind::Removed => s.bad(mark),
        ChangeKind::Modified => s.id(mark),
    };
    let mut line = format!("  {mark} {prefix}{}  ({sizes})", f.file.path);
    if f.binary {
        line.push_str("  binary");
    }
    if let Some([a, b]) = f.rows {
        line.push_str(&format!(
            "  rows {} -> {}",
            a.map(|r| r.to_string()).unwrap_or("-".into()),
            b.map(|r| r.to_string()).unwrap_or("-".into())
        ));
    }
    line
}

fn print_patch(s: &Style, f: &FileDiff) {
    if let Some(p) = &f.patch {
        for l in p.lines() {
            if l.starts_with('+') && !l.starts_with("+++") {
                println!("{}", s.good(l));
            } else if l.starts_with('-') && !l.starts_with("---") {
                println!("{}", s.bad(l));
            } else if l.starts_with("@@") {
                println!("{}", s.id(l));
            } else {
                println!("{l}");
            }
        }
    }
}

fn files(s: &Style, prefix: &str, list: &[FileDiff], stat: bool, patch: bool) {
    if stat {
        let count = |k: ChangeKind| list.iter().filter(|f| f.file.change == k).count();
        println!(
            "  {} added, {} removed, {} modified",
            count(ChangeKind::Added),
            count(ChangeKind::Removed),
            count(ChangeKind::Modified)
        );
        return;
    }
    for f in list {
        println!("{}", file_line(s, prefix, f));
        if patch {
            print_patch(s, f);
        }
    }
}

fn render(d: &RunDiff, sec: &Sections, a: &Args) {
    let s = Style::stdout();
    println!(
        "{} {} {}",
        s.head("diff"),
        s.id(&d.a.short()),
        s.id(&d.b.short())
    );
    // Params are listed in full even with --stat: they are few, and the point of a diff.
    if sec.params && !d.params.is_empty() {
        println!("\n{}", s.head("Params"));
        let w = d.params.iter().map(|p| p.key.len()).max().unwrap_or(0);
        for p in &d.params {
            let old = p.old.as_ref().map(value).unwrap_or_default();
            let new = p.new.as_ref().map(value).unwrap_or_default();
            match p.change {
                ChangeKind::Added => println!("{} {:<w$}  {new}", s.good("+"), p.key),
                ChangeKind::Removed => println!("{} {:<w$}  {old}", s.bad("-"), p.key),
                ChangeKind::Modified => println!("~ {:<w$}  {old} -> {new}", p.key),
            }
        }
    }
    if sec.metrics && !d.metrics.is_empty() {
        println!("\n{}", s.head("Metrics"));
        let w = d
            .metrics
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        println!("  {:<w$}  {:>12}  {:>12}  change", "", "A", "B");
        for m in &d.metrics {
            let la = m.a.as_ref().map(|x| number(x.last)).unwrap_or("-".into());
            let lb = m.b.as_ref().map(|x| number(x.last)).unwrap_or("-".into());
            let change = match (m.abs_change, m.rel_change) {
                (Some(ab), Some(r)) if ab != 0.0 => format!(
                    "{}{} ({:+.1}%)",
                    if ab > 0.0 { "+" } else { "" },
                    number(Some(ab)),
                    r * 100.0
                ),
                (Some(ab), None) if ab != 0.0 => {
                    format!("{}{}", if ab > 0.0 { "+" } else { "" }, number(Some(ab)))
                }
                (Some(_), _) => "=".into(),
                _ => String::new(),
            };
            let verdict = match m.better {
                Some("b") => s.good("B better"),
                Some("a") => s.bad("A better"),
                _ => String::new(),
            };
            println!("  {:<w$}  {la:>12}  {lb:>12}  {change}  {verdict}", m.name);
            if !a.stat {
                for (label, side) in [("A", &m.a), ("B", &m.b)] {
                    if let Some(x) = side {
                        if let Some(sp) = &x.sparkline {
                            let best = match (x.best, x.best_step) {
                                (Some(b), Some(st)) => {
                                    format!("  best {} at step {st}", number(Some(b)))
                                }
                                _ => String::new(),
                            };
                            println!(
                                "  {:<w$}  {label} {sp}  {} steps, min {}, max {}{best}",
                                "",
                                x.count,
                                number(x.min),
                                number(x.max)
                            );
                        }
                    }
                }
            }
        }
    }
    if sec.code {
        let c = &d.code;
        if c.old_commit != c.new_commit || c.old_dirty != c.new_dirty || !c.files.is_empty() {
            let short = |x: &Option<String>, dirty: bool| {
                format!(
                    "{}{}",
                    x.as_deref()
                        .map(|v| &v[..v.len().min(12)])
                        .unwrap_or("(no git)"),
                    if dirty { " (dirty)" } else { "" }
                )
            };
            println!(
                "\n{}  {} -> {}",
                s.head("Code"),
                short(&c.old_commit, c.old_dirty),
                short(&c.new_commit, c.new_dirty)
            );
            files(&s, "", &c.files, a.stat, a.patch);
        }
    }
    if sec.data && !d.data.is_empty() {
        println!("\n{}", s.head("Data"));
        for dd in &d.data {
            let what = match dd.change {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Modified => "changed",
            };
            println!("  {} {what}: {} file(s)", dd.name, dd.files.len());
            let prefix = if dd.single_file {
                String::new()
            } else {
                format!("{}/", dd.name)
            };
            files(&s, &prefix, &dd.files, a.stat, a.patch);
        }
    }
    if sec.artifacts && !d.artifacts.is_empty() {
        println!("\n{}", s.head("Artifacts"));
        files(&s, "", &d.artifacts, a.stat, a.patch);
    }
    if sec.env && !d.env.is_empty() {
        println!("\n{}", s.head("Environment"));
        for e in &d.env {
            println!(
                "  {}: {} -> {}",
                e.field,
                e.old.as_deref().unwrap_or("-"),
                e.new.as_deref().unwrap_or("-")
            );
        }
    }
}

fn differs(d: &RunDiff, sec: &Sections) -> bool {
    let metrics = d.metrics.iter().any(|m| {
        m.a.as_ref().map(|x| (x.last.map(f64::to_bits), x.count))
            != m.b.as_ref().map(|x| (x.last.map(f64::to_bits), x.count))
    });
    (sec.params && !d.params.is_empty())
        || (sec.metrics && metrics)
        || (sec.code && (!d.code.files.is_empty() || d.code.old_commit != d.code.new_commit))
        || (sec.data && !d.data.is_empty())
        || (sec.artifacts && !d.artifacts.is_empty())
        || (sec.env && !d.env.is_empty())
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let b_spec = a.b.clone().unwrap_or_else(|| "HEAD".into());
    let ia = super::resolve(&session, &a.a)?;
    let ib = super::resolve(&session, &b_spec)?;
    let ra = session.read_run(&ia)?;
    let rb = session.read_run(&ib)?;
    let opts = cairn::diff::DiffOptions {
        patch: a.patch,
        higher_is_better: a.higher_is_better.clone(),
        lower_is_better: a.lower_is_better.clone(),
    };
    let d = cairn::diff::diff_runs(&session, ia, &ra, ib, &rb, &opts)?;
    // Printed without the index: a slow reader keeps no one waiting.
    drop(session);
    let any = a.params || a.metrics || a.code || a.data || a.artifacts;
    let sec = Sections {
        params: a.params || !any,
        metrics: a.metrics || !any,
        code: a.code || !any,
        data: a.data || !any,
        artifacts: a.artifacts || !any,
        env: a.env,
    };
    if a.json {
        super::output::print_json(&d)?;
    } else {
        render(&d, &sec, &a);
    }
    Ok(if a.exit_code && differs(&d, &sec) {
        1
    } else {
        0
    })
}
