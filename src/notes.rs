//! Notes: annotations on runs, added after the fact without rewriting them.
//!
//! Every note is an object naming its run and the previous head of the chain; the ref
//! `refs/notes/runs` names the newest. Adding a note moves that ref by compare-and-swap.

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::{Kind, Note};
use crate::refs::{self, NOTES_REF};
use crate::repo::{now_ms, Repo};
use crate::store::Batch;

/// Adds a note to `run`; returns the note's id.
pub fn add(repo: &Repo, run: ObjectId, text: &str) -> Result<ObjectId> {
    let store = repo.store();
    let session = store.session()?;
    // Check the run exists and is a run.
    session.read_run(&run)?;
    let previous = refs::get_id(&session, NOTES_REF)?;
    let note = Note {
        format: 1,
        run,
        text: text.to_string(),
        author: repo.author(),
        time: now_ms(),
        previous,
    };
    let mut writer = store.writer();
    let id = writer.put(Kind::Note, note.encode(), Some(&session))?;
    let mut batch = Batch::default();
    writer.publish(&session, &mut batch)?;
    writer.apply(&session, batch)?;
    refs::update(&session, NOTES_REF, previous, Some(id))?;
    session.flush()?;
    Ok(id)
}

/// Every note, newest first.
pub fn all(session: &crate::store::Session) -> Result<Vec<(ObjectId, Note)>> {
    let mut out = Vec::new();
    let mut cur = refs::get_id(session, NOTES_REF)?;
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = cur {
        if !seen.insert(id) {
            break;
        }
        let note = session.read_note(&id)?;
        cur = note.previous;
        out.push((id, note));
    }
    Ok(out)
}

/// Notes on `run`, oldest first.
pub fn for_run(session: &crate::store::Session, run: &ObjectId) -> Result<Vec<Note>> {
    let mut v: Vec<Note> = all(session)?
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| &n.run == run)
        .collect();
    v.reverse();
    Ok(v)
}
