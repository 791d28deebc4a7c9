//! `cairn log`: runs newest first.

use std::collections::{HashMap, HashSet};

use super::output::{number, time, Style};
use super::Ctx;
use cairn::ObjectId;

/// List runs, newest first, following first parents from a branch or run (HEAD by default).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn log\n  cairn log exp/lr-sweep -n 5\n  cairn log main..exp/lr-sweep      # the runs of exp/lr-sweep not in main\n  cairn log --branch-only           # only the runs committed on the current branch\n  cairn log --all --oneline\n  cairn log --json | jq '.[0].metrics'"
)]
pub struct Args {
    /// Branch, tag or run to start from; `A..B` lists the runs of B that are not in A's
    /// history (`main..exp`; an empty side is HEAD).
    pub run: Option<String>,
    /// Show at most N runs.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
    /// Only the runs committed on the branch itself, not those of the branch it started from
    /// (stops at the first run recorded on another branch).
    #[arg(long, conflicts_with = "all")]
    pub branch_only: bool,
    /// Every run in the repository, of every branch, newest first by start time.
    #[arg(long, conflicts_with = "run")]
    pub all: bool,
    /// One line per run: short id, names, subject.
    #[arg(long, conflicts_with = "json")]
    pub oneline: bool,
    /// Print JSON (an array of runs).
    #[arg(long)]
    pub json: bool,
}

/// The first-parent history of `start`, as far as this repository holds it.
fn first_parents(
    session: &cairn::store::Session,
    start: ObjectId,
) -> anyhow::Result<HashSet<ObjectId>> {
    let ids = cairn::history::first_parents(start, None, |id| {
        Ok(if session.contains(id)? {
            session.read_run(id)?.parents.first().copied()
        } else {
            None
        })
    })?;
    Ok(ids.into_iter().collect())
}

