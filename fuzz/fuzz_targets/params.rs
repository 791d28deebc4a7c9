//! Params parsers: YAML, JSON and TOML parameter files (`parse_params`, the bytes form of
//! `load_params_file`) and `--param KEY=VALUE` assignments.
//!
//! The first byte picks the format, the rest is the file. Asserts: whatever loads is plain
//! JSON (no NaN or infinities) that serialises and loads back as JSON unchanged; merging
//! params into themselves changes nothing; errors are one line. An accepted assignment has 1
//! to 128 non-empty key segments, and setting it on empty params gives exactly one leaf, named
//! by the dotted key, holding the value.
#![no_main]

use std::path::Path;

use cairn::capture::params::{
    flatten, merge, parse_assignment, parse_params, set_path, Params, ParamsFormat,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let format = match which % 3 {
        0 => ParamsFormat::Yaml,
        1 => ParamsFormat::Json,
        _ => ParamsFormat::Toml,
    };
    match parse_params(content, format, Path::new("fuzz.params")) {
        Ok(params) => {
            let json = serde_json::to_vec(&params).expect("params must serialise as JSON");
            let again = parse_params(&json, ParamsFormat::Json, Path::new("fuzz.json"))
                .expect("serialised params must load as JSON");
            assert_eq!(again, params);
            let mut merged = params.clone();
            merge(&mut merged, params.clone());
            assert_eq!(merged, params);
            let _ = flatten(&params);
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }

    let Ok(arg) = std::str::from_utf8(content) else {
        return;
    };
    match parse_assignment(arg) {
        Ok((path, value)) => {
            assert!((1..=128).contains(&path.len()));
            assert!(path.iter().all(|s| !s.is_empty()));
            let mut p = Params::new();
            set_path(&mut p, &path, value.clone());
            assert_eq!(flatten(&p), vec![(path.join("."), value)]);
        }
        Err(e) => assert!(!e.to_string().contains('\n') || arg.contains('\n')),
    }
});
