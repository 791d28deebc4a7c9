//! Trees: one folder's sorted, named entries.
//!
//! Encoding (version 1): a version byte `1`, the entry count as a little-endian u32, then per
//! entry: a kind byte (1 file, 2 executable file, 3 symlink, 4 tree), the size as u64 (a file's
//! length, a link target's length, or the total bytes of files below a tree), the 32-byte id,
//! the name length as u32 and the UTF-8 name. Entries are sorted by the bytes of their names and
//! names are unique. Names are validated on decode, so a hostile tree can never name a path
//! outside the folder it is restored into.

use super::{DecodeError, Kind, Reader};
use crate::hash::ObjectId;

const VERSION: u8 = 1;
/// The longest name accepted, in bytes (the common file-system limit).
pub const MAX_NAME_LEN: usize = 255;

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file; the id names a blob or a chunked file.
    File,
    /// A regular file with the executable bit; the id names a blob or a chunked file.
    Executable,
    /// A symbolic link; the id names a blob holding the link target.
    Symlink,
    /// A sub-folder; the id names a tree.
    Tree,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::File => 1,
            EntryKind::Executable => 2,
            EntryKind::Symlink => 3,
            EntryKind::Tree => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => EntryKind::File,
            2 => EntryKind::Executable,
            3 => EntryKind::Symlink,
            4 => EntryKind::Tree,
            _ => return None,
        })
    }

    /// True for regular files, executable or not.
    pub fn is_file(self) -> bool {
        matches!(self, EntryKind::File | EntryKind::Executable)
    }

    /// A short name for listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Executable => "exec",
            EntryKind::Symlink => "link",
            EntryKind::Tree => "tree",
        }
    }
}

/// One named entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The entry's name (one path component).
    pub name: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// File length, link target length, or the total size of files below a sub-tree.
    pub size: u64,
    /// The object holding the entry's content.
    pub id: ObjectId,
}

/// A folder: entries sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Sorted, unique entries.
    pub entries: Vec<TreeEntry>,
}

/// Why a name cannot appear in a tree.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name == "." || name == ".." {
        return Err(format!("name '{name}' is not allowed"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("name longer than {MAX_NAME_LEN} bytes"));
    }
    // These are ASCII, so a byte scan cannot match inside a multi-byte character.
    if let Some(&b) = name
        .as_bytes()
        .iter()
        .find(|b| matches!(b, b'/' | b'\\' | 0))
    {
        return Err(format!("name {name:?} contains {:?}", char::from(b)));
    }
    if name.eq_ignore_ascii_case(".cairn") || name.eq_ignore_ascii_case(".git") {
        return Err(format!("name '{name}' is reserved"));
    }
    Ok(())
}

impl Tree {
    /// Builds a tree from entries in any order; fails on duplicate or invalid names.
    pub fn from_entries(mut entries: Vec<TreeEntry>) -> Result<Self, DecodeError> {
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for w in entries.windows(2) {
            if w[0].name == w[1].name {
                return Err(DecodeError::new(
                    Kind::Tree,
                    format!("duplicate name '{}'", w[0].name),
                ));
            }
        }
        for e in &entries {
            validate_name(&e.name).map_err(|r| DecodeError::new(Kind::Tree, r))?;
        }
        Ok(Tree { entries })
    }

    /// The total size of everything below this tree.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// The entry called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The canonical content bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.entries.len() * 64);
        out.push(VERSION);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.push(e.kind.code());
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(e.id.as_bytes());
            out.extend_from_slice(&(e.name.len() as u32).to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
        }
        out
    }

    /// Decodes content bytes: sorted unique valid names, known kinds, no trailing bytes.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let err = |r: String| DecodeError::new(Kind::Tree, r);
        let mut r = Reader::new(buf, Kind::Tree);
        let v = r.u8()?;
        if v != VERSION {
            return Err(err(format!("unknown version {v}")));
        }
        let count = r.u32()? as usize;
        // Each entry takes at least 45 bytes; refuse counts the buffer cannot hold.
        if count > r.remaining() / 45 {
            return Err(err("entry count exceeds content".into()));
        }
        let mut entries: Vec<TreeEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = r.u8()?;
            let kind = EntryKind::from_code(kind)
                .ok_or_else(|| err(format!("unknown entry kind {kind}")))?;
            let size = r.u64()?;
            let id = r.id()?;
            let len = r.u32()? as usize;
            let name = std::str::from_utf8(r.take(len)?)
                .map_err(|_| err("name is not UTF-8".into()))?
                .to_string();
            validate_name(&name).map_err(err)?;
            if let Some(prev) = entries.last() {
                if prev.name.as_bytes() >= name.as_bytes() {
                    return Err(err(format!("entries not sorted at '{name}'")));
                }
            }
            entries.push(TreeEntry {
                name,
                kind,
                size,
                id,
            });
        }
        r.finish()?;
        Ok(Tree { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(name: &str, kind: EntryKind) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            kind,
            size: 3,
            id: ObjectId::from_bytes([7; 32]),
        }
    }

    #[test]
    fn rejects_hostile_names() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\0b",
            ".git",
            ".CAIRN",
            &"x".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
            let t = Tree {
                entries: vec![entry(bad, EntryKind::File)],
            };
            assert!(Tree::decode(&t.encode()).is_err(), "{bad:?}");
        }
        assert!(Tree::from_entries(vec![
            entry("a", EntryKind::File),
            entry("a", EntryKind::Tree)
        ])
        .is_err());
        let unsorted = Tree {
            entries: vec![entry("b", EntryKind::File), entry("a", EntryKind::File)],
        };
        assert!(Tree::decode(&unsorted.encode()).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(names in proptest::collection::btree_set("[a-zA-Z0-9 ._ é-]{1,20}", 0..30), size in any::<u64>()) {
            let entries: Vec<_> = names.into_iter().filter(|n| validate_name(n).is_ok()).map(|n| TreeEntry { name: n, kind: EntryKind::File, size, id: ObjectId::from_bytes([1; 32]) }).collect();
            let t = Tree::from_entries(entries).unwrap();
            prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Tree::decode(&bytes);
        }
    }
}
