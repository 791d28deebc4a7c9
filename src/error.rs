//! The library's top-level error: what a command can fail with, each naming the culprit.

use std::path::PathBuf;

use crate::capture::{git::GitError, metrics::MetricsError, params::ParamsError};
use crate::snapshot::SnapshotError;
use crate::store::StoreError;

/// Everything a cairn operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `.cairn` folder here or above.
    #[error("not a cairn repository (or any parent folder): {0}")]
    NotARepo(PathBuf),
    /// `init` where a repository exists.
    #[error("{0} is already a cairn repository")]
    AlreadyARepo(PathBuf),
    /// A RUN argument that names nothing.
    #[error("unknown run '{0}': not a branch, tag, or run id")]
    UnknownRevision(String),
    /// A RUN prefix that matches several runs.
    #[error("run id prefix '{rev}' is ambiguous: it matches {}", .candidates.join(", "))]
    AmbiguousRevision {
        /// The prefix.
        rev: String,
        /// The matching ids.
        candidates: Vec<String>,
    },
    /// `NAME~N` past the first run.
    #[error("'{0}' goes back further than the history")]
    NoSuchAncestor(String),
    /// An invalid branch or tag name.
    #[error("invalid {kind} name '{name}': {reason}")]
    BadRefName {
        /// branch or tag.
        kind: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Creating a ref that exists.
    #[error("{kind} '{name}' already exists")]
    RefExists {
        /// branch or tag.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// Naming a ref that does not exist.
    #[error("no {kind} named '{name}'")]
    NoSuchRef {
        /// branch or tag.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A path that is not in a run.
    #[error("{run}: no path '{path}' in this run")]
    NoSuchPath {
        /// The run as the user named it.
        run: String,
        /// The path.
        path: String,
    },
    /// A bad argument value.
    #[error("{arg}: {reason}")]
    BadArgument {
        /// The argument or value.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration file is malformed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A TOML file that does not parse: where, what, and the line with a caret under it.
    #[error("{path}:{line}:{column}: {message}\n{snippet}")]
    ConfigAt {
        /// The file.
        path: PathBuf,
        /// Line number (from 1).
        line: usize,
        /// Column number (from 1, in characters).
        column: usize,
        /// What is wrong.
        message: String,
        /// The line, numbered, with carets under the culprit (several lines of text).
        snippet: String,
    },
    /// The current branch has no runs yet.
    #[error("branch '{0}' has no runs yet")]
    EmptyBranch(String),
    /// A malformed filter or sort expression, or one naming what no run has.
    #[error("{error}")]
    Query {
        /// The filter or the sort keys.
        part: crate::search::QueryPart,
        /// The text as given.
        text: String,
        /// What is wrong, and at which column.
        error: crate::query::QueryError,
    },
    /// A model version whose run was not fetched (the model was fetched one stage at a time).
    #[error("model {spec} is not in this repository: only part of the model was fetched, without its run {run}")]
    NotFetched {
        /// `NAME@vN`.
        spec: String,
        /// The version's run (short id).
        run: String,
        /// The remote the model was fetched from, when known.
        remote: Option<String>,
    },
    /// A path of a run whose content a partial fetch (`fetch --only`, a model version) left on
    /// the remote.
    #[error("{run}:{path} was not fetched: only part of this run is in the repository")]
    PathNotFetched {
        /// The run as named.
        run: String,
        /// The path.
        path: String,
        /// The remote to fetch it from, when there is only one.
        remote: Option<String>,
    },
    /// An error about a name, with the names that were probably meant.
    #[error("{error}")]
    DidYouMean {
        /// The error.
        error: Box<Error>,
        /// Close names that exist, best first.
        candidates: Vec<String>,
    },
    /// An operation refused for safety.
    #[error("{0}")]
    Refused(String),
    /// An S3 server that ignores the conditional writes refs depend on.
    #[error("remote {url}: the server ignores conditional writes ({header}), so two pushes could overwrite each other's refs; refusing it")]
    UnsafeRemote {
        /// The remote's URL.
        url: String,
        /// The header it ignores.
        header: &'static str,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Params file or flag.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Metrics file.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Git state.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Snapshot or restore.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A remote.
    #[error(transparent)]
    Remote(#[from] crate::remote::TransportError),
}

/// What kind of failure an error is, for callers that act on it rather than print it: a
/// server maps kinds to HTTP statuses, a retry loop retries [`ErrorKind::Busy`] and
/// [`ErrorKind::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// What was named does not exist: a run, ref, path, object or repository.
    NotFound,
    /// The request is malformed: a bad argument, name, query or input file.
    Invalid,
    /// The state changed or already holds something else: a ref moved, a name exists, files
    /// would be overwritten. Reading again and retrying may succeed.
    Conflict,
    /// The operation is refused in the current state (a safety rule, a precondition).
    Refused,
    /// Another process held the repository for too long.
    Busy,
    /// Stored data is damaged.
    Corrupt,
    /// Written by a newer cairn, or asks for something this build cannot do.
    Unsupported,
    /// A remote could not be reached or failed.
    Remote,
    /// The file system failed: a read or write error, no space, no permission.
    Io,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotARepo(_)
            | Error::UnknownRevision(_)
            | Error::NoSuchAncestor(_)
            | Error::NoSuchRef { .. }
            | Error::NoSuchPath { .. }
            | Error::EmptyBranch(_) => ErrorKind::NotFound,
            Error::AmbiguousRevision { .. }
            | Error::BadRefName { .. }
            | Error::BadArgument { .. }
            | Error::Config { .. }
            | Error::ConfigAt { .. }
            | Error::Query { .. }
            | Error::Params(_)
            | Error::Metrics(_)
            | Error::Git(_) => ErrorKind::Invalid,
            Error::AlreadyARepo(_) | Error::RefExists { .. } => ErrorKind::Conflict,
            Error::NotFetched { .. } | Error::PathNotFetched { .. } => ErrorKind::NotFound,
            Error::DidYouMean { error, .. } => error.kind(),
            Error::Refused(_) => ErrorKind::Refused,
            Error::UnsafeRemote { .. } => ErrorKind::Unsupported,
            Error::Io { .. } => ErrorKind::Io,
            Error::Snapshot(e) => match e {
                SnapshotError::WouldOverwrite(_) => ErrorKind::Conflict,
                SnapshotError::BadPath { .. } => ErrorKind::Invalid,
                SnapshotError::Store(e) => store_kind(e),
                SnapshotError::Io { .. } | SnapshotError::Walk(_) => ErrorKind::Io,
            },
            Error::Store(e) => store_kind(e),
            Error::Remote(crate::remote::TransportError::Conflict { .. }) => ErrorKind::Conflict,
            Error::Remote(_) => ErrorKind::Remote,
        }
    }

    /// A suggestion for the user, when one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NotARepo(_) => Some("run `cairn init` to create a repository here".into()),
            Error::UnknownRevision(_) => {
                Some("`cairn log` lists runs; `cairn branch` and `cairn tag` list names".into())
            }
            Error::AmbiguousRevision { .. } => Some("give more digits of the id".into()),
            Error::EmptyBranch(_) => Some("record a run with `cairn commit`".into()),
            Error::NoSuchRef {
                kind: "remote",
                name,
            } => Some(format!(
                "`cairn remote -v` lists the remotes; `cairn remote add {name} URL` adds one"
            )),
            Error::DidYouMean { candidates, .. } => Some(format!(
                "did you mean {}?",
                candidates
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            Error::NotFetched { spec, remote, .. } => Some(format!(
                "`cairn fetch {} model:{spec}` brings it",
                remote.as_deref().unwrap_or("REMOTE")
            )),
            Error::PathNotFetched { run, path, remote } => Some(format!(
                "`cairn fetch {} {run} --only {path}` brings it",
                remote.as_deref().unwrap_or("REMOTE")
            )),
            Error::UnsafeRemote { .. } => Some(
                "use --no-check to add it anyway, only if a single person or job pushes to it at a time"
                    .into(),
            ),
            Error::Snapshot(SnapshotError::WouldOverwrite(_)) => {
                Some("use --force to overwrite them, or -o DIR to restore elsewhere".into())
            }
            Error::Store(e) | Error::Snapshot(SnapshotError::Store(e)) => store_hint(e),
            _ => None,
        }
    }
}

/// What kind of failure a store error is.
pub fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::Busy(_) => ErrorKind::Busy,
        StoreError::Missing(_) => ErrorKind::NotFound,
        StoreError::IndexDamaged
        | StoreError::Corrupt { .. }
        | StoreError::WrongKind { .. }
        | StoreError::Decode { .. } => ErrorKind::Corrupt,
        StoreError::RefMoved(_) | StoreError::Vanished(_) => ErrorKind::Conflict,
        StoreError::NewerFormat { .. } => ErrorKind::Unsupported,
        StoreError::Io { .. }
        | StoreError::Db(_)
        | StoreError::LowSpace { .. }
        | StoreError::NotWritable { .. }
        | StoreError::Unreadable { .. } => ErrorKind::Io,
    }
}

