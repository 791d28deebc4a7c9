//! The object store: pack files for content, one sled database for everything else.
//!
//! Layout under `.cairn/`: `packs/*.pack` hold object bytes (append-only, self-describing);
//! `index/` is a sled database with the object index (id → pack location), refs, the run
//! index and the stat cache. sled locks its folder exclusively and has no read-only mode, so
//! the database is opened only for short [`Session`]s: content is hashed, compressed and
//! written by an [`ObjectWriter`] without it, and a process takes the database (waiting with
//! backoff) only to look things up or to publish.
//!
//! Publishing order, which keeps the store consistent whenever a process dies: pack bytes,
//! fsync, index entries in one batch, then ref moves by compare-and-swap, then flush.

pub mod codec;
mod db;
pub mod pack;
pub mod stat;
mod writer;

pub use codec::{Codec, CompressionPolicy};
pub use db::{write_pieces, Batch, RefValue, Session};
pub use pack::Location;
pub use stat::{StatEntry, StatFolder};
pub use writer::ObjectWriter;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hash::ObjectId;
use crate::object::{DecodeError, Kind};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file of the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("repository index: {0}")]
    Db(String),
    /// The index database is damaged.
    #[error("the repository index is damaged")]
    IndexDamaged,
    /// Too little free space to open or update the index safely.
    #[error("no space left on device for the repository index: {free} bytes free in {path}, cairn needs {needed} to update it safely")]
    LowSpace {
        /// The `.cairn` folder.
        path: PathBuf,
        /// Bytes free.
        free: u64,
        /// Bytes needed.
        needed: u64,
    },
    /// The index cannot be opened for writing: a read-only file system, or no permission.
    #[error("cannot open the repository index {path} for writing: {source}; cairn needs write access to it, even to read")]
    NotWritable {
        /// The index folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another process held the repository for too long.
    #[error("the repository is busy: another cairn process has held it for {0:?}")]
    Busy(Duration),
    /// An object is not in the store.
    #[error("object {0} is missing from the store")]
    Missing(ObjectId),
    /// An object could not be read from its pack (an I/O error, not damage).
    #[error("cannot read object {id}: {source}")]
    Unreadable {
        /// The object.
        id: ObjectId,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An object is damaged.
    #[error("object {id} is corrupt: {reason}")]
    Corrupt {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// An object has another kind than expected.
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// What was expected.
        expected: Kind,
        /// What it is.
        actual: Kind,
    },
    /// An object's content is malformed.
    #[error("object {id}: {source}")]
    Decode {
        /// The object.
        id: ObjectId,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
    /// A ref moved under us.
    #[error("ref {0} was changed by another process; run the command again")]
    RefMoved(String),
    /// Objects that a commit relied on were removed by a concurrent gc.
    #[error("{0} object(s) this command relied on were removed by a concurrent gc; run it again")]
    Vanished(usize),
    /// The store was written by a newer cairn.
    #[error("this repository uses store format {found}, newer than this cairn supports ({supported}); upgrade cairn")]
    NewerFormat {
        /// Format found.
        found: u32,
        /// Newest supported.
        supported: u32,
    },
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The store format version this build writes and the newest it reads.
pub const STORE_FORMAT: u32 = 1;

/// Called once when a process has waited about a second for the repository.
pub type WaitHook = Box<dyn Fn() + Send + Sync>;

/// An opened store: paths and settings. Cheap; holds no lock.
///
/// The index is opened by [`Store::session`]. Sessions open at the same time in one process
/// (nested, or on several threads of a server) share one handle, which closes — releasing the
/// index to other processes — when the last of them is dropped.
pub struct Store {
    dir: PathBuf,
    packs: PathBuf,
    index: PathBuf,
    compression: CompressionPolicy,
    lock_timeout: Duration,
    on_wait: Option<WaitHook>,
    shared: std::sync::Mutex<std::sync::Weak<sled::Db>>,
}

impl Store {
    /// Creates the store layout in `dir` (the `.cairn` folder), which must exist.
    pub fn create(dir: &Path) -> Result<Self> {
        let store = Store::at(dir);
        std::fs::create_dir_all(&store.packs).map_err(io_err(&store.packs))?;
        let s = store.session()?;
        s.set_format(STORE_FORMAT)?;
        s.flush()?;
        drop(s);
        Ok(store)
    }

    /// Opens the store in `dir`, checking its format.
    pub fn open(dir: &Path) -> Result<Self> {
        let store = Store::at(dir);
        if !store.index.exists() {
            return Err(StoreError::Io {
                path: store.index.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "index not found"),
            });
        }
        Ok(store)
    }

    fn at(dir: &Path) -> Self {
        Store {
            dir: dir.to_path_buf(),
            packs: dir.join("packs"),
            index: dir.join("index"),
            compression: CompressionPolicy::default(),
            lock_timeout: Duration::from_secs(600),
            on_wait: None,
            shared: std::sync::Mutex::new(std::sync::Weak::new()),
        }
    }

    /// Sets the compression policy for new content.
    pub fn set_compression(&mut self, policy: CompressionPolicy) {
        self.compression = policy;
    }

    /// The compression policy.
    pub fn compression(&self) -> CompressionPolicy {
        self.compression
    }

    /// How long to wait for another process before giving up.
    pub fn set_lock_timeout(&mut self, t: Duration) {
        self.lock_timeout = t;
    }

    /// A hook called once when waiting for another process passes about a second.
    pub fn set_wait_hook(&mut self, hook: WaitHook) {
        self.on_wait = Some(hook);
    }

    /// The `.cairn` folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of pack files.
    pub fn packs_dir(&self) -> &Path {
        &self.packs
    }

    /// Opens the index for a short session, waiting while another process holds it.
    pub fn session(&self) -> Result<Session<'_>> {
        let s = Session::open(self)?;
        let found = s.format()?;
        if found > STORE_FORMAT {
            return Err(StoreError::NewerFormat {
                found,
                supported: STORE_FORMAT,
            });
        }
        Ok(s)
    }

    /// A writer for new content (holds no lock until it publishes).
    pub fn writer(&self) -> ObjectWriter<'_> {
        ObjectWriter::new(self)
    }

    /// The path of pack number `pack`.
    pub fn pack_path(&self, pack: u64) -> PathBuf {
        self.packs.join(pack::pack_file_name(pack))
    }
}

/// Raises this process's soft limit on open files to its hard limit (at most 2^20). Reading a
/// run's content keeps each pack it comes from open, and a store of many runs can need more
/// packs at once than the usual soft limit (1024). Failure is ignored: the reads then report
/// what they could not open.
pub fn raise_open_file_limit() {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let want = lim.rlim_max.min(1 << 20);
        if lim.rlim_cur < want {
            lim.rlim_cur = want;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
