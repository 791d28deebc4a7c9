//! The zstd decode path with its output cap (`store::codec::decompress`).
//!
//! The first 8 bytes are the declared raw length (little-endian u64, any value), the rest the
//! stored bytes. Asserts: a successful decode returns exactly the declared length, never more;
//! a raw record decodes to itself only when the lengths agree. The rest of the input is also
//! compressed with the store's policy and must decode back to itself, while a cap one byte
//! short or one byte long is refused.
#![no_main]

use cairn::store::codec::{compress, decompress};
use cairn::store::{Codec, CompressionPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (len, stored) = data.split_at(8);
    let raw_len = u64::from_le_bytes(len.try_into().expect("8 bytes"));

    match decompress(Codec::Zstd, stored.to_vec(), raw_len) {
        Ok(out) => assert_eq!(
            out.len() as u64,
            raw_len,
            "decoded length differs from the cap"
        ),
        Err(_) => {}
    }
    match decompress(Codec::Raw, stored.to_vec(), raw_len) {
        Ok(out) => assert_eq!(out, stored),
        Err(_) => assert_ne!(stored.len() as u64, raw_len),
    }

    let policy = CompressionPolicy {
        level: 1 + i32::from(data[0] % 3),
        ..CompressionPolicy::default()
    };
    let (codec, packed) = compress(stored, policy);
    match (codec, packed) {
        (Codec::Zstd, Some(c)) => {
            let n = stored.len() as u64;
            assert!((c.len() as f64) <= n as f64 * policy.max_ratio);
            assert_eq!(decompress(codec, c.clone(), n).expect("round trip"), stored);
            assert!(
                decompress(codec, c.clone(), n + 1).is_err(),
                "a too-large cap was accepted"
            );
            if n > 0 {
                assert!(
                    decompress(codec, c, n - 1).is_err(),
                    "output beyond the cap was accepted"
                );
            }
        }
        (Codec::Raw, None) => {}
        other => panic!("compress returned an inconsistent pair: {:?}", other.0),
    }
});
