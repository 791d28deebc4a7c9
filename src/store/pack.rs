//! Pack files: append-only files that hold the bytes of objects.
//!
//! Each committing process appends to a pack of its own, so content is written without holding
//! the store's index. A pack is self-describing — every record repeats the object's id, kind and
//! sizes — so the index can be rebuilt from the packs alone. See `docs/format.md`.
//!
//! File layout: the 8-byte magic `CAIRNPK\0`, a little-endian u32 format version (1), 4 reserved
//! zero bytes, then records. A record is the magic `COBJ`, the kind code (u8), the codec code
//! (u8), two reserved zero bytes, the stored length (u32), the raw length (u64), the 32-byte id
//! and the stored bytes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::Codec;
use crate::hash::ObjectId;
use crate::object::Kind;

/// Magic bytes at the start of every pack file.
pub const PACK_MAGIC: &[u8; 8] = b"CAIRNPK\0";
/// Pack format version written and read.
pub const PACK_VERSION: u32 = 1;
/// Length of the pack file header.
pub const PACK_HEADER_LEN: u64 = 16;
/// Magic bytes at the start of every record.
pub const RECORD_MAGIC: &[u8; 4] = b"COBJ";
/// Length of a record header.
pub const RECORD_HEADER_LEN: u64 = 52;
/// The largest object a pack may hold, raw or stored.
pub const MAX_OBJECT_LEN: u64 = 256 << 20;
/// Packs roll over to a new file past this size.
pub const PACK_ROLLOVER: u64 = 2 << 30;

/// Where an object's record lives, as kept in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Pack number (the file is `packs/<16 hex digits>.pack`).
    pub pack: u64,
    /// Offset of the record header in the pack.
    pub offset: u64,
    /// Length of the stored bytes.
    pub stored_len: u32,
    /// Length of the raw content.
    pub raw_len: u64,
    /// Object kind.
    pub kind: Kind,
    /// How the bytes are stored.
    pub codec: Codec,
    /// When the entry was published, seconds since the Unix epoch.
    pub time: u64,
}

impl Location {
    /// Encoded length in the index.
    pub const ENCODED_LEN: usize = 38;

    /// Encodes for the index.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0u8; Self::ENCODED_LEN];
        b[0..8].copy_from_slice(&self.pack.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.stored_len.to_le_bytes());
        b[20..28].copy_from_slice(&self.raw_len.to_le_bytes());
        b[28] = self.kind.code();
        b[29] = self.codec.code();
        b[30..38].copy_from_slice(&self.time.to_le_bytes());
        b
    }

    /// Decodes an index value; `None` when malformed.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        Some(Location {
            pack: u64_at(0)?,
            offset: u64_at(8)?,
            stored_len: u32::from_le_bytes(b.get(16..20)?.try_into().ok()?),
            raw_len: u64_at(20)?,
            kind: Kind::from_code(b[28])?,
            codec: Codec::from_code(b[29])?,
            time: u64_at(30)?,
        })
    }
}

/// The file name of pack number `pack`.
pub fn pack_file_name(pack: u64) -> String {
    format!("{pack:016x}.pack")
}

/// Parses a pack file name back to its number.
pub fn parse_pack_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".pack")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn new_pack_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    h.update(&std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.update(&now.to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let b = h.finalize();
    let mut a = [0u8; 8];
    a.copy_from_slice(&b.as_bytes()[..8]);
    u64::from_le_bytes(a)
}

/// Bytes of small records gathered before one write.
const WRITE_BUFFER: usize = 1 << 20;
/// Records at least this large are written from the caller's bytes directly.
const DIRECT_WRITE: usize = 32 << 10;

/// Writes `a`, `b` and `c` in order with as few `writev` calls as the kernel allows.
fn write_all_vectored(out: &mut File, a: &[u8], b: &[u8], c: &[u8]) -> io::Result<()> {
    let mut slices = [
        io::IoSlice::new(a),
        io::IoSlice::new(b),
        io::IoSlice::new(c),
    ];
    let mut bufs: &mut [io::IoSlice<'_>] = &mut slices;
    io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write the whole record",
                ))
            }
            Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends records to one new pack file.
pub struct PackWriter {
    out: File,
    /// Small records gathered for one write; large ones go straight from the caller's bytes.
    buf: Vec<u8>,
    pack: u64,
    path: PathBuf,
    len: u64,
    synced_to: u64,
}

