//! `cairn compare`: a table of runs, one row each.

use std::collections::{BTreeSet, HashMap};

use super::output::{number, Style};
use super::Ctx;
use cairn::query::{Field, Literal, RunSummary, Scope};
use cairn::ObjectId;

/// Compare runs in a table: one row per run, a column per param and metric (only those that
/// vary, unless named), the best value of each metric marked with '*'.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn compare                               # runs of the current branch\n  cairn compare --all --where \"metrics.acc > 0.9 and params.optimizer = 'adam'\"\n  cairn compare --branch sweep --metrics acc,loss --order-by 'metrics.acc DESC' -n 10\n  cairn compare 3f2a 7b1e main~3 --csv > runs.csv"
)]
pub struct Args {
    /// Runs to compare (default: the current branch's history).
    pub runs: Vec<String>,
    /// The history of this branch.
    #[arg(long, conflicts_with = "all")]
    pub branch: Option<String>,
    /// Every run in the repository (with branch and status columns).
    #[arg(long)]
    pub all: bool,
    /// Param columns to show (comma-separated); default: those that vary.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub params: Vec<String>,
    /// Metric columns to show (comma-separated); default: those that vary.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub metrics: Vec<String>,
    /// Keep runs matching an MLflow-style filter.
    #[arg(long = "where", value_name = "QUERY")]
    pub filter: Option<String>,
    /// Sort, e.g. 'metrics.acc DESC, params.lr'.
    #[arg(long, value_name = "EXPR")]
    pub order_by: Option<String>,
    /// At most N rows.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
    /// CSV output.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// JSON output (an array of run summaries).
    #[arg(long)]
    pub json: bool,
    /// Metrics that are better when higher (for the best-value mark).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub higher_is_better: Vec<String>,
    /// Metrics that are better when lower (for the best-value mark).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub lower_is_better: Vec<String>,
}

/// Runs the library's search; a query error gets `label` (the filter's name in this command)
/// and a caret under its column.
pub fn search(
    session: &cairn::store::Session,
    summaries: &HashMap<ObjectId, RunSummary>,
    selection: &cairn::search::Selection,
    search: &cairn::search::Search,
    label: &str,
) -> anyhow::Result<Vec<RunSummary>> {
    let found = cairn::search::select(session, selection, summaries)
        .and_then(|ids| cairn::search::search(&ids, summaries, search));
    match found {
        Ok(f) => Ok(f.runs),
        Err(cairn::Error::Query { part, text, error }) => {
            let label = match part {
                cairn::search::QueryPart::Filter => label,
                cairn::search::QueryPart::Order => "--order-by",
            };
            Err(query_error(label, &text, &error))
        }
        Err(e) => Err(e.into()),
    }
}

/// A query error with a caret under the failing column: `LABEL at column N: message`.
pub fn query_error(label: &str, q: &str, e: &cairn::query::QueryError) -> anyhow::Error {
    anyhow::anyhow!(
        "{label} at column {}: {}\n  {q}\n  {}^",
        e.column,
        e.message,
        " ".repeat(e.column.saturating_sub(1))
    )
}

/// The width to fit the table in: `$COLUMNS` when set, else the terminal's (asked of stdout,
/// then stderr, so that `compare | less` still fits the screen), else 80.
fn table_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ only writes a `winsize` into `ws`, which outlives the call; on a
        // descriptor that is not a terminal it fails with ENOTTY and writes nothing.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_col > 0 {
            return usize::from(ws.ws_col);
        }
    }
    80
}

/// A value at full precision, for CSV.
fn raw_cell(l: Option<Literal>) -> String {
    match l {
        None => String::new(),
        Some(Literal::Num(n)) => n.to_string(),
        Some(Literal::Str(s)) => s,
    }
}

fn cell(l: Option<Literal>) -> String {
    match l {
        None => String::new(),
        Some(Literal::Num(n)) => number(Some(n)),
        Some(Literal::Str(s)) => s,
    }
}

fn varying(rows: &[RunSummary], fields: Vec<Field>) -> Vec<Field> {
    fields
        .into_iter()
        .filter(|f| {
            let vals: BTreeSet<String> = rows.iter().map(|r| cell(r.get(f))).collect();
            vals.len() > 1 || rows.len() == 1
        })
        .collect()
}

fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let summaries = cairn::summary::load_all(&session)?;
    let selection = if a.all {
        cairn::search::Selection::All
    } else if !a.runs.is_empty() {
        cairn::search::Selection::Runs(a.runs.clone())
    } else {
        cairn::search::Selection::History(a.branch.clone())
    };
    let query = cairn::search::Search {
        filter: a.filter.clone(),
        order: a.order_by.clone(),
        offset: 0,
        limit: a.max,
    };
    let rows = search(&session, &summaries, &selection, &query, "--where")?;
    drop(session);
    if a.json {
        super::output::print_json(&rows)?;
        return Ok(0);
    }
    let field = |scope, name: &str| Field {
        scope,
        name: name.to_string(),
    };
    let params: Vec<Field> = if a.params.is_empty() {
        let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.params.keys()).collect();
        varying(
            &rows,
            names.into_iter().map(|n| field(Scope::Param, n)).collect(),
        )
    } else {
        a.params.iter().map(|n| field(Scope::Param, n)).collect()
    };
    let metrics: Vec<Field> = if a.metrics.is_empty() {
        let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
        varying(
            &rows,
            names.into_iter().map(|n| field(Scope::Metric, n)).collect(),
        )
    } else {
        a.metrics.iter().map(|n| field(Scope::Metric, n)).collect()
    };
    let mut columns: Vec<(String, Vec<String>)> = Vec::new();
    columns.push((
        "run".into(),
        rows.iter()
            .map(|r| r.id[..12.min(r.id.len())].to_string())
            .collect(),
    ));
    if a.all {
        // Runs of every branch, failed ones among them: say which is which.
        columns.push((
            "branch".into(),
            rows.iter()
                .map(|r| r.branch.clone().unwrap_or_default())
                .collect(),
        ));
        columns.push((
            "status".into(),
            rows.iter().map(|r| r.status.clone()).collect(),
        ));
    }
    for p in &params {
        columns.push((
            p.name.clone(),
            rows.iter()
                .map(|r| {
                    if a.csv {
                        raw_cell(r.get(p))
                    } else {
                        cell(r.get(p))
                    }
                })
                .collect(),
        ));
    }
    for m in &metrics {
        let dir = cairn::diff::metrics::direction(&m.name, &a.higher_is_better, &a.lower_is_better);
        let vals: Vec<Option<f64>> = rows
            .iter()
            .map(|r| r.metrics.get(&m.name).copied().flatten())
            .collect();
        let best = match dir {
            Some(cairn::diff::Direction::Higher) => vals
                .iter()
                .flatten()
                .copied()
                .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v)))),
            Some(cairn::diff::Direction::Lower) => vals
                .iter()
                .flatten()
                .copied()
                .fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v)))),
            None => None,
        };
        let cells = rows
            .iter()
            .zip(&vals)
            .map(|(r, v)| {
                let c = if a.csv {
                    raw_cell(r.get(m))
                } else {
                    cell(r.get(m))
                };
                if !a.csv && best.is_some() && *v == best && rows.len() > 1 {
                    format!("{c}*")
                } else {
                    c
                }
            })
            .collect();
        columns.push((m.name.clone(), cells));
    }
    if a.csv {
        println!(
            "{}",
            columns
                .iter()
                .map(|(h, _)| csv_escape(h))
                .collect::<Vec<_>>()
                .join(",")
        );
        for i in 0..rows.len() {
            println!(
                "{}",
                columns
                    .iter()
                    .map(|(_, c)| csv_escape(&c[i]))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        return Ok(0);
    }
    if rows.is_empty() {
        ctx.status("no runs match");
        return Ok(0);
    }
    for (_, cells) in columns.iter_mut() {
        for c in cells.iter_mut().filter(|c| c.is_empty()) {
            *c = "-".into();
        }
    }
    let width = table_width();
    let mut shown: Vec<(&String, &Vec<String>, usize)> = Vec::new();
    let mut used = 0;
    for (h, cells) in &columns {
        let w = cells
            .iter()
            .map(|c| c.chars().count())
            .chain([h.chars().count()])
            .max()
            .unwrap_or(1)
            .min(16);
        if used + w + 2 > width && !shown.is_empty() {
            break;
        }
        used += w + 2;
        shown.push((h, cells, w));
    }
    let s = Style::stdout();
    let header: Vec<String> = shown
        .iter()
        .map(|(h, _, w)| format!("{:>w$}", truncate(h, *w), w = *w))
        .collect();
    println!("{}", s.head(header.join("  ").trim_end()));
    for i in 0..rows.len() {
        let line: Vec<String> = shown
            .iter()
            .map(|(_, c, w)| format!("{:>w$}", truncate(&c[i], *w), w = *w))
            .collect();
        println!("{}", line.join("  "));
    }
    if shown.len() < columns.len() {
        let hidden: Vec<&str> = columns[shown.len()..]
            .iter()
            .map(|(h, _)| h.as_str())
            .collect();
        ctx.status(format!(
            "{} more column(s) not shown: {} (choose with --params/--metrics, or use --csv)",
            hidden.len(),
            hidden.join(", ")
        ));
    }
    Ok(0)
}
