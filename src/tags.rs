//! Tags: names for runs that do not move unless forced.
//!
//! A tag is the ref `refs/tags/NAME`. Every change to a tag is also appended to the tag journal
//! (see [`TagEvent`]), an object chain in the packs, so `cairn fsck --rebuild-index` can bring
//! tags back if the index is lost. The ref moves first, by compare-and-swap; the journal
//! follows in the same session.

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::object::{Kind, TagEvent};
use crate::refs::{self, TAG_PREFIX};
use crate::repo::{now_ms, Repo};
use crate::store::{Batch, Session};

/// The ref naming the newest entry of the tag journal.
pub const TAG_JOURNAL_REF: &str = "refs/journal/tags";

/// Points tag `name` at `target`; an existing tag moves only with `force`. Returns the run it
/// named before, if any.
pub fn set(
    repo: &Repo,
    session: &Session,
    name: &str,
    target: ObjectId,
    force: bool,
) -> Result<Option<ObjectId>> {
    refs::validate("tag", name)?;
    session.read_run(&target)?;
    let full = format!("{TAG_PREFIX}{name}");
    let old = refs::get_id(session, &full)?;
    if old.is_some() && !force {
        return Err(Error::RefExists {
            kind: "tag",
            name: name.to_string(),
        });
    }
    if old == Some(target) {
        return Ok(old);
    }
    refs::update(session, &full, old, Some(target))?;
    record(repo, session, name, Some(target))?;
    session.flush()?;
    Ok(old)
}

/// Deletes tag `name`; returns the run it named.
pub fn delete(repo: &Repo, session: &Session, name: &str) -> Result<ObjectId> {
    let full = format!("{TAG_PREFIX}{name}");
    let Some(old) = refs::get_id(session, &full)? else {
        return Err(Error::NoSuchRef {
            kind: "tag",
            name: name.to_string(),
        });
    };
    refs::update(session, &full, Some(old), None)?;
    record(repo, session, name, None)?;
    session.flush()?;
    Ok(old)
}

/// Appends a change of tag `name` to the journal (the caller flushes). Used as well when a
/// fetch creates a tag.
pub(crate) fn record(
    repo: &Repo,
    session: &Session,
    name: &str,
    target: Option<ObjectId>,
) -> Result<()> {
    let previous = refs::get_id(session, TAG_JOURNAL_REF)?;
    let event = TagEvent {
        format: 1,
        name: name.to_string(),
        target,
        author: repo.author(),
        time: now_ms(),
        previous,
    };
    let mut writer = repo.store().writer();
    let id = writer.put(Kind::Tag, event.encode(), Some(session))?;
    let mut batch = Batch::default();
    writer.publish(session, &mut batch)?;
    writer.apply(session, batch)?;
    refs::update(session, TAG_JOURNAL_REF, previous, Some(id))?;
    Ok(())
}

/// The tags a journal records, newest event per name first: (name, run) for tags that exist.
/// `events` maps event ids to events; `head` is the newest event.
pub fn replay(
    events: &std::collections::HashMap<ObjectId, TagEvent>,
    head: ObjectId,
) -> Vec<(String, ObjectId)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut cur = Some(head);
    let mut steps = 0usize;
    while let Some(id) = cur {
        let Some(e) = events.get(&id) else { break };
        // A damaged chain could loop; it cannot be longer than the events there are.
        steps += 1;
        if steps > events.len() {
            break;
        }
        if seen.insert(e.name.clone()) {
            if let Some(t) = e.target {
                out.push((e.name.clone(), t));
            }
        }
        cur = e.previous;
    }
    out
}
