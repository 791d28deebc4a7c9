//! Ref-name validators: branch and tag names, model names and stage names.
//!
//! Asserts what the rules promise rather than how they are checked: a valid branch name is
//! 1 to 200 bytes, not `HEAD` or `@`, has no `..`, `@{`, control or space characters, and is
//! also a safe relative path (every component a valid tree entry name, so a ref can never name
//! a file outside the refs folder); a valid model name is a valid branch name without `@` or
//! `/`; a valid stage is 1 to 64 ASCII letters, digits, `-` or `_`, never `vN`.
#![no_main]

use std::path::Path;

use cairn::object::validate_name;
use cairn::refs::{self, BRANCH_PREFIX};
use cairn::registry::{validate_name as validate_model, validate_stage};
use cairn::snapshot::restore::check_relative;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if refs::validate("branch", name).is_ok() {
        assert!(!name.is_empty() && name.len() <= 200);
        assert!(name != "HEAD" && name != "@");
        assert!(!name.contains("..") && !name.contains("@{"));
        assert!(!name.chars().any(|c| c.is_control() || c.is_whitespace()));
        assert!(!name.starts_with('/') && !name.ends_with('/') && !name.contains("//"));
        for part in name.split('/') {
            assert!(
                validate_name(part).is_ok(),
                "component {part:?} of {name:?}"
            );
            assert!(!part.ends_with(".lock"));
        }
        assert!(
            check_relative(Path::new(name)).is_ok(),
            "{name:?} is not a safe relative path"
        );
        let full = format!("{BRANCH_PREFIX}{name}");
        assert_eq!(full.strip_prefix(BRANCH_PREFIX), Some(name));
    }
    if validate_model(name).is_ok() {
        assert!(refs::validate("model", name).is_ok());
        assert!(!name.contains('@') && !name.contains('/'));
    }
    if validate_stage(name).is_ok() {
        assert!((1..=64).contains(&name.len()));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let version = name.strip_prefix('v');
        assert!(!version.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())));
    }
});
