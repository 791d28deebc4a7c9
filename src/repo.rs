//! A cairn repository: the `.cairn` folder, its configuration and its store.
//!
//! [`Repo::init`] creates one; [`Repo::discover`] finds the one containing a folder, as git
//! does. The folder holding `.cairn` is the repository root: paths of data and artifacts are
//! recorded relative to it so that checkout can put them back.

use std::path::{Path, PathBuf};

use crate::config::{config_path, Config};
use crate::error::{io_err, Error, Result};
use crate::store::{CompressionPolicy, RefValue, Store, WaitHook};

/// The name of the repository folder.
pub const DOT_DIR: &str = ".cairn";

/// How to open a repository.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// How long a session waits for another process holding the index before failing with
    /// [`crate::store::StoreError::Busy`]; `None` keeps the store's default (10 minutes).
    pub lock_timeout: Option<std::time::Duration>,
}

impl OpenOptions {
    /// The options the environment asks for: `CAIRN_LOCK_TIMEOUT` (seconds) sets the lock
    /// timeout.
    pub fn from_env() -> OpenOptions {
        OpenOptions {
            lock_timeout: std::env::var("CAIRN_LOCK_TIMEOUT")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .map(std::time::Duration::from_secs),
        }
    }
}

/// An opened repository.
pub struct Repo {
    root: PathBuf,
    config: Config,
    store: Store,
}

impl Repo {
    /// Creates a repository in `root` (which is created if missing).
    pub fn init(root: &Path) -> Result<Repo> {
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let root = root.canonicalize().map_err(io_err(root))?;
        let dot = root.join(DOT_DIR);
        if dot.exists() {
            return Err(Error::AlreadyARepo(root));
        }
        // Build in a temporary folder and rename, so a failed init leaves nothing behind.
        let tmp = root.join(format!(".cairn-init-{}", std::process::id()));
        let result = (|| -> Result<()> {
            std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
            crate::fault::check("init.write").map_err(io_err(&tmp))?;
            std::fs::write(config_path(&tmp), Config::initial_text()).map_err(io_err(&tmp))?;
            let store = Store::create(&tmp)?;
            let s = store.session()?;
            s.ref_cas(
                crate::refs::HEAD,
                None,
                Some(&RefValue::Symbolic(format!(
                    "{}main",
                    crate::refs::BRANCH_PREFIX
                ))),
            )?;
            s.flush()?;
            drop(s);
            crate::fault::check("init.rename").map_err(io_err(&dot))?;
            std::fs::rename(&tmp, &dot).map_err(io_err(&dot))
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Repo::open(&root)
    }

    /// Opens the repository whose root is `root`, with [`OpenOptions::from_env`].
    pub fn open(root: &Path) -> Result<Repo> {
        Repo::open_with(root, &OpenOptions::from_env())
    }

    /// Opens the repository whose root is `root` with explicit options.
    pub fn open_with(root: &Path, options: &OpenOptions) -> Result<Repo> {
        let dot = root.join(DOT_DIR);
        if !dot.is_dir() {
            return Err(Error::NotARepo(root.to_path_buf()));
        }
        let config = Config::load(&config_path(&dot))?;
        let mut store = Store::open(&dot)?;
        store.set_compression(CompressionPolicy {
            level: config.core.compression_level,
            ..CompressionPolicy::default()
        });
        if let Some(t) = options.lock_timeout {
            store.set_lock_timeout(t);
        }
        Ok(Repo {
            root: root.to_path_buf(),
            config,
            store,
        })
    }

    /// Finds the repository containing `start` even when its index is missing or damaged, for
    /// `cairn fsck --rebuild-index`.
    pub fn discover_for_repair(start: &Path) -> Result<Repo> {
        let start = start.canonicalize().map_err(io_err(start))?;
        let mut cur = Some(start.as_path());
        while let Some(dir) = cur {
            let dot = dir.join(DOT_DIR);
            if dot.is_dir() {
                let index = dot.join("index");
                if !index.exists() {
                    std::fs::create_dir_all(&index).map_err(io_err(&index))?;
                }
                return Repo::open(dir);
            }
            cur = dir.parent();
        }
        Err(Error::NotARepo(start))
    }

    /// Finds the repository containing `start` (or `start` itself).
    pub fn discover(start: &Path) -> Result<Repo> {
        let start = start.canonicalize().map_err(io_err(start))?;
        let mut cur = Some(start.as_path());
        while let Some(dir) = cur {
            if dir.join(DOT_DIR).is_dir() {
                return Repo::open(dir);
            }
            cur = dir.parent();
        }
        Err(Error::NotARepo(start))
    }

    /// The repository root (the folder holding `.cairn`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets a hook called when waiting for another process passes a second.
    pub fn set_wait_hook(&mut self, hook: WaitHook) {
        self.store.set_wait_hook(hook);
    }

    /// How long to wait for another cairn process to release the repository before giving up.
    pub fn set_lock_timeout(&mut self, t: std::time::Duration) {
        self.store.set_lock_timeout(t);
    }

    /// `path` relative to the root when inside it (`.` for the root itself).
    pub fn relative(&self, path: &Path) -> Option<PathBuf> {
        let rel = path.strip_prefix(&self.root).ok()?;
        Some(if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.to_path_buf()
        })
    }

    /// The author recorded on new runs and notes: cairn's `[user]` settings, then git's
    /// `user.name`/`user.email` as git itself reads them in this project (the repository's
    /// `.git/config` first, then the global and system files).
    pub fn author(&self) -> String {
        let user = &self.config.user;
        let (mut name, mut email) = (user.name.clone(), user.email.clone());
        if name.is_none() || email.is_none() {
            let project = git2::Repository::discover(&self.root).and_then(|r| r.config());
            if let Ok(cfg) = project.or_else(|_| git2::Config::open_default()) {
                name = name.or_else(|| cfg.get_string("user.name").ok());
                email = email.or_else(|| cfg.get_string("user.email").ok());
            }
        }
        let name = name
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into());
        match email {
            Some(e) => format!("{name} <{e}>"),
            None => name,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// This machine's host name.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// `path` with `.` and `..` components resolved lexically (no file system access).
pub fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_with_sets_the_lock_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let holder = Repo::init(tmp.path()).unwrap();
        let held = holder.store().session().unwrap();
        let quick = OpenOptions {
            lock_timeout: Some(std::time::Duration::from_millis(100)),
        };
        let other = Repo::open_with(holder.root(), &quick).unwrap();
        match other.store().session() {
            // Under the default timeout it would have waited 10 minutes.
            Err(crate::store::StoreError::Busy(waited)) => {
                assert!(waited < std::time::Duration::from_secs(600), "{waited:?}")
            }
            Err(e) => panic!("expected Busy, got {e}"),
            Ok(_) => panic!("a second handle opened the index while it was held"),
        }
        drop(held);
        other.store().session().unwrap();
    }
}
