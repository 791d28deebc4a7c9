//! Path validators used when writing trees to disk: tree entry names, restore paths, and
//! symbolic-link targets.
//!
//! The first byte says where to split the rest into a path and a link target. Asserts: a
//! valid entry name is exactly one normal path component; an accepted restore path is made
//! only of normal components, none `.cairn` or `.git` in any case, and stays under any root it
//! is joined to; an accepted link target, resolved from the link's folder, never climbs above
//! the root, never enters `.cairn` or `.git`, and is refused when its first step is another
//! link being restored.
#![no_main]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cairn::object::validate_name;
use cairn::repo::clean_path;
use cairn::snapshot::restore::{check_link_target, check_relative};
use libfuzzer_sys::fuzz_target;

fn reserved(c: &OsStr) -> bool {
    let s = c.to_string_lossy().to_ascii_lowercase();
    s == ".cairn" || s == ".git"
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (rel_bytes, target) = rest.split_at(at);

    if let Ok(name) = std::str::from_utf8(rest) {
        if validate_name(name).is_ok() {
            let comps: Vec<Component> = Path::new(name).components().collect();
            assert_eq!(comps, vec![Component::Normal(OsStr::new(name))], "{name:?}");
            assert!(!reserved(OsStr::new(name)));
        }
    }

    let rel = Path::new(OsStr::from_bytes(rel_bytes));
    if check_relative(rel).is_err() {
        return;
    }
    for c in rel.components() {
        match c {
            Component::Normal(n) => assert!(!reserved(n), "{rel:?}"),
            other => panic!("accepted {rel:?} with component {other:?}"),
        }
    }
    let root = Path::new("/fuzz-root");
    assert!(
        clean_path(&root.join(rel)).starts_with(root),
        "{rel:?} escapes the root"
    );

    let none = HashSet::new();
    if let Ok(t) = check_link_target(rel, target, &none, None) {
        assert!(!t.is_absolute());
        let from = rel.parent().unwrap_or(Path::new(""));
        let resolved = clean_path(&from.join(&t));
        let mut comps = resolved.components();
        assert!(
            !matches!(
                comps.next(),
                Some(Component::ParentDir | Component::RootDir)
            ),
            "link {rel:?} -> {t:?} resolves outside the root: {resolved:?}"
        );
        for c in resolved.components() {
            assert!(
                !reserved(c.as_os_str()),
                "link {rel:?} -> {t:?} enters {c:?}"
            );
        }
        assert!(clean_path(&root.join(&resolved)).starts_with(root));

        // The same link must be refused when its first step is a link being restored.
        let steps: Vec<Component> = t.components().filter(|c| *c != Component::CurDir).collect();
        if let [Component::Normal(first), _, ..] = steps[..] {
            let links: HashSet<PathBuf> = [from.join(first)].into_iter().collect();
            assert!(
                check_link_target(rel, target, &links, None).is_err(),
                "link {rel:?} -> {t:?} passes through another link"
            );
        }
    }
});
