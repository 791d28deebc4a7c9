//! Storing listed files as objects and assembling them into trees.
//!
//! Files whose size, times and inode match the stat cache are not read again: their content id
//! comes from the cache (as git's index does). Small files are read and stored in batches; large
//! files stream through the chunker in bounded batches, so memory stays bounded whatever the
//! file size. Trees are built bottom-up in memory and stored in one batch at the end.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::chunker::{self, MAX_CHUNK};
use super::walk::{WalkEntry, WalkKind};
use super::{io_err, Result, SnapshotError};
use crate::hash::ObjectId;
use crate::object::{hash_object, ChunkRef, ChunkedFile, EntryKind, Kind, Tree, TreeEntry};
use crate::progress::Progress;
use crate::store::{ObjectWriter, StatEntry};

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
    stat_updates: Vec<(Vec<u8>, StatEntry)>,
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
            stat_updates: Vec::new(),
            now_ns: now_ns(),
            files_read: 0,
            bytes_read: 0,
        }
    }

    /// Takes the collected stat-cache updates, to publish with the content.
    pub fn take_stats(&mut self) -> Vec<(Vec<u8>, StatEntry)> {
        std::mem::take(&mut self.stat_updates)
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
        let ids = self.content_ids(std::slice::from_ref(&entry))?;
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

    /// Stores a tree from a flat list of entries with relative paths (folders implied).
    pub fn tree(&mut self, entries: Vec<WalkEntry>) -> Result<Snapshot> {
        let ids = self.content_ids(&entries)?;
        let mut dirs: BTreeMap<PathBuf, Vec<TreeEntry>> = BTreeMap::new();
        dirs.insert(PathBuf::new(), Vec::new());
        let mut files = 0u64;
        let ensure_parents = |dirs: &mut BTreeMap<PathBuf, Vec<TreeEntry>>, rel: &Path| {
            let mut p = rel.parent();
            while let Some(d) = p {
                dirs.entry(d.to_path_buf()).or_default();
                p = d.parent();
            }
        };
        for (e, id) in entries.iter().zip(ids) {
            ensure_parents(&mut dirs, &e.rel);
            let name = match e.rel.file_name().and_then(|n| n.to_str()) {
                Some(n) => n.to_string(),
                None => {
                    return Err(SnapshotError::BadPath {
                        path: e.abs.clone(),
                        reason: "no usable file name".into(),
                    })
                }
            };
            let kind = match e.kind {
                WalkKind::Dir => {
                    dirs.entry(e.rel.clone()).or_default();
                    continue;
                }
                WalkKind::File { executable: true } => EntryKind::Executable,
                WalkKind::File { executable: false } => EntryKind::File,
                WalkKind::Symlink => EntryKind::Symlink,
            };
            let Some(id) = id else { continue };
            files += 1;
            let parent = e.rel.parent().map(Path::to_path_buf).unwrap_or_default();
            dirs.entry(parent).or_default().push(TreeEntry {
                name,
                kind,
                size: e.size,
                id,
            });
        }
        // Deepest folders first, so each child's id is known before its parent is built.
        let mut order: Vec<PathBuf> = dirs.keys().cloned().collect();
        order.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut root = None;
        for dir in order {
            let entries = dirs.remove(&dir).unwrap_or_default();
            let tree = Tree::from_entries(entries).map_err(|e| SnapshotError::BadPath {
                path: dir.clone(),
                reason: e.reason,
            })?;
            let size = tree.size();
            let content = tree.encode();
            let id = self.writer.defer(Kind::Tree, content);
            if dir.as_os_str().is_empty() {
                root = Some((id, size));
                break;
            }
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
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

    /// Content ids for the file and link entries (`None` for folders).
    fn content_ids(&mut self, entries: &[WalkEntry]) -> Result<Vec<Option<ObjectId>>> {
        let mut ids: Vec<Option<ObjectId>> = vec![None; entries.len()];
        let wanted: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].kind != WalkKind::Dir)
            .collect();
        if wanted.is_empty() {
            return Ok(ids);
        }
        // 1. The stat cache, in one short session: one range scan under the common folder.
        {
            let cached: std::collections::HashMap<Vec<u8>, StatEntry> =
                self.writer.with_session(|session| {
                    Ok(if wanted.len() > 16 {
                        let prefix = common_prefix(entries);
                        session.stat_scan(&prefix)?.into_iter().collect()
                    } else {
                        let mut m = std::collections::HashMap::new();
                        for &i in &wanted {
                            let k = entries[i].abs.as_os_str().as_bytes();
                            if let Some(e) = session.stat_get(k)? {
                                m.insert(k.to_vec(), e);
                            }
                        }
                        m
                    })
                })?;
            for &i in &wanted {
                let e = &entries[i];
                if !matches!(e.kind, WalkKind::File { .. }) {
                    continue;
                }
                if let Some(c) = cached.get(e.abs.as_os_str().as_bytes()) {
                    if c.size == e.size
                        && c.mtime_ns == e.mtime_ns
                        && c.ctime_ns == e.ctime_ns
                        && c.ino == e.ino
                    {
                        ids[i] = Some(c.id);
                    }
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

    fn remember(&mut self, e: &WalkEntry, id: ObjectId) {
        if e.mtime_ns < self.now_ns - RACY_NS && e.ctime_ns < self.now_ns - RACY_NS {
            self.stat_updates.push((
                e.abs.as_os_str().as_bytes().to_vec(),
                StatEntry {
                    size: e.size,
                    mtime_ns: e.mtime_ns,
                    ctime_ns: e.ctime_ns,
                    ino: e.ino,
                    id,
                },
            ));
        }
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
        // Compression is judged on the first block: if it saves too little (model weights
        // barely compress), the rest of the file is stored raw, which is much faster.
        let mut policy = writer.store().compression();
        let mut judged = false;
        chunker::chunk_blocks::<_, SnapshotError>(file, |block| {
            let items: Vec<(Kind, &[u8])> = block.slices().map(|c| (Kind::Blob, c)).collect();
            let sizes: Vec<u64> = items.iter().map(|(_, c)| c.len() as u64).collect();
            let n: u64 = sizes.iter().sum();
            let (got, raw, stored) = writer.put_batch_with(items, None, policy)?;
            if !judged && raw >= (4 << 20) {
                judged = true;
                if (stored as f64) > raw as f64 * (1.0 - MIN_SAVING) {
                    policy.level = 0;
                }
            }
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

/// The longest folder prefix (ending in '/') shared by the entries' absolute paths.
fn common_prefix(entries: &[WalkEntry]) -> Vec<u8> {
    let mut prefix: Option<&[u8]> = None;
    for e in entries {
        let p = e.abs.as_os_str().as_bytes();
        prefix = Some(match prefix {
            None => p,
            Some(cur) => {
                let n = cur.iter().zip(p).take_while(|(a, b)| a == b).count();
                &cur[..n]
            }
        });
    }
    let p = prefix.unwrap_or_default();
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => p[..=i].to_vec(),
        None => Vec::new(),
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
    chunker::chunk_batches::<_, std::io::Error>(
        std::io::BufReader::with_capacity(1 << 20, file),
        |batch| {
            let refs: Vec<ChunkRef> = batch
                .par_iter()
                .map(|c| ChunkRef {
                    id: hash_object(Kind::Blob, c),
                    size: c.len() as u64,
                })
                .collect();
            chunks.extend(refs);
            Ok(())
        },
    )
    .map_err(io_err(path))?;
    Ok(hash_object(Kind::Chunked, &ChunkedFile { chunks }.encode()))
}
