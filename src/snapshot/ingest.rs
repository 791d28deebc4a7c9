//! Storing listed files as objects and assembling them into trees.
//!
//! Files whose size, times and inode match the stat cache are not read again: their content id
//! comes from the cache (as git's index does). Small files are read and stored in batches; large
//! files stream through the chunker in bounded batches, so memory stays bounded whatever the
//! file size. Trees are built bottom-up in memory and stored in one batch at the end.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::chunker::{self, MAX_CHUNK};
use super::walk::{WalkEntry, WalkKind};
use super::{io_err, Result, SnapshotError};
use crate::hash::ObjectId;
use crate::object::{hash_object, ChunkRef, ChunkedFile, EntryKind, Kind, Tree, TreeEntry};
use crate::progress::Progress;
use crate::store::stat::split_path;
use crate::store::{Batch, ObjectWriter, StatEntry, StatFolder};

/// Files older than this (relative to the snapshot) are trusted to the stat cache; younger
/// ones could still change within the timestamp granularity and are always re-read.
const RACY_NS: i64 = 2_000_000_000;
const SMALL_BATCH_BYTES: u64 = 32 << 20;
const SMALL_BATCH_FILES: usize = 4096;
/// A large file whose first block compresses by less than this fraction is stored raw.
const MIN_SAVING: f64 = 0.10;

/// The result of a snapshot: a tree, or a single file or link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The object id (tree, blob or chunked file).
    pub id: ObjectId,
    /// What the root is.
    pub kind: EntryKind,
    /// Total bytes of files.
    pub size: u64,
    /// Number of files and links.
    pub files: u64,
}