impl PackWriter {
    /// Creates a new, empty pack in `dir`.
    pub fn create(dir: &Path) -> io::Result<Self> {
        loop {
            let pack = new_pack_number();
            let path = dir.join(pack_file_name(pack));
            crate::fault::check("pack.create")?;
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // Hold an advisory lock while writing, so gc never deletes a pack in progress.
            {
                use std::os::unix::io::AsRawFd;
                // SAFETY: plain syscall on an open descriptor.
                unsafe {
                    libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB);
                }
            }
            let mut buf = Vec::with_capacity(WRITE_BUFFER);
            buf.extend_from_slice(PACK_MAGIC);
            buf.extend_from_slice(&PACK_VERSION.to_le_bytes());
            buf.extend_from_slice(&[0u8; 4]);
            // Make the new file's directory entry durable too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            return Ok(PackWriter {
                out: file,
                buf,
                pack,
                path,
                len: PACK_HEADER_LEN,
                synced_to: 0,
            });
        }
    }

    /// The pack number.
    pub fn pack(&self) -> u64 {
        self.pack
    }

    /// The pack's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no record has been written.
    pub fn is_empty(&self) -> bool {
        self.len == PACK_HEADER_LEN
    }

    /// Appends one record; returns its location (with `time` 0: set at publish).
    pub fn append(
        &mut self,
        id: &ObjectId,
        kind: Kind,
        codec: Codec,
        raw_len: u64,
        stored: &[u8],
    ) -> io::Result<Location> {
        let stored_len = u32::try_from(stored.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "object too large"))?;
        let offset = self.len;
        let mut h = [0u8; RECORD_HEADER_LEN as usize];
        h[0..4].copy_from_slice(RECORD_MAGIC);
        h[4] = kind.code();
        h[5] = codec.code();
        h[8..12].copy_from_slice(&stored_len.to_le_bytes());
        h[12..20].copy_from_slice(&raw_len.to_le_bytes());
        h[20..52].copy_from_slice(id.as_bytes());
        if stored.len() >= DIRECT_WRITE || self.buf.len() + h.len() + stored.len() > WRITE_BUFFER {
            // One vectored write of what is gathered, the header and the content: no copy of
            // the content in user space.
            crate::fault::check("pack.write")?;
            write_all_vectored(&mut self.out, &self.buf, &h, stored)?;
            self.buf.clear();
        } else {
            self.buf.extend_from_slice(&h);
            self.buf.extend_from_slice(stored);
        }
        self.len += RECORD_HEADER_LEN + stored.len() as u64;
        if self.len - self.synced_to > (64 << 20) {
            self.start_writeback()?;
        }
        Ok(Location {
            pack: self.pack,
            offset,
            stored_len,
            raw_len,
            kind,
            codec,
            time: 0,
        })
    }

    /// Starts writing dirty pages to disk early, so the final sync has little left to do.
    fn start_writeback(&mut self) -> io::Result<()> {
        self.flush()?;
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::io::AsRawFd;
            let fd = self.out.as_raw_fd();
            // SAFETY: plain syscall on an open descriptor; failure is harmless (sync_all follows).
            unsafe {
                libc::sync_file_range(
                    fd,
                    self.synced_to as libc::off64_t,
                    (self.len - self.synced_to) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.synced_to = self.len;
        Ok(())
    }

    /// Flushes and fsyncs everything written.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        crate::fault::check("pack.fsync")?;
        self.out.sync_all()
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            crate::fault::check("pack.write")?;
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// A record header as read from a pack.
#[derive(Debug, Clone, Copy)]
pub struct RecordHeader {
    /// Object kind.
    pub kind: Kind,
    /// Codec.
    pub codec: Codec,
    /// Stored length.
    pub stored_len: u32,
    /// Raw length.
    pub raw_len: u64,
    /// The object's id.
    pub id: ObjectId,
}

/// Parses a record header; `Err` names what is wrong.
pub fn parse_record_header(h: &[u8; RECORD_HEADER_LEN as usize]) -> Result<RecordHeader, String> {
    if &h[0..4] != RECORD_MAGIC {
        return Err("bad record magic".into());
    }
    let kind = Kind::from_code(h[4]).ok_or_else(|| format!("unknown kind code {}", h[4]))?;
    let codec = Codec::from_code(h[5]).ok_or_else(|| format!("unknown codec code {}", h[5]))?;
    let stored_len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&h[12..20]);
    let raw_len = u64::from_le_bytes(raw);
    if raw_len > MAX_OBJECT_LEN || u64::from(stored_len) > MAX_OBJECT_LEN {
        return Err(format!(
            "record sizes out of range ({stored_len} stored, {raw_len} raw)"
        ));
    }
    if codec == Codec::Raw && u64::from(stored_len) != raw_len {
        return Err("raw record with mismatched lengths".into());
    }
    let id = ObjectId::from_slice(&h[20..52]).ok_or("bad id")?;
    Ok(RecordHeader {
        kind,
        codec,
        stored_len,
        raw_len,
        id,
    })
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// The file could not be read (the disk, not the content).
    Io(io::Error),
    /// The bytes are not the record the index describes: damaged or truncated.
    Corrupt(String),
}

impl From<String> for RecordError {
    fn from(reason: String) -> Self {
        RecordError::Corrupt(reason)
    }
}

impl RecordError {
    /// The store error for object `id`.
    pub fn for_object(self, id: &ObjectId) -> super::StoreError {
        match self {
            RecordError::Io(source) => super::StoreError::Unreadable { id: *id, source },
            RecordError::Corrupt(reason) => super::StoreError::Corrupt { id: *id, reason },
        }
    }

    fn reading(what: &str, e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            RecordError::Corrupt(format!("the pack ends inside the {what}"))
        } else {
            RecordError::Io(e)
        }
    }
}

