//! Push, fetch, pull and clone.
//!
//! Both directions keep the invariant that a ref only ever names objects whose whole closure
//! is stored: push uploads packs children-first, each index after its pack, and moves remote
//! refs last by compare-and-swap; fetch verifies every object against its id, publishes the
//! objects, and moves local refs last. An interrupted transfer leaves both sides consistent and
//! a rerun sends only what did not land (packs whose index was uploaded have landed).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::packidx::{self, IdxEntry};
use super::transport::{RefVersion, Transport, TransportError};
use super::RemoteConfig;
use crate::error::{io_err, Error, Result};
use crate::hash::ObjectId;
use crate::object::references;
use crate::object::{hash_object, Kind};
use crate::progress::Progress;
use crate::refs::{self, BRANCH_PREFIX, NOTES_REF, TAG_PREFIX};
use crate::registry::MODEL_PREFIX;
use crate::repo::Repo;
use crate::store::pack::{self, Location, RECORD_HEADER_LEN};
use crate::store::{codec, Batch, ObjectWriter, Session, StoreError};

/// Packs are cut at this size, so an interrupted push re-sends at most one.
const PACK_TARGET: u64 = 256 << 20;
/// Bytes fetched per ranged read.
const FETCH_BATCH: u64 = 64 << 20;

/// What the remote has: object id → (pack name, entry).
pub struct RemoteIndex {
    objects: HashMap<ObjectId, (String, IdxEntry)>,
}

impl RemoteIndex {
    /// True when the remote has `id`.
    pub fn has(&self, id: &ObjectId) -> bool {
        self.objects.contains_key(id)
    }

    /// Number of objects on the remote.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when the remote has no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

fn cache_dir(repo: &Repo, remote: &str) -> PathBuf {
    repo.store().dir().join("remotes").join(remote).join("idx")
}

/// Keeps a copy of a remote pack index in the cache, best effort: written to a temporary name
/// and renamed, so the cache never holds part of one.
fn cache_idx(cache: &Path, name: &str, bytes: &[u8]) {
    let _ = std::fs::create_dir_all(cache);
    let tmp = cache.join(format!(".tmp-{name}-{}", std::process::id()));
    let done = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, cache.join(format!("{name}.idx"))));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Reads the remote's pack indexes (new ones from the remote, known ones from a local cache).
pub fn remote_index(repo: &Repo, remote: &str, t: &dyn Transport) -> Result<RemoteIndex> {
    let cache = cache_dir(repo, remote);
    let mut objects = HashMap::new();
    for (key, _) in t.list("packs/")? {
        let Some(name) = key
            .strip_prefix("packs/")
            .and_then(|k| k.strip_suffix(".idx"))
        else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let cached = cache.join(format!("{name}.idx"));
        // A cached copy is used only when it decodes (its checksum holds): one cut short by a
        // killed process or a full disk is read again from the remote.
        let from_cache = std::fs::read(&cached)
            .ok()
            .and_then(|b| packidx::decode(&b).ok());
        let entries = match from_cache {
            Some(entries) => entries,
            None => {
                let bytes = t.get(&key)?.ok_or_else(|| TransportError::Failed {
                    remote: t.describe(),
                    message: format!("{key} vanished while listing"),
                })?;
                let entries = packidx::decode(&bytes).map_err(|m| TransportError::Failed {
                    remote: t.describe(),
                    message: format!("{key}: {m}"),
                })?;
                cache_idx(&cache, name, &bytes);
                entries
            }
        };
        for e in entries {
            objects.entry(e.id).or_insert((name.to_string(), e));
        }
    }
    Ok(RemoteIndex { objects })
}

// ---- push ------------------------------------------------------------------------------------

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Branch or tag names (default: the current branch).
    pub refs: Vec<String>,
    /// Every branch.
    pub all: bool,
    /// Every tag.
    pub tags: bool,
    /// Move remote refs even when it is not a fast-forward.
    pub force: bool,
}

/// What a push did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushReport {
    /// Refs moved: (name, old, new).
    pub updated: Vec<(String, Option<ObjectId>, ObjectId)>,
    /// Refs already up to date.
    pub up_to_date: Vec<String>,
    /// Objects sent.
    pub objects: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Packs uploaded.
    pub packs: u64,
}

/// True when `ancestor` is `id` or reachable through parents (runs) or `previous` (notes).
fn is_ancestor(session: &Session, ancestor: &ObjectId, id: &ObjectId) -> Result<bool> {
    let mut stack = vec![*id];
    let mut seen = HashSet::new();
    while let Some(cur) = stack.pop() {
        if cur == *ancestor {
            return Ok(true);
        }
        if !seen.insert(cur) || !session.contains(&cur)? {
            continue;
        }
        let (kind, raw) = session.read(&cur)?;
        match kind {
            Kind::Run => stack.extend(
                crate::object::Run::decode(&raw)
                    .map(|r| r.parents)
                    .unwrap_or_default(),
            ),
            Kind::Note => stack.extend(
                crate::object::Note::decode(&raw)
                    .ok()
                    .and_then(|n| n.previous),
            ),
            Kind::Model => stack.extend(
                crate::object::ModelEvent::decode(&raw)
                    .ok()
                    .and_then(|e| e.previous),
            ),
            _ => {}
        }
    }
    Ok(false)
}

