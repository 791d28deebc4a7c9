//! Rebuilding the index database from the pack files, for when sled's own files are damaged.
//!
//! Packs are self-describing: every record repeats its object's id, kind and sizes, so the
//! object index can be rebuilt by reading every pack and keeping each record that hashes to its
//! id. Refs live only in the index, so they are reconstructed from the objects: each branch's
//! tip is the newest run recorded on that branch that no other run of the branch names as a
//! parent; the notes chain and each model's history resume at the event no other event names
//! as previous. Tags come back from the tag journal: the newest journal entry of each name
//! decides, and a tag whose run is gone is left out. The damaged index is kept beside the new
//! one.

use std::collections::{HashMap, HashSet};

use crate::error::{io_err, Error, Result};
use crate::hash::ObjectId;
use crate::object::{Kind, ModelEvent, Note, Run, TagEvent};
use crate::progress::Progress;
use crate::refs::{BRANCH_PREFIX, NOTES_REF, TAG_PREFIX};
use crate::registry::MODEL_PREFIX;
use crate::repo::Repo;
use crate::store::pack::{self, Location, RECORD_HEADER_LEN};
use crate::store::{Batch, RefValue};

/// What a rebuild found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RebuildReport {
    /// Objects indexed.
    pub objects: u64,
    /// Records skipped because they failed verification.
    pub damaged_records: u64,
    /// Packs that could not be read to the end.
    pub damaged_packs: Vec<String>,
    /// Refs reconstructed: (name, id).
    pub refs: Vec<(String, ObjectId)>,
    /// Where the old index was moved.
    pub old_index: String,
}