/// The branch `--branch-only` scopes to: the one named, or the current one.
fn scope_branch(session: &cairn::store::Session, spec: Option<&str>) -> anyhow::Result<String> {
    match spec {
        None | Some("HEAD") | Some("@") => match cairn::refs::head(session)? {
            cairn::refs::Head::Branch(b) => Ok(b),
            cairn::refs::Head::Detached(_) => Err(anyhow::anyhow!(
                "--branch-only: HEAD is detached; name a branch (cairn log BRANCH --branch-only)"
            )),
        },
        Some(name) => {
            if cairn::refs::branches(session)?
                .iter()
                .any(|(b, _)| b == name)
            {
                Ok(name.to_string())
            } else {
                Err(anyhow::anyhow!(
                    "--branch-only: '{name}' is not a branch; name a branch, or use A..B"
                ))
            }
        }
    }
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    // `A..B`: B's history without A's.
    let (exclude, spec) = match a.run.as_deref().and_then(|r| r.split_once("..")) {
        Some((left, right)) => {
            let left = if left.is_empty() { "HEAD" } else { left };
            let right = if right.is_empty() { "HEAD" } else { right };
            let stop = cairn::revision::resolve(&session, left)?;
            (first_parents(&session, stop)?, Some(right))
        }
        None => (HashSet::new(), a.run.as_deref()),
    };
    let only_branch = if a.branch_only {
        Some(scope_branch(&session, spec)?)
    } else {
        None
    };
    let start = if a.all {
        None
    } else {
        match cairn::revision::resolve(&session, spec.unwrap_or("HEAD")) {
            Ok(id) => Some(id),
            Err(cairn::Error::EmptyBranch(b)) if spec.is_none() => {
                if a.json {
                    println!("[]");
                } else {
                    ctx.status(format!("branch '{b}' has no runs yet"));
                }
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        }
    };
    // Decorations: names pointing at each run.
    let mut names: HashMap<ObjectId, Vec<String>> = HashMap::new();
    let head = cairn::refs::head(&session)?;
    for (b, id) in cairn::refs::branches(&session)? {
        let label = match &head {
            cairn::refs::Head::Branch(h) if *h == b => format!("HEAD -> {b}"),
            _ => b,
        };
        names.entry(id).or_default().push(label);
    }
    for (t, id) in cairn::refs::tags(&session)? {
        names.entry(id).or_default().push(format!("tag: {t}"));
    }
    for (name, v) in session.refs("refs/remotes/")? {
        let short = &name["refs/remotes/".len()..];
        if let (false, cairn::store::RefValue::Id(id)) =
            (short.contains("/notes/") || short.contains("/models/"), v)
        {
            names.entry(id).or_default().push(short.to_string());
        }
    }
    // With --all: every run, newest first; else the first-parent walk from `start`.
    let mut queue: std::collections::VecDeque<ObjectId> = match start {
        Some(id) => [id].into(),
        None => {
            let summaries = cairn::summary::load_all(&session)?;
            let mut ids: Vec<ObjectId> = summaries.keys().copied().collect();
            ids.sort_by_key(|id| {
                (
                    std::cmp::Reverse(summaries.get(id).map(|s| s.start_time).unwrap_or(0)),
                    *id,
                )
            });
            ids.into()
        }
    };
    let walk = start.is_some();
    // Everything is read first and the index given up before printing: a reader that is slow
    // to take the output (`cairn log | less`) must not keep other processes waiting.
    let mut runs = Vec::new();
    let mut missing_parent = None;
    let mut seen = HashSet::new();
    while let Some(id) = queue.pop_front() {
        if a.max.is_some_and(|m| runs.len() >= m) || !seen.insert(id) || exclude.contains(&id) {
            break;
        }
        let run = session.read_run(&id)?;
        if only_branch
            .as_deref()
            .is_some_and(|b| run.branch.as_deref() != Some(b))
        {
            break;
        }
        let parent = run.parents.first().copied();
        runs.push((id, run));
        if !walk {
            continue;
        }
        // A partially fetched run's ancestors may be on the remote only.
        if let Some(p) = parent {
            if !session.contains(&p)? {
                missing_parent = Some(p);
                break;
            }
            queue.push_back(p);
        }
    }
    drop(session);
    let style = Style::stdout();
    let mut json = Vec::new();
    for (id, run) in &runs {
        let id = *id;
        let deco_names = names.get(&id);
        if a.json {
            let metrics: serde_json::Map<String, serde_json::Value> = run
                .metrics
                .iter()
                .map(|(k, m)| (k.clone(), serde_json::json!(m.last)))
                .collect();
            json.push(serde_json::json!({
                "id": id,
                "parents": run.parents,
                "branch": run.branch,
                "message": run.message,
                "author": run.author,
                "status": run.status,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "metrics": metrics,
                "refs": deco_names.cloned().unwrap_or_default(),
            }));
        } else {
            let deco = deco_names
                .map(|v| {
                    format!(
                        " ({})",
                        v.iter()
                            .map(|s| style.name(s))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .unwrap_or_default();
            let status = if run.status == cairn::object::RunStatus::Completed {
                String::new()
            } else {
                format!(" [{}]", run.status)
            };
            if a.oneline {
                println!("{}{deco} {}{status}", style.id(&id.short()), run.subject());
            } else {
                let headline: Vec<String> = run
                    .metrics
                    .iter()
                    .take(4)
                    .map(|(k, m)| format!("{k}={}", number(m.last)))
                    .collect();
                println!(
                    "{}{deco}  {}  {}{status}  {}",
                    style.id(&id.short()),
                    style.dim(&time(run.started_at)),
                    run.subject(),
                    headline.join(" ")
                );
            }
        }
    }
    if let (Some(p), false) = (missing_parent, a.json) {
        println!(
            "{}",
            style.dim(&format!(
                "... earlier runs (from {}) are not in this repository",
                p.short()
            ))
        );
    }
    if a.json {
        super::output::print_json(&json)?;
    }
    Ok(0)
}
