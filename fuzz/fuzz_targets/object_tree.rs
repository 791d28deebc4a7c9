//! Tree objects: `Tree::decode` on arbitrary bytes, and `Tree::from_entries` on arbitrary names.
//!
//! Asserts: a decoded tree re-encodes to exactly the input (the encoding is canonical); its
//! names are valid, strictly sorted and each found by `get`; `from_entries` rebuilds the same
//! tree. A tree built from names decodes back to itself, and is refused only for a bad or
//! duplicate name.
#![no_main]

use cairn::object::{validate_name, EntryKind, Tree, TreeEntry};
use cairn::ObjectId;
use libfuzzer_sys::fuzz_target;

fn check_decoded(data: &[u8]) {
    let Ok(tree) = Tree::decode(data) else {
        return;
    };
    assert_eq!(
        tree.encode(),
        data,
        "decode accepted a non-canonical encoding"
    );
    for w in tree.entries.windows(2) {
        assert!(
            w[0].name.as_bytes() < w[1].name.as_bytes(),
            "entries not strictly sorted"
        );
    }
    for e in &tree.entries {
        assert!(
            validate_name(&e.name).is_ok(),
            "decoded an invalid name {:?}",
            e.name
        );
        assert_eq!(tree.get(&e.name), Some(e));
    }
    let rebuilt =
        Tree::from_entries(tree.entries.clone()).expect("from_entries refused a decoded tree");
    assert_eq!(rebuilt, tree);
}

fn check_built(data: &[u8]) {
    let kinds = [
        EntryKind::File,
        EntryKind::Executable,
        EntryKind::Symlink,
        EntryKind::Tree,
    ];
    let text = String::from_utf8_lossy(data);
    let entries: Vec<TreeEntry> = text
        .split('\n')
        .enumerate()
        .map(|(i, name)| TreeEntry {
            name: name.to_string(),
            kind: kinds[i % kinds.len()],
            size: i as u64,
            id: ObjectId::from_bytes([i as u8; 32]),
        })
        .collect();
    match Tree::from_entries(entries.clone()) {
        Ok(tree) => {
            assert_eq!(tree.entries.len(), entries.len());
            assert_eq!(
                Tree::decode(&tree.encode()).expect("built tree must decode"),
                tree
            );
        }
        Err(_) => {
            let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            let invalid = names.iter().any(|n| validate_name(n).is_err());
            names.sort_unstable();
            let dup = names.windows(2).any(|w| w[0] == w[1]);
            assert!(invalid || dup, "from_entries refused valid unique names");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_decoded(data);
    if let Some((&mode, rest)) = data.split_first() {
        if mode == b'N' {
            check_built(rest);
        }
    }
});