/// Stores snapshots through a writer; collects stat-cache updates to publish with them.
pub struct Ingest<'a, 's> {
    writer: &'a mut ObjectWriter<'s>,
    progress: &'a dyn Progress,
    /// Stat-cache records of the folders seen, and their positions by folder path (ending in
    /// `/`).
    folders: Vec<FolderState>,
    folder_index: HashMap<Vec<u8>, usize>,
    now_ns: i64,
    /// Files read (not served by the stat cache).
    pub files_read: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl<'a, 's> Ingest<'a, 's> {
    /// A new ingest writing through `writer`.
    pub fn new(writer: &'a mut ObjectWriter<'s>, progress: &'a dyn Progress) -> Self {
        Ingest {
            writer,
            progress,
            folders: Vec::new(),
            folder_index: HashMap::new(),
            now_ns: now_ns(),
            files_read: 0,
            bytes_read: 0,
        }
    }

    /// Takes the stat-cache records that changed, to publish with the content: a folder's
    /// new record, or `None` to remove it. A commit that changed nothing returns none.
    pub fn take_stats(&mut self) -> StatUpdates {
        self.folder_index.clear();
        let mut out: StatUpdates = std::mem::take(&mut self.folders)
            .into_iter()
            .filter_map(FolderState::into_update)
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The position in `folders` of the folder holding `path` (if loaded), looked up from the
    /// previous answer when the folder is the same (entries come grouped by folder).
    fn folder_of<'p>(
        &self,
        path: &'p [u8],
        last: &mut Option<(&'p [u8], usize)>,
    ) -> Option<(usize, &'p [u8])> {
        let (dir, name) = split_path(path)?;
        if let Some((d, i)) = *last {
            if d == dir {
                return Some((i, name));
            }
        }
        let i = *self.folder_index.get(dir)?;
        *last = Some((dir, i));
        Some((i, name))
    }

    /// Stores a single file or link (an entry with an empty relative path).
    pub fn single(&mut self, entry: WalkEntry) -> Result<Snapshot> {
        let kind = match entry.kind {
            WalkKind::File { executable: true } => EntryKind::Executable,
            WalkKind::File { executable: false } => EntryKind::File,
            WalkKind::Symlink => EntryKind::Symlink,
            WalkKind::Dir => return self.tree(vec![]),
        };
        let size = entry.size;
        let ids = self.content_ids(std::slice::from_ref(&entry), false)?;
        let id = ids
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| SnapshotError::Walk("no content id".into()))?;
        Ok(Snapshot {
            id,
            kind,
            size,
            files: 1,
        })
    }

    /// Stores a tree from a flat list of entries with relative paths (folders implied). The
    /// list is the whole content of each folder it names: the stat cache forgets files of
    /// those folders that are not in it.
    pub fn tree(&mut self, entries: Vec<WalkEntry>) -> Result<Snapshot> {
        let ids = self.content_ids(&entries, true)?;
        // Group by parent folder, keyed by relative path bytes ("" is the root). Ancestors of a
        // folder in the map are always in it too.
        let mut dirs: HashMap<&[u8], Vec<TreeEntry>> = HashMap::new();
        dirs.insert(b"", Vec::new());
        // Entries come grouped by folder: collect a run of siblings, then add it at once.
        let mut cur_parent: &[u8] = b"";
        let mut cur: Vec<TreeEntry> = Vec::new();
        let mut files = 0u64;
        for (e, id) in entries.iter().zip(ids) {
            let rel = e.rel.as_os_str().as_bytes();
            let (parent, name) = split_rel(rel);
            if parent != cur_parent {
                dirs.entry(cur_parent).or_default().append(&mut cur);
                cur_parent = parent;
                let mut p = Some(parent);
                while let Some(d) = p {
                    if dirs.contains_key(d) {
                        break;
                    }
                    dirs.insert(d, Vec::new());
                    p = (!d.is_empty()).then(|| split_rel(d).0);
                }
            }
            let kind = match e.kind {
                WalkKind::Dir => {
                    dirs.entry(rel).or_default();
                    continue;
                }
                WalkKind::File { executable: true } => EntryKind::Executable,
                WalkKind::File { executable: false } => EntryKind::File,
                WalkKind::Symlink => EntryKind::Symlink,
            };
            let Some(id) = id else { continue };
            files += 1;
            cur.push(TreeEntry {
                name: utf8_name(name, &e.abs)?,
                kind,
                size: e.size,
                id,
            });
        }
        dirs.entry(cur_parent).or_default().append(&mut cur);
        // Deepest folders first, so each child's id is known before its parent is built.
        let mut order: Vec<&[u8]> = dirs.keys().copied().collect();
        order.sort_by_key(|d| {
            let depth = if d.is_empty() {
                0
            } else {
                1 + d.iter().filter(|&&b| b == b'/').count()
            };
            std::cmp::Reverse(depth)
        });
        let mut root = None;
        for dir in order {
            let entries = dirs.remove(dir).unwrap_or_default();
            let tree = Tree::from_entries(entries).map_err(|e| SnapshotError::BadPath {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(dir)),
                reason: e.reason,
            })?;
            let size = tree.size();
            let id = self.writer.defer(Kind::Tree, tree.encode());
            if dir.is_empty() {
                root = Some((id, size));
                break;
            }
            let (parent, name) = split_rel(dir);
            let name = utf8_name(name, Path::new(std::ffi::OsStr::from_bytes(dir)))?;
            dirs.entry(parent).or_default().push(TreeEntry {
                name,
                kind: EntryKind::Tree,
                size,
                id,
            });
        }
        let (id, size) = root.ok_or_else(|| SnapshotError::Walk("no root tree".into()))?;
        Ok(Snapshot {
            id,
            kind: EntryKind::Tree,
            size,
            files,
        })
    }

