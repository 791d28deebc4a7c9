//! Line diffs of text files and row counts of large tables.

use crate::hash::ObjectId;
use crate::store::{Session, StoreError};

/// Files up to this size get a line diff.
pub const MAX_PATCH_BYTES: u64 = 1 << 20;

/// Reads a whole file's content (blob or chunked) into memory; callers bound the size.
pub fn read_content(session: &Session, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    session.write_file_content(id, &mut buf, &|_| {})?;
    Ok(buf)
}

/// True when `bytes` look like text: valid UTF-8 without NUL in the first 8 KiB.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes[..bytes.len().min(8192)].contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// A unified diff of two texts with git-style `a/` and `b/` headers.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

/// Counts lines of a stored file by streaming it (for large CSV/JSONL).
pub fn count_lines(session: &Session, id: &ObjectId) -> Result<u64, StoreError> {
    struct Counter(u64, bool);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(&last) = buf.last() {
                self.1 = last != b'\n';
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0, false);
    session.write_file_content(id, &mut c, &|_| {})?;
    Ok(c.0 + u64::from(c.1))
}

/// True for file names whose rows are records (CSV, TSV, JSONL).
pub fn is_table(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".csv", ".tsv", ".jsonl", ".ndjson"]
        .iter()
        .any(|e| lower.ends_with(e))
}
