//! Metrics parsers: JSON, YAML, CSV, TSV and JSON Lines (`parse_metrics`, the bytes form of
//! `load_metrics_file`), and the lenient JSON Lines reader used on live logs.
//!
//! The first byte picks the format, the rest is the file. Asserts: every series read has at
//! least one point; a series from a name -> number file is one point at step 0; summaries
//! (`last`, `min`, `max`, `best_step`) are defined for every series; errors are one line, even
//! when they quote a name holding a line break. A JSON Lines file the strict reader accepts gives
//! the same metrics, and no errors, through the lenient reader; the lenient reader reports at
//! most one error per line plus one read error.
#![no_main]

use std::path::Path;

use cairn::capture::metrics::{parse_jsonl_lenient, parse_metrics, Metrics, MetricsFormat};
use libfuzzer_sys::fuzz_target;

fn check(m: &Metrics) {
    for (name, s) in &m.series {
        assert!(!s.is_empty(), "series {name:?} has no points");
        if s.scalar {
            assert_eq!(s.len(), 1);
            assert_eq!(s.points[0].step, 0);
        }
        assert!(s.last().is_some() && s.min().is_some() && s.max().is_some());
        if s.points.iter().any(|p| !p.value.is_nan()) {
            assert!(s.best_step(true).is_some() && s.best_step(false).is_some());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let format = match which % 5 {
        0 => MetricsFormat::Json,
        1 => MetricsFormat::Yaml,
        2 => MetricsFormat::Csv,
        3 => MetricsFormat::Tsv,
        _ => MetricsFormat::Jsonl,
    };
    let path = Path::new("fuzz.metrics");
    let strict = parse_metrics(content, format, path);
    match &strict {
        Ok(m) => check(m),
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
    if format == MetricsFormat::Jsonl {
        let (lenient, errors) = parse_jsonl_lenient(content, path);
        check(&lenient);
        let lines = content.split(|&b| b == b'\n').count();
        assert!(errors.len() <= lines + 1);
        if let Ok(m) = strict {
            assert!(errors.is_empty());
            assert_eq!(lenient, m);
        }
    }
});
