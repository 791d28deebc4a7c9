//! The index database (sled): object locations, refs, the run index and the stat cache.
//!
//! One sled tree holds every record under a one-byte key prefix:
//! `o` + id → [`Location`]; `r` + ref name → [`RefValue`]; `u` + run id → start time (i64 BE);
//! `s` + folder path ending in `/` → [`StatFolder`]; `m` + name → metadata (`m format` → u32 LE).

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pack::{self, Location};
use super::stat::StatFolder;
use super::{codec, io_err, Result, Store, StoreError};
use crate::hash::ObjectId;
use crate::object::{self, ChunkedFile, Kind, Note, Run, Tree};

pub(crate) const OBJ: u8 = b'o';
pub(crate) const REF: u8 = b'r';
pub(crate) const RUN: u8 = b'u';
pub(crate) const STAT: u8 = b's';
pub(crate) const META: u8 = b'm';
pub(crate) const SUMMARY: u8 = b'x';
pub(crate) const PARTIAL: u8 = b'p';

pub(crate) fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn db_err(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::IndexDamaged,
        e => StoreError::Db(e.to_string()),
    }
}

/// Free space the repository's file system must have when the index is opened and when a
/// writer publishes new content: sled damages its own files when one of its writes fails for
/// lack of space, so cairn refuses beforehand instead.
pub const INDEX_MIN_FREE: u64 = 4 << 20;

/// Fails with [`StoreError::LowSpace`] when the file system of `dir` has less than
/// [`INDEX_MIN_FREE`] bytes free for unprivileged writers.
pub(crate) fn check_free_space(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: statvfs only writes into the zeroed struct we pass; the path is NUL-terminated.
    let free = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            // Unknown: let the writes themselves report any problem.
            return Ok(());
        }
        // The field types differ between platforms.
        #[allow(clippy::useless_conversion)]
        let (avail, frsize) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
        avail.saturating_mul(frsize)
    };
    if free < INDEX_MIN_FREE {
        return Err(StoreError::LowSpace {
            path: dir.to_path_buf(),
            free,
            needed: INDEX_MIN_FREE,
        });
    }
    Ok(())
}

/// What a ref holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    /// An object id.
    Id(ObjectId),
    /// Another ref's name (HEAD → `refs/heads/main`).
    Symbolic(String),
}

impl RefValue {
    /// Encodes for the index: `I` + 32-byte id, or `S` + the target ref's name.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RefValue::Id(id) => key(b'I', id.as_bytes()),
            RefValue::Symbolic(name) => key(b'S', name.as_bytes()),
        }
    }

    /// Decodes an index value; `None` when malformed.
    pub fn decode(b: &[u8]) -> Option<Self> {
        match b.split_first()? {
            (b'I', rest) => ObjectId::from_slice(rest).map(RefValue::Id),
            (b'S', rest) => std::str::from_utf8(rest)
                .ok()
                .map(|s| RefValue::Symbolic(s.to_string())),
            _ => None,
        }
    }
}

/// Reads the record at `loc` from an open pack and verifies it is object `id`.
pub(crate) fn read_verified(file: &File, id: &ObjectId, loc: &Location) -> Result<Vec<u8>> {
    let corrupt = |reason: String| StoreError::Corrupt { id: *id, reason };
    let (header, stored) = pack::read_record(file, loc).map_err(|e| e.for_object(id))?;
    if header.id != *id {
        return Err(corrupt("the pack record holds another object".into()));
    }
    let raw =
        codec::decompress(loc.codec, stored, loc.raw_len).map_err(|e| corrupt(e.to_string()))?;
    if object::hash_object(loc.kind, &raw) != *id {
        return Err(corrupt("content does not match its id".into()));
    }
    Ok(raw)
}

