//! Capture of the Git state of the code a run was trained with.
//!
//! A run is only reproducible if we know exactly which code produced it. When
//! the training code lives in a Git repository, [`capture`] records the
//! commit, branch and remote it came from, whether the work tree had
//! uncommitted changes, the full patch of those changes, and the list of
//! tracked files. Together with the file contents (stored elsewhere), this
//! lets a run be rebuilt later even when the original repository, its
//! uncommitted edits or its remote are no longer available.
//!
//! Everything is read through libgit2 (no `git` executable is needed), and the
//! capture is designed to stay fast on large repositories: the tracked-file
//! list comes straight from the index, and the diff never looks at untracked
//! files.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use git2::{DiffFormat, DiffOptions, ErrorCode, ReferenceType, Repository};

/// File mode of a gitlink (submodule) entry in the index.
const GITLINK_MODE: u32 = 0o160000;

/// The Git state of the code at capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// The repository's work tree root (absolute, canonicalized).
    pub workdir: PathBuf,
    /// HEAD commit as 40 hex digits; `None` on an unborn branch.
    pub commit: Option<String>,
    /// Short branch name; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// URL of the remote "origin", else of the first remote in name order,
    /// with credentials removed from the URL's userinfo.
    pub remote_url: Option<String>,
    /// Tracked files differ from HEAD (in the index or the work tree).
    /// Untracked files do not count.
    pub dirty: bool,
    /// Unified patch (the `git diff HEAD` format) of the tracked changes in
    /// the index and work tree against HEAD; empty when clean. Binary files
    /// appear as `Binary files a/x and b/x differ`.
    pub diff: Vec<u8>,
    /// Files in the index at or under the requested path, relative to
    /// `workdir`, sorted, that exist in the work tree as regular files or
    /// symlinks. Submodules and tracked-but-deleted files are left out.
    pub tracked: Vec<PathBuf>,
}

/// Failure to read the Git state of a path.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The path or its repository could not be opened.
    #[error("{}: cannot open git repository: {message}", path.display())]
    Open { path: PathBuf, message: String },
    /// The repository was found but its state could not be read.
    #[error("{}: cannot read git state: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

impl GitError {
    fn open(path: &Path, message: impl std::fmt::Display) -> Self {
        GitError::Open {
            path: path.to_path_buf(),
            message: one_line(&message.to_string()),
        }
    }

    fn read(path: &Path, message: impl std::fmt::Display) -> Self {
        GitError::Read {
            path: path.to_path_buf(),
            message: one_line(&message.to_string()),
        }
    }
}

