//! Chunked-file objects: `ChunkedFile::decode` on arbitrary bytes.
//!
//! Asserts: a decoded list re-encodes to exactly the input, and its total size is the sum of
//! its chunk sizes without overflow (so `size()` can never wrap or panic).
#![no_main]

use cairn::object::ChunkedFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = ChunkedFile::decode(data) else {
        return;
    };
    assert_eq!(
        file.encode(),
        data,
        "decode accepted a non-canonical encoding"
    );
    assert_eq!(file.chunks.len(), (data.len() - 1) / 40);
    let total = file
        .chunks
        .iter()
        .try_fold(0u64, |acc, c| acc.checked_add(c.size))
        .expect("decode accepted chunk sizes whose sum overflows");
    assert_eq!(file.size(), total);
});
