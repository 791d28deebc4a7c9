//! Remote pack indexes (`remote::packidx`): what a client trusts about a remote's packs.
//!
//! The input is decoded as is, and again with its last 32 bytes replaced by the BLAKE3 sum of
//! the rest, so mutations get past the checksum to the field checks. Asserts: every accepted
//! entry has sizes within the object limit and a record range that fits in a u64 (the fetch
//! path computes `offset + header + stored length`); re-encoding the entries gives an index
//! that decodes to the same entries sorted by id, and gives back the input exactly when the
//! input was sorted.
#![no_main]

use cairn::remote::packidx::{decode, encode, IdxEntry};
use cairn::store::pack::{MAX_OBJECT_LEN, RECORD_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let Ok(entries) = decode(bytes) else {
        return;
    };
    for e in &entries {
        assert!(e.raw_len <= MAX_OBJECT_LEN && u64::from(e.stored_len) <= MAX_OBJECT_LEN);
        assert!(
            e.offset
                .checked_add(RECORD_HEADER_LEN + u64::from(e.stored_len))
                .is_some(),
            "accepted an entry whose record range overflows: offset {}",
            e.offset
        );
    }
    let mut sorted: Vec<IdxEntry> = entries.clone();
    sorted.sort_by_key(|e| e.id);
    let again = encode(entries.clone());
    assert_eq!(
        decode(&again).expect("an encoded index must decode"),
        sorted
    );
    if sorted == entries {
        assert_eq!(again, bytes, "a sorted index must re-encode to itself");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 32 {
        let body = &data[..data.len() - 32];
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(blake3::hash(body).as_bytes());
        check(&fixed);
    }
});
