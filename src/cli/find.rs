//! `cairn find`: run ids matching a query, one a line, for scripts.

use super::Ctx;

/// Print the ids of runs (of the whole repository) that match an MLflow-style filter, newest
/// first, one per line.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cairn find \"metrics.acc > 0.9 and params.optimizer = 'adam'\"\n  cairn find \"metrics.acc > 0.89 or (params.lr = 0.01 and not tags.team = 'nlp')\"\n  cairn find \"params.dataset_version = '1.10'\"       # quoted: compared as text\n  cairn find \"tags.team = 'vision'\" --order-by 'metrics.acc DESC' -n 1\n  for r in $(cairn find \"attributes.status = 'failed'\"); do cairn show $r; done"
)]
pub struct Args {
    /// The filter, e.g. "metrics.acc > 0.9 and params.lr < 0.01" (empty matches all): AND, OR,
    /// NOT, parentheses; a 'quoted' value compares as text, a bare number numerically.
    pub query: String,
    /// Sort, e.g. 'metrics.acc DESC'.
    #[arg(long, value_name = "EXPR")]
    pub order_by: Option<String>,
    /// At most N ids.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
}

pub fn run(ctx: &Ctx, a: Args) -> anyhow::Result<i32> {
    let repo = ctx.repo()?;
    let session = repo.store().session()?;
    let summaries = cairn::summary::load_all(&session)?;
    let query = cairn::search::Search {
        filter: Some(a.query),
        order: a.order_by,
        offset: 0,
        limit: a.max,
    };
    let rows = super::compare::search(
        &session,
        &summaries,
        &cairn::search::Selection::All,
        &query,
        "query",
    )?;
    drop(session);
    let mut out = String::new();
    for r in rows {
        out.push_str(&r.id);
        out.push('\n');
    }
    print!("{out}");
    Ok(0)
}
