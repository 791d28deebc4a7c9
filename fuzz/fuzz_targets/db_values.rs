//! Index database values: ref values, stat-cache folder records and object locations.
//!
//! The first byte picks the decoder, the rest is the stored value. Asserts: whatever decodes
//! re-encodes to exactly the stored bytes, so a value is never silently reinterpreted.
#![no_main]

use cairn::store::{Location, RefValue, StatFolder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, value)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Some(v) = RefValue::decode(value) {
                assert_eq!(v.encode(), value);
            }
        }
        1 => {
            if let Some(v) = StatFolder::decode(value) {
                assert_eq!(v.encode(), value);
                // Lookups rely on the order decode enforces.
                for (i, (name, _)) in v.files().iter().enumerate() {
                    assert_eq!(v.find(name), Some(i));
                }
            }
        }
        _ => {
            if let Some(v) = Location::decode(value) {
                assert_eq!(&v.encode()[..], value);
            }
        }
    }
});
