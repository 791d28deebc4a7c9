//! Snapshots: turning folders and files into trees, and trees back into folders.
//!
//! [`walk`] lists what a snapshot contains (honouring `.cairnignore`, never entering `.cairn/`
//! or `.git/`), [`ingest`] stores it through an [`ObjectWriter`](crate::store::ObjectWriter)
//! with a stat cache so unchanged files are not read again, and [`restore`] writes a tree back
//! to disk without ever writing outside the target folder.

pub mod chunker;
pub mod ingest;
pub mod restore;
pub mod walk;

use std::path::PathBuf;

/// Errors of snapshotting and restoring.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The walk failed.
    #[error("{0}")]
    Walk(String),
    /// A name cannot be stored or restored safely.
    #[error("{path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Restoring would overwrite files that differ, without --force.
    #[error("{} file(s) would be overwritten: {}", .0.len(), .0.iter().take(5).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    WouldOverwrite(Vec<PathBuf>),
    /// A store error.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Result alias for snapshots.
pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;

impl From<std::io::Error> for SnapshotError {
    fn from(source: std::io::Error) -> Self {
        SnapshotError::Io {
            path: PathBuf::new(),
            source,
        }
    }
}
