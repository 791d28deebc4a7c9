//! Naming runs: `RUN` arguments.
//!
//! A RUN is a full id, a unique prefix of at least four hex digits, a branch, a tag, `HEAD`,
//! or any of these followed by `~N` (N first-parents back), `~` or `^` (one back). Names win
//! over id prefixes, as in git. `model:NAME@vN` and `model:NAME@STAGE` name a model version's run
//! (and take `~N` too: `model:resnet@production~1` is the run before it).

use crate::error::{Error, Result};
use crate::hash::{is_hex_prefix, ObjectId, MIN_PREFIX_LEN};
use crate::refs::{self, Head, BRANCH_PREFIX, TAG_PREFIX};
use crate::store::Session;

/// Splits `spec` into its base and how many generations back it names (`main~2` gives
/// `("main", 2)`); no repository is consulted.
pub fn split_ancestry(spec: &str) -> Result<(&str, usize)> {
    let mut base = spec;
    let mut back = 0usize;
    loop {
        if let Some(rest) = base.strip_suffix('^') {
            base = rest;
            back = back.saturating_add(1);
            continue;
        }
        if let Some(pos) = base.rfind('~') {
            let digits = &base[pos + 1..];
            if digits.is_empty() {
                back = back.saturating_add(1);
            } else if digits.bytes().all(|b| b.is_ascii_digit()) {
                let n: usize = digits.parse().map_err(|_| Error::BadArgument {
                    arg: spec.to_string(),
                    reason: "generation count is too large".into(),
                })?;
                back = back.saturating_add(n);
            } else {
                break;
            }
            base = &base[..pos];
            continue;
        }
        break;
    }
    if base.is_empty() {
        return Err(Error::UnknownRevision(spec.to_string()));
    }
    Ok((base, back))
}

/// Resolves the base name (no `~N`) to a run id.
fn resolve_base(session: &Session, base: &str) -> Result<ObjectId> {
    if base == refs::HEAD || base == "@" {
        return match refs::head(session)? {
            Head::Detached(id) => Ok(id),
            Head::Branch(b) => refs::branch_tip(session, &b)?.ok_or(Error::EmptyBranch(b)),
        };
    }
    if base.starts_with("refs/") {
        if let Some(id) = refs::get_id(session, base)? {
            return Ok(id);
        }
    }
    for prefix in [BRANCH_PREFIX, TAG_PREFIX, "refs/remotes/"] {
        if let Some(id) = refs::get_id(session, &format!("{prefix}{base}"))? {
            return Ok(id);
        }
    }
    if is_hex_prefix(base) {
        let lower = base.to_ascii_lowercase();
        let found = session.runs_with_prefix(&lower)?;
        match found.len() {
            0 => {}
            1 => return Ok(found[0]),
            _ => {
                return Err(Error::AmbiguousRevision {
                    rev: base.to_string(),
                    candidates: found.iter().map(|id| id.short()).collect(),
                })
            }
        }
    }
    let unknown = if base.len() < MIN_PREFIX_LEN && base.bytes().all(|b| b.is_ascii_hexdigit()) {
        Error::Refused(format!(
            "unknown run '{base}': not a branch or tag, and a run id prefix needs at least {MIN_PREFIX_LEN} hex digits"
        ))
    } else {
        Error::UnknownRevision(base.to_string())
    };
    Err(crate::suggest::with_candidates(
        unknown,
        crate::suggest::similar(base, known_names(session)?),
    ))
}

/// Branch, tag and remote-tracking names, for suggestions.
fn known_names(session: &Session) -> Result<Vec<String>> {
    let mut names: Vec<String> = refs::branches(session)?
        .into_iter()
        .chain(refs::tags(session)?)
        .map(|(n, _)| n)
        .collect();
    for (full, _) in session.refs("refs/remotes/")? {
        let short = &full["refs/remotes/".len()..];
        if !short.contains("/notes/") && !short.contains("/models/") {
            names.push(short.to_string());
        }
    }
    Ok(names)
}

/// Resolves a RUN argument to a run id.
pub fn resolve(session: &Session, spec: &str) -> Result<ObjectId> {
    // Model, stage and ref names cannot hold `~` or `^`, so the ancestry comes off first.
    let (base, back) = split_ancestry(spec)?;
    let mut id = match crate::registry::parse_spec(base) {
        Some(parsed) => {
            let (name, sel) = parsed?;
            crate::registry::resolve(session, &name, &sel)?.run
        }
        None => resolve_base(session, base)?,
    };
    for _ in 0..back {
        let run = session.read_run(&id)?;
        id = *run
            .parents
            .first()
            .ok_or_else(|| Error::NoSuchAncestor(spec.to_string()))?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestry_suffixes() {
        assert_eq!(split_ancestry("main").unwrap(), ("main", 0));
        assert_eq!(split_ancestry("main~2").unwrap(), ("main", 2));
        assert_eq!(split_ancestry("HEAD^^").unwrap(), ("HEAD", 2));
        assert_eq!(split_ancestry("HEAD~").unwrap(), ("HEAD", 1));
        assert_eq!(split_ancestry("a~1~2^").unwrap(), ("a", 4));
        assert!(split_ancestry("~3").is_err());
        assert!(split_ancestry("x~99999999999999999999999").is_err());
    }

    #[test]
    fn huge_counts_saturate() {
        // Found by fuzzing: a count of usize::MAX followed by one more step overflowed
        // (a panic in debug builds, a count wrapped to zero in release builds).
        let max = usize::MAX;
        assert_eq!(split_ancestry(&format!("a^~{max}")).unwrap(), ("a", max));
        assert_eq!(split_ancestry(&format!("a~~{max}")).unwrap(), ("a", max));
        assert_eq!(split_ancestry(&format!("a~{max}^")).unwrap(), ("a", max));
    }
}