/// Captures the Git state of the repository containing `path`.
///
/// `path` may be the work tree root, a folder inside it or a single file; it
/// only restricts [`GitState::tracked`]. Everything else (commit, dirtiness,
/// diff) describes the whole repository.
///
/// Returns `Ok(None)` when `path` is not inside a Git repository, or when the
/// repository is bare (it has no work tree to describe).
pub fn capture(path: &Path) -> Result<Option<GitState>, GitError> {
    let target = path
        .canonicalize()
        .map_err(|err| GitError::open(path, err))?;

    let repo = match Repository::discover(&target) {
        Ok(repo) => repo,
        Err(err) if err.code() == ErrorCode::NotFound => return Ok(None),
        Err(err) => return Err(GitError::open(path, err.message())),
    };
    if repo.is_bare() {
        return Ok(None);
    }
    let Some(workdir) = repo.workdir() else {
        return Ok(None);
    };
    let workdir = workdir
        .canonicalize()
        .map_err(|err| GitError::read(workdir, err))?;
    let read_err = |err: git2::Error| GitError::read(&workdir, err.message());

    let branch = head_branch(&repo).map_err(read_err)?;
    let head_commit = match repo.head() {
        Ok(head) => Some(head.peel_to_commit().map_err(read_err)?),
        Err(err) if matches!(err.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound) => None,
        Err(err) => return Err(read_err(err)),
    };
    let commit = head_commit.as_ref().map(|c| c.id().to_string());
    let head_tree = match &head_commit {
        Some(c) => Some(c.tree().map_err(read_err)?),
        None => None,
    };

    let remote_url = remote_url(&repo).map_err(read_err)?;

    let mut opts = DiffOptions::new();
    opts.include_untracked(false)
        .recurse_untracked_dirs(false)
        .include_ignored(false)
        .include_unmodified(false)
        .show_binary(false);
    let diff = repo
        .diff_tree_to_workdir_with_index(head_tree.as_ref(), Some(&mut opts))
        .map_err(read_err)?;
    let mut patch = Vec::new();
    diff.print(DiffFormat::Patch, |_delta, _hunk, line| {
        let origin = line.origin();
        if matches!(origin, '+' | '-' | ' ') {
            patch.push(origin as u8);
        }
        patch.extend_from_slice(line.content());
        true
    })
    .map_err(read_err)?;

    let index = repo.index().map_err(read_err)?;
    let dirty = diff.deltas().len() > 0 || (head_commit.is_none() && !index.is_empty());

    let tracked = match target.strip_prefix(&workdir) {
        Ok(rel) => match rel_to_git_bytes(rel) {
            Some(prefix) => tracked_files(&workdir, &index, &prefix),
            None => Vec::new(),
        },
        // The path is inside the repository's git directory but outside its
        // work tree (possible with a separate work tree): nothing is tracked
        // there.
        Err(_) => Vec::new(),
    };

    Ok(Some(GitState {
        workdir,
        commit,
        branch,
        remote_url,
        dirty,
        diff: patch,
        tracked,
    }))
}

/// Short name of the branch HEAD points to, also when that branch is unborn.
/// `None` when HEAD is detached.
fn head_branch(repo: &Repository) -> Result<Option<String>, git2::Error> {
    let head = repo.find_reference("HEAD")?;
    if head.kind() != Some(ReferenceType::Symbolic) {
        return Ok(None);
    }
    Ok(head.symbolic_target_bytes().map(|target| {
        let short = target.strip_prefix(b"refs/heads/").unwrap_or(target);
        String::from_utf8_lossy(short).into_owned()
    }))
}

/// URL of "origin", else of the first remote (in name order) that has one.
/// Remotes that cannot be loaded are passed over: the URL is informative
/// and must not prevent the capture.
fn remote_url(repo: &Repository) -> Result<Option<String>, git2::Error> {
    let names = repo.remotes()?;
    let mut candidates: Vec<&[u8]> = vec![b"origin"];
    candidates.extend(names.iter_bytes().filter(|name| *name != b"origin"));
    for name in candidates {
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let Ok(remote) = repo.find_remote(name) else {
            continue;
        };
        let url = remote.url_bytes();
        if !url.is_empty() {
            return Ok(Some(strip_credentials(&String::from_utf8_lossy(url))));
        }
    }
    Ok(None)
}

/// Removes credentials from the userinfo part of a `scheme://` URL.
///
/// `https://user:secret@host/x` and `https://token@host/x` both become
/// `https://host/x`. For SSH URLs the user name is part of the address
/// (`ssh://git@host/x`), not a secret, so only a password is removed there.
/// SCP-like addresses (`git@host:x`) and local paths cannot carry a password
/// and are returned unchanged.
fn strip_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let scheme = &url[..scheme_end];
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return url.to_owned();
    }
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let host_and_path = &rest[at + 1..];

    let is_ssh = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "ssh" | "git+ssh" | "ssh+git"
    );
    let user = userinfo.split(':').next().unwrap_or("");
    if is_ssh && !user.is_empty() {
        format!("{scheme}://{user}@{host_and_path}")
    } else {
        format!("{scheme}://{host_and_path}")
    }
}

/// A work-tree-relative path as git spells it in the index (components joined
/// with `/`). `None` when it cannot be expressed that way.
fn rel_to_git_bytes(rel: &Path) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(os_str_bytes(part)?);
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(unix)]
fn os_str_bytes(s: &std::ffi::OsStr) -> Option<&[u8]> {
    use std::os::unix::ffi::OsStrExt;
    Some(s.as_bytes())
}

