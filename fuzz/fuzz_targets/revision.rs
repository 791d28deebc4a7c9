//! RUN arguments without a repository: the `~N`/`^` ancestry suffixes, `model:NAME@SEL`
//! specs, and hex id prefixes.
//!
//! Asserts: a split spec's base is a non-empty prefix of the spec, and writing the split back
//! as `BASE~N` splits to the same pair; a parsed model spec names a valid model and is exactly
//! `model:NAME` or `model:NAME@...`; a full id parsed from hex prints back as the lowercase
//! input; a hex prefix yields one byte per pair of digits.
#![no_main]

use cairn::hash::{is_hex_prefix, prefix_bytes};
use cairn::registry::{parse_spec, validate_name, Selector};
use cairn::revision::split_ancestry;
use cairn::ObjectId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((base, back)) = split_ancestry(spec) {
        assert!(!base.is_empty());
        assert!(spec.starts_with(base));
        let written = format!("{base}~{back}");
        assert_eq!(split_ancestry(&written).expect("re-split"), (base, back));
    }
    if let Some(Ok((name, sel))) = parse_spec(spec) {
        assert!(validate_name(&name).is_ok());
        let plain = format!("model:{name}");
        match sel {
            Selector::Latest => assert_eq!(spec, plain),
            Selector::Version(v) => {
                let rest = spec
                    .strip_prefix(&format!("{plain}@v"))
                    .expect("version spec");
                assert_eq!(rest.parse::<u32>().ok(), Some(v));
            }
            Selector::Stage(s) => assert_eq!(spec, format!("{plain}@{s}")),
        }
    }
    if let Some(id) = ObjectId::from_hex(spec) {
        assert_eq!(id.to_hex(), spec.to_ascii_lowercase());
        assert_eq!(ObjectId::from_hex(&id.to_hex()), Some(id));
    }
    if is_hex_prefix(spec) {
        assert_eq!(prefix_bytes(spec).len(), spec.len() / 2);
    }
});