    /// Content ids for the file and link entries (`None` for folders). `whole_folders` says
    /// the entries list everything in their folders (see [`Ingest::tree`]).
    fn content_ids(
        &mut self,
        entries: &[WalkEntry],
        whole_folders: bool,
    ) -> Result<Vec<Option<ObjectId>>> {
        let mut ids: Vec<Option<ObjectId>> = vec![None; entries.len()];
        let wanted: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].kind != WalkKind::Dir)
            .collect();
        if wanted.is_empty() {
            return Ok(ids);
        }
        // 1. The stat cache: one record per folder, all read in one short session.
        let mut missing: Vec<&[u8]> = Vec::new();
        {
            let mut seen = std::collections::HashSet::new();
            let mut last: &[u8] = &[];
            for &i in &wanted {
                if let Some((dir, _)) = split_path(entries[i].abs.as_os_str().as_bytes()) {
                    if dir != last {
                        last = dir;
                        if !self.folder_index.contains_key(dir) && seen.insert(dir) {
                            missing.push(dir);
                        }
                    }
                }
            }
        }
        if !missing.is_empty() {
            let loaded: Vec<Option<StatFolder>> = self
                .writer
                .with_session(|session| missing.iter().map(|d| session.stat_folder(d)).collect())?;
            for (dir, original) in missing.into_iter().zip(loaded) {
                self.folder_index.insert(dir.to_vec(), self.folders.len());
                self.folders.push(FolderState::new(dir.to_vec(), original));
            }
        }
        let mut last = None;
        for &i in &wanted {
            let e = &entries[i];
            let Some((f, name)) = self.folder_of(e.abs.as_os_str().as_bytes(), &mut last) else {
                continue;
            };
            let st = &mut self.folders[f];
            st.whole |= whole_folders;
            if !matches!(e.kind, WalkKind::File { .. }) {
                continue;
            }
            if let Some(k) = st.original.find(name) {
                let c = st.original.files()[k].1;
                if c.matches(e.size, e.mtime_ns, e.ctime_ns, e.ino) {
                    ids[i] = Some(c.id);
                    st.hit[k] = true;
                }
            }
        }
        for id in ids.iter().flatten() {
            self.writer.rely_on(*id);
        }
        // 2. Read what the cache could not vouch for.
        let todo: Vec<usize> = wanted.into_iter().filter(|&i| ids[i].is_none()).collect();
        let total: u64 = todo.iter().map(|&i| entries[i].size).sum();
        if !todo.is_empty() {
            self.progress.begin("hashing", Some(total));
        }
        let mut small: Vec<usize> = Vec::new();
        let mut small_bytes = 0u64;
        for &i in &todo {
            let e = &entries[i];
            let is_large = matches!(e.kind, WalkKind::File { .. }) && e.size > u64::from(MAX_CHUNK);
            if is_large {
                ids[i] = Some(self.large_file(e)?);
                continue;
            }
            small.push(i);
            small_bytes += e.size;
            if small_bytes >= SMALL_BATCH_BYTES || small.len() >= SMALL_BATCH_FILES {
                self.small_files(entries, &std::mem::take(&mut small), &mut ids)?;
                small_bytes = 0;
            }
        }
        if !small.is_empty() {
            self.small_files(entries, &small, &mut ids)?;
        }
        if !todo.is_empty() {
            self.progress.end();
        }
        for &i in &todo {
            if let (Some(id), WalkKind::File { .. }) = (ids[i], entries[i].kind) {
                self.remember(&entries[i], id);
            }
        }
        Ok(ids)
    }

    /// Updates the stat cache for a file just read: cached when its times are safely in the
    /// past, forgotten otherwise (it could still change within the timestamp granularity).
    fn remember(&mut self, e: &WalkEntry, id: ObjectId) {
        let Some((f, name)) = self.folder_of(e.abs.as_os_str().as_bytes(), &mut None) else {
            return;
        };
        let fresh = (e.mtime_ns < self.now_ns - RACY_NS && e.ctime_ns < self.now_ns - RACY_NS)
            .then_some(StatEntry {
                size: e.size,
                mtime_ns: e.mtime_ns,
                ctime_ns: e.ctime_ns,
                ino: e.ino,
                id,
            });
        self.folders[f].fresh.push((name.to_vec(), fresh));
    }

    fn small_files(
        &mut self,
        entries: &[WalkEntry],
        which: &[usize],
        ids: &mut [Option<ObjectId>],
    ) -> Result<()> {
        let contents: Vec<Result<Vec<u8>>> = which
            .par_iter()
            .map(|&i| {
                let e = &entries[i];
                match e.kind {
                    WalkKind::Symlink => std::fs::read_link(&e.abs)
                        .map(|t| t.as_os_str().as_bytes().to_vec())
                        .map_err(io_err(&e.abs)),
                    _ => std::fs::read(&e.abs).map_err(io_err(&e.abs)),
                }
            })
            .collect();
        let mut items = Vec::with_capacity(which.len());
        for c in contents {
            let c = c?;
            self.bytes_read += c.len() as u64;
            self.progress.advance(c.len() as u64);
            items.push((Kind::Blob, c));
        }
        self.files_read += which.len() as u64;
        let got = self.writer.put_batch(items, None)?;
        for (&i, id) in which.iter().zip(got) {
            ids[i] = Some(id);
        }
        Ok(())
    }

    fn large_file(&mut self, e: &WalkEntry) -> Result<ObjectId> {
        let file = std::fs::File::open(&e.abs).map_err(io_err(&e.abs))?;
        let mut chunks: Vec<ChunkRef> = Vec::new();
        let writer = &mut *self.writer;
        let progress = self.progress;
        let mut read = 0u64;
        // Compression is judged on a sample of the first block (every few chunks, about
        // 4 MiB): if it saves too little (model weights barely compress), the file is stored
        // raw, which is much faster.
        let mut policy = writer.store().compression();
        let mut judged = policy.level == 0;
        // Chunks are hashed on the reading side, while the previous block is being written.
        let source = chunker::Positioned::new(&file);
        chunker::chunk_blocks_mapped::<_, SnapshotError, _>(source, chunk_ids, |block, ids| {
            let items: Vec<(Kind, &[u8])> = block.slices().map(|c| (Kind::Blob, c)).collect();
            let sizes: Vec<u64> = items.iter().map(|(_, c)| c.len() as u64).collect();
            let n: u64 = sizes.iter().sum();
            if !judged {
                judged = true;
                if !compresses_enough(&items, n, policy) {
                    policy.level = 0;
                }
            }
            let got = writer.put_batch_hashed(items, ids, None, policy)?;
            chunks.extend(
                got.into_iter()
                    .zip(sizes)
                    .map(|(id, size)| ChunkRef { id, size }),
            );
            read += n;
            progress.advance(n);
            Ok(())
        })
        .map_err(|err| match err {
            SnapshotError::Io { source, .. } => io_err(&e.abs)(source),
            other => other,
        })?;
        self.files_read += 1;
        self.bytes_read += read;
        let manifest = ChunkedFile { chunks };
        Ok(self.writer.defer(Kind::Chunked, manifest.encode()))
    }
}

