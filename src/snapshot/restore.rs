//! Writing trees back to disk, bit for bit, and never outside the target folder.
//!
//! Restoring happens in two phases. The plan phase reads every tree (whose names were validated
//! when decoded), checks every link target and every path already on disk — a symbolic link
//! where a folder should be, files that would be overwritten, names that collide on a
//! case-insensitive file system — and refuses before a single byte is written. The write phase
//! then writes each file to a temporary name beside its target and renames it into place.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::ingest::hash_file;
use super::{io_err, Result, SnapshotError};
use crate::hash::ObjectId;
use crate::object::{EntryKind, Kind};
use crate::progress::Progress;
use crate::store::pack::Location;
use crate::store::stat::split_path;
use crate::store::StatFolder;
use crate::store::{write_pieces, Session, StoreError};
use std::sync::Arc;

/// A writer that remembers whether a write to it failed.
struct Failing<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Failing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.failed |= r.is_err();
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.failed |= r.is_err();
        r
    }
}

/// One path to restore.
#[derive(Debug, Clone)]
pub struct RestoreItem {
    /// Path relative to the target folder.
    pub rel: PathBuf,
    /// What to create (`Tree` for a folder).
    pub kind: EntryKind,
    /// Content id (unused for folders).
    pub id: ObjectId,
    /// Size in bytes.
    pub size: u64,
}

/// What a restore did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestoreReport {
    /// Files and links written.
    pub written: u64,
    /// Files already identical, left alone.
    pub unchanged: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Adds the contents of tree `id`, placed at `prefix`, to `out` (folders included).
pub fn plan_tree(
    session: &Session,
    id: &ObjectId,
    prefix: &Path,
    out: &mut Vec<RestoreItem>,
) -> Result<()> {
    let tree = session.read_tree(id)?;
    out.push(RestoreItem {
        rel: prefix.to_path_buf(),
        kind: EntryKind::Tree,
        id: *id,
        size: tree.size(),
    });
    for e in tree.entries {
        let rel = prefix.join(&e.name);
        if e.kind == EntryKind::Tree {
            plan_tree(session, &e.id, &rel, out)?;
        } else {
            out.push(RestoreItem {
                rel,
                kind: e.kind,
                id: e.id,
                size: e.size,
            });
        }
    }
    Ok(())
}

/// Checks that `rel` is a plain relative path (no root, no `..`, no `.`).
pub fn check_relative(rel: &Path) -> Result<()> {
    for c in rel.components() {
        match c {
            Component::Normal(n) => {
                let s = n.to_string_lossy();
                crate::object::validate_name(&s).map_err(|reason| SnapshotError::BadPath {
                    path: rel.to_path_buf(),
                    reason,
                })?;
            }
            _ => {
                return Err(SnapshotError::BadPath {
                    path: rel.to_path_buf(),
                    reason: "path escapes the target folder".into(),
                })
            }
        }
    }
    Ok(())
}

/// Checks a link target: relative, staying inside the target folder, not into `.cairn`/`.git`,
/// and never passing through another link (`links` are the links being restored; links already
/// on disk under `root` count too), so a chain of links cannot climb out either.
pub fn check_link_target(
    rel: &Path,
    target: &[u8],
    links: &HashSet<PathBuf>,
    root: Option<&Path>,
) -> Result<PathBuf> {
    let bad = |reason: &str| SnapshotError::BadPath {
        path: rel.to_path_buf(),
        reason: reason.to_string(),
    };
    if target.is_empty() || target.contains(&0) {
        return Err(bad("symbolic link with an empty or invalid target"));
    }
    let t = Path::new(std::ffi::OsStr::from_bytes(target)).to_path_buf();
    if t.is_absolute() {
        return Err(bad(&format!(
            "symbolic link to absolute path {} refused",
            t.display()
        )));
    }
    // Resolve lexically from the link's folder; it may never climb above the target root.
    let mut depth: Vec<std::ffi::OsString> = rel
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_os_string())
                .collect()
        })
        .unwrap_or_default();
    let comps: Vec<Component> = t.components().collect();
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return Err(bad(&format!(
                        "symbolic link to {} points outside the target folder",
                        t.display()
                    )));
                }
            }
            Component::Normal(n) => {
                let s = n.to_string_lossy().to_ascii_lowercase();
                if s == ".cairn" || s == ".git" {
                    return Err(bad(&format!(
                        "symbolic link into {} refused",
                        n.to_string_lossy()
                    )));
                }
                depth.push(n.to_os_string());
                if i + 1 < comps.len() {
                    let here: PathBuf = depth.iter().collect();
                    let on_disk = root.is_some_and(|r| {
                        std::fs::symlink_metadata(r.join(&here))
                            .is_ok_and(|m| m.file_type().is_symlink())
                    });
                    if links.contains(&here) || on_disk {
                        return Err(bad(&format!(
                            "symbolic link to {} passes through another link ({}); refused",
                            t.display(),
                            here.display()
                        )));
                    }
                }
            }
            Component::CurDir => {}
            _ => return Err(bad("symbolic link with an unusable target")),
        }
    }
    Ok(t)
}

