//! Listing what a snapshot contains.
//!
//! A folder is walked with the `ignore` crate honouring `.cairnignore` files (gitignore
//! syntax) — and, for code snapshots outside git, `.gitignore` too. `.cairn/` and `.git/` are
//! never entered at any depth. Symbolic links are recorded as links, never followed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{io_err, Result, SnapshotError};
use crate::object::validate_name;

/// What a listed path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkKind {
    /// A regular file.
    File {
        /// Whether any executable bit is set.
        executable: bool,
    },
    /// A symbolic link.
    Symlink,
    /// A folder.
    Dir,
}

/// One listed path.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Path relative to the snapshot root (empty for a single-file snapshot's root).
    pub rel: PathBuf,
    /// Absolute path on disk.
    pub abs: PathBuf,
    /// What it is.
    pub kind: WalkKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Change time, ns since the epoch.
    pub ctime_ns: i64,
    /// Inode.
    pub ino: u64,
}

/// Builds an entry from metadata, or `None` for kinds that are not snapshotted (sockets...).
pub fn entry_from_metadata(
    rel: PathBuf,
    abs: PathBuf,
    md: &std::fs::Metadata,
) -> Option<WalkEntry> {
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        WalkKind::Symlink
    } else if ft.is_dir() {
        WalkKind::Dir
    } else if ft.is_file() {
        WalkKind::File {
            executable: md.mode() & 0o111 != 0,
        }
    } else {
        return None;
    };
    Some(WalkEntry {
        rel,
        abs,
        kind,
        size: if ft.is_dir() { 0 } else { md.len() },
        mtime_ns: md
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.mtime_nsec()),
        ctime_ns: md
            .ctime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.ctime_nsec()),
        ino: md.ino(),
    })
}

/// Checks that every component of a relative path can be stored in a tree.
pub fn check_rel(rel: &Path, abs: &Path) -> Result<()> {
    for c in rel.components() {
        let name = c
            .as_os_str()
            .to_str()
            .ok_or_else(|| SnapshotError::BadPath {
                path: abs.to_path_buf(),
                reason: "file name is not valid UTF-8".into(),
            })?;
        validate_name(name).map_err(|reason| SnapshotError::BadPath {
            path: abs.to_path_buf(),
            reason,
        })?;
    }
    Ok(())
}

/// Lists a folder or a single file. `git_ignores` also honours `.gitignore` files.
/// Returns the entries (root excluded) and the paths skipped (special files).
pub fn walk(root: &Path, git_ignores: bool) -> Result<(Vec<WalkEntry>, Vec<PathBuf>)> {
    // The root named by the user is followed when it is a link; links below it are not.
    let md = std::fs::metadata(root).map_err(io_err(root))?;
    let mut skipped = Vec::new();
    if !md.is_dir() {
        return match entry_from_metadata(PathBuf::new(), root.to_path_buf(), &md) {
            Some(e) => Ok((vec![e], skipped)),
            None => Err(SnapshotError::BadPath {
                path: root.to_path_buf(),
                reason: "not a regular file, folder or symbolic link".into(),
            }),
        };
    }
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(git_ignores)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(".cairnignore")
        .filter_entry(|e| {
            let n = e.file_name();
            !(e.depth() > 0 && (n == ".cairn" || n == ".git"))
        });
    let mut paths = Vec::new();
    for item in builder.build() {
        let item = item.map_err(|e| SnapshotError::Walk(e.to_string()))?;
        if item.depth() == 0 {
            continue;
        }
        let abs = item.path().to_path_buf();
        let rel = abs
            .strip_prefix(root)
            .map_err(|_| {
                SnapshotError::Walk(format!("{} is outside {}", abs.display(), root.display()))
            })?
            .to_path_buf();
        check_rel(&rel, &abs)?;
        paths.push((rel, abs));
    }
    // Stat in parallel: on a large dataset this is most of the walk.
    let stats: Vec<Result<std::result::Result<WalkEntry, PathBuf>>> = paths
        .into_par_iter()
        .map(|(rel, abs)| {
            let md = std::fs::symlink_metadata(&abs).map_err(io_err(&abs))?;
            Ok(entry_from_metadata(rel, abs.clone(), &md).ok_or(abs))
        })
        .collect();
    let mut out = Vec::with_capacity(stats.len());
    for s in stats {
        match s? {
            Ok(e) => {
                if e.kind == WalkKind::Symlink {
                    check_link(&e)?;
                }
                out.push(e)
            }
            Err(special) => skipped.push(special),
        }
    }
    Ok((out, skipped))
}

/// Refuses a link that checkout could not restore: one pointing outside the snapshot.
fn check_link(e: &WalkEntry) -> Result<()> {
    let target = std::fs::read_link(&e.abs).map_err(io_err(&e.abs))?;
    super::restore::check_link_target(
        &e.rel,
        std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()),
        &std::collections::HashSet::new(),
        None,
    )
    .map(|_| ())
    .map_err(|err| match err {
        SnapshotError::BadPath { reason, .. } => SnapshotError::BadPath {
            path: e.abs.clone(),
            reason: format!("{reason}; cairn stores links that stay inside the snapshot only (copy the target in, or exclude the link in .cairnignore)"),
        },
        other => other,
    })
}

/// Lists the given files (relative to `root`), as a git index names them. Missing files are
/// skipped; folders are created implicitly by the tree builder.
pub fn list_files(root: &Path, files: &[PathBuf]) -> Result<Vec<WalkEntry>> {
    let mut out = Vec::with_capacity(files.len());
    for rel in files {
        let abs = root.join(rel);
        let md = match std::fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&abs)(e)),
        };
        check_rel(rel, &abs)?;
        if md.is_dir() {
            continue;
        }
        if let Some(e) = entry_from_metadata(rel.clone(), abs, &md) {
            out.push(e);
        }
    }
    Ok(out)
}
