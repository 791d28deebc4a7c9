//! Remotes: moving runs between machines through a folder or S3-compatible storage.
//!
//! A remote holds pack files with per-pack indexes (`packs/NAME.pack`, `packs/NAME.idx`) and
//! refs (`refs/heads/…`, `refs/tags/…`, `refs/notes/runs`, each 64 hex digits). Push uploads
//! the objects the remote lacks — learned by listing and reading its pack indexes, never by
//! probing objects one by one — as packs in children-before-parents order, each index after its
//! pack, then moves refs by compare-and-swap. Fetch reads what it lacks with ranged reads,
//! verifies every object against its id before storing it, and moves local refs last.
//! Remotes are configured in `.cairn/remotes.toml`. See `docs/remotes.md`.

pub mod folder;
pub mod packidx;
#[cfg(feature = "s3")]
pub mod s3;
pub mod sync;
pub mod transport;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{io_err, Error, Result};
use crate::repo::Repo;
pub use transport::{Transport, TransportError};

/// One configured remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteConfig {
    /// `s3://bucket/prefix`, `file:///path` or a folder path.
    pub url: String,
    /// S3 endpoint override, for S3-compatible servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn remotes_path(repo: &Repo) -> PathBuf {
    repo.store().dir().join("remotes.toml")
}

/// The configured remotes by name.
pub fn list(repo: &Repo) -> Result<BTreeMap<String, RemoteConfig>> {
    let path = remotes_path(repo);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| crate::error::toml_error(&path, &text, &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn save(repo: &Repo, remotes: &BTreeMap<String, RemoteConfig>) -> Result<()> {
    let path = remotes_path(repo);
    let text = toml::to_string(remotes).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("toml.tmp");
    let result = crate::fault::check("config.write")
        .and_then(|()| std::fs::write(&tmp, text))
        .map_err(io_err(&tmp))
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_err(&path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks a remote name.
pub fn validate_name(name: &str) -> Result<()> {
    crate::refs::validate("remote", name)?;
    if name.contains('/') {
        return Err(Error::BadRefName {
            kind: "remote",
            name: name.to_string(),
            reason: "contains '/'".into(),
        });
    }
    Ok(())
}

/// Normalises a URL: folder paths become absolute.
pub fn normalize_url(url: &str, cwd: &Path) -> Result<String> {
    if url.starts_with("s3://") {
        return Ok(url.trim_end_matches('/').to_string());
    }
    if let Some((scheme, _)) = url.split_once("://") {
        if scheme != "file" {
            return Err(Error::BadArgument {
                arg: url.to_string(),
                reason: format!(
                    "unsupported remote scheme '{scheme}' (use a folder, file:// or s3://)"
                ),
            });
        }
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.is_empty() {
        return Err(Error::BadArgument {
            arg: url.to_string(),
            reason: "empty remote path".into(),
        });
    }
    let p = Path::new(path);
    let abs = crate::repo::clean_path(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    });
    Ok(abs.to_string_lossy().into_owned())
}

/// Checks the folder of a folder remote (`url` normalised) before it is added: the folder must
/// exist, or its parent (the first push creates it). A parent that does not exist is most often
/// a typo or a drive that is not mounted, so it is refused unless `create`, which creates the
/// folder and its parents now. Other URLs pass.
pub fn prepare_folder(url: &str, create: bool) -> Result<()> {
    if url.starts_with("s3://") {
        return Ok(());
    }
    let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
    if path.is_dir() {
        return Ok(());
    }
    if create {
        return std::fs::create_dir_all(path).map_err(io_err(path));
    }
    match path.parent() {
        Some(parent) if !parent.is_dir() => Err(Error::BadArgument {
            arg: url.to_string(),
            reason: format!(
                "{} does not exist, so neither can the remote's folder (a typo, or a drive not \
                 mounted?); use --create to create the folders",
                parent.display()
            ),
        }),
        _ => Ok(()),
    }
}

/// Opens a transport for `cfg`.
pub fn connect(cfg: &RemoteConfig) -> Result<Box<dyn Transport>> {
    if cfg.url.starts_with("s3://") {
        connect_s3(cfg)
    } else {
        let path = cfg.url.strip_prefix("file://").unwrap_or(&cfg.url);
        Ok(Box::new(folder::FolderTransport::new(Path::new(path))?))
    }
}

#[cfg(feature = "s3")]
fn s3_transport(cfg: &RemoteConfig) -> Result<s3::S3Transport> {
    Ok(s3::S3Transport::new(
        &cfg.url,
        &s3::S3Options {
            endpoint: cfg.endpoint.clone(),
            region: cfg.region.clone(),
        },
    )?)
}

#[cfg(feature = "s3")]
fn connect_s3(cfg: &RemoteConfig) -> Result<Box<dyn Transport>> {
    Ok(Box::new(s3_transport(cfg)?))
}

/// Refuses a server that ignores conditional writes (refs could not be trusted there).
#[cfg(feature = "s3")]
fn probe_s3(cfg: &RemoteConfig) -> Result<()> {
    let t = s3_transport(cfg)?;
    if let Some(header) = t.probe_conditional_writes()? {
        return Err(Error::UnsafeRemote {
            url: cfg.url.clone(),
            header,
        });
    }
    Ok(())
}

/// Without the `s3` feature, S3 URLs are refused with a clear error.
#[cfg(not(feature = "s3"))]
fn no_s3(cfg: &RemoteConfig) -> Error {
    Error::BadArgument {
        arg: cfg.url.clone(),
        reason: "this cairn was built without S3 support (the `s3` feature)".into(),
    }
}

#[cfg(not(feature = "s3"))]
fn connect_s3(cfg: &RemoteConfig) -> Result<Box<dyn Transport>> {
    Err(no_s3(cfg))
}

#[cfg(not(feature = "s3"))]
fn probe_s3(cfg: &RemoteConfig) -> Result<()> {
    Err(no_s3(cfg))
}

/// Adds remote `name`; for S3, first checks that the server honours conditional writes (when
/// `check`); for a folder, that it or its parent exists, or creates it (when `create`, see
/// [`prepare_folder`]).
pub fn add(repo: &Repo, name: &str, cfg: RemoteConfig, check: bool, create: bool) -> Result<()> {
    validate_name(name)?;
    let mut all = list(repo)?;
    if all.contains_key(name) {
        return Err(Error::RefExists {
            kind: "remote",
            name: name.to_string(),
        });
    }
    if check && cfg.url.starts_with("s3://") {
        probe_s3(&cfg)?;
    }
    prepare_folder(&cfg.url, create)?;
    all.insert(name.to_string(), cfg);
    save(repo, &all)
}

/// Removes remote `name` and its remote-tracking refs.
pub fn remove(repo: &Repo, name: &str) -> Result<()> {
    let mut all = list(repo)?;
    if all.remove(name).is_none() {
        return Err(Error::NoSuchRef {
            kind: "remote",
            name: name.to_string(),
        });
    }
    save(repo, &all)?;
    let session = repo.store().session()?;
    for (r, v) in session.refs(&format!("refs/remotes/{name}/"))? {
        session.ref_cas(&r, Some(&v), None)?;
    }
    session.flush()?;
    let _ = std::fs::remove_dir_all(repo.store().dir().join("remotes").join(name));
    Ok(())
}

/// The remote called `name`.
pub fn get(repo: &Repo, name: &str) -> Result<RemoteConfig> {
    list(repo)?.remove(name).ok_or_else(|| Error::NoSuchRef {
        kind: "remote",
        name: name.to_string(),
    })
}