/// Writes the content planned by [`Session::content_plan`] to `out`, each piece read from its
/// pack in `packs` (see [`Session::open_packs`]) and verified; needs no session. A failed write
/// to `out` is reported as [`StoreError::Io`] on `<output>`.
pub fn write_pieces(
    plan: &[(ObjectId, Location)],
    packs: &HashMap<u64, Arc<File>>,
    out: &mut dyn std::io::Write,
    progress: &dyn Fn(u64),
) -> Result<u64> {
    let mut n = 0;
    for (piece, loc) in plan {
        let pack = packs.get(&loc.pack).ok_or(StoreError::Missing(*piece))?;
        let bytes = read_verified(pack, piece, loc)?;
        out.write_all(&bytes).map_err(|source| StoreError::Io {
            path: "<output>".into(),
            source,
        })?;
        n += loc.raw_len;
        progress(loc.raw_len);
    }
    Ok(n)
}

/// An open index: held exclusively by this process until the last session on it is dropped
/// (sessions open at once in one process share the handle). Keep it short.
pub struct Session<'s> {
    store: &'s Store,
    db: Arc<sled::Db>,
    files: Mutex<HashMap<u64, Arc<File>>>,
}

fn is_lock_error(e: &sled::Error) -> bool {
    let s = e.to_string();
    s.contains("could not acquire lock")
        || s.contains("WouldBlock")
        || s.contains("Resource temporarily unavailable")
}

/// Removes the snapshot files a killed process left half-written in the index folder.
///
/// sled writes a snapshot of its page table while it opens (`snap.<lsn>.generating`, synced,
/// then renamed to `snap.<lsn>`), so a command killed at that moment — even a read-only one
/// such as `cairn log` — leaves a partial file. sled 0.34 takes the newest `snap.*` file when
/// it opens, `.generating` ones included, and then refuses to open at all because its checksum
/// does not match. Such a file holds nothing the log does not: the previous snapshot is only
/// removed after the rename, and sled replays the log from whichever snapshot it reads.
///
/// Only a process holding sled's lock on `db` writes snapshots, so an unfinished one found
/// while holding that lock belongs to a dead process. When another process holds it, nothing is
/// touched (the open that follows waits for it as usual). Failures are left to the open.
fn clear_unfinished_snapshots(index: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let unfinished = |index: &std::path::Path| -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(index) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("snap.") && name.ends_with(".generating")
            })
            .map(|e| e.path())
            .collect()
    };
    if unfinished(index).is_empty() {
        return;
    }
    let Ok(db) = File::open(index.join("db")) else {
        return;
    };
    // SAFETY: flock on a file descriptor we own; the lock is released when `db` is closed.
    if unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return;
    }
    // Listed again under the lock: any file seen now is not being written by anyone.
    for path in unfinished(index) {
        let _ = std::fs::remove_file(path);
    }
    drop(db);
}

impl<'s> Session<'s> {
    pub(crate) fn open(store: &'s Store) -> Result<Self> {
        check_free_space(&store.dir)?;
        let start = Instant::now();
        let mut delay = Duration::from_millis(1);
        let mut told = false;
        let mut jitter: u64 = u64::from(std::process::id());
        loop {
            // The process's handle, when a session of this process has it open; otherwise one
            // attempt to open it, under the same guard so that threads do not race each other.
            let mut shared = store.shared.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(db) = shared.upgrade() {
                return Ok(Session {
                    store,
                    db,
                    files: Mutex::new(HashMap::new()),
                });
            }
            clear_unfinished_snapshots(&store.index);
            let cfg = sled::Config::new()
                .path(&store.index)
                .cache_capacity(32 << 20)
                .flush_every_ms(None);
            let err = match cfg.open() {
                Ok(db) => {
                    let db = Arc::new(db);
                    *shared = Arc::downgrade(&db);
                    return Ok(Session {
                        store,
                        db,
                        files: Mutex::new(HashMap::new()),
                    });
                }
                Err(e) => e,
            };
            drop(shared);
            match err {
                e if is_lock_error(&e) => {
                    let waited = start.elapsed();
                    if waited > store.lock_timeout {
                        return Err(StoreError::Busy(waited));
                    }
                    if !told && waited > Duration::from_secs(1) {
                        told = true;
                        if let Some(h) = &store.on_wait {
                            h();
                        }
                    }
                    jitter = jitter
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let extra = Duration::from_micros((jitter >> 33) % 2000);
                    std::thread::sleep(delay + extra);
                    delay = (delay * 2).min(Duration::from_millis(25));
                }
                sled::Error::Io(e)
                    if matches!(e.raw_os_error(), Some(libc::EROFS | libc::EACCES)) =>
                {
                    return Err(StoreError::NotWritable {
                        path: store.index.clone(),
                        source: e,
                    })
                }
                e => return Err(db_err(e)),
            }
        }
    }