#[cfg(not(unix))]
fn os_str_bytes(s: &std::ffi::OsStr) -> Option<&[u8]> {
    s.to_str().map(str::as_bytes)
}

/// Converts an index path (`/`-separated bytes) into a relative path.
/// `None` when the path is not a safe, plain relative path: an index can be
/// crafted to hold `..`, absolute or `.git` paths, which must never be
/// reported as files of the work tree.
fn git_bytes_to_rel(bytes: &[u8]) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in bytes.split(|b| *b == b'/') {
        let unsafe_part = part.is_empty()
            || part == b"."
            || part == b".."
            || part.eq_ignore_ascii_case(b".git")
            || part.contains(&0)
            || (cfg!(windows) && part.iter().any(|b| matches!(b, b'\\' | b':')));
        if unsafe_part {
            return None;
        }
        out.push(bytes_to_os(part)?);
    }
    Some(out)
}

#[cfg(unix)]
fn bytes_to_os(bytes: &[u8]) -> Option<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    Some(std::ffi::OsStr::from_bytes(bytes).to_os_string())
}

#[cfg(not(unix))]
fn bytes_to_os(bytes: &[u8]) -> Option<std::ffi::OsString> {
    std::str::from_utf8(bytes)
        .ok()
        .map(std::ffi::OsString::from)
}