/// The local refs a push names, as (full name, id).
fn refs_to_push(session: &Session, opts: &PushOptions) -> Result<Vec<(String, ObjectId)>> {
    let mut out = Vec::new();
    if opts.all {
        for (b, id) in refs::branches(session)? {
            out.push((format!("{BRANCH_PREFIX}{b}"), id));
        }
        if let Some(n) = refs::get_id(session, NOTES_REF)? {
            out.push((NOTES_REF.to_string(), n));
        }
        for (name, v) in session.refs(MODEL_PREFIX)? {
            if let crate::store::RefValue::Id(id) = v {
                out.push((name, id));
            }
        }
    }
    if opts.tags {
        for (t, id) in refs::tags(session)? {
            out.push((format!("{TAG_PREFIX}{t}"), id));
        }
    }
    for name in &opts.refs {
        let full = if let Some(m) = name.strip_prefix("model:") {
            let m = m.split('@').next().unwrap_or(m);
            format!("{MODEL_PREFIX}{m}")
        } else if name.starts_with("refs/") {
            name.clone()
        } else if refs::get_id(session, &format!("{BRANCH_PREFIX}{name}"))?.is_some() {
            format!("{BRANCH_PREFIX}{name}")
        } else if refs::get_id(session, &format!("{TAG_PREFIX}{name}"))?.is_some() {
            format!("{TAG_PREFIX}{name}")
        } else {
            return Err(Error::NoSuchRef {
                kind: "branch or tag",
                name: name.clone(),
            });
        };
        let id = refs::get_id(session, &full)?.ok_or_else(|| Error::NoSuchRef {
            kind: "branch or tag",
            name: name.clone(),
        })?;
        out.push((full, id));
    }
    if out.is_empty() && opts.refs.is_empty() && !opts.all && !opts.tags {
        match refs::head(session)? {
            refs::Head::Branch(b) => {
                let id = refs::branch_tip(session, &b)?.ok_or(Error::EmptyBranch(b.clone()))?;
                out.push((format!("{BRANCH_PREFIX}{b}"), id));
            }
            refs::Head::Detached(_) => {
                return Err(Error::Refused(
                    "HEAD is detached: name the branch or tag to push".into(),
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Objects reachable from `roots` that the remote lacks, children before parents.
fn missing_postorder(
    session: &Session,
    roots: &[ObjectId],
    remote: &RemoteIndex,
) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(ObjectId, bool)> = roots.iter().map(|r| (*r, false)).collect();
    while let Some((id, expanded)) = stack.pop() {
        if expanded {
            out.push(id);
            continue;
        }
        if remote.has(&id) || !seen.insert(id) {
            continue;
        }
        stack.push((id, true));
        let loc = session.location(&id)?.ok_or(StoreError::Missing(id))?;
        if loc.kind != Kind::Blob {
            if session.is_partial(&id)? {
                return Err(Error::Refused(format!(
                    "object {id} was fetched partially (with --only); fetch it whole before pushing it"
                )));
            }
            let raw = session.read_at(&id, &loc)?;
            let children =
                references(loc.kind, &raw).map_err(|reason| StoreError::Corrupt { id, reason })?;
            for (c, _) in children.into_iter().rev() {
                stack.push((c, false));
            }
        }
    }
    Ok(out)
}

struct PackOut {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    len: u64,
    entries: Vec<IdxEntry>,
}

/// An object to send: where it is stored, with its pack already open (so the records can be
/// copied without holding the index, even if `gc` rewrites that pack meanwhile).
struct Planned {
    id: ObjectId,
    loc: Location,
    file: std::sync::Arc<std::fs::File>,
}

/// Where each of `ids` is stored, opening their packs, in one session.
fn plan_records(session: &Session, ids: &[ObjectId]) -> Result<Vec<Planned>> {
    ids.iter()
        .map(|id| {
            let loc = session.location(id)?.ok_or(StoreError::Missing(*id))?;
            let file = session.pack_file(loc.pack)?;
            Ok(Planned { id: *id, loc, file })
        })
        .collect()
}

/// Copies the planned records into temporary packs of about [`PACK_TARGET`] bytes each in
/// `dir`, handing each one to `tx` when it is full (and the last one at the end), until `stop`
/// is set. A pack it could not hand over, and the one it was filling when it stopped or
/// failed, are removed; a failure is sent as the last message.
fn pack_records(
    dir: &Path,
    plan: &[Planned],
    tx: &std::sync::mpsc::SyncSender<Result<PackOut>>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let new_pack = |n: usize| -> Result<PackOut> {
        let path = dir.join(format!("push-{}-{n}.pack", std::process::id()));
        crate::fault::check("push.create").map_err(io_err(&path))?;
        let f = std::fs::File::create(&path).map_err(io_err(&path))?;
        let mut out = PackOut {
            path,
            file: std::io::BufWriter::with_capacity(1 << 20, f),
            len: pack::PACK_HEADER_LEN,
            entries: Vec::new(),
        };
        let header = (|| {
            out.file.write_all(pack::PACK_MAGIC)?;
            out.file.write_all(&pack::PACK_VERSION.to_le_bytes())?;
            out.file.write_all(&[0u8; 4])
        })();
        if let Err(e) = header {
            let _ = std::fs::remove_file(&out.path);
            return Err(io_err(&out.path)(e));
        }
        Ok(out)
    };
    // Hands a full pack over; false when the other side has stopped listening.
    let hand_over = |mut out: PackOut| -> Result<bool> {
        if let Err(e) = out.file.flush() {
            let _ = std::fs::remove_file(&out.path);
            return Err(io_err(&out.path)(e));
        }
        match tx.send(Ok(out)) {
            Ok(()) => Ok(true),
            Err(std::sync::mpsc::SendError(Ok(out))) => {
                let _ = std::fs::remove_file(&out.path);
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    };
    let mut current: Option<PackOut> = None;
    let mut made = 0;
    let result = (|| -> Result<()> {
        for p in plan {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            if current.as_ref().is_some_and(|c| c.len >= PACK_TARGET) {
                if let Some(full) = current.take() {
                    if !hand_over(full)? {
                        return Ok(());
                    }
                }
            }
            let out = match current.as_mut() {
                Some(out) => out,
                None => {
                    made += 1;
                    current.insert(new_pack(made - 1)?)
                }
            };
            let (header, stored) =
                pack::read_record(&p.file, &p.loc).map_err(|e| e.for_object(&p.id))?;
            if header.id != p.id {
                return Err(StoreError::Corrupt {
                    id: p.id,
                    reason: "the pack record holds another object".into(),
                }
                .into());
            }
            let loc = &p.loc;
            let mut h = [0u8; RECORD_HEADER_LEN as usize];
            h[0..4].copy_from_slice(pack::RECORD_MAGIC);
            h[4] = loc.kind.code();
            h[5] = loc.codec.code();
            h[8..12].copy_from_slice(&loc.stored_len.to_le_bytes());
            h[12..20].copy_from_slice(&loc.raw_len.to_le_bytes());
            h[20..52].copy_from_slice(p.id.as_bytes());
            crate::fault::check("push.write").map_err(io_err(&out.path))?;
            out.file.write_all(&h).map_err(io_err(&out.path))?;
            out.file.write_all(&stored).map_err(io_err(&out.path))?;
            out.entries.push(IdxEntry {
                id: p.id,
                offset: out.len,
                stored_len: loc.stored_len,
                raw_len: loc.raw_len,
                kind: loc.kind,
                codec: loc.codec,
            });
            out.len += RECORD_HEADER_LEN + stored.len() as u64;
        }
        if let Some(last) = current.take() {
            hand_over(last)?;
        }
        Ok(())
    })();
    if let Some(unfinished) = current {
        let _ = std::fs::remove_file(&unfinished.path);
    }
    if let Err(e) = result {
        let _ = tx.send(Err(e));
    }
}

/// Sends the planned records to the remote as packs: each pack is uploaded, then its index,
/// while the next one is being filled (so at most two temporary packs exist at once, and
/// packing overlaps with uploading). Every temporary pack is removed, sent or not.
fn send_packs(
    repo: &Repo,
    remote: &str,
    t: &dyn Transport,
    dir: &Path,
    plan: &[Planned],
    progress: &dyn Progress,
    report: &mut PushReport,
) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<PackOut>>(1);
        let stop = &stop;
        scope.spawn(move || pack_records(dir, plan, &tx, stop));
        let mut outcome = Ok(());
        for item in rx.iter() {
            let p = match item {
                Ok(p) => p,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            let sent = (|| -> Result<()> {
                if p.entries.is_empty() {
                    return Ok(());
                }
                let idx = packidx::encode(p.entries.clone());
                let name = blake3::hash(&idx).to_hex()[..32].to_string();
                t.put_file(&format!("packs/{name}.pack"), &p.path)?;
                t.put_bytes(&format!("packs/{name}.idx"), idx.clone())?;
                cache_idx(&cache_dir(repo, remote), &name, &idx);
                report.objects += p.entries.len() as u64;
                report.bytes += p.len;
                report.packs += 1;
                progress.advance(p.len - pack::PACK_HEADER_LEN);
                Ok(())
            })();
            let _ = std::fs::remove_file(&p.path);
            if let Err(e) = sent {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_err() {
            // Stop the packer, and remove what it still hands over until it has.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for p in rx.iter().flatten() {
                let _ = std::fs::remove_file(&p.path);
            }
        }
        outcome
    })
}

/// Removes temporary packs left by pushes whose process is gone.
fn sweep_stale_push_packs(dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("push-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = pid == std::process::id() as i32 || unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Pushes refs to remote `remote`.
pub fn push(
    repo: &Repo,
    remote: &str,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let cfg = super::get(repo, remote)?;
    let t = super::connect(&cfg)?;
    let rindex = remote_index(repo, remote, t.as_ref())?;
    let mut report = PushReport::default();
    let tmp = repo.store().dir().join("tmp");
    sweep_stale_push_packs(&tmp);
    // Decide what moves, and where its objects are, in one session.
    let (updates, plan) = {
        let session = repo.store().session()?;
        let wanted = refs_to_push(&session, opts)?;
        let mut updates: Vec<(String, ObjectId, Option<RefVersion>)> = Vec::new();
        for (name, id) in wanted {
            let current = t.read_ref(&name)?;
            match &current {
                Some(c) if c.id == id => {
                    report.up_to_date.push(name);
                    continue;
                }
                Some(c) if !opts.force => {
                    let ff = !name.starts_with(TAG_PREFIX)
                        && session.contains(&c.id)?
                        && is_ancestor(&session, &c.id, &id)?;
                    if !ff {
                        let what = if name.starts_with(TAG_PREFIX) {
                            "tags do not move"
                        } else {
                            "it is not a fast-forward of the remote's"
                        };
                        return Err(Error::Refused(format!(
                            "push of {name} to {remote} refused: {what} ({} there); fetch first, or use --force",
                            c.id.short()
                        )));
                    }
                }
                _ => {}
            }
            updates.push((name, id, current));
        }
        let roots: Vec<ObjectId> = updates.iter().map(|u| u.1).collect();
        let ids = missing_postorder(&session, &roots, &rindex)?;
        let plan = plan_records(&session, &ids)?;
        (updates, plan)
    };
    // Packs are filled and sent without holding the index.
    let total: u64 = plan
        .iter()
        .map(|p| RECORD_HEADER_LEN + u64::from(p.loc.stored_len))
        .sum();
    progress.begin("sending", Some(total));
    let result = send_packs(repo, remote, t.as_ref(), &tmp, &plan, progress, &mut report);
    progress.end();
    result?;
    // Refs last, each by compare-and-swap.
    for (name, id, current) in &updates {
        t.cas_ref(name, current.as_ref(), id)?;
        report
            .updated
            .push((name.clone(), current.as_ref().map(|c| c.id), *id));
    }
    // Remember where the remote's branches now are.
    let session = repo.store().session()?;
    for (name, id) in report
        .updated
        .iter()
        .map(|(n, _, id)| (n.clone(), *id))
        .chain(report.up_to_date.iter().filter_map(|n| {
            refs::get_id(&session, n)
                .ok()
                .flatten()
                .map(|id| (n.clone(), id))
        }))
    {
        if let Some(b) = name.strip_prefix(BRANCH_PREFIX) {
            let tracking = format!("refs/remotes/{remote}/{b}");
            let old = refs::get_id(&session, &tracking)?;
            refs::update(&session, &tracking, old, Some(id))?;
        }
    }
    session.flush()?;
    Ok(report)
}

// ---- fetch -----------------------------------------------------------------------------------

/// What to fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Branch or tag names, or run ids (default: every ref).
    pub refs: Vec<String>,
    /// Only the objects this path of the (single) named run needs.
    pub only: Option<String>,
    /// For `model:NAME@STAGE|@vN`: the version's whole run (its data, code and every artifact),
    /// not just the registered model files.
    pub with_run: bool,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FetchReport {
    /// Refs updated locally: (local name, id).
    pub updated: Vec<(String, ObjectId)>,
    /// Remote tags not taken because a different local tag has the name.
    pub skipped_tags: Vec<String>,
    /// Objects received.
    pub objects: u64,
    /// Stored bytes received.
    pub bytes: u64,
    /// Runs fetched without everything they refer to (with --only).
    pub partial: Vec<ObjectId>,
    /// Models whose local history had diverged and now follows the remote's.
    pub reset_models: Vec<String>,
}

struct Fetcher<'a, 's> {
    repo: &'a Repo,
    t: &'a dyn Transport,
    rindex: &'a RemoteIndex,
    writer: ObjectWriter<'s>,
    got: HashMap<ObjectId, Kind>,
    runs: Vec<(ObjectId, crate::object::Run)>,
    objects: u64,
    bytes: u64,
}

impl<'a, 's> Fetcher<'a, 's> {
    /// Fetches `ids` (and, when `recursive`, everything they reach) that are not stored
    /// locally. Returns the raw content of every non-blob object fetched.
    fn fetch(
        &mut self,
        ids: &[ObjectId],
        recursive: bool,
        progress: &dyn Progress,
    ) -> Result<HashMap<ObjectId, Vec<u8>>> {
        let mut decoded = HashMap::new();
        let mut frontier: Vec<ObjectId> = ids.to_vec();
        while !frontier.is_empty() {
            frontier.sort();
            frontier.dedup();
            frontier.retain(|id| !self.got.contains_key(id));
            let missing: Vec<ObjectId> = {
                let session = self.repo.store().session()?;
                let mut m = Vec::new();
                for id in &frontier {
                    if !session.has_complete(id)? {
                        m.push(*id);
                    }
                }
                m
            };
            // Group by pack, in pack order, in bounded batches.
            let mut by_pack: HashMap<&str, Vec<IdxEntry>> = HashMap::new();
            for id in &missing {
                let (pack, e) =
                    self.rindex
                        .objects
                        .get(id)
                        .ok_or_else(|| TransportError::Failed {
                            remote: self.t.describe(),
                            message: format!(
                            "the remote lacks object {id}, which one of its refs or objects needs"
                        ),
                        })?;
                by_pack.entry(pack.as_str()).or_default().push(*e);
            }
            let mut next = Vec::new();
            for (pack_name, mut entries) in by_pack {
                entries.sort_by_key(|e| e.offset);
                let key = format!("packs/{pack_name}.pack");
                let mut start = 0;
                while start < entries.len() {
                    let mut end = start;
                    let mut bytes = 0u64;
                    while end < entries.len() && (end == start || bytes < FETCH_BATCH) {
                        bytes += RECORD_HEADER_LEN + u64::from(entries[end].stored_len);
                        end += 1;
                    }
                    let batch = &entries[start..end];
                    let ranges: Vec<std::ops::Range<u64>> = batch
                        .iter()
                        .map(|e| e.offset..e.offset + RECORD_HEADER_LEN + u64::from(e.stored_len))
                        .collect();
                    let datas = self.t.get_ranges(&key, &ranges)?;
                    if datas.len() != batch.len() {
                        return Err(TransportError::Failed {
                            remote: self.t.describe(),
                            message: format!("{key}: short answer to a ranged read"),
                        }
                        .into());
                    }
                    for (e, data) in batch.iter().zip(datas) {
                        let raw = verify_record(self.t, &key, e, &data)?;
                        let stored = &data[RECORD_HEADER_LEN as usize..];
                        self.writer
                            .append_verified(e.id, e.kind, e.codec, e.raw_len, stored)?;
                        self.got.insert(e.id, e.kind);
                        self.objects += 1;
                        self.bytes += data.len() as u64;
                        progress.advance(data.len() as u64);
                        if e.kind != Kind::Blob {
                            if recursive {
                                let children = references(e.kind, &raw)
                                    .map_err(|reason| StoreError::Corrupt { id: e.id, reason })?;
                                next.extend(children.into_iter().map(|(c, _)| c));
                            }
                            if e.kind == Kind::Run {
                                if let Ok(run) = crate::object::Run::decode(&raw) {
                                    self.runs.push((e.id, run));
                                }
                            }
                            decoded.insert(e.id, raw);
                        }
                    }
                    start = end;
                }
            }
            frontier = next;
        }
        Ok(decoded)
    }
}

/// Checks a received record against the remote's index entry and the object's id.
fn verify_record(t: &dyn Transport, key: &str, e: &IdxEntry, data: &[u8]) -> Result<Vec<u8>> {
    let bad = |reason: String| -> Error {
        TransportError::Failed {
            remote: t.describe(),
            message: format!("object {} in {key}: {reason}; nothing was stored", e.id),
        }
        .into()
    };
    if data.len() as u64 != RECORD_HEADER_LEN + u64::from(e.stored_len) {
        return Err(bad("truncated record".into()));
    }
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    h.copy_from_slice(&data[..RECORD_HEADER_LEN as usize]);
    let header = pack::parse_record_header(&h).map_err(bad)?;
    if header.id != e.id
        || header.kind != e.kind
        || header.codec != e.codec
        || header.raw_len != e.raw_len
        || header.stored_len != e.stored_len
    {
        return Err(bad("the record does not match the pack index".into()));
    }
    let raw = codec::decompress(
        e.codec,
        data[RECORD_HEADER_LEN as usize..].to_vec(),
        e.raw_len,
    )
    .map_err(|m| bad(m.to_string()))?;
    if hash_object(e.kind, &raw) != e.id {
        return Err(bad("content does not match its id".into()));
    }
    Ok(raw)
}

/// The remote refs (full name → version) selected by `names` (all when empty).
fn remote_refs(t: &dyn Transport, names: &[String]) -> Result<Vec<(String, RefVersion)>> {
    let all = t.list_refs()?;
    let mut out = Vec::new();
    for name in all {
        // Only names cairn itself could have written are taken from a remote.
        let valid = [BRANCH_PREFIX, TAG_PREFIX, MODEL_PREFIX]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .map(|short| {
                refs::validate("ref", short).is_ok()
                    && (!name.starts_with(MODEL_PREFIX) || !short.contains('/'))
            })
            .unwrap_or(name == NOTES_REF);
        if !valid {
            continue;
        }
        if !names.is_empty() {
            let short = name
                .strip_prefix(BRANCH_PREFIX)
                .or_else(|| name.strip_prefix(TAG_PREFIX))
                .unwrap_or(&name);
            let model = name.strip_prefix(MODEL_PREFIX);
            let wanted = names.iter().any(|n| {
                n == short
                    || n == &name
                    || (model.is_some()
                        && n.strip_prefix("model:")
                            .map(|m| m.split('@').next().unwrap_or(m))
                            == model)
            });
            if !wanted {
                continue;
            }
        }
        if let Some(v) = t.read_ref(&name)? {
            out.push((name, v));
        }
    }
    Ok(out)
}

/// Fetches from remote `remote`.
pub fn fetch(
    repo: &Repo,
    remote: &str,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let cfg = super::get(repo, remote)?;
    fetch_with(repo, remote, &cfg, opts, progress)
}

fn fetch_with(
    repo: &Repo,
    remote: &str,
    cfg: &RemoteConfig,
    opts: &FetchOptions,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let t = super::connect(cfg)?;
    let rindex = remote_index(repo, remote, t.as_ref())?;
    // Names that are refs on the remote, and names that are run ids.
    let rrefs = remote_refs(t.as_ref(), &opts.refs)?;
    let mut id_roots = Vec::new();
    for n in &opts.refs {
        if let Some(m) = n.strip_prefix("model:") {
            let m = m.split('@').next().unwrap_or(m);
            if !rrefs
                .iter()
                .any(|(full, _)| full.strip_prefix(MODEL_PREFIX) == Some(m))
            {
                return Err(Error::Refused(format!(
                    "remote {remote} has no model named '{m}'"
                )));
            }
            continue;
        }
        let is_ref = rrefs.iter().any(|(full, _)| {
            full == n
                || full.strip_prefix(BRANCH_PREFIX) == Some(n)
                || full.strip_prefix(TAG_PREFIX) == Some(n)
        });
        if is_ref {
            continue;
        }
        let lower = n.to_ascii_lowercase();
        let hits: Vec<ObjectId> = if crate::hash::is_hex_prefix(&lower) {
            rindex
                .objects
                .iter()
                .filter(|(id, (_, e))| e.kind == Kind::Run && id.has_hex_prefix(&lower))
                .map(|(id, _)| *id)
                .collect()
        } else {
            Vec::new()
        };
        match hits.len() {
            1 => id_roots.push(hits[0]),
            0 => {
                return Err(Error::Refused(format!(
                    "remote {remote} has no branch, tag or run named '{n}'"
                )))
            }
            _ => {
                return Err(Error::AmbiguousRevision {
                    rev: n.clone(),
                    candidates: hits.iter().map(|h| h.short()).collect(),
                })
            }
        }
    }
    let store = repo.store();
    let mut f = Fetcher {
        repo,
        t: t.as_ref(),
        rindex: &rindex,
        writer: store.writer(),
        got: HashMap::new(),
        runs: Vec::new(),
        objects: 0,
        bytes: 0,
    };
    let mut partial: Vec<ObjectId> = Vec::new();
    progress.begin("receiving", None);
    let result = (|| -> Result<()> {
        if let Some(path) = &opts.only {
            let [root] = id_roots.as_slice() else {
                let root = match rrefs.as_slice() {
                    // A model: its history, then the run of the version named (the latest
                    // without @vN or @STAGE); the ref names a model event, not a run.
                    [(name, v)] if id_roots.is_empty() && name.starts_with(MODEL_PREFIX) => {
                        let sel = model_selector(&opts.refs, name);
                        fetch_model_history(
                            &mut f,
                            name,
                            v.id,
                            sel.as_deref(),
                            &mut partial,
                            progress,
                        )?
                        .0
                    }
                    [(_, v)] if id_roots.is_empty() => v.id,
                    _ => {
                        return Err(Error::Refused(
                            "--only needs exactly one run (a run id, a branch or tag name, or model:NAME@STAGE)"
                                .into(),
                        ))
                    }
                };
                return fetch_only(&mut f, root, path, &mut partial, progress);
            };
            return fetch_only(&mut f, *root, path, &mut partial, progress);
        }
        let mut roots: Vec<ObjectId> = Vec::new();
        for (name, v) in &rrefs {
            // A model named with a version or stage: its history, and that version's run only.
            match model_selector(&opts.refs, name) {
                Some(sel) => fetch_model_version(
                    &mut f,
                    name,
                    v.id,
                    &sel,
                    opts.with_run,
                    &mut partial,
                    progress,
                )?,
                None => roots.push(v.id),
            }
        }
        roots.extend(&id_roots);
        f.fetch(&roots, true, progress)?;
        Ok(())
    })();
    progress.end();
    // On error the writer is dropped and its unpublished packs with it.
    result?;
    // Publish the objects, then move refs.
    let session = store.session()?;
    let mut batch = Batch::default();
    f.writer.publish(&session, &mut batch)?;
    for (id, run) in &f.runs {
        batch.put_run(id, run.started_at);
        batch.put_summary(id, &crate::summary::encode(id, run));
    }
    for id in &partial {
        batch.put_partial(id);
    }
    if opts.only.is_none() {
        for (id, kind) in &f.got {
            if *kind != Kind::Blob && !partial.contains(id) && session.is_partial(id)? {
                batch.remove_partial(id);
            }
        }
    }
    f.writer.apply(&session, batch)?;
    let mut report = FetchReport {
        objects: f.objects,
        bytes: f.bytes,
        partial,
        ..Default::default()
    };
    // With --only, only a model's ref moves: its whole history came, and its partial runs
    // are marked so.
    let only_model = opts.only.is_some() && rrefs.iter().all(|(n, _)| n.starts_with(MODEL_PREFIX));
    if opts.only.is_none() || only_model {
        for (name, v) in &rrefs {
            let local = if let Some(b) = name.strip_prefix(BRANCH_PREFIX) {
                format!("refs/remotes/{remote}/{b}")
            } else if name.starts_with(TAG_PREFIX) {
                match refs::get_id(&session, name)? {
                    Some(cur) if cur == v.id => continue,
                    Some(_) => {
                        report.skipped_tags.push(name.clone());
                        continue;
                    }
                    None => name.clone(),
                }
            } else if name == NOTES_REF {
                format!("refs/remotes/{remote}/notes/runs")
            } else if let Some(m) = name.strip_prefix(MODEL_PREFIX) {
                format!("refs/remotes/{remote}/models/{m}")
            } else {
                continue;
            };
            let old = refs::get_id(&session, &local)?;
            if old != Some(v.id) {
                refs::update(&session, &local, old, Some(v.id))?;
                if let Some(tag) = local.strip_prefix(TAG_PREFIX) {
                    crate::tags::record(repo, &session, tag, Some(v.id))?;
                }
                report.updated.push((local, v.id));
            }
            // Notes and models: fast-forward the local chain when possible.
            if name == NOTES_REF || name.starts_with(MODEL_PREFIX) {
                let mine = refs::get_id(&session, name)?;
                let ff = match mine {
                    None => true,
                    Some(m) => m != v.id && is_ancestor(&session, &m, &v.id)?,
                };
                // A model's history is shared: when ours diverged (a change the remote
                // refused), the remote's history wins and the refused events are reported.
                let diverged = !ff
                    && name.starts_with(MODEL_PREFIX)
                    && mine.is_some_and(|m| m != v.id)
                    && !mine.is_some_and(|m| is_ancestor(&session, &v.id, &m).unwrap_or(false));
                if ff || diverged {
                    refs::update(&session, name, mine, Some(v.id))?;
                    report.updated.push((name.clone(), v.id));
                }
                if diverged {
                    report.reset_models.push(name.clone());
                }
            }
        }
    }
    session.flush()?;
    Ok(report)
}

/// The `@vN` or `@STAGE` part of the `model:NAME@...` among `names` that names model ref `name`.
fn model_selector(names: &[String], name: &str) -> Option<String> {
    let m = name.strip_prefix(MODEL_PREFIX)?;
    names.iter().find_map(|n| {
        let spec = n.strip_prefix("model:")?;
        let (mn, sel) = spec.split_once('@')?;
        (mn == m).then(|| sel.to_string())
    })
}

/// Fetches a model's history (event objects only); returns the run of the version `sel`
/// names (the latest when `None`) and the path registered in it, when the event names one.
fn fetch_model_history(
    f: &mut Fetcher<'_, '_>,
    name: &str,
    head: ObjectId,
    sel: Option<&str>,
    partial: &mut Vec<ObjectId>,
    progress: &dyn Progress,
) -> Result<(ObjectId, Option<String>)> {
    let mut chain = Vec::new();
    let mut cur = Some(head);
    let mut seen = HashSet::new();
    while let Some(id) = cur {
        if !seen.insert(id) {
            break;
        }
        let raw = {
            let session = f.repo.store().session()?;
            if session.contains(&id)? {
                Some(session.read(&id)?.1)
            } else {
                None
            }
        };
        let raw = match raw {
            Some(r) => r,
            None => {
                // Fetched now, without the other versions' runs: partial.
                partial.push(id);
                f.fetch(&[id], false, progress)?
                    .remove(&id)
                    .ok_or_else(|| {
                        Error::Refused(format!("model event {id} could not be fetched"))
                    })?
            }
        };
        let e = crate::object::ModelEvent::decode(&raw)
            .map_err(|source| StoreError::Decode { id, source })?;
        cur = e.previous;
        chain.push(e);
    }
    chain.reverse();
    let model_name = name.strip_prefix(MODEL_PREFIX).unwrap_or(name);
    // Replay to find the version; the same rules as the registry.
    let mut versions: HashMap<u32, (ObjectId, Option<String>)> = HashMap::new();
    let mut stages: HashMap<String, u32> = HashMap::new();
    let mut latest = 0;
    for e in &chain {
        match (e.action.as_str(), e.version, e.run, e.stage.clone()) {
            ("register", Some(v), Some(run), _) => {
                versions.insert(v, (run, e.path.clone()));
                latest = latest.max(v);
            }
            ("stage", Some(v), _, Some(s)) => {
                stages.insert(s, v);
            }
            ("unstage", _, _, Some(s)) => {
                stages.remove(&s);
            }
            _ => {}
        }
    }
    let version = match sel {
        None => latest,
        Some(sel) => match sel.strip_prefix('v').and_then(|d| d.parse::<u32>().ok()) {
            Some(v) => v,
            None => *stages.get(sel).ok_or_else(|| {
                Error::Refused(format!(
                    "remote model {model_name} has no version in stage '{sel}'"
                ))
            })?,
        },
    };
    versions.remove(&version).ok_or_else(|| {
        Error::Refused(format!(
            "remote model {model_name} has no version v{version}"
        ))
    })
}

/// Fetches a model's history (event objects only) and, of the version `sel` names, the run
/// object and the registered files only — the run's data, code and other artifacts stay on the
/// remote, as with `--only` — or, `with_run`, the whole run.
fn fetch_model_version(
    f: &mut Fetcher<'_, '_>,
    name: &str,
    head: ObjectId,
    sel: &str,
    with_run: bool,
    partial: &mut Vec<ObjectId>,
    progress: &dyn Progress,
) -> Result<()> {
    let (run, path) = fetch_model_history(f, name, head, Some(sel), partial, progress)?;
    if let (false, Some(path)) = (with_run, path) {
        return fetch_only(f, run, &path, partial, progress);
    }
    // The run and what it is made of, but not its ancestors: only this version travels.
    let raw = match f.fetch(&[run], false, progress)?.remove(&run) {
        Some(raw) => raw,
        None => f.repo.store().session()?.read(&run)?.1,
    };
    let r = crate::object::Run::decode(&raw)
        .map_err(|source| StoreError::Decode { id: run, source })?;
    let roots: Vec<ObjectId> = r
        .references()
        .into_iter()
        .filter(|id| !r.parents.contains(id))
        .collect();
    if !r.parents.is_empty() {
        partial.push(run);
    }
    f.fetch(&roots, true, progress)?;
    Ok(())
}

/// Fetches the run, the trees on the way to `path`, and everything below `path`.
fn fetch_only(
    f: &mut Fetcher<'_, '_>,
    run_id: ObjectId,
    path: &str,
    partial: &mut Vec<ObjectId>,
    progress: &dyn Progress,
) -> Result<()> {
    let read_local = |f: &Fetcher<'_, '_>, id: &ObjectId| -> Result<Option<Vec<u8>>> {
        let session = f.repo.store().session()?;
        if session.contains(id)? {
            return Ok(Some(session.read(id)?.1));
        }
        Ok(None)
    };
    let get_one = |f: &mut Fetcher<'_, '_>, id: ObjectId| -> Result<Vec<u8>> {
        if let Some(raw) = read_local(f, &id)? {
            return Ok(raw);
        }
        let mut got = f.fetch(&[id], false, progress)?;
        got.remove(&id)
            .ok_or_else(|| Error::Refused(format!("object {id} could not be fetched")))
    };
    if f.repo.store().session()?.has_complete(&run_id)? {
        // Here whole already: nothing to fetch, and nothing to mark partial.
        return Ok(());
    }
    if let Some((_, e)) = f.rindex.objects.get(&run_id) {
        if e.kind != Kind::Run {
            return Err(Error::Refused(format!(
                "--only needs a run; object {} on the remote is not one",
                run_id.short()
            )));
        }
    }
    let raw = get_one(f, run_id)?;
    let run = crate::object::Run::decode(&raw)
        .map_err(|source| StoreError::Decode { id: run_id, source })?;
    partial.push(run_id);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let not_found = || Error::NoSuchPath {
        run: run_id.short(),
        path: path.to_string(),
    };
    let (mut node, rest): (ObjectId, &[&str]) = match parts.as_slice() {
        ["code", rest @ ..] => (run.code.as_ref().ok_or_else(not_found)?.tree, rest),
        ["artifacts", rest @ ..] => (run.artifacts.as_ref().ok_or_else(not_found)?.tree, rest),
        ["data", name, rest @ ..] => (run.data.get(*name).ok_or_else(not_found)?.id, rest),
        _ => return Err(not_found()),
    };
    for part in rest {
        let raw = get_one(f, node)?;
        let tree = crate::object::Tree::decode(&raw)
            .map_err(|source| StoreError::Decode { id: node, source })?;
        partial.push(node);
        node = tree.get(part).ok_or_else(not_found)?.id;
    }
    f.fetch(&[node], true, progress)?;
    Ok(())
}

// ---- pull and clone --------------------------------------------------------------------------

/// Fetches `branch` (default: the current branch) from `remote` and fast-forwards the local
/// branch to it. Returns the fetch report and the new tip.
pub fn pull(
    repo: &Repo,
    remote: &str,
    branch: Option<&str>,
    progress: &dyn Progress,
) -> Result<(FetchReport, Option<ObjectId>)> {
    let branch = match branch {
        Some(b) => b.to_string(),
        None => {
            let session = repo.store().session()?;
            match refs::head(&session)? {
                refs::Head::Branch(b) => b,
                refs::Head::Detached(_) => {
                    return Err(Error::Refused(
                        "HEAD is detached: name the branch to pull".into(),
                    ))
                }
            }
        }
    };
    let report = fetch(
        repo,
        remote,
        &FetchOptions {
            refs: vec![branch.clone()],
            only: None,
            with_run: false,
        },
        progress,
    )?;
    let session = repo.store().session()?;
    let Some(theirs) = refs::get_id(&session, &format!("refs/remotes/{remote}/{branch}"))? else {
        return Err(Error::Refused(format!(
            "remote {remote} has no branch '{branch}'"
        )));
    };
    let full = format!("{BRANCH_PREFIX}{branch}");
    let mine = refs::get_id(&session, &full)?;
    match mine {
        Some(m) if m == theirs => return Ok((report, Some(m))),
        Some(m) if is_ancestor(&session, &theirs, &m)? => return Ok((report, Some(m))),
        Some(m) if !is_ancestor(&session, &m, &theirs)? => {
            return Err(Error::Refused(format!(
                "branch {branch} has diverged from {remote}/{branch} ({} here, {} there); cairn does not merge runs: push your runs to another branch, or move yours with `cairn branch -f {branch} {remote}/{branch}`",
                m.short(),
                theirs.short()
            )))
        }
        _ => {}
    }
    refs::update(&session, &full, mine, Some(theirs))?;
    session.flush()?;
    Ok((report, Some(theirs)))
}

/// Clones `url` into `dir`: a new repository with remote `origin`, every ref fetched, local
/// branches for the remote's branches, HEAD on `branch` (default `main`, else the first).
pub fn clone(
    dir: &std::path::Path,
    cfg: RemoteConfig,
    branch: Option<&str>,
    progress: &dyn Progress,
) -> Result<Repo> {
    let repo = Repo::init(dir)?;
    let result = (|| -> Result<()> {
        if !cfg.url.starts_with("s3://")
            && !std::path::Path::new(cfg.url.strip_prefix("file://").unwrap_or(&cfg.url)).is_dir()
        {
            return Err(Error::BadArgument {
                arg: cfg.url.clone(),
                reason: "no such folder".into(),
            });
        }
        super::add(&repo, "origin", cfg.clone(), false, false)?;
        let t = super::connect(&cfg)?;
        if t.list_refs()?.is_empty() {
            return Err(Error::Refused(format!(
                "remote {} has no branches, tags or models: nothing to clone (is the URL right?)",
                cfg.url
            )));
        }
        drop(t);
        fetch_with(&repo, "origin", &cfg, &FetchOptions::default(), progress)?;
        let session = repo.store().session()?;
        let tracking = session.refs("refs/remotes/origin/")?;
        let mut names = Vec::new();
        for (name, v) in tracking {
            let b = name.trim_start_matches("refs/remotes/origin/").to_string();
            if b == "notes/runs" || b.starts_with("models/") {
                continue;
            }
            if let crate::store::RefValue::Id(id) = v {
                refs::update(&session, &format!("{BRANCH_PREFIX}{b}"), None, Some(id))?;
                names.push(b);
            }
        }
        let head = match branch {
            Some(b) if names.iter().any(|n| n == b) => b.to_string(),
            Some(b) => return Err(Error::Refused(format!("the remote has no branch '{b}'"))),
            None if names.iter().any(|n| n == "main") => "main".into(),
            None => names.first().cloned().unwrap_or_else(|| "main".into()),
        };
        let old = session.ref_get(refs::HEAD)?;
        session.ref_cas(
            refs::HEAD,
            old.as_ref(),
            Some(&crate::store::RefValue::Symbolic(format!(
                "{BRANCH_PREFIX}{head}"
            ))),
        )?;
        session.flush()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(repo.store().dir());
        return Err(e);
    }
    Ok(repo)
}