    /// The store this session belongs to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    pub(crate) fn format(&self) -> Result<u32> {
        match self.db.get(key(META, b"format")).map_err(db_err)? {
            None => Ok(0),
            Some(v) => Ok(v
                .as_ref()
                .try_into()
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX)),
        }
    }

    pub(crate) fn set_format(&self, v: u32) -> Result<()> {
        self.db
            .insert(key(META, b"format"), &v.to_le_bytes())
            .map_err(db_err)?;
        Ok(())
    }

    /// Makes everything written durable.
    pub fn flush(&self) -> Result<()> {
        crate::fault::check("index.flush").map_err(|e| StoreError::Db(e.to_string()))?;
        self.db.flush().map_err(db_err)?;
        Ok(())
    }

    // ---- objects -------------------------------------------------------------------------

    /// Where object `id` is stored, if it is.
    pub fn location(&self, id: &ObjectId) -> Result<Option<Location>> {
        match self.db.get(key(OBJ, id.as_bytes())).map_err(db_err)? {
            None => Ok(None),
            Some(v) => Location::decode(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt {
                    id: *id,
                    reason: "damaged index entry".into(),
                }),
        }
    }

    /// True when `id` is in the store.
    pub fn contains(&self, id: &ObjectId) -> Result<bool> {
        self.db
            .contains_key(key(OBJ, id.as_bytes()))
            .map_err(db_err)
    }

    /// Every indexed object with its location.
    pub fn objects(&self) -> impl Iterator<Item = Result<(ObjectId, Option<Location>)>> + '_ {
        self.db.scan_prefix([OBJ]).map(|r| {
            let (k, v) = r.map_err(db_err)?;
            let id = ObjectId::from_slice(&k[1..])
                .ok_or_else(|| StoreError::Db("damaged object key in the index".into()))?;
            Ok((id, Location::decode(&v)))
        })
    }

    pub(crate) fn pack_file(&self, pack: u64) -> Result<Arc<File>> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = files.get(&pack) {
            return Ok(f.clone());
        }
        let path = self.store.pack_path(pack);
        let mut file = File::open(&path).map_err(io_err(&path))?;
        pack::check_pack_header(&mut file).map_err(|reason| StoreError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        })?;
        let f = Arc::new(file);
        files.insert(pack, f.clone());
        Ok(f)
    }

    /// The open pack object `id` is stored in: a missing or damaged pack makes the object
    /// corrupt; any other failure to open it (too many open files, no permission, EIO) is not
    /// damage, and says what it is.
    fn pack_of(&self, id: &ObjectId, pack: u64) -> Result<Arc<File>> {
        self.pack_file(pack).map_err(|e| match e {
            StoreError::Io { path, source }
                if !matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
                ) =>
            {
                StoreError::Unreadable {
                    id: *id,
                    source: std::io::Error::new(
                        source.kind(),
                        format!("{}: {source}", path.display()),
                    ),
                }
            }
            e => StoreError::Corrupt {
                id: *id,
                reason: format!("its pack cannot be opened: {e}"),
            },
        })
    }

    /// Reads object `id` at a known location, verifying its hash.
    pub fn read_at(&self, id: &ObjectId, loc: &Location) -> Result<Vec<u8>> {
        let file = self.pack_of(id, loc.pack)?;
        read_verified(&file, id, loc)
    }

    /// Where the pieces of file content `id` (a blob or chunked file) are, in order, so they
    /// can be read after the session ends (see [`open_packs`](Self::open_packs) and
    /// [`write_pieces`]).
    pub fn content_plan(&self, id: &ObjectId) -> Result<Vec<(ObjectId, Location)>> {
        self.file_pieces(id)?
            .into_iter()
            .map(|(piece, size)| {
                let loc = self.location(&piece)?.ok_or(StoreError::Missing(piece))?;
                if loc.kind != Kind::Blob || loc.raw_len != size {
                    return Err(StoreError::Corrupt {
                        id: *id,
                        reason: format!("chunk {piece} does not match its chunk list"),
                    });
                }
                Ok((piece, loc))
            })
            .collect()
    }

    /// Opens the packs `plan` (from [`content_plan`](Self::content_plan)) reads from, adding
    /// them to `packs`: with its packs open, a plan can be read after the session is given up,
    /// even if a concurrent `gc` rewrites or removes those packs meanwhile.
    pub fn open_packs(
        &self,
        plan: &[(ObjectId, Location)],
        packs: &mut HashMap<u64, Arc<File>>,
    ) -> Result<()> {
        for (piece, loc) in plan {
            if let std::collections::hash_map::Entry::Vacant(v) = packs.entry(loc.pack) {
                v.insert(self.pack_of(piece, loc.pack)?);
            }
        }
        Ok(())
    }

    /// Reads object `id`: its kind and verified content.
    pub fn read(&self, id: &ObjectId) -> Result<(Kind, Vec<u8>)> {
        let loc = self.location(id)?.ok_or(StoreError::Missing(*id))?;
        Ok((loc.kind, self.read_at(id, &loc)?))
    }

    /// Reads an object that must be of kind `expected`.
    pub fn read_kind(&self, id: &ObjectId, expected: Kind) -> Result<Vec<u8>> {
        let (kind, raw) = self.read(id)?;
        if kind != expected {
            return Err(StoreError::WrongKind {
                id: *id,
                expected,
                actual: kind,
            });
        }
        Ok(raw)
    }

    /// Reads and decodes a tree.
    pub fn read_tree(&self, id: &ObjectId) -> Result<Tree> {
        let raw = self.read_kind(id, Kind::Tree)?;
        Tree::decode(&raw).map_err(|source| StoreError::Decode { id: *id, source })
    }

    /// Reads and decodes a run.
    pub fn read_run(&self, id: &ObjectId) -> Result<Run> {
        let raw = self.read_kind(id, Kind::Run)?;
        Run::decode(&raw).map_err(|source| StoreError::Decode { id: *id, source })
    }

    /// Reads and decodes a note.
    pub fn read_note(&self, id: &ObjectId) -> Result<Note> {
        let raw = self.read_kind(id, Kind::Note)?;
        Note::decode(&raw).map_err(|source| StoreError::Decode { id: *id, source })
    }

    /// Reads and decodes a chunked file.
    pub fn read_chunked(&self, id: &ObjectId) -> Result<ChunkedFile> {
        let raw = self.read_kind(id, Kind::Chunked)?;
        ChunkedFile::decode(&raw).map_err(|source| StoreError::Decode { id: *id, source })
    }

    /// The ids of the pieces of file content `id`, in order (itself for a blob), with sizes.
    pub fn file_pieces(&self, id: &ObjectId) -> Result<Vec<(ObjectId, u64)>> {
        let loc = self.location(id)?.ok_or(StoreError::Missing(*id))?;
        match loc.kind {
            Kind::Blob => Ok(vec![(*id, loc.raw_len)]),
            Kind::Chunked => Ok(self
                .read_chunked(id)?
                .chunks
                .into_iter()
                .map(|c| (c.id, c.size))
                .collect()),
            other => Err(StoreError::WrongKind {
                id: *id,
                expected: Kind::Blob,
                actual: other,
            }),
        }
    }

    /// Streams file content `id` (a blob or chunked file) into `out`; returns bytes written.
    pub fn write_file_content(
        &self,
        id: &ObjectId,
        out: &mut dyn std::io::Write,
        progress: &dyn Fn(u64),
    ) -> Result<u64> {
        // The way `cat` and checkout read content after their session, here within it.
        let plan = self.content_plan(id)?;
        let mut packs = HashMap::new();
        self.open_packs(&plan, &mut packs)?;
        write_pieces(&plan, &packs, out, progress)
    }

    // ---- refs ----------------------------------------------------------------------------

    /// The value of ref `name`.
    pub fn ref_get(&self, name: &str) -> Result<Option<RefValue>> {
        match self.db.get(key(REF, name.as_bytes())).map_err(db_err)? {
            None => Ok(None),
            Some(v) => RefValue::decode(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Db(format!("ref {name} is damaged"))),
        }
    }

    /// Moves ref `name` from `old` to `new` atomically; fails if it no longer holds `old`.
    pub fn ref_cas(
        &self,
        name: &str,
        old: Option<&RefValue>,
        new: Option<&RefValue>,
    ) -> Result<()> {
        let r = self
            .db
            .compare_and_swap(
                key(REF, name.as_bytes()),
                old.map(|v| v.encode()),
                new.map(|v| v.encode()),
            )
            .map_err(db_err)?;
        r.map_err(|_| StoreError::RefMoved(name.to_string()))
    }

    /// All refs whose names start with `prefix`, sorted by name.
    pub fn refs(&self, prefix: &str) -> Result<Vec<(String, RefValue)>> {
        let mut out = Vec::new();
        for r in self.db.scan_prefix(key(REF, prefix.as_bytes())) {
            let (k, v) = r.map_err(db_err)?;
            let name = String::from_utf8_lossy(&k[1..]).into_owned();
            match RefValue::decode(&v) {
                Some(v) => out.push((name, v)),
                None => return Err(StoreError::Db(format!("ref {name} is damaged"))),
            }
        }
        Ok(out)
    }

    // ---- runs ----------------------------------------------------------------------------

    /// Run ids whose hex form starts with `prefix`.
    pub fn runs_with_prefix(&self, prefix: &str) -> Result<Vec<ObjectId>> {
        let bytes = crate::hash::prefix_bytes(prefix);
        let mut out = Vec::new();
        for r in self.db.scan_prefix(key(RUN, &bytes)) {
            let (k, _) = r.map_err(db_err)?;
            if let Some(id) = ObjectId::from_slice(&k[1..]) {
                if id.has_hex_prefix(prefix) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Every stored query summary: run id and its JSON.
    pub fn summaries(&self) -> Result<Vec<(ObjectId, Vec<u8>)>> {
        let mut out = Vec::new();
        for r in self.db.scan_prefix([SUMMARY]) {
            let (k, v) = r.map_err(db_err)?;
            if let Some(id) = ObjectId::from_slice(&k[1..]) {
                out.push((id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// True when `id` was fetched without everything it refers to.
    pub fn is_partial(&self, id: &ObjectId) -> Result<bool> {
        self.db
            .contains_key(key(PARTIAL, id.as_bytes()))
            .map_err(db_err)
    }

    /// True when `id` is present and complete (not partial).
    pub fn has_complete(&self, id: &ObjectId) -> Result<bool> {
        Ok(self.contains(id)? && !self.is_partial(id)?)
    }

    /// Every run in the run index.
    pub fn all_runs(&self) -> Result<Vec<ObjectId>> {
        self.runs_with_prefix("")
    }

    // ---- stat cache ----------------------------------------------------------------------

    /// The stat-cache record of a folder (its absolute path's bytes, ending in `/`). A record
    /// that does not decode (damaged, or written by another version) reads as absent.
    pub fn stat_folder(&self, dir: &[u8]) -> Result<Option<StatFolder>> {
        Ok(self
            .db
            .get(key(STAT, dir))
            .map_err(db_err)?
            .and_then(|v| StatFolder::decode(&v)))
    }

    /// Every stat-cache record: the folder key and its record, `None` for one that does not
    /// decode (damaged, or of an older layout).
    pub fn stat_folders(&self) -> impl Iterator<Item = Result<(Vec<u8>, Option<StatFolder>)>> + '_ {
        self.db.scan_prefix([STAT]).map(|r| {
            let (k, v) = r.map_err(db_err)?;
            Ok((k[1..].to_vec(), StatFolder::decode(&v)))
        })
    }

    /// A counter that gc increments whenever it removes objects. A writer that saw the same
    /// value before and at publish time knows nothing it relied on was removed in between.
    pub fn gc_generation(&self) -> Result<u64> {
        Ok(self
            .db
            .get(key(META, b"gcgen"))
            .map_err(db_err)?
            .and_then(|v| v.as_ref().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0))
    }

    /// Increments the gc generation (gc does this before removing anything).
    pub fn bump_gc_generation(&self) -> Result<()> {
        let next = self.gc_generation()? + 1;
        self.db
            .insert(key(META, b"gcgen"), &next.to_le_bytes())
            .map_err(db_err)?;
        Ok(())
    }

    // ---- batches -------------------------------------------------------------------------

    /// Applies a batch of index changes atomically.
    pub fn apply(&self, batch: Batch) -> Result<()> {
        crate::fault::check("index.apply").map_err(|e| StoreError::Db(e.to_string()))?;
        self.db.apply_batch(batch.inner).map_err(db_err)
    }
}

/// A set of index changes applied atomically.
#[derive(Default)]
pub struct Batch {
    inner: sled::Batch,
    len: usize,
}

impl Batch {
    /// Records an object location.
    pub fn put_object(&mut self, id: &ObjectId, loc: &Location) {
        self.inner
            .insert(key(OBJ, id.as_bytes()), &loc.encode()[..]);
        self.len += 1;
    }

    /// Removes an object entry.
    pub fn remove_object(&mut self, id: &ObjectId) {
        self.inner.remove(key(OBJ, id.as_bytes()));
        self.len += 1;
    }

    /// Adds a run to the run index.
    pub fn put_run(&mut self, id: &ObjectId, started_at: i64) {
        self.inner
            .insert(key(RUN, id.as_bytes()), &started_at.to_be_bytes()[..]);
        self.len += 1;
    }

    /// Removes a run from the run index and the query index.
    pub fn remove_run(&mut self, id: &ObjectId) {
        self.inner.remove(key(RUN, id.as_bytes()));
        self.inner.remove(key(SUMMARY, id.as_bytes()));
        self.len += 2;
    }

    /// Marks an object as partial: fetched without everything it refers to.
    pub fn put_partial(&mut self, id: &ObjectId) {
        self.inner.insert(key(PARTIAL, id.as_bytes()), &[][..]);
        self.len += 1;
    }

    /// Clears the partial mark (everything it refers to is now present).
    pub fn remove_partial(&mut self, id: &ObjectId) {
        self.inner.remove(key(PARTIAL, id.as_bytes()));
        self.len += 1;
    }

    /// Removes a run's query summary.
    pub fn remove_summary(&mut self, id: &ObjectId) {
        self.inner.remove(key(SUMMARY, id.as_bytes()));
        self.len += 1;
    }

    /// Records a run's query summary (JSON).
    pub fn put_summary(&mut self, id: &ObjectId, json: &[u8]) {
        self.inner.insert(key(SUMMARY, id.as_bytes()), json);
        self.len += 1;
    }

    /// Records the stat-cache record of a folder (path ending in `/`).
    pub fn put_stat_folder(&mut self, dir: &[u8], folder: &StatFolder) {
        self.inner.insert(key(STAT, dir), folder.encode());
        self.len += 1;
    }

    /// Removes a stat-cache record.
    pub fn remove_stat(&mut self, dir: &[u8]) {
        self.inner.remove(key(STAT, dir));
        self.len += 1;
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a fresh temporary folder that gives up waiting for the index after `wait`.
    fn store(wait: Duration) -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let mut store = Store::create(tmp.path()).unwrap();
        store.set_lock_timeout(wait);
        (tmp, store)
    }

    #[test]
    fn sessions_of_one_process_share_the_index() {
        let (tmp, store) = store(Duration::from_millis(300));
        let outer = store.session().unwrap();
        // A nested session used to wait for its own process until the timeout.
        let inner = store.session().unwrap();
        inner.set_format(1).unwrap();
        assert_eq!(outer.format().unwrap(), 1);
        // Threads share it too.
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(store.session().unwrap().format().unwrap(), 1));
            }
        });
        drop(outer);
        // Another handle on the same folder (as another process would open it) waits while
        // one session lives, and gets the index once the last one is dropped.
        let mut other = Store::open(tmp.path()).unwrap();
        other.set_lock_timeout(Duration::from_millis(200));
        assert!(matches!(other.session(), Err(StoreError::Busy(_))));
        drop(inner);
        other.set_lock_timeout(Duration::from_secs(10));
        assert_eq!(other.session().unwrap().format().unwrap(), 1);
    }
}