/// Reads the record at `loc` from an open pack: its header and stored bytes.
pub fn read_record(file: &File, loc: &Location) -> Result<(RecordHeader, Vec<u8>), RecordError> {
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    crate::fault::check("pack.read").map_err(RecordError::Io)?;
    file.read_exact_at(&mut h, loc.offset)
        .map_err(|e| RecordError::reading("record header", e))?;
    let header = parse_record_header(&h)?;
    if header.stored_len != loc.stored_len
        || header.raw_len != loc.raw_len
        || header.kind != loc.kind
        || header.codec != loc.codec
    {
        return Err(RecordError::Corrupt(
            "record header does not match the index".into(),
        ));
    }
    let mut buf = vec![0u8; header.stored_len as usize];
    file.read_exact_at(&mut buf, loc.offset + RECORD_HEADER_LEN)
        .map_err(|e| RecordError::reading("record", e))?;
    Ok((header, buf))
}

/// Reads and checks a pack's file header.
pub fn check_pack_header(file: &mut File) -> Result<(), String> {
    let mut h = [0u8; PACK_HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    file.read_exact(&mut h)
        .map_err(|_| "truncated pack header".to_string())?;
    if &h[0..8] != PACK_MAGIC {
        return Err("not a cairn pack".into());
    }
    let v = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if v > PACK_VERSION {
        return Err(format!(
            "pack format {v} is newer than this cairn understands ({PACK_VERSION})"
        ));
    }
    Ok(())
}

/// Walks every record of a pack in order, calling `f(offset, header)`; stops at the first
/// damaged or truncated record and returns why. Stored bytes are skipped, not read.
pub fn scan_pack(path: &Path, mut f: impl FnMut(u64, &RecordHeader)) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    check_pack_header(&mut file)?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut off = PACK_HEADER_LEN;
    while off < len {
        let mut h = [0u8; RECORD_HEADER_LEN as usize];
        file.read_exact_at(&mut h, off)
            .map_err(|_| format!("truncated record header at offset {off}"))?;
        let header = parse_record_header(&h).map_err(|e| format!("{e} at offset {off}"))?;
        let end = off + RECORD_HEADER_LEN + u64::from(header.stored_len);
        if end > len {
            return Err(format!("truncated record at offset {off}"));
        }
        f(off, &header);
        off = end;
    }
    Ok(())
}

/// True when another process still holds the pack open for writing.
pub fn is_being_written(path: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(f) = File::open(path) else {
        return false;
    };
    // SAFETY: plain syscalls on an open descriptor.
    unsafe {
        if libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 {
            return true;
        }
        libc::flock(f.as_raw_fd(), libc::LOCK_UN);
    }
    false
}
