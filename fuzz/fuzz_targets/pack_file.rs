//! Pack files: the file-header check, the record scanner, the record reader and the decode
//! path behind them (decompression with its size cap, then the object decoders).
//!
//! The input is written to a scratch file, as the readers work on open files. Asserts: the
//! scanner reports records in order, each inside the file and the last ending exactly at the
//! end of the file; every scanned record reads back through `read_record` with the same header
//! and exactly its stored bytes; decompressing a record yields exactly its raw length or an
//! error; the index's `Location` value of each record round-trips.
#![no_main]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use cairn::object::{ChunkedFile, Kind, ModelEvent, Note, Run, TagEvent, Tree};
use cairn::store::codec::decompress;
use cairn::store::pack::{
    check_pack_header, parse_record_header, read_record, scan_pack, RecordHeader, PACK_HEADER_LEN,
    RECORD_HEADER_LEN,
};
use cairn::store::{Codec, Location};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("cairn-fuzz-pack-{}.pack", std::process::id()))
    })
}

fn decode_content(kind: Kind, raw: &[u8]) {
    match kind {
        Kind::Blob => {}
        Kind::Chunked => drop(ChunkedFile::decode(raw)),
        Kind::Tree => drop(Tree::decode(raw)),
        Kind::Run => drop(Run::decode(raw)),
        Kind::Note => drop(Note::decode(raw)),
        Kind::Model => drop(ModelEvent::decode(raw)),
        Kind::Tag => drop(TagEvent::decode(raw)),
    }
}

fuzz_target!(|data: &[u8]| {
    // A record header parses on its own, from any 52 bytes after the file header.
    if let Some(h) =
        data.get(PACK_HEADER_LEN as usize..(PACK_HEADER_LEN + RECORD_HEADER_LEN) as usize)
    {
        let h: &[u8; RECORD_HEADER_LEN as usize] = h.try_into().expect("52 bytes");
        if let Ok(header) = parse_record_header(h) {
            assert_eq!(&h[20..52], header.id.as_bytes());
            if header.codec == Codec::Raw {
                assert_eq!(u64::from(header.stored_len), header.raw_len);
            }
        }
    }

    let path = scratch();
    {
        let mut f = File::create(path).expect("create scratch pack");
        f.write_all(data).expect("write scratch pack");
    }
    let mut file = File::open(path).expect("open scratch pack");
    let header_ok = check_pack_header(&mut file).is_ok();
    let mut records: Vec<(u64, RecordHeader)> = Vec::new();
    let scanned = scan_pack(path, |off, h| records.push((off, *h)));
    if !header_ok {
        assert!(
            scanned.is_err(),
            "scan accepted a pack whose header check fails"
        );
        return;
    }
    let len = data.len() as u64;
    let mut expect = PACK_HEADER_LEN;
    for (off, h) in &records {
        assert_eq!(*off, expect, "records must be contiguous");
        expect = off + RECORD_HEADER_LEN + u64::from(h.stored_len);
        assert!(
            expect <= len,
            "a scanned record runs past the end of the file"
        );
    }
    if scanned.is_ok() {
        assert_eq!(expect, len, "a clean scan must cover the whole file");
    }

    for (off, h) in records {
        let loc = Location {
            pack: 0,
            offset: off,
            stored_len: h.stored_len,
            raw_len: h.raw_len,
            kind: h.kind,
            codec: h.codec,
            time: off,
        };
        assert_eq!(Location::decode(&loc.encode()), Some(loc));
        let (header, stored) = read_record(&file, &loc).expect("a scanned record must read back");
        assert_eq!(header.id, h.id);
        let start = (off + RECORD_HEADER_LEN) as usize;
        assert_eq!(&stored[..], &data[start..start + h.stored_len as usize]);
        match decompress(h.codec, stored, h.raw_len) {
            Ok(raw) => {
                assert_eq!(raw.len() as u64, h.raw_len);
                decode_content(h.kind, &raw);
            }
            Err(_) => assert_eq!(h.codec, Codec::Zstd, "a raw record must always decode"),
        }
    }
});
