//! Listing what a snapshot contains.
//!
//! A folder is walked folder by folder, subfolders in parallel, honouring `.cairnignore` files
//! (gitignore syntax, matched by the `ignore` crate) — and, for code snapshots outside git,
//! `.gitignore` too; a `.cairnignore` rule wins over a `.gitignore` one, and a deeper file over
//! a shallower one. Inside a repository, the ignore files of the folders above the walked one,
//! up to the repository root, apply as well. `.cairn/` and `.git/` are never entered at any
//! depth. Symbolic links are recorded as links, never followed. Metadata is read relative to the
//! open folder.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

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
    let (mtime_ns, ctime_ns) = times_ns(md);
    Some(WalkEntry {
        rel,
        abs,
        kind,
        size: if ft.is_dir() { 0 } else { md.len() },
        mtime_ns,
        ctime_ns,
        ino: md.ino(),
    })
}

/// Modification and change times, in nanoseconds since the epoch (as the stat cache keeps them).
pub fn times_ns(md: &std::fs::Metadata) -> (i64, i64) {
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    (
        ns(md.mtime(), md.mtime_nsec()),
        ns(md.ctime(), md.ctime_nsec()),
    )
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
/// When the folder lies inside `top` (the repository root), the ignore files of `top` and of
/// every folder between it and the walked folder apply too, as git applies a parent folder's
/// `.gitignore`; the walked folder itself is listed even when they would ignore it (it was
/// named explicitly).
/// Returns the entries (root excluded) and the paths skipped (special files). Entries come
/// folder by folder: a folder's files in name order, then each subfolder (its own entry, then
/// its content).
pub fn walk(
    root: &Path,
    top: Option<&Path>,
    git_ignores: bool,
) -> Result<(Vec<WalkEntry>, Vec<PathBuf>)> {
    // The root named by the user is followed when it is a link; links below it are not.
    let md = std::fs::metadata(root).map_err(io_err(root))?;
    if !md.is_dir() {
        return match entry_from_metadata(PathBuf::new(), root.to_path_buf(), &md) {
            Some(e) => Ok((vec![e], Vec::new())),
            None => Err(SnapshotError::BadPath {
                path: root.to_path_buf(),
                reason: "not a regular file, folder or symbolic link".into(),
            }),
        };
    }
    let walker = Walker { git_ignores };
    // The folders from `top` down to the walked one's parent, shallowest first.
    let above: Vec<&Path> = match top {
        Some(top) if root.starts_with(top) => root
            .ancestors()
            .skip(1)
            .take_while(|dir| dir.starts_with(top))
            .collect(),
        _ => Vec::new(),
    };
    let mut rules = Rules::default();
    for dir in above.into_iter().rev().chain([root]) {
        rules = walker.rules_for(dir, &rules)?;
    }
    let listing = walker.dir(root, Path::new(""), &rules)?;
    Ok((listing.entries, listing.skipped))
}

/// What one folder (and everything below it) contributes to a walk.
#[derive(Default)]
struct Listing {
    entries: Vec<WalkEntry>,
    skipped: Vec<PathBuf>,
}

/// The ignore files in force for a folder, deepest last.
#[derive(Default, Clone)]
struct Rules {
    cairn: Vec<Arc<Gitignore>>,
    git: Vec<Arc<Gitignore>>,
}

impl Rules {
    /// Whether `path` is ignored: the deepest `.cairnignore` that has a say decides, then
    /// the deepest `.gitignore`; a `!pattern` re-includes.
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for set in [&self.cairn, &self.git] {
            for gi in set.iter().rev() {
                match gi.matched(path, is_dir) {
                    Match::None => continue,
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                }
            }
        }
        false
    }
}

/// Folders at least this large have their entries examined in parallel.
const PARALLEL_ENTRIES: usize = 1024;

struct Walker {
    git_ignores: bool,
}

impl Walker {
    /// The rules for folder `dir`: the parent's, plus the folder's own ignore files.
    fn rules_for(&self, dir: &Path, parent: &Rules) -> Result<Rules> {
        let mut rules = parent.clone();
        if let Some(gi) = load_ignore_file(dir, ".cairnignore")? {
            rules.cairn.push(gi);
        }
        if self.git_ignores {
            if let Some(gi) = load_ignore_file(dir, ".gitignore")? {
                rules.git.push(gi);
            }
        }
        Ok(rules)
    }

