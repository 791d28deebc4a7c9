//! The stat cache: what the files of a folder looked like when their content ids were last
//! computed, so an unchanged file is not read again (as git's index does).
//!
//! The cache holds one record per folder, keyed by the folder's absolute path ending in `/`,
//! listing the folder's files by name. Checking an unchanged folder of any size is then one
//! index lookup, and a commit that changes nothing writes nothing to the cache. The record
//! format is in `docs/format.md` (section "StatFolder"); it is a pure cache, so a record that
//! does not decode is treated as absent.

use crate::hash::ObjectId;

/// Version byte that starts every folder record.
const FOLDER_FORMAT: u8 = 1;
/// Bytes of an encoded [`StatEntry`].
const ENTRY_LEN: usize = 64;

/// What one file looked like when its content id was last computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatEntry {
    /// File size.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// The content id (blob or chunked file).
    pub id: ObjectId,
}

impl StatEntry {
    fn encode_into(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&self.mtime_ns.to_le_bytes());
        b.extend_from_slice(&self.ctime_ns.to_le_bytes());
        b.extend_from_slice(&self.ino.to_le_bytes());
        b.extend_from_slice(self.id.as_bytes());
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let u = |i: usize| -> Option<[u8; 8]> { b.get(i..i + 8)?.try_into().ok() };
        Some(StatEntry {
            size: u64::from_le_bytes(u(0)?),
            mtime_ns: i64::from_le_bytes(u(8)?),
            ctime_ns: i64::from_le_bytes(u(16)?),
            ino: u64::from_le_bytes(u(24)?),
            id: ObjectId::from_slice(b.get(32..64)?)?,
        })
    }

    /// True when a file with this size, times and inode can be trusted to hold `self.id`.
    pub fn matches(&self, size: u64, mtime_ns: i64, ctime_ns: i64, ino: u64) -> bool {
        self.size == size
            && self.mtime_ns == mtime_ns
            && self.ctime_ns == ctime_ns
            && self.ino == ino
    }
}

/// The cached files of one folder: (file name bytes, entry), sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatFolder {
    files: Vec<(Vec<u8>, StatEntry)>,
}

impl StatFolder {
    /// A record of these files; a later entry for the same name replaces an earlier one.
    pub fn from_files(mut files: Vec<(Vec<u8>, StatEntry)>) -> Self {
        // A stable sort keeps equal names in input order; keeping the last one of each run
        // makes later entries win.
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Vec<u8>, StatEntry)> = Vec::with_capacity(files.len());
        for f in files {
            match out.last_mut() {
                Some(last) if last.0 == f.0 => *last = f,
                _ => out.push(f),
            }
        }
        StatFolder { files: out }
    }

    /// The entries, sorted by name.
    pub fn files(&self) -> &[(Vec<u8>, StatEntry)] {
        &self.files
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is cached.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The position of `name` in [`StatFolder::files`].
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        self.files
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .ok()
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&StatEntry) -> bool) {
        self.files.retain(|(_, e)| keep(e));
    }

    /// The record bytes: the format byte, then per file in name order a u16 name length, the
    /// name, and the 64-byte entry.
    pub fn encode(&self) -> Vec<u8> {
        let names: usize = self.files.iter().map(|(n, _)| n.len()).sum();
        let mut b = Vec::with_capacity(1 + names + self.files.len() * (2 + ENTRY_LEN));
        b.push(FOLDER_FORMAT);
        for (name, e) in &self.files {
            // Names longer than a u16 cannot occur (file systems cap them at 255 bytes); such
            // an entry is simply not cached.
            let Ok(len) = u16::try_from(name.len()) else {
                continue;
            };
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(name);
            e.encode_into(&mut b);
        }
        b
    }

    /// Decodes a record; `None` when it is not a well-formed record of this format.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&format, mut rest) = b.split_first()?;
        if format != FOLDER_FORMAT {
            return None;
        }
        let mut files: Vec<(Vec<u8>, StatEntry)> = Vec::new();
        while !rest.is_empty() {
            let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
            let name = rest.get(2..2 + len)?;
            let entry = StatEntry::decode(rest.get(2 + len..2 + len + ENTRY_LEN)?)?;
            if name.is_empty() || name.contains(&b'/') {
                return None;
            }
            // Strictly increasing names: sorted and unique, so lookups can binary-search.
            if files
                .last()
                .is_some_and(|(last, _)| last.as_slice() >= name)
            {
                return None;
            }
            files.push((name.to_vec(), entry));
            rest = &rest[2 + len + ENTRY_LEN..];
        }
        Some(StatFolder { files })
    }
}