enum Existing {
    Absent,
    Same,
    Differs,
}

/// Stat-cache records read during one restore, by folder: a file the cache vouches for (same
/// size, times and inode as when its content id was computed) is not read again to compare it.
#[derive(Default)]
struct StatView {
    folders: HashMap<Vec<u8>, Option<StatFolder>>,
}

impl StatView {
    /// Whether the stat cache says the file at `path`, as `md` describes it, holds `id`.
    fn vouches(
        &mut self,
        session: &Session,
        path: &Path,
        md: &std::fs::Metadata,
        id: &ObjectId,
    ) -> bool {
        use std::os::unix::fs::MetadataExt;
        if !path.is_absolute() {
            return false;
        }
        let Some((dir, name)) = split_path(path.as_os_str().as_bytes()) else {
            return false;
        };
        if !self.folders.contains_key(dir) {
            // A cache that cannot be read only means the file is read instead.
            let record = session.stat_folder(dir).ok().flatten();
            self.folders.insert(dir.to_vec(), record);
        }
        let Some(Some(folder)) = self.folders.get(dir) else {
            return false;
        };
        let Some(i) = folder.find(name) else {
            return false;
        };
        let e = folder.files()[i].1;
        let (mtime_ns, ctime_ns) = super::walk::times_ns(md);
        e.id == *id && e.matches(md.len(), mtime_ns, ctime_ns, md.ino())
    }
}

/// What is on disk at `path` compared with `item`.
fn compare_existing(
    session: &Session,
    stats: &mut StatView,
    path: &Path,
    item: &RestoreItem,
) -> Result<Existing> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(Existing::Absent)
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let ft = md.file_type();
    match item.kind {
        EntryKind::Tree => Ok(if ft.is_dir() {
            Existing::Same
        } else {
            Existing::Differs
        }),
        EntryKind::Symlink => {
            if !ft.is_symlink() {
                return Ok(Existing::Differs);
            }
            let cur = std::fs::read_link(path).map_err(io_err(path))?;
            let want = session.read_kind(&item.id, Kind::Blob)?;
            Ok(if cur.as_os_str().as_bytes() == want.as_slice() {
                Existing::Same
            } else {
                Existing::Differs
            })
        }
        EntryKind::File | EntryKind::Executable => {
            if !ft.is_file() || md.len() != item.size {
                return Ok(Existing::Differs);
            }
            let exec = md.permissions().mode() & 0o111 != 0;
            let same_content =
                stats.vouches(session, path, &md, &item.id) || hash_file(path)? == item.id;
            Ok(
                match (same_content, exec == (item.kind == EntryKind::Executable)) {
                    (true, true) => Existing::Same,
                    _ => Existing::Differs,
                },
            )
        }
    }
}

