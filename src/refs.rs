//! Ref names: branches (experiments), tags (releases), HEAD and notes.
//!
//! Refs live in the index database under their full names (`refs/heads/NAME`,
//! `refs/tags/NAME`, `refs/notes/runs`, `HEAD`) and only ever move by compare-and-swap, so two
//! processes can never both believe they moved the same ref.

use crate::error::{Error, Result};
use crate::hash::ObjectId;
use crate::store::{RefValue, Session};

/// The ref that names the current branch.
pub const HEAD: &str = "HEAD";
/// Prefix of branch refs.
pub const BRANCH_PREFIX: &str = "refs/heads/";
/// Prefix of tag refs.
pub const TAG_PREFIX: &str = "refs/tags/";
/// The notes chain.
pub const NOTES_REF: &str = "refs/notes/runs";

/// Checks a branch or tag name.
pub fn validate(kind: &'static str, name: &str) -> Result<()> {
    let bad = |reason: &str| Error::BadRefName {
        kind,
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > 200 {
        return Err(bad("longer than 200 bytes"));
    }
    if name == HEAD || name == "@" {
        return Err(bad("reserved"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\\"'<>|{}".contains(*c))
    {
        return Err(bad(&format!("contains {c:?}")));
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err(bad("empty path component"));
        }
        if part.starts_with('.') || part.starts_with('-') {
            return Err(bad("a component starts with '.' or '-'"));
        }
        if part.ends_with(".lock") {
            return Err(bad("a component ends with '.lock'"));
        }
    }
    if name.contains("..") || name.contains("@{") {
        return Err(bad("contains '..' or '@{'"));
    }
    Ok(())
}

/// Where HEAD points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch (which may have no runs yet).
    Branch(String),
    /// Detached at a run.
    Detached(ObjectId),
}

/// Reads HEAD.
pub fn head(session: &Session) -> Result<Head> {
    match session.ref_get(HEAD)? {
        Some(RefValue::Symbolic(full)) => Ok(Head::Branch(
            full.strip_prefix(BRANCH_PREFIX)
                .unwrap_or(&full)
                .to_string(),
        )),
        Some(RefValue::Id(id)) => Ok(Head::Detached(id)),
        None => Ok(Head::Branch("main".into())),
    }
}

/// The run a ref points at directly, if any.
pub fn get_id(session: &Session, full: &str) -> Result<Option<ObjectId>> {
    match session.ref_get(full)? {
        Some(RefValue::Id(id)) => Ok(Some(id)),
        Some(RefValue::Symbolic(other)) => match session.ref_get(&other)? {
            Some(RefValue::Id(id)) => Ok(Some(id)),
            _ => Ok(None),
        },
        None => Ok(None),
    }
}

/// The tip of branch `name`.
pub fn branch_tip(session: &Session, name: &str) -> Result<Option<ObjectId>> {
    get_id(session, &format!("{BRANCH_PREFIX}{name}"))
}

/// Every branch and its tip, sorted by name.
pub fn branches(session: &Session) -> Result<Vec<(String, ObjectId)>> {
    list(session, BRANCH_PREFIX)
}

/// Every tag and its run, sorted by name.
pub fn tags(session: &Session) -> Result<Vec<(String, ObjectId)>> {
    list(session, TAG_PREFIX)
}

fn list(session: &Session, prefix: &str) -> Result<Vec<(String, ObjectId)>> {
    Ok(session
        .refs(prefix)?
        .into_iter()
        .filter_map(|(name, v)| match v {
            RefValue::Id(id) => Some((name[prefix.len()..].to_string(), id)),
            RefValue::Symbolic(_) => None,
        })
        .collect())
}

/// Every ref and the object it points at, for reachability.
pub fn all_targets(session: &Session) -> Result<Vec<(String, ObjectId)>> {
    Ok(session
        .refs("")?
        .into_iter()
        .filter_map(|(name, v)| match v {
            RefValue::Id(id) => Some((name, id)),
            RefValue::Symbolic(_) => None,
        })
        .collect())
}

/// Moves `full` from `old` to `new` (None deletes) by compare-and-swap.
pub fn update(
    session: &Session,
    full: &str,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
) -> Result<()> {
    session.ref_cas(
        full,
        old.map(RefValue::Id).as_ref(),
        new.map(RefValue::Id).as_ref(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["main", "exp/lr-0.01", "v1.0", "sweep_3"] {
            assert!(validate("branch", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "HEAD", "a b", "a..b", "a/", "/a", ".a", "a.lock", "a~1", "a^", "a:b", "-x", "a\0",
        ] {
            assert!(validate("branch", bad).is_err(), "{bad:?}");
        }
    }
}
