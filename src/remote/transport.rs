//! What a remote store must offer: named blobs, ranged reads, and refs moved by
//! compare-and-swap. Folder and S3 remotes implement it; the sync logic sees only this trait.

use std::ops::Range;
use std::path::Path;

use crate::hash::ObjectId;

/// Errors of a transport. Messages name the remote and key, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The remote could not be reached or answered with an error.
    #[error("remote {remote}: {message}")]
    Failed {
        /// The remote (URL without credentials).
        remote: String,
        /// What happened.
        message: String,
    },
    /// A compare-and-swap found another value.
    #[error(
        "remote {remote}: {name} was changed by someone else first; fetch first, then try again"
    )]
    Conflict {
        /// The remote.
        remote: String,
        /// The ref.
        name: String,
    },
}

/// Result alias.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;

/// A ref's value and the token that proves which version was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefVersion {
    /// The object it names.
    pub id: ObjectId,
    /// Opaque version (an ETag, or the content for folders).
    pub version: String,
}

/// A remote store.
pub trait Transport: Send + Sync {
    /// The remote's URL without credentials, for messages.
    fn describe(&self) -> String;
    /// Keys under `prefix` with their sizes.
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>>;
    /// A whole blob, or None when absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Several byte ranges of one blob.
    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>>;
    /// Uploads a local file under `key` (streamed; atomic: readers see all or nothing).
    fn put_file(&self, key: &str, path: &Path) -> Result<()>;
    /// Uploads bytes under `key` (atomic).
    fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<()>;
    /// Reads ref `name` (`refs/heads/main`).
    fn read_ref(&self, name: &str) -> Result<Option<RefVersion>>;
    /// Sets ref `name` to `new` if it still is at `expected` (None: must not exist).
    fn cas_ref(&self, name: &str, expected: Option<&RefVersion>, new: &ObjectId) -> Result<()>;
    /// Every ref name under `refs/`.
    fn list_refs(&self) -> Result<Vec<String>> {
        Ok(self.list("refs/")?.into_iter().map(|(k, _)| k).collect())
    }
}

/// Parses a ref file's content: 64 hex digits and an optional newline.
pub fn parse_ref(remote: &str, name: &str, bytes: &[u8]) -> Result<ObjectId> {
    let text = std::str::from_utf8(bytes).unwrap_or("").trim();
    ObjectId::from_hex(text).ok_or_else(|| TransportError::Failed {
        remote: remote.to_string(),
        message: format!("ref {name} is malformed"),
    })
}
