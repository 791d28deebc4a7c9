//! A remote in a local or mounted folder.
//!
//! Blobs are written to a temporary name and renamed into place, so readers never see half a
//! file. Refs move by compare-and-swap under a lock file created with O_EXCL: read, compare,
//! write the new value into the lock file, fsync, rename over the ref. A lock left by a killed
//! process is broken after a minute; a temporary file left by one is removed by a later push once
//! nothing has written to it for an hour.

use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::transport::{parse_ref, RefVersion, Result, Transport, TransportError};
use crate::hash::ObjectId;

/// How long a temporary file must have gone unwritten before a push takes it for one a killed
/// process left and removes it. An upload writes its temporary file continuously.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A folder remote.
pub struct FolderTransport {
    root: PathBuf,
    /// Folders whose stale temporary files this process has already removed.
    swept: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

impl FolderTransport {
    /// A remote rooted at `root`, created if missing when its parent folder exists. A missing
    /// parent is refused: a drive that is not mounted must not get a remote in its mount point.
    pub fn new(root: &Path) -> Result<Self> {
        let t = FolderTransport {
            root: root.to_path_buf(),
            swept: Default::default(),
        };
        if let Some(parent) = root.parent().filter(|p| !root.is_dir() && !p.is_dir()) {
            return Err(t.fail(format!(
                "the folder does not exist, nor does {} (a drive not mounted?); create it, \
                 or add the remote again with `cairn remote add --create`",
                parent.display()
            )));
        }
        std::fs::create_dir_all(root)
            .map_err(|e| t.fail(format!("cannot create the folder: {e}")))?;
        Ok(t)
    }

    fn fail(&self, message: String) -> TransportError {
        TransportError::Failed {
            remote: self.describe(),
            message,
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(self.fail(format!("invalid key {key}")));
        }
        Ok(self.root.join(key))
    }

    /// Removes the temporary files in `dir` that nothing has written to for [`STALE_TEMP`]:
    /// what killed uploads left. Done once per folder and process, on its first write there;
    /// failures are ignored (the files are only clutter).
    fn sweep_stale_temps(&self, dir: &Path) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(|p| p.into_inner());
            if !swept.insert(dir.to_path_buf()) {
                return;
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let now = std::time::SystemTime::now();
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn write_atomic(
        &self,
        key: &str,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.path(key)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| self.fail(format!("{key}: {e}")))?;
        self.sweep_stale_temps(&parent);
        let tmp = parent.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let result = (|| -> std::io::Result<()> {
            crate::fault::check("remote.create")?;
            let mut f = std::fs::File::create(&tmp)?;
            crate::fault::check("remote.write")?;
            write(&mut f)?;
            crate::fault::check("remote.fsync")?;
            f.sync_all()?;
            crate::fault::check("remote.rename")?;
            std::fs::rename(&tmp, &path)?;
            if let Ok(d) = std::fs::File::open(&parent) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.fail(format!("{key}: {e}")));
        }
        Ok(())
    }
}

impl Transport for FolderTransport {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let dir = self.root.join(prefix);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        for e in walkdir_files(&dir) {
            let rel =
                e.0.strip_prefix(&self.root)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
            let key = rel.to_string_lossy().into_owned();
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(".tmp-") || name.ends_with(".lock") {
                continue;
            }
            out.push((key, e.1));
        }
        out.sort();
        Ok(out)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fail(format!("{key}: {e}"))),
        }
    }

    fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let f =
            std::fs::File::open(self.path(key)?).map_err(|e| self.fail(format!("{key}: {e}")))?;
        ranges
            .iter()
            .map(|r| {
                let len = usize::try_from(r.end.saturating_sub(r.start))
                    .map_err(|_| self.fail("range too large".into()))?;
                let mut buf = vec![0u8; len];
                f.read_exact_at(&mut buf, r.start)
                    .map_err(|e| self.fail(format!("{key}: bytes {}..{}: {e}", r.start, r.end)))?;
                Ok(buf)
            })
            .collect()
    }

    fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        self.write_atomic(key, |f| {
            let mut src = std::fs::File::open(path)?;
            std::io::copy(&mut src, f)?;
            Ok(())
        })
    }

    fn put_bytes(&self, key: &str, data: Vec<u8>) -> Result<()> {
        self.write_atomic(key, |f| f.write_all(&data))
    }

    fn read_ref(&self, name: &str) -> Result<Option<RefVersion>> {
        match self.get(name)? {
            None => Ok(None),
            Some(b) => {
                let id = parse_ref(&self.describe(), name, &b)?;
                Ok(Some(RefVersion {
                    id,
                    version: id.to_hex(),
                }))
            }
        }
    }

    fn cas_ref(&self, name: &str, expected: Option<&RefVersion>, new: &ObjectId) -> Result<()> {
        let path = self.path(name)?;
        let parent = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(|e| self.fail(format!("{name}: {e}")))?;
        let lock = path.with_file_name(format!(
            "{}.lock",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        // A lock older than a minute was left by a killed process: break it and try again once.
        let mut broke_stale = false;
        let mut file = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|d| d.as_secs() > 60);
                    if stale && !broke_stale {
                        broke_stale = true;
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    return Err(TransportError::Conflict {
                        remote: self.describe(),
                        name: name.to_string(),
                    });
                }
                Err(e) => return Err(self.fail(format!("{name}: {e}"))),
            }
        };
        let result = (|| -> Result<()> {
            let current = self.read_ref(name)?;
            if current.as_ref().map(|c| &c.id) != expected.map(|e| &e.id) {
                return Err(TransportError::Conflict {
                    remote: self.describe(),
                    name: name.to_string(),
                });
            }
            let io = |e: std::io::Error| self.fail(format!("{name}: {e}"));
            crate::fault::check("remote.ref").map_err(io)?;
            file.write_all(format!("{}\n", new.to_hex()).as_bytes())
                .map_err(io)?;
            file.sync_all().map_err(io)?;
            std::fs::rename(&lock, &path).map_err(io)?;
            if let Ok(d) = std::fs::File::open(&parent) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&lock);
        }
        result
    }
}

fn walkdir_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((e.path(), len));
            }
        }
    }
    out
}
