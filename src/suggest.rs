//! "Did you mean": names close to one that names nothing (a misspelt branch, a path given
//! without its `artifacts/` folder).

/// The edit distance between `a` and `b` (insertions, deletions, substitutions, and swaps of
/// two neighbouring characters), case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // Three rows of the dynamic programme are enough for adjacent swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The candidates that `name` is most likely a misspelling of, best first (at most three): a
/// few edits away (about one per three characters), or the same last component (`wide` for
/// `exp/wide`).
pub fn similar<I, S>(name: &str, candidates: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let limit = (name.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, String)> = candidates
        .into_iter()
        .filter_map(|c| {
            let c = c.as_ref();
            if c == name {
                return None;
            }
            let d = distance(name, c);
            let last = c.rsplit('/').next().unwrap_or(c);
            if d <= limit {
                Some((d, c.to_string()))
            } else if last != c && distance(name, last) <= limit {
                Some((limit + 1, c.to_string()))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `error` with the names that were probably meant, when there are any.
pub fn with_candidates(error: crate::Error, candidates: Vec<String>) -> crate::Error {
    if candidates.is_empty() {
        error
    } else {
        crate::Error::DidYouMean {
            error: Box::new(error),
            candidates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("commit", "comit"), 1);
        assert_eq!(distance("main", "mian"), 1);
        assert_eq!(distance("Production", "production"), 0);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn close_names_best_first() {
        let names = ["exp/lr-sweep", "exp/wide", "main", "mainline"];
        assert_eq!(similar("exp/lr-swep", names), vec!["exp/lr-sweep"]);
        assert_eq!(similar("wide", names), vec!["exp/wide"]);
        assert_eq!(similar("mian", names), vec!["main"]);
        assert!(similar("zzzz", names).is_empty());
    }
}