/// Restores `items` under `root`. Refuses, before writing anything, when a path would escape
/// `root`, pass through a symbolic link, or overwrite something different without `force`.
///
/// The session is given up once everything is planned: where each file's pieces are stored is
/// noted then (their packs opened, so a concurrent `gc` rewriting a pack does not matter), and
/// the files are written without holding the index, so a long checkout keeps no other command
/// waiting.
pub fn restore(
    owned: Session<'_>,
    root: &Path,
    items: &[RestoreItem],
    force: bool,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let session = &owned;
    // ---- plan ----
    let mut conflicts = Vec::new();
    let mut todo: Vec<(&RestoreItem, Option<PathBuf>)> = Vec::new();
    let mut report = RestoreReport::default();
    let mut stats = StatView::default();
    let mut lower: HashMap<String, &Path> = HashMap::new();
    let mut collisions = Vec::new();
    let links: HashSet<PathBuf> = items
        .iter()
        .filter(|i| i.kind == EntryKind::Symlink)
        .map(|i| i.rel.clone())
        .collect();
    for item in items {
        check_relative(&item.rel)?;
        let key = item.rel.to_string_lossy().to_lowercase();
        if let Some(prev) = lower.insert(key, &item.rel) {
            if prev != item.rel {
                collisions.push((prev.to_path_buf(), item.rel.clone()));
            }
        }
        let link_target = if item.kind == EntryKind::Symlink {
            let t = session.read_kind(&item.id, Kind::Blob)?;
            Some(check_link_target(&item.rel, &t, &links, Some(root))?)
        } else {
            None
        };
        // No ancestor inside root may be a symbolic link or a non-folder.
        let mut cur = root.to_path_buf();
        let comps: Vec<_> = item.rel.components().collect();
        let mut through_link = false;
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() && !force => {
                    return Err(SnapshotError::BadPath {
                        path: cur.clone(),
                        reason: "is a symbolic link; refusing to write through it (use --force to replace it)".into(),
                    });
                }
                Ok(m) if m.file_type().is_symlink() => through_link = true,
                Ok(m) if !m.is_dir() => conflicts.push(cur.clone()),
                _ => {}
            }
        }
        let path = root.join(&item.rel);
        if through_link {
            // The link above will be replaced by a real folder: nothing below it exists yet.
            todo.push((item, link_target));
            continue;
        }
        match compare_existing(session, &mut stats, &path, item)? {
            Existing::Absent => todo.push((item, link_target)),
            Existing::Same => {
                if item.kind != EntryKind::Tree {
                    report.unchanged += 1;
                }
            }
            Existing::Differs => {
                conflicts.push(path);
                todo.push((item, link_target));
            }
        }
    }
    if !collisions.is_empty() && case_insensitive(root) {
        let (a, b) = &collisions[0];
        return Err(SnapshotError::BadPath {
            path: b.clone(),
            reason: format!(
                "collides with {} on this case-insensitive file system",
                a.display()
            ),
        });
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(SnapshotError::WouldOverwrite(conflicts));
    }
    // Where the content of each file to write is stored, then the index is given up.
    let mut pieces: HashMap<ObjectId, Vec<(ObjectId, Location)>> = HashMap::new();
    let mut packs: HashMap<u64, Arc<std::fs::File>> = HashMap::new();
    for (item, _) in &todo {
        if !matches!(item.kind, EntryKind::File | EntryKind::Executable)
            || pieces.contains_key(&item.id)
        {
            continue;
        }
        let plan = session.content_plan(&item.id)?;
        session.open_packs(&plan, &mut packs)?;
        pieces.insert(item.id, plan);
    }
    drop(owned);
    // ---- write ----
    let total: u64 = todo.iter().map(|(i, _)| i.size).sum();
    progress.begin("restoring", Some(total));
    std::fs::create_dir_all(root).map_err(io_err(root))?;
    let mut swept: HashSet<PathBuf> = HashSet::new();
    for (item, link_target) in todo {
        let path = root.join(&item.rel);
        if let Some(parent) = item.rel.parent() {
            make_dirs(root, parent)?;
            if swept.insert(parent.to_path_buf()) {
                sweep_stale_temps(&root.join(parent));
            }
        }
        match item.kind {
            EntryKind::Tree => make_dirs(root, &item.rel)?,
            EntryKind::Symlink => {
                let target = link_target.unwrap_or_default();
                let tmp = temp_name(&path);
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&target, &tmp).map_err(io_err(&path))?;
                if let Err(e) = replace(&tmp, &path) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                report.written += 1;
            }
            EntryKind::File | EntryKind::Executable => {
                let tmp = temp_name(&path);
                let result = (|| -> Result<()> {
                    let file = create_new_nofollow(&tmp)?;
                    let mut out = Failing {
                        inner: std::io::BufWriter::with_capacity(1 << 20, file),
                        failed: false,
                    };
                    let plan = pieces.get(&item.id).map_or(&[][..], Vec::as_slice);
                    // A failed write (a full disk) is reported against the file being restored.
                    write_pieces(plan, &packs, &mut out, &|n| progress.advance(n)).map_err(
                        |e| match e {
                            StoreError::Io { source, .. } if out.failed => SnapshotError::Io {
                                path: path.clone(),
                                source,
                            },
                            e => e.into(),
                        },
                    )?;
                    crate::fault::check("restore.write").map_err(io_err(&path))?;
                    out.inner.flush().map_err(io_err(&path))?;
                    let mode = if item.kind == EntryKind::Executable {
                        0o755
                    } else {
                        0o644
                    };
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
                        .map_err(io_err(&tmp))?;
                    replace(&tmp, &path)
                })();
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                report.written += 1;
                report.bytes += item.size;
            }
        }
    }
    progress.end();
    Ok(report)
}

