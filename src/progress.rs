//! Progress reporting from the library without terminal I/O.
//!
//! Long operations (hashing a checkpoint, walking a dataset, restoring files) report through a
//! [`Progress`] the caller passes in; the command line renders it as a progress bar, tests and
//! library users pass [`NoProgress`].

/// Receives progress of a long operation. All methods have empty defaults.
pub trait Progress: Sync {
    /// A phase starts; `total` is its size in bytes, when known.
    fn begin(&self, _phase: &str, _total: Option<u64>) {}
    /// `n` more bytes of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The current phase is over.
    fn end(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