/// The ids of a block's chunks (as blobs), computed on all cores.
fn chunk_ids(block: &chunker::Block) -> Vec<ObjectId> {
    block
        .chunks
        .par_iter()
        .map(|r| hash_object(Kind::Blob, &block.data[r.clone()]))
        .collect()
}

/// Whether compressing `items` (of `total` bytes) with `policy` saves at least
/// [`MIN_SAVING`], judged on a sample of about 4 MiB spread over them.
fn compresses_enough(
    items: &[(Kind, &[u8])],
    total: u64,
    policy: crate::store::CompressionPolicy,
) -> bool {
    let stride = (total / (4 << 20)).max(1) as usize;
    let (raw, stored) = items
        .par_iter()
        .step_by(stride)
        .map(|(_, c)| {
            let (_, compressed) = crate::store::codec::compress(c, policy);
            (
                c.len() as u64,
                compressed.map_or(c.len(), |z| z.len()) as u64,
            )
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (stored as f64) <= raw as f64 * (1.0 - MIN_SAVING)
}

/// Splits a relative path into its parent ("" for the top) and its last component.
fn split_rel(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

fn utf8_name(name: &[u8], path: &Path) -> Result<String> {
    std::str::from_utf8(name)
        .map(str::to_string)
        .map_err(|_| SnapshotError::BadPath {
            path: path.to_path_buf(),
            reason: "file name is not valid UTF-8".into(),
        })
}

/// Stat-cache records to publish: folder path (ending in `/`) and its new record, or `None`
/// to remove it.
pub type StatUpdates = Vec<(Vec<u8>, Option<StatFolder>)>;

/// Stages stat-cache updates in a batch.
pub fn stage_stats(batch: &mut Batch, updates: &StatUpdates) {
    for (dir, folder) in updates {
        match folder {
            Some(f) => batch.put_stat_folder(dir, f),
            None => batch.remove_stat(dir),
        }
    }
}

/// The stat-cache record of one folder during a snapshot.
struct FolderState {
    dir: Vec<u8>,
    /// What the index held when the snapshot started (empty when nothing).
    original: StatFolder,
    existed: bool,
    /// Which of `original`'s entries matched a file of the snapshot.
    hit: Vec<bool>,
    /// Files read during the snapshot: a new entry, or `None` to forget the name.
    fresh: Vec<(Vec<u8>, Option<StatEntry>)>,
    /// Whether a snapshot listed the whole folder, so entries no file matched are dropped.
    whole: bool,
}

impl FolderState {
    fn new(dir: Vec<u8>, original: Option<StatFolder>) -> Self {
        let existed = original.is_some();
        let original = original.unwrap_or_default();
        FolderState {
            dir,
            hit: vec![false; original.len()],
            original,
            existed,
            fresh: Vec::new(),
            whole: false,
        }
    }

    /// The record to write, or `None` when the index already holds it.
    fn into_update(self) -> Option<(Vec<u8>, Option<StatFolder>)> {
        let unchanged_hits = !self.whole || self.hit.iter().all(|&h| h);
        if self.fresh.is_empty() && unchanged_hits {
            return None;
        }
        let forget: std::collections::HashSet<&[u8]> = self
            .fresh
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(n, _)| n.as_slice())
            .collect();
        let mut files: Vec<(Vec<u8>, StatEntry)> = self
            .original
            .files()
            .iter()
            .zip(&self.hit)
            .filter(|((name, _), &hit)| (hit || !self.whole) && !forget.contains(name.as_slice()))
            .map(|(f, _)| f.clone())
            .collect();
        files.extend(
            self.fresh
                .iter()
                .filter_map(|(n, e)| e.map(|e| (n.clone(), e))),
        );
        let new = StatFolder::from_files(files);
        match (self.existed, new.is_empty()) {
            (false, true) => None,
            (true, true) => Some((self.dir, None)),
            _ if self.existed && new == self.original => None,
            _ => Some((self.dir, Some(new))),
        }
    }
}

/// The content id a file would get if stored (blob or chunked file), without storing it.
pub fn hash_file(path: &Path) -> Result<ObjectId> {
    let md = std::fs::metadata(path).map_err(io_err(path))?;
    if md.len() <= u64::from(MAX_CHUNK) {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        if bytes.len() <= MAX_CHUNK as usize {
            return Ok(hash_object(Kind::Blob, &bytes));
        }
    }
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut chunks = Vec::new();
    let source = chunker::Positioned::new(&file);
    chunker::chunk_blocks_mapped::<_, std::io::Error, _>(source, chunk_ids, |block, ids| {
        let sizes = block.chunks.iter().map(|r| r.len() as u64);
        chunks.extend(
            ids.into_iter()
                .zip(sizes)
                .map(|(id, size)| ChunkRef { id, size }),
        );
        Ok(())
    })
    .map_err(io_err(path))?;
    Ok(hash_object(Kind::Chunked, &ChunkedFile { chunks }.encode()))
}
