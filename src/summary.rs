//! The query index: a small summary of every run (flattened params, last metric values, tags,
//! attributes) kept in the index database, so that `compare` and `find` over thousands of runs
//! never read the run objects themselves.
//!
//! Summaries are written in the same batch as the run at commit. If any are missing (a store
//! from before the index existed, or damage), they are rebuilt from the runs on first use;
//! `cairn reindex` rebuilds them all.

use std::collections::HashMap;

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::Run;
use crate::query::RunSummary;
use crate::store::{Batch, Session};

/// The summary of `run` as stored (JSON).
pub fn encode(id: &ObjectId, run: &Run) -> Vec<u8> {
    serde_json::to_vec(&RunSummary::of(id, run)).unwrap_or_default()
}

/// Every run's summary, repairing the index when summaries are missing.
pub fn load_all(session: &Session) -> Result<HashMap<ObjectId, RunSummary>> {
    let mut out = HashMap::new();
    for (id, json) in session.summaries()? {
        if let Ok(s) = serde_json::from_slice::<RunSummary>(&json) {
            out.insert(id, s);
        }
    }
    let runs = session.all_runs()?;
    let missing: Vec<ObjectId> = runs
        .into_iter()
        .filter(|id| !out.contains_key(id))
        .collect();
    if !missing.is_empty() {
        let mut batch = Batch::default();
        for id in missing {
            let run = session.read_run(&id)?;
            batch.put_summary(&id, &encode(&id, &run));
            out.insert(id, RunSummary::of(&id, &run));
        }
        session.apply(batch)?;
        session.flush()?;
    }
    Ok(out)
}

/// Rebuilds every summary from the runs; returns how many.
pub fn rebuild(session: &Session) -> Result<usize> {
    let runs = session.all_runs()?;
    let mut batch = Batch::default();
    for (id, _) in session.summaries()? {
        batch.remove_summary(&id);
    }
    for id in &runs {
        let run = session.read_run(id)?;
        batch.put_summary(id, &encode(id, &run));
    }
    session.apply(batch)?;
    session.flush()?;
    Ok(runs.len())
}