/// Index entries at or under `prefix` (empty: everything) that exist in the
/// work tree as a regular file or a symlink, sorted and without duplicates.
fn tracked_files(workdir: &Path, index: &git2::Index, prefix: &[u8]) -> Vec<PathBuf> {
    // Whether a work-tree directory is a real directory (not a symlink), so
    // that no reported file is reached through a symlink leaving the tree.
    let mut real_dirs: HashMap<Vec<u8>, bool> = HashMap::new();
    let mut out = Vec::new();
    for entry in index.iter() {
        if entry.mode == GITLINK_MODE {
            continue;
        }
        let path = entry.path.as_slice();
        let under_prefix = prefix.is_empty()
            || (path.starts_with(prefix)
                && (path.len() == prefix.len() || path.get(prefix.len()) == Some(&b'/')));
        if !under_prefix {
            continue;
        }
        let Some(rel) = git_bytes_to_rel(path) else {
            continue;
        };
        let parents_ok = path
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .all(|(i, _)| {
                let dir = &path[..i];
                if let Some(ok) = real_dirs.get(dir) {
                    return *ok;
                }
                let ok = git_bytes_to_rel(dir)
                    .and_then(|d| std::fs::symlink_metadata(workdir.join(d)).ok())
                    .is_some_and(|meta| meta.is_dir());
                real_dirs.insert(dir.to_vec(), ok);
                ok
            });
        if !parents_ok {
            continue;
        }
        let exists = std::fs::symlink_metadata(workdir.join(&rel))
            .is_ok_and(|meta| meta.is_file() || meta.file_type().is_symlink());
        if exists {
            out.push(rel);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Collapses a message onto one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{IndexAddOption, Oid, Signature};
    use std::fs;

    fn init(dir: &Path) -> Repository {
        let repo = Repository::init(dir).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        repo
    }

    fn write(dir: &Path, rel: &str, content: &[u8]) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, content).unwrap();
    }

    fn stage_all(repo: &Repository) {
        let mut index = repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
    }

    fn commit_all(repo: &Repository, message: &str) -> Oid {
        stage_all(repo);
        let mut index = repo.index().unwrap();
        let tree_id = index.write_tree().unwrap();
        let tree = repo.find_tree(tree_id).unwrap();
        let sig = Signature::now("Test", "test@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    /// A repository with one commit holding a few files.
    fn sample() -> (tempfile::TempDir, Repository, Oid) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init(tmp.path());
        write(tmp.path(), "train.py", b"print('hello')\n");
        write(tmp.path(), "sub/model.py", b"layers = 3\n");
        write(tmp.path(), "sub/deep/cfg.yaml", b"lr: 0.1\n");
        write(tmp.path(), "subx/other.py", b"x = 1\n");
        let oid = commit_all(&repo, "initial");
        (tmp, repo, oid)
    }

    fn cap(path: &Path) -> GitState {
        capture(path).unwrap().expect("path is in a repository")
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    fn diff_text(state: &GitState) -> String {
        String::from_utf8_lossy(&state.diff).into_owned()
    }

    #[test]
    fn clean_repository() {
        let (tmp, _repo, oid) = sample();
        let state = cap(tmp.path());
        assert_eq!(state.workdir, tmp.path().canonicalize().unwrap());
        assert_eq!(state.commit, Some(oid.to_string()));
        assert_eq!(state.commit.as_ref().map(String::len), Some(40));
        assert_eq!(state.branch.as_deref(), Some("main"));
        assert_eq!(state.remote_url, None);
        assert!(!state.dirty);
        assert!(state.diff.is_empty());
        assert_eq!(
            state.tracked,
            paths(&[
                "sub/deep/cfg.yaml",
                "sub/model.py",
                "subx/other.py",
                "train.py"
            ])
        );
    }

    #[test]
    fn modified_file_is_dirty_with_diff() {
        let (tmp, _repo, _) = sample();
        write(tmp.path(), "train.py", b"print('changed')\n");
        let state = cap(tmp.path());
        assert!(state.dirty);
        let diff = diff_text(&state);
        assert!(diff.contains("diff --git a/train.py b/train.py"), "{diff}");
        assert!(diff.contains("-print('hello')\n"), "{diff}");
        assert!(diff.contains("+print('changed')\n"), "{diff}");
        assert!(!diff.contains("model.py"), "{diff}");
    }

    #[test]
    fn staged_only_change_is_dirty() {
        let (tmp, repo, _) = sample();
        write(tmp.path(), "sub/model.py", b"layers = 4\n");
        stage_all(&repo);
        let state = cap(tmp.path());
        assert!(state.dirty);
        let diff = diff_text(&state);
        assert!(diff.contains("-layers = 3\n"), "{diff}");
        assert!(diff.contains("+layers = 4\n"), "{diff}");
    }

    #[test]
    fn staged_new_file_is_dirty_and_tracked() {
        let (tmp, repo, _) = sample();
        write(tmp.path(), "new.py", b"new = True\n");
        stage_all(&repo);
        let state = cap(tmp.path());
        assert!(state.dirty);
        assert!(diff_text(&state).contains("+new = True\n"));
        assert!(state.tracked.contains(&PathBuf::from("new.py")));
    }

    #[test]
    fn untracked_file_is_neither_dirty_nor_tracked() {
        let (tmp, _repo, _) = sample();
        write(tmp.path(), "notes.txt", b"scratch\n");
        write(tmp.path(), "junk/more.txt", b"scratch\n");
        let state = cap(tmp.path());
        assert!(!state.dirty);
        assert!(state.diff.is_empty());
        assert!(!state.tracked.contains(&PathBuf::from("notes.txt")));
        assert!(!state.tracked.contains(&PathBuf::from("junk/more.txt")));
    }

    #[test]
    fn deleted_tracked_file_is_dirty_and_not_listed() {
        let (tmp, _repo, _) = sample();
        fs::remove_file(tmp.path().join("train.py")).unwrap();
        let state = cap(tmp.path());
        assert!(state.dirty);
        assert!(diff_text(&state).contains("deleted file mode"));
        assert!(!state.tracked.contains(&PathBuf::from("train.py")));
    }

    #[test]
    fn subfolder_restricts_tracked() {
        let (tmp, _repo, _) = sample();
        write(tmp.path(), "train.py", b"print('changed')\n");
        let state = cap(&tmp.path().join("sub"));
        assert_eq!(state.workdir, tmp.path().canonicalize().unwrap());
        assert_eq!(state.tracked, paths(&["sub/deep/cfg.yaml", "sub/model.py"]));
        // Dirtiness and the diff still describe the whole repository.
        assert!(state.dirty);
        assert!(diff_text(&state).contains("train.py"));

        let deep = cap(&tmp.path().join("sub").join("deep"));
        assert_eq!(deep.tracked, paths(&["sub/deep/cfg.yaml"]));
    }

    #[test]
    fn single_file_restricts_tracked() {
        let (tmp, _repo, _) = sample();
        let state = cap(&tmp.path().join("sub").join("model.py"));
        assert_eq!(state.tracked, paths(&["sub/model.py"]));
        write(tmp.path(), "untracked.txt", b"u\n");
        let untracked = cap(&tmp.path().join("untracked.txt"));
        assert!(untracked.tracked.is_empty());
    }

    #[test]
    fn unborn_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init(tmp.path());

        let empty = cap(tmp.path());
        assert_eq!(empty.commit, None);
        assert_eq!(empty.branch.as_deref(), Some("main"));
        assert!(!empty.dirty);
        assert!(empty.diff.is_empty());
        assert!(empty.tracked.is_empty());

        write(tmp.path(), "a.txt", b"first line\n");
        write(tmp.path(), "b.txt", b"not staged\n");
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();

        let state = cap(tmp.path());
        assert_eq!(state.commit, None);
        assert_eq!(state.branch.as_deref(), Some("main"));
        assert!(state.dirty);
        let diff = diff_text(&state);
        assert!(diff.contains("new file mode"), "{diff}");
        assert!(diff.contains("+first line\n"), "{diff}");
        assert!(!diff.contains("not staged"), "{diff}");
        assert_eq!(state.tracked, paths(&["a.txt"]));
    }

    #[test]
    fn detached_head() {
        let (tmp, repo, first) = sample();
        write(tmp.path(), "train.py", b"print('second')\n");
        commit_all(&repo, "second");
        repo.set_head_detached(first).unwrap();
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force();
        repo.checkout_head(Some(&mut checkout)).unwrap();

        let state = cap(tmp.path());
        assert_eq!(state.branch, None);
        assert_eq!(state.commit, Some(first.to_string()));
        assert!(!state.dirty, "{}", diff_text(&state));
    }

    #[test]
    fn remote_url_credentials_are_stripped() {
        let (tmp, repo, _) = sample();
        repo.remote("origin", "https://user:secret@example.com/x.git")
            .unwrap();
        repo.remote("backup", "https://token@backup.example.com/y.git")
            .unwrap();
        let state = cap(tmp.path());
        assert_eq!(
            state.remote_url.as_deref(),
            Some("https://example.com/x.git")
        );

        repo.remote_delete("origin").unwrap();
        let state = cap(tmp.path());
        assert_eq!(
            state.remote_url.as_deref(),
            Some("https://backup.example.com/y.git")
        );
    }

    #[test]
    fn first_remote_by_name_without_origin() {
        let (tmp, repo, _) = sample();
        repo.remote("zeta", "https://zeta.example.com/z.git")
            .unwrap();
        repo.remote("alpha", "https://alpha.example.com/a.git")
            .unwrap();
        let state = cap(tmp.path());
        assert_eq!(
            state.remote_url.as_deref(),
            Some("https://alpha.example.com/a.git")
        );
    }

    #[test]
    fn credential_stripping_forms() {
        let cases = [
            (
                "https://user:secret@example.com/x.git",
                "https://example.com/x.git",
            ),
            (
                "https://ghp_token@github.com/o/r.git",
                "https://github.com/o/r.git",
            ),
            ("http://u:p@host:8080/r?q=a@b", "http://host:8080/r?q=a@b"),
            (
                "https://example.com/a@b/r.git",
                "https://example.com/a@b/r.git",
            ),
            ("https://example.com", "https://example.com"),
            ("https://u:p@example.com", "https://example.com"),
            ("ssh://git@example.com/r.git", "ssh://git@example.com/r.git"),
            (
                "ssh://git:pw@example.com/r.git",
                "ssh://git@example.com/r.git",
            ),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("/srv/repos/r.git", "/srv/repos/r.git"),
            ("file:///srv/repos/r.git", "file:///srv/repos/r.git"),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_credentials(input), expected, "{input}");
        }
    }

    #[test]
    fn not_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        // Only meaningful when the temporary folder is not itself inside a
        // repository.
        if Repository::discover(tmp.path()).is_ok() {
            return;
        }
        assert_eq!(capture(tmp.path()).unwrap(), None);
        write(tmp.path(), "f.txt", b"x\n");
        assert_eq!(capture(&tmp.path().join("f.txt")).unwrap(), None);
    }

    #[test]
    fn bare_repository_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        Repository::init_bare(tmp.path()).unwrap();
        assert_eq!(capture(tmp.path()).unwrap(), None);
    }

    #[test]
    fn missing_path_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = capture(&missing).unwrap_err();
        assert!(matches!(err, GitError::Open { .. }));
        let shown = err.to_string();
        assert!(shown.starts_with(&missing.display().to_string()), "{shown}");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn binary_file_change() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = init(tmp.path());
        write(tmp.path(), "weights.bin", &[0, 1, 2, 3, 0, 255]);
        commit_all(&repo, "binary");
        write(tmp.path(), "weights.bin", &[0, 9, 9, 9, 0, 254, 7]);
        let state = cap(tmp.path());
        assert!(state.dirty);
        let diff = diff_text(&state);
        assert!(
            diff.contains("Binary files a/weights.bin and b/weights.bin differ"),
            "{diff}"
        );
    }

    #[test]
    fn submodule_entries_are_skipped() {
        let (tmp, repo, _) = sample();
        let mut index = repo.index().unwrap();
        let mut entry = index.get_path(Path::new("train.py"), 0).unwrap();
        entry.mode = GITLINK_MODE;
        entry.path = b"vendor/lib".to_vec();
        entry.id = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        index.add(&entry).unwrap();
        index.write().unwrap();
        fs::create_dir_all(tmp.path().join("vendor").join("lib")).unwrap();
        let state = cap(tmp.path());
        assert!(!state.tracked.iter().any(|p| p.starts_with("vendor")));
        // A staged submodule pointer is still a change against HEAD.
        assert!(state.dirty);
        assert!(diff_text(&state).contains("Subproject commit"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_tracked() {
        let (tmp, repo, _) = sample();
        std::os::unix::fs::symlink("train.py", tmp.path().join("link.py")).unwrap();
        commit_all(&repo, "link");
        let state = cap(tmp.path());
        assert!(!state.dirty, "{}", diff_text(&state));
        assert!(state.tracked.contains(&PathBuf::from("link.py")));
    }

    #[cfg(unix)]
    #[test]
    fn files_behind_symlinked_folders_are_not_listed() {
        let (tmp, repo, _) = sample();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"secret\n");
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("link")).unwrap();
        // An index entry reaching through the symlink, as a crafted index
        // could hold.
        let mut index = repo.index().unwrap();
        let mut entry = index.get_path(Path::new("train.py"), 0).unwrap();
        entry.path = b"link/secret.txt".to_vec();
        index.add(&entry).unwrap();
        index.write().unwrap();
        let state = cap(tmp.path());
        assert!(!state.tracked.iter().any(|p| p.starts_with("link")));
        assert!(state.tracked.contains(&PathBuf::from("train.py")));
    }

    #[test]
    fn unsafe_index_paths_are_rejected() {
        assert_eq!(git_bytes_to_rel(b"a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(git_bytes_to_rel(b"../etc/passwd"), None);
        assert_eq!(git_bytes_to_rel(b"/etc/passwd"), None);
        assert_eq!(git_bytes_to_rel(b"a//b"), None);
        assert_eq!(git_bytes_to_rel(b".git/config"), None);
        assert_eq!(git_bytes_to_rel(b"x/.GIT/config"), None);
    }
}
