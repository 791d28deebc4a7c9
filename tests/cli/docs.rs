//! The documentation's links: every relative link in README.md and docs/**/*.md names a file
//! that exists, and every `#anchor` one of the headings of the file it points into, with
//! anchors computed as GitHub renders them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// README.md and every Markdown file below docs/.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("read_dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut out);
    out
}

/// The lines of a Markdown file outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// `line` without its inline code spans.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, links reduced to their text, everything but
/// letters, digits, '-', '_' and spaces dropped, spaces made '-'.
fn slug(heading: &str) -> String {
    // `[text](url)` → `text`.
    let mut plain = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        plain.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](").and_then(|close| {
            let end = after[close..].find(')')? + close;
            Some((close, end))
        }) {
            Some((close, end)) => {
                plain.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            None => {
                plain.push('[');
                rest = after;
            }
        }
    }
    plain.push_str(rest);
    plain
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading gets `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let title = line[hashes..].trim().trim_end_matches('#').trim();
        let base = slug(title);
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// The targets of the inline links `[text](target)` of a line.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code(line);
    let mut out = Vec::new();
    let mut rest = line.as_str();
    while let Some(pos) = rest.find("](") {
        let after = &rest[pos + 2..];
        let end = after
            .find(|c: char| c == ')' || c.is_whitespace())
            .unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("10. Publishing and crash consistency"),
        "10-publishing-and-crash-consistency"
    );
    assert_eq!(
        slug("`cairn pull` — fetch and move"),
        "cairn-pull--fetch-and-move"
    );
    assert_eq!(
        slug("Remotes: push, fetch one stage"),
        "remotes-push-fetch-one-stage"
    );
    assert_eq!(
        slug("See [the format](format.md) here"),
        "see-the-format-here"
    );
    let a = anchors("# A\n## A\n```\n# not a heading\n```\n## B_c\n");
    assert_eq!(
        a.into_iter().collect::<Vec<_>>(),
        vec!["a".to_string(), "a-1".to_string(), "b_c".to_string()]
    );
    assert_eq!(
        link_targets("see [x](a.md#b) and `[y](not-a-link)` and [z](c.md \"title\")"),
        vec!["a.md#b".to_string(), "c.md".to_string()]
    );
}

#[test]
fn every_doc_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = doc_files(root);
    assert!(files.len() > 5, "found only {files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(root).unwrap().display().to_string();
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                // Absolute URLs are not checked (no network); mail links neither.
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                if !dest.exists() {
                    broken.push(format!("{rel}:{n}: {target}: no such file"));
                    continue;
                }
                if let Some(a) = anchor {
                    if dest.extension().is_some_and(|x| x == "md") {
                        let dest_text = std::fs::read_to_string(&dest).unwrap();
                        if !anchors(&dest_text).contains(a) {
                            broken.push(format!("{rel}:{n}: {target}: no heading has that anchor"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} links found: is the parser right?"
    );
    assert!(
        broken.is_empty(),
        "broken doc links:\n{}",
        broken.join("\n")
    );
}
