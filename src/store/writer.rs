//! Writing new content without holding the index.
//!
//! An [`ObjectWriter`] hashes and compresses objects on all cores and appends the ones the store
//! lacks to a pack of its own. It asks the index which objects already exist one batch at a
//! time, in a short session, so other processes get the index in between. Nothing it writes is
//! visible until [`ObjectWriter::publish`] fsyncs the packs and adds the index entries.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::codec::{self, Codec, CompressionPolicy};
use super::db::{Batch, Session};
use super::pack::{PackWriter, PACK_ROLLOVER};
use super::{io_err, now_secs, Result, Store, StoreError};
use crate::hash::{IdMap, IdSet, ObjectId};
use crate::object::{hash_object, Kind};

/// Writes new objects into packs; see the module docs.
pub struct ObjectWriter<'s> {
    store: &'s Store,
    pack: Option<PackWriter>,
    finished: Vec<PackWriter>,
    new: IdMap<super::Location>,
    relied: IdSet,
    deferred: Vec<(Kind, Vec<u8>)>,
    gc_generation: Option<u64>,
    held: Option<(Session<'s>, Instant)>,
    stored_bytes: u64,
    published: bool,
    index_early: bool,
    indexed_early: usize,
}

/// An object ready to append: id, kind, raw content, codec, compressed bytes if any.
type Encoded<'a> = (ObjectId, Kind, &'a [u8], Codec, Option<Vec<u8>>);

/// How long a writer keeps the index between batches before letting other processes in.
const HOLD: Duration = Duration::from_millis(300);

/// With [`ObjectWriter::index_early`], how many new objects a writer keeps before it indexes
/// them. sled keeps what it is given in memory until it is flushed, at about 2 KiB an entry, so
/// a commit of 100,000 small files needed 650 MB and a 4 GiB file's 65,000 chunks 250 MB when
/// everything was indexed in the final batch; in steps of this size both stay under 100 MB and
/// no longer grow with the data (a step costs one fsync of the pack and one of the index).
const EARLY_INDEX_BATCH: usize = 2048;