/// A suggestion for a store error, when one helps.
pub fn store_hint(e: &StoreError) -> Option<String> {
    match e {
        StoreError::Corrupt { .. } => Some("run `cairn fsck` to check the whole store".into()),
        StoreError::IndexDamaged => {
            Some("run `cairn fsck --rebuild-index` to rebuild it from the pack files".into())
        }
        StoreError::LowSpace { .. } => Some("free some space and run the command again".into()),
        StoreError::NotWritable { .. } => Some(
            "remount the repository read-write, or copy it to a writable folder to read it".into(),
        ),
        _ => None,
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The error for a TOML file at `path` holding `text` that does not parse: with the line and
/// column and a caret under the culprit, as the toml crate lays them out.
pub(crate) fn toml_error(path: &std::path::Path, text: &str, e: &toml::de::Error) -> Error {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return Error::Config {
            path: path.to_path_buf(),
            message,
        };
    };
    let start = span.start;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let end = span.end.clamp(start, line_start + line_text.len());
    let carets = text[start..end].chars().count().max(1);
    let number = line.to_string();
    let pad = " ".repeat(number.len());
    let snippet = format!(
        "{pad} |\n{number} | {line_text}\n{pad} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(carets)
    );
    Error::ConfigAt {
        path: path.to_path_buf(),
        line,
        column,
        message,
        snippet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_errors() {
        let busy = Error::Store(StoreError::Busy(std::time::Duration::from_secs(1)));
        let cases = [
            (Error::UnknownRevision("x".into()), ErrorKind::NotFound),
            (
                Error::Store(StoreError::Missing(crate::ObjectId::from_bytes([0; 32]))),
                ErrorKind::NotFound,
            ),
            (
                Error::BadArgument {
                    arg: "-n".into(),
                    reason: "not a number".into(),
                },
                ErrorKind::Invalid,
            ),
            (
                Error::Store(StoreError::RefMoved("refs/heads/main".into())),
                ErrorKind::Conflict,
            ),
            (
                Error::Snapshot(SnapshotError::WouldOverwrite(vec!["a".into()])),
                ErrorKind::Conflict,
            ),
            (
                Error::Snapshot(SnapshotError::Store(StoreError::IndexDamaged)),
                ErrorKind::Corrupt,
            ),
            (busy, ErrorKind::Busy),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
        }
    }
}