/// Creates `path` for writing, never following a link that sits there (a stale one is removed).
fn create_new_nofollow(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    crate::fault::check("restore.create").map_err(io_err(path))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))
}

/// Removes temporary files left in `dir` by restores that were killed (their process is gone).
fn sweep_stale_temps(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".cairn-tmp-"))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = pid == std::process::id() as i32 || unsafe { libc::kill(pid, 0) } == 0;
        if !alive && ent.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()) {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let short: String = name.chars().take(100).collect();
    path.with_file_name(format!(".{short}.cairn-tmp-{}", std::process::id()))
}

/// Renames `tmp` over `path`, removing a folder or link that stands there.
fn replace(tmp: &Path, path: &Path) -> Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.is_dir() {
            std::fs::remove_dir_all(path).map_err(io_err(path))?;
        }
    }
    crate::fault::check("restore.rename").map_err(io_err(path))?;
    std::fs::rename(tmp, path).map_err(io_err(path))
}

/// Creates the folders of `rel` under `root`, replacing links and files that stand in the way
/// (the plan phase already refused those unless --force).
fn make_dirs(root: &Path, rel: &Path) -> Result<()> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => std::fs::remove_file(&cur).map_err(io_err(&cur))?,
            Err(_) => {}
        }
        match std::fs::create_dir(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&cur)(e)),
        }
    }
    Ok(())
}

/// True when the file system at `root` ignores case.
fn case_insensitive(root: &Path) -> bool {
    let probe = root.join(format!(".cairn-case-probe-{}", std::process::id()));
    if std::fs::create_dir_all(root).is_err() || std::fs::write(&probe, b"").is_err() {
        return false;
    }
    let upper = root.join(format!(".CAIRN-CASE-PROBE-{}", std::process::id()));
    let result = upper.exists();
    let _ = std::fs::remove_file(&probe);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_stay_inside() {
        let rel = Path::new("a/b/link");
        let none = HashSet::new();
        assert!(check_link_target(rel, b"../c", &none, None).is_ok());
        assert!(check_link_target(rel, b"../../c", &none, None).is_ok());
        assert!(check_link_target(rel, b"../../../c", &none, None).is_err());
        assert!(check_link_target(rel, b"/etc/passwd", &none, None).is_err());
        assert!(check_link_target(rel, b"../../.cairn/index", &none, None).is_err());
        assert!(check_link_target(rel, b"", &none, None).is_err());
        let links: HashSet<PathBuf> = [PathBuf::from("a/b/l")].into_iter().collect();
        assert!(check_link_target(rel, b"l/../x", &links, None).is_err());
        assert!(check_link_target(rel, b"l", &links, None).is_ok());
        assert!(check_relative(Path::new("a/../b")).is_err());
        assert!(check_relative(Path::new("/a")).is_err());
        assert!(check_relative(Path::new("a/.git/x")).is_err());
    }
}
