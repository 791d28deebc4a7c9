//! Walking a run's history: the first-parent chain that `log`, `compare`, the RUN syntax's
//! `~N` and the UI follow.

use std::collections::HashSet;

use crate::error::Result;
use crate::hash::ObjectId;

/// The first-parent history of `start` — `start`, its first parent, that run's first parent,
/// … — each run once, in that order. `parent` tells a run's first parent; it answers `None`
/// for a first run and for one this repository does not hold (a partial fetch), where the walk
/// ends. `limit` stops it after that many runs.
pub fn first_parents(
    start: ObjectId,
    limit: Option<usize>,
    mut parent: impl FnMut(&ObjectId) -> Result<Option<ObjectId>>,
) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut cur = Some(start);
    while let Some(id) = cur {
        if limit.is_some_and(|n| out.len() >= n) || !seen.insert(id) {
            break;
        }
        out.push(id);
        cur = parent(&id)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 32])
    }

    #[test]
    fn walks_first_parents_once_each() {
        // 3 -> 2 -> 1, and 1 -> 3 (a cycle no store can hold, but a damaged one might).
        let parent = |x: &ObjectId| -> Result<Option<ObjectId>> {
            Ok(match x.as_bytes()[0] {
                3 => Some(id(2)),
                2 => Some(id(1)),
                1 => Some(id(3)),
                _ => None,
            })
        };
        assert_eq!(
            first_parents(id(3), None, parent).unwrap(),
            [id(3), id(2), id(1)]
        );
        assert_eq!(
            first_parents(id(3), Some(2), parent).unwrap(),
            [id(3), id(2)]
        );
        assert_eq!(first_parents(id(9), None, parent).unwrap(), [id(9)]);
    }
}
