//! Removing what no ref reaches, never what one does.
//!
//! Objects reachable from any ref are kept, and so is everything published within the grace
//! period together with all it reaches: a commit that is about to publish may rely on such an
//! object (as git keeps recent loose objects). A commit that relied on an object gc removed
//! notices at publish time and fails cleanly instead of publishing a broken run. Packs whose
//! every object is dead are deleted; mostly-dead packs are rewritten; packs without any index
//! entry (left by a killed process) are deleted once older than the grace period and no process
//! still writes them.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;

use crate::error::Result;
use crate::hash::ObjectId;
use crate::object::Kind;
use crate::refs;
use crate::store::{pack, Batch, Location, Session, StoreError};

/// Options.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Report only.
    pub dry_run: bool,
    /// Keep everything published less than this many seconds ago.
    pub grace_secs: u64,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            grace_secs: 3600,
        }
    }
}

/// What gc did (or would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Objects kept.
    pub kept_objects: u64,
    /// Objects removed.
    pub removed_objects: u64,
    /// Stored bytes freed.
    pub removed_bytes: u64,
    /// Pack files deleted.
    pub removed_packs: u64,
    /// Pack files rewritten.
    pub rewritten_packs: u64,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs gc in `session`.
pub fn gc(session: &Session, opts: GcOptions) -> Result<GcReport> {
    let now = now_secs();
    let cutoff = now.saturating_sub(opts.grace_secs);
    let mut index: HashMap<ObjectId, Location> = HashMap::new();
    for item in session.objects() {
        let (id, loc) = item?;
        let loc = loc.ok_or_else(|| StoreError::Corrupt {
            id,
            reason: "damaged index entry; run `cairn fsck`".into(),
        })?;
        index.insert(id, loc);
    }
    // ---- mark ----
    let mut live: HashSet<ObjectId> = HashSet::new();
    let mut stack: Vec<ObjectId> = refs::all_targets(session)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    stack.extend(
        index
            .iter()
            .filter(|(_, l)| l.time > cutoff)
            .map(|(id, _)| *id),
    );
    while let Some(id) = stack.pop() {
        if !live.insert(id) {
            continue;
        }
        let Some(loc) = index.get(&id) else {
            // Objects below a partially fetched one may be absent by design.
            continue;
        };
        if loc.kind == Kind::Blob {
            continue;
        }
        let raw = session.read_at(&id, loc)?;
        let children = crate::object::references(loc.kind, &raw)
            .map_err(|reason| StoreError::Corrupt { id, reason })?;
        stack.extend(children.into_iter().map(|(c, _)| c));
    }
    // ---- sweep ----
    let mut report = GcReport::default();
    let mut batch = Batch::default();
    let mut live_per_pack: HashMap<u64, (u64, u64)> = HashMap::new(); // pack -> (live bytes, dead bytes)
    for (id, loc) in &index {
        let rec = pack::RECORD_HEADER_LEN + u64::from(loc.stored_len);
        let e = live_per_pack.entry(loc.pack).or_default();
        if live.contains(id) {
            report.kept_objects += 1;
            e.0 += rec;
        } else {
            report.removed_objects += 1;
            report.removed_bytes += rec;
            e.1 += rec;
            batch.remove_object(id);
            if loc.kind == Kind::Run {
                batch.remove_run(id);
            }
        }
    }
    // Stat-cache entries naming removed content must go too; records that do not decode
    // (damaged, or of an older layout) are dropped.
    for r in session.stat_folders() {
        let (dir, folder) = r?;
        match folder {
            Some(mut f) => {
                let before = f.len();
                f.retain(|e| live.contains(&e.id));
                if f.is_empty() {
                    batch.remove_stat(&dir);
                } else if f.len() != before {
                    batch.put_stat_folder(&dir, &f);
                }
            }
            None => batch.remove_stat(&dir),
        }
    }
    let mut to_delete = Vec::new();
    let mut to_rewrite = Vec::new();
    for (pack_no, (live_b, dead_b)) in &live_per_pack {
        if *live_b == 0 {
            to_delete.push(*pack_no);
        } else if *dead_b > *live_b {
            to_rewrite.push(*pack_no);
        }
    }
    // Packs nobody indexes: leftovers of killed processes, unless still being written.
    let mut orphans = Vec::new();
    if let Ok(rd) = std::fs::read_dir(session.store().packs_dir()) {
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(no) = pack::parse_pack_file_name(&String::from_utf8_lossy(name.as_bytes()))
            else {
                continue;
            };
            if live_per_pack.contains_key(&no) {
                continue;
            }
            let old = ent
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .is_some_and(|d| d.as_secs() <= cutoff);
            if old && !pack::is_being_written(&ent.path()) {
                orphans.push(no);
            }
        }
    }
    report.removed_packs = (to_delete.len() + orphans.len()) as u64;
    report.rewritten_packs = to_rewrite.len() as u64;
    if opts.dry_run {
        return Ok(report);
    }
    // Rewrite mostly-dead packs: copy live records into a new pack first.
    let mut w = session.store().writer();
    if !to_rewrite.is_empty() {
        let rewrite: HashSet<u64> = to_rewrite.iter().copied().collect();
        for (id, loc) in &index {
            if rewrite.contains(&loc.pack) && live.contains(id) {
                let raw = session.read_at(id, loc)?;
                w.put_unchecked(loc.kind, raw)?;
            }
        }
        // The ids are present under their old locations; publish re-points them.
        w.publish(session, &mut batch)?;
    }
    session.bump_gc_generation()?;
    w.apply(session, batch)?;
    session.flush()?;
    for no in to_delete.iter().chain(&to_rewrite).chain(&orphans) {
        let _ = std::fs::remove_file(session.store().pack_path(*no));
    }
    Ok(report)
}