    /// Lists folder `abs` (relative path `rel`), recursing into subfolders in parallel.
    fn dir(&self, abs: &Path, rel: &Path, rules: &Rules) -> Result<Listing> {
        let mut names: Vec<(std::ffi::OsString, std::fs::DirEntry)> = Vec::new();
        for ent in std::fs::read_dir(abs).map_err(io_err(abs))? {
            let ent = ent.map_err(io_err(abs))?;
            let name = ent.file_name();
            if name == ".cairn" || name == ".git" {
                continue;
            }
            names.push((name, ent));
        }
        names.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Metadata through the open folder (`fstatat`), which spares the kernel a full path
        // lookup per file.
        let examine =
            |(name, ent): &(std::ffi::OsString, std::fs::DirEntry)| -> Result<Option<Examined>> {
                let child_abs = join(abs, name);
                let md = ent.metadata().map_err(io_err(&child_abs))?;
                if rules.ignored(&child_abs, md.is_dir()) {
                    return Ok(None);
                }
                check_rel(Path::new(name), &child_abs)?;
                if !is_listed(&md) {
                    return Ok(Some(Examined::Special(child_abs)));
                }
                let child_rel = join(rel, name);
                Ok(entry_from_metadata(child_rel, child_abs, &md).map(Examined::Entry))
            };
        let examined: Vec<Result<Option<Examined>>> = if names.len() >= PARALLEL_ENTRIES {
            names.par_iter().map(examine).collect()
        } else {
            names.iter().map(examine).collect()
        };
        let mut out = Listing::default();
        let mut subdirs = Vec::new();
        for x in examined {
            match x? {
                None => {}
                Some(Examined::Special(p)) => out.skipped.push(p),
                Some(Examined::Entry(e)) => match e.kind {
                    WalkKind::Dir => subdirs.push(e),
                    WalkKind::Symlink => {
                        check_link(&e)?;
                        out.entries.push(e);
                    }
                    WalkKind::File { .. } => out.entries.push(e),
                },
            }
        }
        let below: Vec<Result<(WalkEntry, Listing)>> = subdirs
            .into_par_iter()
            .map(|d| {
                let rules = self.rules_for(&d.abs, rules)?;
                let listing = self.dir(&d.abs, &d.rel, &rules)?;
                Ok((d, listing))
            })
            .collect();
        for b in below {
            let (d, listing) = b?;
            out.entries.push(d);
            out.entries.extend(listing.entries);
            out.skipped.extend(listing.skipped);
        }
        Ok(out)
    }
}

/// `dir/name` in one allocation (`Path::join` grows its buffer and checks for separators).
fn join(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let d = dir.as_os_str().as_bytes();
    let n = name.as_bytes();
    let mut v = Vec::with_capacity(d.len() + 1 + n.len());
    v.extend_from_slice(d);
    if !d.is_empty() && !d.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(n);
    PathBuf::from(std::ffi::OsString::from_vec(v))
}

/// Whether [`entry_from_metadata`] lists this kind (files, folders, links).
fn is_listed(md: &std::fs::Metadata) -> bool {
    let ft = md.file_type();
    ft.is_file() || ft.is_dir() || ft.is_symlink()
}

enum Examined {
    Entry(WalkEntry),
    Special(PathBuf),
}

/// Reads `dir/name` as gitignore rules, if the file exists.
fn load_ignore_file(dir: &Path, name: &str) -> Result<Option<Arc<Gitignore>>> {
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path)(e)),
        Ok(_) => {}
    }
    // The parser's messages usually name the file and line already.
    let named = |e: ignore::Error| {
        let msg = e.to_string();
        SnapshotError::Walk(if msg.contains(&*path.to_string_lossy()) {
            msg
        } else {
            format!("{}: {msg}", path.display())
        })
    };
    let mut b = GitignoreBuilder::new(dir);
    if let Some(err) = b.add(&path) {
        return Err(named(err));
    }
    let gi = b.build().map_err(named)?;
    Ok(Some(Arc::new(gi)))
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