impl<'s> ObjectWriter<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        ObjectWriter {
            store,
            pack: None,
            finished: Vec::new(),
            new: IdMap::default(),
            relied: IdSet::default(),
            deferred: Vec::new(),
            gc_generation: None,
            held: None,
            stored_bytes: 0,
            published: false,
            index_early: false,
            indexed_early: 0,
        }
    }

    /// Lets the writer index what it has written before [`publish`](Self::publish), every
    /// [`EARLY_INDEX_BATCH`] objects: it syncs its packs, applies and flushes their index
    /// entries, and forgets them (they are then found in the index, like any stored object).
    /// From the first such step on, the packs belong to the store: a writer that fails later
    /// leaves unreferenced objects that gc removes after its grace period, as it does for a
    /// failure after publishing.
    pub fn index_early(&mut self) {
        self.index_early = true;
    }

    /// The store written to.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Number of new objects written so far.
    pub fn new_objects(&self) -> usize {
        self.new.len() + self.indexed_early
    }

    /// Bytes appended to packs so far (after compression).
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// True when `id` was written by this writer or is known to be in the store.
    pub fn knows(&self, id: &ObjectId) -> bool {
        self.new.contains_key(id) || self.relied.contains(id)
    }

    /// Runs `f` in the writer's session, opening one if needed. The session is kept for
    /// following batches (opening the index costs milliseconds) but given up once it has been
    /// held for a moment, so other processes are never kept waiting long.
    pub fn with_session<T>(&mut self, f: impl FnOnce(&Session<'s>) -> Result<T>) -> Result<T> {
        if self.held.is_none() {
            let s = self.store.session()?;
            if self.gc_generation.is_none() {
                self.gc_generation = Some(s.gc_generation()?);
            }
            self.held = Some((s, Instant::now()));
        }
        let result = match &self.held {
            Some((s, _)) => f(s),
            None => Err(StoreError::Db("no session".into())),
        };
        if self.held.as_ref().is_some_and(|(_, t)| t.elapsed() > HOLD) {
            self.held = None;
        }
        result
    }

    /// Gives up the writer's session, if it holds one.
    pub fn release(&mut self) {
        self.held = None;
    }

    /// Takes the writer's session, if it holds one, for publishing.
    pub fn take_session(&mut self) -> Option<Session<'s>> {
        self.held.take().map(|(s, _)| s)
    }

    /// The session to publish in: the one the writer holds, or a new one.
    pub fn publishing_session(&mut self) -> Result<Session<'s>> {
        match self.take_session() {
            Some(s) => Ok(s),
            None => self.store.session(),
        }
    }

    /// Notes the gc generation seen in `session` (the first one seen is kept): call it in
    /// every session whose answers the writer will rely on.
    pub fn observe(&mut self, session: &Session) -> Result<()> {
        if self.gc_generation.is_none() {
            self.gc_generation = Some(session.gc_generation()?);
        }
        Ok(())
    }

    /// Records that the caller relies on `id` already being in the store (for example a stat
    /// cache hit); [`publish`](Self::publish) checks it is still there.
    pub fn rely_on(&mut self, id: ObjectId) {
        if !self.new.contains_key(&id) {
            self.relied.insert(id);
        }
    }

    /// Queues a small object (a tree, a chunk list) to be stored at publish time, in the
    /// publishing session, and returns its id. Saves a session for objects that are usually
    /// already present (the trees of an unchanged folder).
    pub fn defer(&mut self, kind: Kind, content: Vec<u8>) -> ObjectId {
        let id = hash_object(kind, &content);
        self.deferred.push((kind, content));
        id
    }

    /// Stores one object.
    pub fn put(
        &mut self,
        kind: Kind,
        content: Vec<u8>,
        session: Option<&Session>,
    ) -> Result<ObjectId> {
        let ids = self.put_batch(vec![(kind, content)], session)?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::Db("empty batch result".into()))
    }

    /// Stores a batch of objects, returning their ids in order. Objects the store already has
    /// are not written again. Uses `session` to ask the index when given, else a short one.
    pub fn put_batch<B: AsRef<[u8]> + Send + Sync>(
        &mut self,
        items: Vec<(Kind, B)>,
        session: Option<&Session>,
    ) -> Result<Vec<ObjectId>> {
        let ids: Vec<ObjectId> = items
            .par_iter()
            .map(|(kind, content)| hash_object(*kind, content.as_ref()))
            .collect();
        let policy = self.store.compression();
        self.put_batch_hashed(items, ids, session, policy)
    }

    /// [`put_batch`](Self::put_batch) for objects whose ids the caller has already computed
    /// (`ids[i]` must be the id of `items[i]`), with an explicit compression policy.
    pub fn put_batch_hashed<B: AsRef<[u8]> + Send + Sync>(
        &mut self,
        items: Vec<(Kind, B)>,
        ids: Vec<ObjectId>,
        session: Option<&Session>,
        policy: CompressionPolicy,
    ) -> Result<Vec<ObjectId>> {
        if ids.len() != items.len() {
            return Err(StoreError::Db(
                "a batch's ids do not match its objects".into(),
            ));
        }
        // Which ids are neither ours nor known, without repeats.
        let mut seen = IdSet::default();
        let unknown: Vec<ObjectId> = ids
            .iter()
            .filter(|id| !self.knows(id) && seen.insert(**id))
            .copied()
            .collect();
        let mut present = IdSet::default();
        if !unknown.is_empty() {
            let mut check = |s: &Session| -> Result<()> {
                for id in &unknown {
                    if s.contains(id)? {
                        present.insert(*id);
                    }
                }
                Ok(())
            };
            match session {
                Some(s) => check(s)?,
                None => self.with_session(|s| check(s))?,
            }
        }
        for id in &present {
            self.relied.insert(*id);
        }
        let mut want: IdSet = unknown
            .into_iter()
            .filter(|id| !present.contains(id))
            .collect();
        let todo: Vec<(ObjectId, Kind, &[u8])> = items
            .iter()
            .zip(ids.iter())
            .filter_map(|((kind, content), id)| {
                want.remove(id).then_some((*id, *kind, content.as_ref()))
            })
            .collect();
        fn encode(
            (id, kind, content): (ObjectId, Kind, &[u8]),
            policy: CompressionPolicy,
        ) -> Encoded<'_> {
            let (codec, c) = codec::compress(content, policy);
            (id, kind, content, codec, c)
        }
        // Without compression there is nothing to spread over the cores, and handing the batch
        // to the thread pool would wait for whatever else it is busy with (cutting and hashing
        // the next block of a large file).
        let encoded: Vec<Encoded<'_>> = if policy.level == 0 {
            todo.into_iter().map(|t| encode(t, policy)).collect()
        } else {
            todo.into_par_iter().map(|t| encode(t, policy)).collect()
        };
        for (id, kind, content, codec, compressed) in encoded {
            let bytes: &[u8] = compressed.as_deref().unwrap_or(content);
            self.append(id, kind, content.len() as u64, codec, bytes)?;
        }
        if self.index_early && self.new.len() >= EARLY_INDEX_BATCH {
            match session {
                Some(s) => self.index_now(s)?,
                // Shares the handle of the session the writer may hold.
                None => self.index_now(&self.store.session()?)?,
            }
        }
        Ok(ids)
    }

    /// Syncs the packs, then indexes and forgets every new object (see
    /// [`index_early`](Self::index_early)).
    fn index_now(&mut self, session: &Session) -> Result<()> {
        super::db::check_free_space(self.store.dir())?;
        for p in self.finished.iter_mut().chain(self.pack.iter_mut()) {
            let path = p.path().to_path_buf();
            p.sync().map_err(io_err(&path))?;
        }
        let time = now_secs();
        let mut batch = Batch::default();
        for (id, loc) in &self.new {
            let mut loc = *loc;
            loc.time = time;
            batch.put_object(id, &loc);
        }
        session.apply(batch)?;
        // From here the packs are the store's, whatever happens next.
        self.published = true;
        session.flush()?;
        self.indexed_early += self.new.len();
        self.new = IdMap::default();
        Ok(())
    }

    /// Appends a record received from elsewhere, already verified against its id by the
    /// caller, keeping its stored (compressed) bytes as they are.
    pub fn append_verified(
        &mut self,
        id: ObjectId,
        kind: Kind,
        codec: Codec,
        raw_len: u64,
        stored: &[u8],
    ) -> Result<()> {
        if self.new.contains_key(&id) {
            return Ok(());
        }
        self.append(id, kind, raw_len, codec, stored)
    }

    /// Appends an object even if the store has it (used to rewrite packs).
    pub fn put_unchecked(&mut self, kind: Kind, content: Vec<u8>) -> Result<ObjectId> {
        let id = hash_object(kind, &content);
        if self.new.contains_key(&id) {
            return Ok(id);
        }
        let raw_len = content.len() as u64;
        let (codec, bytes) = match codec::compress(&content, self.store.compression()) {
            (codec, Some(c)) => (codec, c),
            (codec, None) => (codec, content),
        };
        self.append(id, kind, raw_len, codec, &bytes)?;
        Ok(id)
    }

    fn append(
        &mut self,
        id: ObjectId,
        kind: Kind,
        raw_len: u64,
        codec: Codec,
        bytes: &[u8],
    ) -> Result<()> {
        let dir = self.store.packs_dir();
        if self.pack.as_ref().is_some_and(|p| p.len() > PACK_ROLLOVER) {
            if let Some(p) = self.pack.take() {
                self.finished.push(p);
            }
        }
        if self.pack.is_none() {
            self.pack = Some(PackWriter::create(dir).map_err(io_err(dir))?);
        }
        let Some(pack) = self.pack.as_mut() else {
            return Err(StoreError::Db("no pack".into()));
        };
        let path = pack.path().to_path_buf();
        let loc = pack
            .append(&id, kind, codec, raw_len, bytes)
            .map_err(io_err(&path))?;
        self.stored_bytes += bytes.len() as u64;
        self.new.insert(id, loc);
        Ok(())
    }

    /// Makes the written content durable and adds its index entries to `batch`. Fails with
    /// [`StoreError::Vanished`] if an object this writer relied on is no longer in the store.
    /// The caller applies the batch, then moves refs, then flushes.
    pub fn publish(&mut self, session: &Session, batch: &mut Batch) -> Result<()> {
        // Refused here, while the packs are still ours to remove, rather than by the index.
        super::db::check_free_space(self.store.dir())?;
        if !self.deferred.is_empty() {
            let items = std::mem::take(&mut self.deferred);
            self.put_batch(items, Some(session))?;
        }
        for p in self.finished.iter_mut().chain(self.pack.iter_mut()) {
            let path = p.path().to_path_buf();
            p.sync().map_err(io_err(&path))?;
        }
        // Only a gc removes objects; when none ran since we first looked, all we relied on is
        // still there and checking each id again would cost a lookup per file.
        let mut vanished = 0;
        if self.gc_generation != Some(session.gc_generation()?) {
            for id in &self.relied {
                if !session.contains(id)? {
                    vanished += 1;
                }
            }
        }
        if vanished > 0 {
            return Err(StoreError::Vanished(vanished));
        }
        let time = now_secs();
        for (id, loc) in &self.new {
            let mut loc = *loc;
            loc.time = time;
            batch.put_object(id, &loc);
        }
        self.published = true;
        Ok(())
    }

    /// Applies `batch` (prepared with [`ObjectWriter::publish`]) to the index. If that fails,
    /// nothing of the batch is in the index (a batch applies atomically), so the packs go back
    /// to being this writer's to remove when it is dropped.
    pub fn apply(&mut self, session: &Session, batch: Batch) -> Result<()> {
        let result = session.apply(batch);
        if result.is_err() && self.indexed_early == 0 {
            self.published = false;
        }
        result
    }
}

/// A writer dropped before [`ObjectWriter::publish`] removes its packs: a command that fails
/// before publishing leaves no unreferenced pack behind. After `publish`, the packs belong to
/// the store (if applying the batch then fails, they are garbage that gc removes).
impl Drop for ObjectWriter<'_> {
    fn drop(&mut self) {
        if !self.published {
            for p in self.finished.drain(..).chain(self.pack.take()) {
                let _ = std::fs::remove_file(p.path());
            }
        }
    }
}