/// Splits an absolute file path into its folder key (ending in `/`) and its file name.
pub fn split_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = path.iter().rposition(|&b| b == b'/')?;
    let (dir, name) = path.split_at(i + 1);
    (!name.is_empty()).then_some((dir, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(n: u8) -> StatEntry {
        StatEntry {
            size: u64::from(n) * 1000,
            mtime_ns: -5 + i64::from(n),
            ctime_ns: 7,
            ino: 42,
            id: ObjectId::from_slice(&[n; 32]).unwrap(),
        }
    }

    #[test]
    fn round_trip_and_order() {
        let f = StatFolder::from_files(vec![
            (b"b.bin".to_vec(), entry(2)),
            ("é x".as_bytes().to_vec(), entry(3)),
            (b"a".to_vec(), entry(1)),
            (b"b.bin".to_vec(), entry(4)),
        ]);
        assert_eq!(f.len(), 3);
        assert_eq!(f.find(b"b.bin").map(|i| f.files()[i].1), Some(entry(4)));
        assert_eq!(f.find(b"zz"), None);
        let enc = f.encode();
        assert_eq!(enc[0], FOLDER_FORMAT);
        assert_eq!(StatFolder::decode(&enc), Some(f));
        assert_eq!(
            StatFolder::decode(&[FOLDER_FORMAT]),
            Some(StatFolder::default())
        );
    }

    #[test]
    fn malformed_records_are_absent() {
        let f = StatFolder::from_files(vec![(b"a".to_vec(), entry(1))]);
        let enc = f.encode();
        for cut in 0..enc.len() {
            if cut == 1 {
                continue; // the format byte alone is a valid empty folder
            }
            assert_eq!(StatFolder::decode(&enc[..cut]), None, "cut at {cut}");
        }
        // The per-file record of format 0 (64 bytes, no format byte) is not a folder record.
        let mut legacy = Vec::new();
        entry(9).encode_into(&mut legacy);
        assert_eq!(StatFolder::decode(&legacy), None);
        let mut slash = f.encode();
        slash[3] = b'/';
        assert_eq!(StatFolder::decode(&slash), None);
        // Names out of order or repeated are refused (lookups rely on the order).
        let two =
            StatFolder::from_files(vec![(b"a".to_vec(), entry(1)), (b"b".to_vec(), entry(2))]);
        let mut swapped = two.encode();
        swapped[3] = b'b';
        assert_eq!(StatFolder::decode(&swapped), None);
    }

    #[test]
    fn split_paths() {
        assert_eq!(
            split_path(b"/data/x/f.bin"),
            Some((&b"/data/x/"[..], &b"f.bin"[..]))
        );
        assert_eq!(split_path(b"/f"), Some((&b"/"[..], &b"f"[..])));
        assert_eq!(split_path(b"/data/"), None);
        assert_eq!(split_path(b"relative"), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StatFolder::decode(&bytes);
        }

        #[test]
        fn encode_decode(names in proptest::collection::btree_set("[a-z0-9 ._é-]{1,30}", 0..40), n in any::<u8>()) {
            let f = StatFolder::from_files(names.iter().enumerate().map(|(i, name)| {
                (name.as_bytes().to_vec(), entry(n.wrapping_add(i as u8)))
            }).collect());
            prop_assert_eq!(StatFolder::decode(&f.encode()), Some(f));
        }
    }
}
