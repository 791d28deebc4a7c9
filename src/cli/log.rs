//! `cairn log`: runs newest first.

use std::collections::HashMap;

use super::output::{number, time, Style};
use super::Ctx;
use cairn::ObjectId;

/// List runs, newest first, following first parents from a branch or run (HEAD by default).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn log\n  cairn log exp/lr-sweep -n 5\n  cairn log --json | jq '.[0].metrics'"
)]
pub struct Args {
    /// Branch, tag or run to start from.
    pub run: Option<String>,
    /// Show at most N runs.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
    /// Print JSON (an array of runs).
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let spec = a.run.as_deref().unwrap_or("HEAD");
    let start = match cairn::revision::resolve(&session, spec) {
        Ok(id) => id,
        Err(cairn::Error::EmptyBranch(b)) if a.run.is_none() => {
            if a.json {
                println!("[]");
            } else {
                ctx.status(format!("branch '{b}' has no runs yet"));
            }
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
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
    let style = Style::stdout();
    let mut json = Vec::new();
    let mut cur = Some(start);
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = cur {
        if a.max.is_some_and(|m| n >= m) || !seen.insert(id) {
            break;
        }
        let run = session.read_run(&id)?;
        n += 1;
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
                "refs": names.get(&id).cloned().unwrap_or_default(),
            }));
        } else {
            let deco = names
                .get(&id)
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
            let headline: Vec<String> = run
                .metrics
                .iter()
                .take(4)
                .map(|(k, m)| format!("{k}={}", number(m.last)))
                .collect();
            let status = if run.status == "completed" {
                String::new()
            } else {
                format!(" [{}]", run.status)
            };
            println!(
                "{}{deco}  {}  {}{status}  {}",
                style.id(&id.short()),
                style.dim(&time(run.started_at)),
                run.subject(),
                headline.join(" ")
            );
        }
        cur = run.parents.first().copied();
        // A partially fetched run's ancestors may be on the remote only.
        if let Some(p) = cur {
            if !session.contains(&p)? {
                if !a.json {
                    println!(
                        "{}",
                        style.dim(&format!(
                            "... earlier runs (from {}) are not in this repository",
                            p.short()
                        ))
                    );
                }
                break;
            }
        }
    }
    if a.json {
        super::output::print_json(&json)?;
    }
    Ok(0)
}
