//! Searching runs: select them (runs named, a branch's history, or every run), filter them with
//! the query language, sort and page them. `cairn compare`, `cairn find`, and the server's runs
//! table share it, over the query index's summaries, never reading the runs themselves.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::query::{self, Known, RunSummary};
use crate::store::Session;

/// Which runs a search starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every run of the repository, newest first.
    All,
    /// The first-parent history of a RUN spec (`HEAD`, a branch, a tag, …), newest first.
    /// `None` is HEAD, and a branch with no runs yet then selects nothing.
    History(Option<String>),
    /// These runs, in this order (RUN specs).
    Runs(Vec<String>),
}

/// What a search asks for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A filter in the query language; `None` or empty matches every run.
    pub filter: Option<String>,
    /// Sort keys (`metrics.acc DESC, params.lr`); `None` keeps the selection's order.
    pub order: Option<String>,
    /// Runs to skip (after filtering and sorting).
    pub offset: usize,
    /// At most this many runs.
    pub limit: Option<usize>,
}

/// The runs found, and how many matched before paging.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// The matching runs after `offset` and `limit`.
    pub runs: Vec<RunSummary>,
    /// How many runs matched the filter in all.
    pub total: usize,
}

/// The ids `selection` names, newest first (or in the order given).
pub fn select(
    session: &Session,
    selection: &Selection,
    summaries: &HashMap<ObjectId, RunSummary>,
) -> Result<Vec<ObjectId>> {
    match selection {
        Selection::All => {
            let mut ids: Vec<ObjectId> = summaries.keys().copied().collect();
            ids.sort_by_key(|id| {
                (
                    std::cmp::Reverse(summaries.get(id).map(|s| s.start_time).unwrap_or(0)),
                    *id,
                )
            });
            Ok(ids)
        }
        Selection::Runs(specs) => specs
            .iter()
            .map(|r| crate::revision::resolve(session, r))
            .collect(),
        Selection::History(spec) => {
            let start = match crate::revision::resolve(session, spec.as_deref().unwrap_or("HEAD")) {
                Ok(id) => id,
                Err(Error::EmptyBranch(_)) if spec.is_none() => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            crate::history::first_parents(start, None, |id| {
                Ok(summaries
                    .get(id)
                    .and_then(|s| s.parents.first())
                    .and_then(|p| ObjectId::from_hex(p)))
            })
        }
    }
}

/// Filters, sorts and pages the runs `ids` of `summaries`. A filter or sort key naming a
/// metric or param that no run of `summaries` has is an error ([`Error::Query`]), not an empty
/// or unsorted answer.
pub fn search(
    ids: &[ObjectId],
    summaries: &HashMap<ObjectId, RunSummary>,
    search: &Search,
) -> Result<Found> {
    let known = Known::of(summaries.values());
    let query_err = |part: QueryPart, text: &str| {
        let text = text.to_string();
        move |error: query::QueryError| Error::Query { part, text, error }
    };
    let filter = match search.filter.as_deref().filter(|q| !q.trim().is_empty()) {
        Some(q) => Some(
            query::parse_filter(q)
                .and_then(|f| f.check_known(&known).map(|()| f))
                .map_err(query_err(QueryPart::Filter, q))?,
        ),
        None => None,
    };
    let keys = match search.order.as_deref().filter(|o| !o.trim().is_empty()) {
        Some(o) => Some(
            query::parse_order(o)
                .and_then(|k| query::check_order_known(&k, &known).map(|()| k))
                .map_err(query_err(QueryPart::Order, o))?,
        ),
        None => None,
    };
    let mut rows: Vec<RunSummary> = ids
        .iter()
        .filter_map(|id| summaries.get(id))
        .filter(|s| filter.as_ref().is_none_or(|f| f.matches(s)))
        .cloned()
        .collect();
    if let Some(keys) = keys {
        query::sort(&mut rows, &keys);
    }
    let total = rows.len();
    let runs = rows
        .into_iter()
        .skip(search.offset)
        .take(search.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(Found { runs, total })
}

/// Which part of a search a query error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryPart {
    /// The filter.
    Filter,
    /// The sort keys.
    Order,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::{commit, CommitRequest};
    use crate::progress::NoProgress;
    use crate::repo::Repo;

    /// A repository with runs lr=1..=4 on main (accuracy 0.1 × lr) and one on `exp`.
    fn repo() -> (tempfile::TempDir, Repo, Vec<ObjectId>) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repo::init(tmp.path()).unwrap();
        let mut ids = Vec::new();
        for (lr, branch) in [
            (1, "main"),
            (2, "main"),
            (3, "main"),
            (4, "main"),
            (9, "exp"),
        ] {
            let mut metrics = crate::capture::metrics::Metrics::default();
            metrics.push("acc", 0, f64::from(lr) / 10.0);
            let req = CommitRequest {
                cwd: repo.root().to_path_buf(),
                message: format!("lr {lr}"),
                params: vec![format!("lr={lr}")],
                metrics: Some(metrics),
                branch: Some(branch.into()),
                ..Default::default()
            };
            ids.push(commit(&repo, &req, &NoProgress).unwrap().id);
        }
        (tmp, repo, ids)
    }

    #[test]
    fn selects_filters_sorts_and_pages() {
        let (_tmp, repo, ids) = repo();
        let session = repo.store().session().unwrap();
        let all = crate::summary::load_all(&session).unwrap();
        let history = select(&session, &Selection::History(None), &all).unwrap();
        assert_eq!(history, [ids[3], ids[2], ids[1], ids[0]]);
        assert_eq!(select(&session, &Selection::All, &all).unwrap().len(), 5);
        let named = Selection::Runs(vec!["exp".into(), ids[0].to_hex()]);
        assert_eq!(select(&session, &named, &all).unwrap(), [ids[4], ids[0]]);

        let q = Search {
            filter: Some("params.lr > 1 and metrics.acc < 0.35".into()),
            order: Some("metrics.acc DESC".into()),
            offset: 1,
            limit: Some(1),
        };
        let found = search(&history, &all, &q).unwrap();
        assert_eq!(found.total, 2, "lr 2 and lr 3 match");
        assert_eq!(found.runs.len(), 1);
        assert_eq!(
            found.runs[0].id,
            ids[1].to_hex(),
            "page 2 of acc DESC is lr 2"
        );
    }

    #[test]
    fn query_errors_say_which_part() {
        let (_tmp, repo, ids) = repo();
        let session = repo.store().session().unwrap();
        let all = crate::summary::load_all(&session).unwrap();
        let bad_filter = Search {
            filter: Some("metrics.acc >".into()),
            ..Default::default()
        };
        match search(&ids, &all, &bad_filter) {
            Err(Error::Query { part, error, .. }) => {
                assert_eq!(part, QueryPart::Filter);
                assert!(error.column > 1, "{error:?}");
            }
            other => panic!("expected a query error, got {other:?}"),
        }
        let unknown_order = Search {
            order: Some("metrics.loss".into()),
            ..Default::default()
        };
        match search(&ids, &all, &unknown_order) {
            Err(
                e @ Error::Query {
                    part: QueryPart::Order,
                    ..
                },
            ) => {
                assert_eq!(e.kind(), crate::error::ErrorKind::Invalid)
            }
            other => panic!("expected an order error, got {other:?}"),
        }
    }
}