/// Moves the index aside and rebuilds it from the packs.
pub fn rebuild_index(repo: &Repo, progress: &dyn Progress) -> Result<RebuildReport> {
    let store = repo.store();
    let index = store.dir().join("index");
    let aside = store
        .dir()
        .join(format!("index.damaged-{}", crate::repo::now_ms()));
    if index.exists() {
        std::fs::rename(&index, &aside).map_err(io_err(&index))?;
    }
    let mut report = RebuildReport {
        old_index: aside.display().to_string(),
        ..Default::default()
    };
    let created = crate::store::Store::create(store.dir())?;
    let session = created.session()?;
    let mut batch = Batch::default();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut runs: Vec<(ObjectId, Run)> = Vec::new();
    let mut notes: Vec<(ObjectId, Note)> = Vec::new();
    let mut events: Vec<(ObjectId, ModelEvent)> = Vec::new();
    let mut tag_events: HashMap<ObjectId, TagEvent> = HashMap::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut packs: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(store.packs_dir())
        .map_err(io_err(store.packs_dir()))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            pack::parse_pack_file_name(&name).map(|n| (n, e.path()))
        })
        .collect();
    packs.sort();
    progress.begin("rebuilding", None);
    for (no, path) in packs {
        let mut records = Vec::new();
        if let Err(e) = pack::scan_pack(&path, |off, h| records.push((off, *h))) {
            report
                .damaged_packs
                .push(format!("{}: {e}", path.display()));
        }
        for (offset, h) in records {
            if seen.contains(&h.id) {
                continue;
            }
            let loc = Location {
                pack: no,
                offset,
                stored_len: h.stored_len,
                raw_len: h.raw_len,
                kind: h.kind,
                codec: h.codec,
                time: now,
            };
            // Keep only records that read back and hash to their id.
            let Ok(raw) = session.read_at(&h.id, &loc) else {
                report.damaged_records += 1;
                continue;
            };
            progress.advance(RECORD_HEADER_LEN + u64::from(h.stored_len));
            seen.insert(h.id);
            batch.put_object(&h.id, &loc);
            report.objects += 1;
            match h.kind {
                Kind::Run => {
                    if let Ok(run) = Run::decode(&raw) {
                        batch.put_run(&h.id, run.started_at);
                        batch.put_summary(&h.id, &crate::summary::encode(&h.id, &run));
                        runs.push((h.id, run));
                    }
                }
                Kind::Note => {
                    if let Ok(n) = Note::decode(&raw) {
                        notes.push((h.id, n));
                    }
                }
                Kind::Model => {
                    if let Ok(e) = ModelEvent::decode(&raw) {
                        events.push((h.id, e));
                    }
                }
                Kind::Tag => {
                    if let Ok(e) = TagEvent::decode(&raw) {
                        tag_events.insert(h.id, e);
                    }
                }
                _ => {}
            }
        }
    }
    progress.end();
    session.apply(batch)?;
    // Branch tips: per branch, the newest run that no run of the branch names as parent.
    let mut by_branch: HashMap<String, Vec<&(ObjectId, Run)>> = HashMap::new();
    for r in &runs {
        if let Some(b) = &r.1.branch {
            by_branch.entry(b.clone()).or_default().push(r);
        }
    }
    let mut newest_branch: Option<(i64, String)> = None;
    for (b, list) in &by_branch {
        let parents: HashSet<ObjectId> = list
            .iter()
            .flat_map(|(_, r)| r.parents.iter().copied())
            .collect();
        if let Some((id, run)) = list
            .iter()
            .filter(|(id, _)| !parents.contains(id))
            .max_by_key(|(_, r)| (r.ended_at, r.started_at))
        {
            if crate::refs::validate("branch", b).is_ok() {
                crate::refs::update(&session, &format!("{BRANCH_PREFIX}{b}"), None, Some(*id))?;
                report.refs.push((format!("{BRANCH_PREFIX}{b}"), *id));
                if newest_branch
                    .as_ref()
                    .is_none_or(|(t, _)| run.ended_at > *t)
                {
                    newest_branch = Some((run.ended_at, b.clone()));
                }
            }
        }
    }
    let head = newest_branch
        .map(|(_, b)| b)
        .unwrap_or_else(|| "main".into());
    let old = session.ref_get(crate::refs::HEAD)?;
    session.ref_cas(
        crate::refs::HEAD,
        old.as_ref(),
        Some(&RefValue::Symbolic(format!("{BRANCH_PREFIX}{head}"))),
    )?;
    // Chains: the element nothing names as previous.
    let note_prev: HashSet<ObjectId> = notes.iter().filter_map(|(_, n)| n.previous).collect();
    if let Some((id, _)) = notes
        .iter()
        .filter(|(id, _)| !note_prev.contains(id))
        .max_by_key(|(_, n)| n.time)
    {
        crate::refs::update(&session, NOTES_REF, None, Some(*id))?;
        report.refs.push((NOTES_REF.to_string(), *id));
    }
    let mut by_model: HashMap<String, Vec<&(ObjectId, ModelEvent)>> = HashMap::new();
    for e in &events {
        by_model.entry(e.1.model.clone()).or_default().push(e);
    }
    for (m, list) in by_model {
        let prev: HashSet<ObjectId> = list.iter().filter_map(|(_, e)| e.previous).collect();
        if let Some((id, _)) = list
            .iter()
            .filter(|(id, _)| !prev.contains(id))
            .max_by_key(|(_, e)| e.time)
        {
            if crate::registry::validate_name(&m).is_ok() {
                crate::refs::update(&session, &format!("{MODEL_PREFIX}{m}"), None, Some(*id))?;
                report.refs.push((format!("{MODEL_PREFIX}{m}"), *id));
            }
        }
    }
    // The tag journal resumes at the entry no other names; its replay gives the tags.
    let tag_prev: HashSet<ObjectId> = tag_events.values().filter_map(|e| e.previous).collect();
    if let Some((head, _)) = tag_events
        .iter()
        .filter(|(id, _)| !tag_prev.contains(id))
        .max_by_key(|(_, e)| e.time)
    {
        let head = *head;
        crate::refs::update(&session, crate::tags::TAG_JOURNAL_REF, None, Some(head))?;
        report
            .refs
            .push((crate::tags::TAG_JOURNAL_REF.to_string(), head));
        for (name, run) in crate::tags::replay(&tag_events, head) {
            let full = format!("{TAG_PREFIX}{name}");
            if crate::refs::validate("tag", &name).is_ok() && session.contains(&run)? {
                crate::refs::update(&session, &full, None, Some(run))?;
                report.refs.push((full, run));
            }
        }
    }
    session.flush()?;
    if report.objects == 0 && !report.damaged_packs.is_empty() {
        return Err(Error::Refused(
            "no pack could be read; the old index was kept aside".into(),
        ));
    }
    Ok(report)
}
