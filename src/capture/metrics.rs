//! Run metrics: reading the numbers a training run reports.
//!
//! cairn stores what a run measured (loss, accuracy, ...) next to its content
//! so runs can be compared and the best one found. Training code writes those
//! numbers in many shapes: a final summary file (`{"accuracy": 0.93}` as JSON
//! or YAML), a CSV/TSV table with one row per step, or a JSON Lines log with
//! one record per step. This module reads all of them into one model,
//! [`Metrics`]: named series of `(step, value)` [`Point`]s.
//!
//! Files are streamed where the format allows it (CSV, TSV, JSON Lines), and
//! every error names the file and, when the format gives one, the line and
//! column of the offending value. [`parse_jsonl_lenient`] reads a log that may
//! still be being written, or that has a few broken lines, keeping every good
//! record and collecting the problems instead of stopping at the first.
//!
//! Values must be numbers: booleans, strings and nulls are rejected rather
//! than guessed at. Non-finite values are accepted where the format can
//! express them (`.nan` in YAML, `nan`/`inf` cells in CSV); JSON cannot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Keys of a record (JSON Lines, a list of records, a CSV/TSV column) that are
/// bookkeeping rather than metrics. A name -> number file keeps them.
const IGNORED_KEYS: [&str; 3] = ["time", "timestamp", "wall_time"];

/// The key (JSON records) or column (CSV, case-insensitive) holding the step.
const STEP_KEY: &str = "step";

/// Offending values are quoted in errors up to this many characters.
const MAX_VALUE_CHARS: usize = 40;

/// One measurement: the value of a metric at a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub step: i64,
    pub value: f64,
}

/// The points of one metric, in the order they were read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub points: Vec<Point>,
    /// The series came from a name -> number file: one point, at step 0.
    pub scalar: bool,
    /// A final value reported for the same name by a name -> number file, kept beside the
    /// series when it differs from the series' last value (see [`Metrics::merge`]).
    pub final_value: Option<f64>,
}

impl Series {
    /// The value at the greatest step; among points at that step, the one
    /// pushed last. `None` if there are no points.
    pub fn last(&self) -> Option<f64> {
        let mut best: Option<&Point> = None;
        for point in &self.points {
            match best {
                Some(b) if point.step < b.step => {}
                _ => best = Some(point),
            }
        }
        best.map(|p| p.value)
    }

    /// Records `reported` as the final value when it differs from the last value.
    fn note_final(&mut self, reported: Option<f64>) {
        let last = self.last();
        let same = match (reported, last) {
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => true,
        };
        self.final_value = if same { None } else { reported };
    }

    /// The smallest value, ignoring NaN unless every value is NaN.
    pub fn min(&self) -> Option<f64> {
        self.points.iter().map(|p| p.value).reduce(f64::min)
    }

    /// The largest value, ignoring NaN unless every value is NaN.
    pub fn max(&self) -> Option<f64> {
        self.points.iter().map(|p| p.value).reduce(f64::max)
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the series has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The point with the best value (highest if `higher_is_better`, else
    /// lowest). NaN values are never best; among equal values the earliest
    /// step wins, then the first pushed. `None` if no point has a non-NaN value.
    pub fn best_step(&self, higher_is_better: bool) -> Option<Point> {
        let mut best: Option<&Point> = None;
        for point in self.points.iter().filter(|p| !p.value.is_nan()) {
            let better = match best {
                None => true,
                Some(b) if point.value == b.value => point.step < b.step,
                Some(b) if higher_is_better => point.value > b.value,
                Some(b) => point.value < b.value,
            };
            if better {
                best = Some(point);
            }
        }
        best.cloned()
    }
}

/// All metrics of a run, by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    pub series: BTreeMap<String, Series>,
}

impl Metrics {
    /// Adds the series of `other`. A series with the same name is replaced by `other`'s,
    /// except that a series of steps is never replaced by a scalar (a value from a
    /// name -> number file), whichever comes first: the series is kept, and the scalar is
    /// recorded beside it as its final value when it differs from the series' last value.
    pub fn merge(&mut self, other: Metrics) {
        for (name, incoming) in other.series {
            match self.series.get_mut(&name) {
                Some(mine) if incoming.scalar && !mine.scalar && !mine.is_empty() => {
                    mine.note_final(incoming.last());
                }
                Some(mine) if mine.scalar && !incoming.scalar && !incoming.is_empty() => {
                    let reported = mine.last();
                    *mine = incoming;
                    mine.note_final(reported);
                }
                _ => {
                    self.series.insert(name, incoming);
                }
            }
        }
    }

    /// Appends a point to the series `name`, creating it if needed. The series
    /// is no longer marked scalar afterwards.
    pub fn push(&mut self, name: impl Into<String>, step: i64, value: f64) {
        let series = self.series.entry(name.into()).or_default();
        series.points.push(Point { step, value });
        series.scalar = false;
    }

    /// Whether there are no series at all.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// The series called `name`.
    pub fn get(&self, name: &str) -> Option<&Series> {
        self.series.get(name)
    }

    fn insert_scalar(&mut self, name: String, value: f64) {
        let series = Series {
            points: vec![Point { step: 0, value }],
            scalar: true,
            final_value: None,
        };
        self.series.insert(name, series);
    }
}

/// Why metrics could not be read. Every message is one line naming the file,
/// and the line (and column) when the format gives one; lines and columns are
/// 1-based.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file (or one JSON Lines record) is malformed.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A metric's value is not a number (a string, boolean, null, list, or an
    /// unparsable CSV cell). `column` is only known for CSV/TSV cells.
    #[error(
        "{}: metric '{}' is not a number: {value}",
        location(.path, *.line, *.column),
        one_line_name(.key)
    )]
    NotNumeric {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        value: String,
    },
    /// A step is not an integer. `column` is only known for CSV/TSV cells.
    #[error("{}: step is not an integer: {value}", location(.path, *.line, *.column))]
    BadStep {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        value: String,
    },
    /// A JSON/YAML file is neither a mapping of names to numbers nor a list of
    /// records (mappings).
    #[error(
        "{}: expected a mapping of metric names to numbers, or a list of records",
        .path.display()
    )]
    NotAMapping { path: PathBuf },
    /// The file's extension is not one of the supported formats.
    #[error(
        "{}: unknown metrics format (expected .json, .yaml, .yml, .csv, .tsv, .jsonl or .ndjson)",
        .path.display()
    )]
    UnknownFormat { path: PathBuf },
}

/// `path`, `path:line` or `path:line:column`.
fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        (None, _) => path.display().to_string(),
    }
}

/// Loads a metrics file, choosing the reader by extension (case-insensitive).
///
/// * `.json`, `.yaml`, `.yml`: a mapping of names to numbers, nested mappings
///   named with `.` (`{"val": {"loss": 1}}` is `val.loss`); each becomes a
///   scalar series (one point at step 0). An empty YAML file has no metrics.
///   A top-level list of mappings is read like JSON Lines records, with the
///   list index as the default step.
/// * `.csv`, `.tsv`: a header row, then one row per step. A column named
///   `step` (any case) holds the step, otherwise the step is the 0-based data
///   row index. Every other column is a metric, except columns with an empty
///   name (such as a pandas index) and the bookkeeping columns `time`,
///   `timestamp` and `wall_time` (any case), which are skipped. Empty cells
///   are skipped. Cells parse as Rust floats, so `nan` and `inf` are accepted.
/// * `.jsonl`, `.ndjson`: one JSON object per non-empty line, see
///   [`parse_jsonl_lenient`]; the first bad line is an error.
///
/// Steps must be integers; a float with no fractional part (`3.0`) is
/// accepted as one.
pub fn load_metrics_file(path: &Path) -> Result<Metrics, MetricsError> {
    let format = MetricsFormat::from_path(path).ok_or_else(|| MetricsError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    read_metrics(BufReader::new(open(path)?), format, path)
}

/// The syntax of a metrics file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    /// `.json`: a mapping of names to numbers, or a list of records.
    Json,
    /// `.yaml` or `.yml`: as JSON.
    Yaml,
    /// `.csv`: a header row, then one row per step.
    Csv,
    /// `.tsv`: as CSV, separated by tabs.
    Tsv,
    /// `.jsonl` or `.ndjson`: one JSON object per line.
    Jsonl,
}

impl MetricsFormat {
    /// The format a file's extension names (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<MetricsFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "json" => MetricsFormat::Json,
            "yaml" | "yml" => MetricsFormat::Yaml,
            "csv" => MetricsFormat::Csv,
            "tsv" => MetricsFormat::Tsv,
            "jsonl" | "ndjson" => MetricsFormat::Jsonl,
            _ => return None,
        })
    }
}

/// Parses the content of a metrics file in `format`, exactly as [`load_metrics_file`] does
/// with the file; `path` only names the source in errors.
pub fn parse_metrics(
    bytes: &[u8],
    format: MetricsFormat,
    path: &Path,
) -> Result<Metrics, MetricsError> {
    read_metrics(bytes, format, path)
}

fn read_metrics(
    mut reader: impl BufRead,
    format: MetricsFormat,
    path: &Path,
) -> Result<Metrics, MetricsError> {
    match format {
        MetricsFormat::Json => load_json(reader, path),
        MetricsFormat::Yaml => {
            let mut text = String::new();
            reader
                .read_to_string(&mut text)
                .map_err(|source| MetricsError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            load_yaml(&text, path)
        }
        MetricsFormat::Csv => load_delimited(reader, path, b','),
        MetricsFormat::Tsv => load_delimited(reader, path, b'\t'),
        MetricsFormat::Jsonl => {
            let (metrics, errors) = parse_jsonl(reader, path, true);
            match errors.into_iter().next() {
                Some(err) => Err(err),
                None => Ok(metrics),
            }
        }
    }
}

/// Reads JSON Lines metrics, keeping every good record.
///
/// Each non-empty line must be a JSON object. Its `step` key (an integer) is
/// the step; without one, the step is the record's 0-based index among the
/// non-empty lines (bad lines included, so one broken line does not shift the
/// steps after it). The keys `time`, `timestamp` and `wall_time` are ignored;
/// every other key is a metric, nested objects named with `.`, and its value
/// must be a number.
///
/// A line that is not valid UTF-8 or JSON, is not an object, has a bad step or
/// a non-numeric value is skipped whole, and its error (with its line number)
/// is returned alongside the metrics of the other lines. A read error ends
/// the input and is returned last. Never panics, whatever the input.
pub fn parse_jsonl_lenient(reader: impl BufRead, path: &Path) -> (Metrics, Vec<MetricsError>) {
    parse_jsonl(reader, path, false)
}

fn parse_jsonl(
    mut reader: impl BufRead,
    path: &Path,
    stop_at_first_error: bool,
) -> (Metrics, Vec<MetricsError>) {
    let mut metrics = Metrics::default();
    let mut errors = Vec::new();
    let mut buf = Vec::new();
    let mut line_no: usize = 0;
    let mut record_index: i64 = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(source) => {
                errors.push(MetricsError::Io {
                    path: path.to_path_buf(),
                    source,
                });
                break;
            }
        }
        line_no = line_no.saturating_add(1);
        let mut bytes = buf.as_slice();
        if let Some(rest) = bytes.strip_suffix(b"\n") {
            bytes = rest;
        }
        if let Some(rest) = bytes.strip_suffix(b"\r") {
            bytes = rest;
        }
        if line_no == 1 {
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
            }
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let index = record_index;
        record_index = record_index.saturating_add(1);
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => parse_jsonl_record(text, path, line_no, index),
            Err(err) => {
                let valid = bytes.get(..err.valid_up_to()).unwrap_or_default();
                Err(MetricsError::Syntax {
                    path: path.to_path_buf(),
                    line: line_no,
                    column: String::from_utf8_lossy(valid).chars().count() + 1,
                    message: "invalid UTF-8".to_string(),
                })
            }
        };
        match result {
            Ok((step, values)) => {
                for (name, value) in values {
                    metrics.push(name, step, value);
                }
            }
            Err(err) => {
                errors.push(err);
                if stop_at_first_error {
                    break;
                }
            }
        }
    }
    (metrics, errors)
}

/// One JSON Lines record: its step and its `(name, value)` pairs.
fn parse_jsonl_record(
    text: &str,
    path: &Path,
    line: usize,
    index: i64,
) -> Result<(i64, Vec<(String, f64)>), MetricsError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| MetricsError::Syntax {
            path: path.to_path_buf(),
            line,
            column: err.column().max(1),
            message: strip_locations(&err.to_string()),
        })?;
    let serde_json::Value::Object(map) = value else {
        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
        return Err(MetricsError::Syntax {
            path: path.to_path_buf(),
            line,
            column: indent + 1,
            message: "expected a JSON object".to_string(),
        });
    };
    let fields = map.into_iter().map(|(k, v)| (k, json_tree(v))).collect();
    record(fields, index, Some(line), path)
}

fn open(path: &Path) -> Result<File, MetricsError> {
    File::open(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A parsed JSON or YAML value, reduced to what metrics need.
#[derive(Debug)]
enum Tree {
    /// A number; `int` is its value as a step, if it is integral.
    Number {
        value: f64,
        int: Option<i64>,
    },
    Map(Vec<(String, Tree)>),
    /// Anything else, rendered for error messages.
    Other(String),
}

impl Tree {
    fn render(&self) -> String {
        match self {
            Tree::Number { value, .. } => value.to_string(),
            Tree::Map(_) => "{...}".to_string(),
            Tree::Other(text) => text.clone(),
        }
    }
}

/// `f` as an `i64` if it is a whole number in range.
fn integral(f: f64) -> Option<i64> {
    // `i64::MAX as f64` is 2^63, one past the largest i64.
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Some(f as i64)
    } else {
        None
    }
}

fn json_tree(value: serde_json::Value) -> Tree {
    match value {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(value) => Tree::Number {
                value,
                int: n.as_i64().or_else(|| integral(value)),
            },
            None => Tree::Other(short(&n.to_string())),
        },
        serde_json::Value::Object(map) => {
            Tree::Map(map.into_iter().map(|(k, v)| (k, json_tree(v))).collect())
        }
        other => Tree::Other(short(&other.to_string())),
    }
}

fn untag_yaml(mut value: serde_yaml::Value) -> serde_yaml::Value {
    while let serde_yaml::Value::Tagged(tagged) = value {
        value = tagged.value;
    }
    value
}

fn yaml_tree(value: serde_yaml::Value) -> Tree {
    match untag_yaml(value) {
        serde_yaml::Value::Number(n) => match n.as_f64() {
            Some(value) => Tree::Number {
                value,
                int: n.as_i64().or_else(|| integral(value)),
            },
            None => Tree::Other(short(&n.to_string())),
        },
        serde_yaml::Value::Mapping(mapping) => Tree::Map(
            mapping
                .into_iter()
                .map(|(k, v)| (yaml_key(k), yaml_tree(v)))
                .collect(),
        ),
        other => Tree::Other(short(&render_yaml(&other))),
    }
}

/// A YAML mapping key as a metric name: strings as they are, other scalars as
/// their text.
fn yaml_key(key: serde_yaml::Value) -> String {
    match untag_yaml(key) {
        serde_yaml::Value::String(s) => s,
        other => render_yaml(&other),
    }
}

/// A compact, JSON-like rendering of a YAML value for messages and keys.
fn render_yaml(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Null => "null".to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        serde_yaml::Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(render_yaml).collect();
            format!("[{}]", items.join(", "))
        }
        serde_yaml::Value::Mapping(mapping) => {
            let entries: Vec<String> = mapping
                .iter()
                .map(|(k, v)| format!("{}: {}", render_yaml(k), render_yaml(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        serde_yaml::Value::Tagged(tagged) => {
            format!("{} {}", tagged.tag, render_yaml(&tagged.value))
        }
    }
}

/// A metric or column name for an error message, kept on one line (names may hold line
/// breaks: a JSON `\n` escape, a quoted CSV header).
fn one_line_name(name: &str) -> String {
    name.replace(['\n', '\r'], " ")
}

/// Shortens `text` to at most [`MAX_VALUE_CHARS`] characters, on one line.
fn short(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    if text.chars().count() <= MAX_VALUE_CHARS {
        text
    } else {
        let mut out: String = text.chars().take(MAX_VALUE_CHARS - 3).collect();
        out.push_str("...");
        out
    }
}

/// Appends the numeric leaves of `tree` under `name` (nested keys joined
/// with `.`), or fails on the first non-numeric one.
fn numeric_leaves(
    name: String,
    tree: Tree,
    line: Option<usize>,
    path: &Path,
    out: &mut Vec<(String, f64)>,
) -> Result<(), MetricsError> {
    match tree {
        Tree::Number { value, .. } => out.push((name, value)),
        Tree::Map(entries) => {
            for (key, child) in entries {
                numeric_leaves(format!("{name}.{key}"), child, line, path, out)?;
            }
        }
        Tree::Other(value) => {
            return Err(MetricsError::NotNumeric {
                path: path.to_path_buf(),
                line,
                column: None,
                key: name,
                value,
            })
        }
    }
    Ok(())
}

/// Reads one record (a mapping): its step, or `default_step`, and its metrics.
fn record(
    fields: Vec<(String, Tree)>,
    default_step: i64,
    line: Option<usize>,
    path: &Path,
) -> Result<(i64, Vec<(String, f64)>), MetricsError> {
    let mut step = default_step;
    let mut values = Vec::new();
    for (key, value) in fields {
        if key == STEP_KEY {
            step = match value {
                Tree::Number { int: Some(s), .. } => s,
                other => {
                    return Err(MetricsError::BadStep {
                        path: path.to_path_buf(),
                        line,
                        column: None,
                        value: short(&other.render()),
                    })
                }
            };
        } else if !IGNORED_KEYS.contains(&key.as_str()) {
            numeric_leaves(key, value, line, path, &mut values)?;
        }
    }
    Ok((step, values))
}

/// Turns a parsed JSON/YAML document into metrics: a mapping gives scalar
/// series, a list of mappings gives records.
fn document(top: Tree, items: Option<Vec<Tree>>, path: &Path) -> Result<Metrics, MetricsError> {
    let not_a_mapping = || MetricsError::NotAMapping {
        path: path.to_path_buf(),
    };
    let mut metrics = Metrics::default();
    if let Some(items) = items {
        for (index, item) in items.into_iter().enumerate() {
            let Tree::Map(fields) = item else {
                return Err(not_a_mapping());
            };
            let default_step = i64::try_from(index).unwrap_or(i64::MAX);
            let (step, values) = record(fields, default_step, None, path)?;
            for (name, value) in values {
                metrics.push(name, step, value);
            }
        }
        return Ok(metrics);
    }
    let Tree::Map(entries) = top else {
        return Err(not_a_mapping());
    };
    let mut values = Vec::new();
    for (key, value) in entries {
        numeric_leaves(key, value, None, path, &mut values)?;
    }
    for (name, value) in values {
        metrics.insert_scalar(name, value);
    }
    Ok(metrics)
}

fn load_json(mut reader: impl BufRead, path: &Path) -> Result<Metrics, MetricsError> {
    let io_error = |source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    };
    // serde_json rejects a byte-order mark; skip one.
    if reader
        .fill_buf()
        .map_err(io_error)?
        .starts_with(b"\xEF\xBB\xBF")
    {
        reader.consume(3);
    }
    let value: serde_json::Value = serde_json::from_reader(reader).map_err(|err| {
        if err.is_io() {
            io_error(err.into())
        } else {
            MetricsError::Syntax {
                path: path.to_path_buf(),
                line: err.line().max(1),
                column: err.column().max(1),
                message: strip_locations(&err.to_string()),
            }
        }
    })?;
    match value {
        serde_json::Value::Array(items) => {
            let items = items.into_iter().map(json_tree).collect();
            document(Tree::Map(Vec::new()), Some(items), path)
        }
        other => document(json_tree(other), None, path),
    }
}

fn load_yaml(text: &str, path: &Path) -> Result<Metrics, MetricsError> {
    let syntax = |err: serde_yaml::Error| {
        let (line, column) = err
            .location()
            .map_or((1, 1), |loc| (loc.line().max(1), loc.column().max(1)));
        MetricsError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: strip_locations(&err.to_string()),
        }
    };
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(syntax)?;
    value.apply_merge().map_err(syntax)?;
    match untag_yaml(value) {
        serde_yaml::Value::Null => Ok(Metrics::default()),
        serde_yaml::Value::Sequence(items) => {
            let items = items.into_iter().map(yaml_tree).collect();
            document(Tree::Map(Vec::new()), Some(items), path)
        }
        other => document(yaml_tree(other), None, path),
    }
}

/// What a CSV/TSV column holds.
enum Column {
    Step,
    Metric(String),
    Ignored,
}

fn load_delimited(
    input: impl std::io::Read,
    path: &Path,
    delimiter: u8,
) -> Result<Metrics, MetricsError> {
    // The csv reader buffers internally, so the file is streamed as is.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|err| csv_error(path, err))?
        .clone();
    let header_line = headers.position().map_or(1, |p| to_usize(p.line()));
    let syntax = |line: usize, column: usize, message: String| MetricsError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    if headers.iter().all(str::is_empty) {
        return Err(syntax(header_line, 1, "missing header row".to_string()));
    }

    let mut columns = Vec::with_capacity(headers.len());
    let mut step_column = None;
    let mut seen = std::collections::HashSet::new();
    for (index, name) in headers.iter().enumerate() {
        let column = if name.is_empty()
            || IGNORED_KEYS
                .iter()
                .any(|key| name.eq_ignore_ascii_case(key))
        {
            Column::Ignored
        } else if name.eq_ignore_ascii_case(STEP_KEY) {
            if step_column.is_some() {
                return Err(syntax(
                    header_line,
                    index + 1,
                    format!("second step column '{name}'"),
                ));
            }
            step_column = Some(index);
            Column::Step
        } else {
            if !seen.insert(name) {
                return Err(syntax(
                    header_line,
                    index + 1,
                    format!("duplicate column '{}'", one_line_name(name)),
                ));
            }
            Column::Metric(name.to_string())
        };
        columns.push(column);
    }

    let mut points: Vec<Vec<Point>> = vec![Vec::new(); columns.len()];
    let mut row = csv::StringRecord::new();
    let mut row_index: i64 = 0;
    while reader
        .read_record(&mut row)
        .map_err(|err| csv_error(path, err))?
    {
        let line = row.position().map_or(header_line, |p| to_usize(p.line()));
        if let Some((extra, _)) = row
            .iter()
            .enumerate()
            .skip(columns.len())
            .find(|(_, cell)| !cell.is_empty())
        {
            return Err(syntax(
                line,
                extra + 1,
                format!(
                    "row has {} fields but the header has {}",
                    row.len(),
                    columns.len()
                ),
            ));
        }
        let step = match step_column {
            None => row_index,
            Some(index) => {
                let cell = row.get(index).unwrap_or_default();
                let step = cell
                    .parse::<i64>()
                    .ok()
                    .or_else(|| cell.parse::<f64>().ok().and_then(integral));
                step.ok_or_else(|| MetricsError::BadStep {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: Some(index + 1),
                    value: short(&format!("{cell:?}")),
                })?
            }
        };
        for ((index, column), cell) in columns.iter().enumerate().zip(row.iter()) {
            let Column::Metric(name) = column else {
                continue;
            };
            if cell.is_empty() {
                continue;
            }
            let value = cell.parse::<f64>().map_err(|_| MetricsError::NotNumeric {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(index + 1),
                key: name.clone(),
                value: short(&format!("{cell:?}")),
            })?;
            if let Some(series) = points.get_mut(index) {
                series.push(Point { step, value });
            }
        }
        row_index = row_index.saturating_add(1);
    }

    let mut metrics = Metrics::default();
    for (column, points) in columns.into_iter().zip(points) {
        if let Column::Metric(name) = column {
            if !points.is_empty() {
                metrics.series.insert(
                    name,
                    Series {
                        points,
                        scalar: false,
                        final_value: None,
                    },
                );
            }
        }
    }
    Ok(metrics)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn csv_error(path: &Path, err: csv::Error) -> MetricsError {
    let message = strip_locations(&err.to_string());
    let line = err.position().map_or(1, |p| to_usize(p.line()));
    match err.into_kind() {
        csv::ErrorKind::Io(source) => MetricsError::Io {
            path: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::Utf8 { err, .. } => MetricsError::Syntax {
            path: path.to_path_buf(),
            line,
            column: err.field() + 1,
            message: "field is not valid UTF-8".to_string(),
        },
        _ => MetricsError::Syntax {
            path: path.to_path_buf(),
            line,
            column: 1,
            message,
        },
    }
}

/// Removes the " at line N column M" parts that serde_json and serde_yaml put
/// in their messages, since the error reports the position itself, and makes
/// the message one line.
fn strip_locations(message: &str) -> String {
    const MARKER: &str = " at line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(MARKER) {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let after_marker = tail.get(MARKER.len()..).unwrap_or_default();
        match location_len(after_marker) {
            Some(len) => rest = after_marker.get(len..).unwrap_or_default(),
            None => {
                out.push_str(MARKER);
                rest = after_marker;
            }
        }
    }
    out.push_str(rest);
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The length of `N column M` at the start of `s`, if it is there.
fn location_len(s: &str) -> Option<usize> {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let line_digits = digits(s);
    if line_digits == 0 {
        return None;
    }
    let after_line = s.get(line_digits..)?.strip_prefix(" column ")?;
    let column_digits = digits(after_line);
    if column_digits == 0 {
        return None;
    }
    Some(line_digits + " column ".len() + column_digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// Writes `content` to a temporary file named `name`; keep the dir alive.
    fn write_file(name: &str, content: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        (dir, path)
    }

    fn load(name: &str, content: &str) -> Result<Metrics, MetricsError> {
        let (_dir, path) = write_file(name, content.as_bytes());
        load_metrics_file(&path)
    }

    fn points(metrics: &Metrics, name: &str) -> Vec<(i64, f64)> {
        metrics
            .get(name)
            .unwrap_or_else(|| panic!("no series {name} in {metrics:?}"))
            .points
            .iter()
            .map(|p| (p.step, p.value))
            .collect()
    }

    fn scalar(metrics: &Metrics, name: &str) -> f64 {
        let series = metrics
            .get(name)
            .unwrap_or_else(|| panic!("no series {name} in {metrics:?}"));
        assert!(series.scalar, "{name} should be scalar");
        assert_eq!(series.len(), 1);
        assert_eq!(series.points[0].step, 0);
        series.points[0].value
    }

    fn names(metrics: &Metrics) -> Vec<&str> {
        metrics.series.keys().map(String::as_str).collect()
    }

    #[test]
    fn errors_stay_on_one_line_when_names_hold_line_breaks() {
        // A metric name from a JSON escape, or a quoted CSV header, used to break the message
        // across lines.
        let path = Path::new("m.json");
        let err = parse_metrics(br#"{"a\nb": "x"}"#, MetricsFormat::Json, path).unwrap_err();
        assert!(matches!(&err, MetricsError::NotNumeric { key, .. } if key == "a\nb"));
        assert_eq!(
            err.to_string(),
            "m.json: metric 'a b' is not a number: \"x\""
        );
        for csv in ["\"a\nb\",\"a\nb\"\n1,2\n", "step,\"a\r\nb\"\n1,x\n"] {
            let err = parse_metrics(csv.as_bytes(), MetricsFormat::Csv, path).unwrap_err();
            assert!(!err.to_string().contains(['\n', '\r']), "{err}");
        }
    }

    fn series(values: &[(i64, f64)]) -> Series {
        Series {
            points: values
                .iter()
                .map(|&(step, value)| Point { step, value })
                .collect(),
            scalar: false,
            final_value: None,
        }
    }

    #[test]
    fn series_helpers() {
        let s = series(&[(0, 3.0), (2, 1.0), (1, 5.0), (2, 2.0)]);
        assert_eq!(s.last(), Some(2.0), "greatest step, last pushed on a tie");
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(5.0));
        assert_eq!(s.len(), 4);
        assert!(!s.is_empty());
        assert_eq!(
            s.best_step(true),
            Some(Point {
                step: 1,
                value: 5.0
            })
        );
        assert_eq!(
            s.best_step(false),
            Some(Point {
                step: 2,
                value: 1.0
            })
        );
    }

    #[test]
    fn series_helpers_on_empty_and_nan() {
        let empty = Series::default();
        assert_eq!(empty.last(), None);
        assert_eq!(empty.min(), None);
        assert_eq!(empty.max(), None);
        assert_eq!(empty.best_step(true), None);
        assert!(empty.is_empty());

        let s = series(&[(0, f64::NAN), (1, 2.0), (2, f64::NAN)]);
        assert_eq!(s.min(), Some(2.0));
        assert_eq!(s.max(), Some(2.0));
        assert_eq!(
            s.best_step(false),
            Some(Point {
                step: 1,
                value: 2.0
            })
        );
        assert!(s.last().is_some_and(f64::is_nan));

        let all_nan = series(&[(0, f64::NAN)]);
        assert_eq!(all_nan.best_step(true), None);
        assert!(all_nan.min().is_some_and(f64::is_nan));
    }

    #[test]
    fn best_step_prefers_earliest_step_on_ties() {
        let s = series(&[(5, 1.0), (3, 1.0), (4, 0.5)]);
        assert_eq!(
            s.best_step(true),
            Some(Point {
                step: 3,
                value: 1.0
            })
        );
    }

    #[test]
    fn a_series_is_never_replaced_by_a_scalar() {
        let scalar = |v: f64| {
            let mut m = Metrics::default();
            m.insert_scalar("loss".into(), v);
            m
        };
        let mut live = Metrics::default();
        live.push("loss", 0, 2.0);
        live.push("loss", 1, 0.5);
        // Series first, then a differing scalar: kept, final noted.
        let mut a = live.clone();
        a.merge(scalar(0.4));
        assert_eq!(points(&a, "loss"), [(0, 2.0), (1, 0.5)]);
        assert_eq!(a.get("loss").unwrap().final_value, Some(0.4));
        // The same value as the last point is not noted.
        let mut b = live.clone();
        b.merge(scalar(0.5));
        assert_eq!(b.get("loss").unwrap().final_value, None);
        // Scalar first, then the series: the series wins, the scalar is noted.
        let mut c = scalar(0.4);
        c.merge(live.clone());
        assert_eq!(points(&c, "loss"), [(0, 2.0), (1, 0.5)]);
        assert_eq!(c.get("loss").unwrap().final_value, Some(0.4));
        // Two scalars: the later one, as before.
        let mut d = scalar(1.0);
        d.merge(scalar(3.0));
        assert_eq!(points(&d, "loss"), [(0, 3.0)]);
    }

    #[test]
    fn metrics_push_merge_is_empty() {
        let mut a = Metrics::default();
        assert!(a.is_empty());
        a.push("loss", 0, 1.0);
        a.push("loss".to_string(), 1, 0.5);
        a.push("acc", 1, 0.9);
        assert!(!a.is_empty());
        let mut b = Metrics::default();
        b.push("loss", 7, 0.1);
        b.push("f1", 7, 0.3);
        a.merge(b);
        assert_eq!(names(&a), ["acc", "f1", "loss"]);
        assert_eq!(points(&a, "loss"), [(7, 0.1)], "same name is replaced");
        assert_eq!(points(&a, "acc"), [(1, 0.9)]);
    }

    #[test]
    fn push_onto_scalar_clears_scalar() {
        let mut m = Metrics::default();
        m.insert_scalar("acc".to_string(), 0.5);
        m.push("acc", 1, 0.6);
        let s = m.get("acc").expect("acc");
        assert!(!s.scalar);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn point_serializes() {
        let text = serde_json::to_string(&Point {
            step: 3,
            value: 0.5,
        })
        .expect("serialize");
        assert_eq!(text, r#"{"step":3,"value":0.5}"#);
        let back: Point = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(
            back,
            Point {
                step: 3,
                value: 0.5
            }
        );
    }

    #[test]
    fn json_mapping_nested() {
        let m = load(
            "m.json",
            r#"{"acc": 0.93, "loss": 1, "val": {"loss": 2.5, "deep": {"x": -1e3}}}"#,
        )
        .expect("load");
        assert_eq!(names(&m), ["acc", "loss", "val.deep.x", "val.loss"]);
        assert_eq!(scalar(&m, "acc"), 0.93);
        assert_eq!(scalar(&m, "loss"), 1.0);
        assert_eq!(scalar(&m, "val.loss"), 2.5);
        assert_eq!(scalar(&m, "val.deep.x"), -1000.0);
    }

    #[test]
    fn json_with_byte_order_mark_and_empty_object() {
        let m = load("m.json", "\u{feff}{\"a\": 1}").expect("load");
        assert_eq!(scalar(&m, "a"), 1.0);
        assert!(load("m.json", "{}").expect("empty").is_empty());
    }

    #[test]
    fn json_array_of_records() {
        let m = load(
            "m.json",
            r#"[{"step": 10, "loss": 1.0, "time": 5}, {"loss": 0.5, "acc": 0.7}, {"step": 30.0, "loss": 0.25}]"#,
        )
        .expect("load");
        assert_eq!(points(&m, "loss"), [(10, 1.0), (1, 0.5), (30, 0.25)]);
        assert_eq!(points(&m, "acc"), [(1, 0.7)]);
        assert!(m.get("time").is_none());
        assert!(!m.get("loss").expect("loss").scalar);
    }

    #[test]
    fn json_boolean_is_not_numeric() {
        let err = load("m.json", r#"{"ok": 1, "nested": {"flag": true}}"#).expect_err("fail");
        match &err {
            MetricsError::NotNumeric {
                line,
                column,
                key,
                value,
                ..
            } => {
                assert_eq!(*line, None);
                assert_eq!(*column, None);
                assert_eq!(key, "nested.flag");
                assert_eq!(value, "true");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with("m.json: metric 'nested.flag' is not a number: true"));
    }

    #[test]
    fn json_null_and_string_are_not_numeric() {
        for (content, key, value) in [
            (r#"{"a": null}"#, "a", "null"),
            (r#"{"a": "0.5"}"#, "a", "\"0.5\""),
            (r#"{"a": [1, 2]}"#, "a", "[1,2]"),
        ] {
            let err = load("m.json", content).expect_err(content);
            assert!(
                matches!(&err, MetricsError::NotNumeric { key: k, value: v, .. } if k == key && v == value),
                "{err:?}"
            );
        }
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(100);
        let err = load("m.json", &format!(r#"{{"a": "{long}"}}"#)).expect_err("fail");
        let MetricsError::NotNumeric { value, .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(value.chars().count(), MAX_VALUE_CHARS);
        assert!(value.ends_with("..."));
    }

    #[test]
    fn json_syntax_error_position() {
        let err = load("m.json", "{\n  \"a\": 1,\n  \"b\": x\n}").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 3,
                    column: 8,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with("m.json:3:8: expected value"),
            "{err}"
        );
    }

    #[test]
    fn json_not_a_mapping() {
        for content in ["5", "\"x\"", "null", "[1, 2]", "[{\"a\": 1}, 3]"] {
            let err = load("m.json", content).expect_err(content);
            assert!(matches!(err, MetricsError::NotAMapping { .. }), "{content}");
            assert!(err.to_string().ends_with(
                "m.json: expected a mapping of metric names to numbers, or a list of records"
            ));
        }
    }

    #[test]
    fn yaml_mapping_nested_and_non_finite() {
        let m = load(
            "m.yaml",
            "acc: 0.9\nval:\n  loss: 2\n  nan: .nan\ninf: .inf\n1: 3\n",
        )
        .expect("load");
        assert_eq!(names(&m), ["1", "acc", "inf", "val.loss", "val.nan"]);
        assert_eq!(scalar(&m, "acc"), 0.9);
        assert_eq!(scalar(&m, "val.loss"), 2.0);
        assert!(scalar(&m, "val.nan").is_nan());
        assert_eq!(scalar(&m, "inf"), f64::INFINITY);
        assert_eq!(scalar(&m, "1"), 3.0);
    }

    #[test]
    fn yaml_empty_file_and_records() {
        assert!(load("m.yml", "").expect("empty").is_empty());
        let m = load("m.yml", "- step: 2\n  loss: 1.5\n- loss: 1.0\n").expect("load");
        assert_eq!(points(&m, "loss"), [(2, 1.5), (1, 1.0)]);
    }

    #[test]
    fn yaml_not_numeric_and_bad_step() {
        let err = load("m.yaml", "a: yes\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::NotNumeric { key, value, line: None, .. } if key == "a" && value == "\"yes\""),
            "{err:?}"
        );
        let err = load("m.yaml", "a: true\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::NotNumeric { value, .. } if value == "true"),
            "{err:?}"
        );
        let err = load("m.yaml", "- step: 1.5\n  a: 1\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::BadStep { value, line: None, column: None, .. } if value == "1.5"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .ends_with("m.yaml: step is not an integer: 1.5"));
    }

    #[test]
    fn yaml_syntax_error_position() {
        let err = load("m.yaml", "a: 1\nb:\n  c: 2\n d: 3\n").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 4,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("m.yaml:4:2: "), "{text}");
        assert!(!text.contains(" at line "), "{text}");
    }

    #[test]
    fn yaml_not_a_mapping() {
        let err = load("m.yaml", "just text\n").expect_err("fail");
        assert!(matches!(err, MetricsError::NotAMapping { .. }), "{err:?}");
    }

    #[test]
    fn csv_with_step_column() {
        let m = load(
            "m.csv",
            "Step,loss,acc\n0,1.5,\n10, 0.75 ,0.5\n20,nan,inf\n",
        )
        .expect("load");
        assert_eq!(names(&m), ["acc", "loss"]);
        let loss = points(&m, "loss");
        assert_eq!(loss[..2], [(0, 1.5), (10, 0.75)]);
        assert_eq!(loss[2].0, 20);
        assert!(loss[2].1.is_nan());
        assert_eq!(points(&m, "acc"), [(10, 0.5), (20, f64::INFINITY)]);
    }

    #[test]
    fn csv_without_step_column_uses_row_index() {
        let m = load("m.csv", ",loss\n7,1.0\n\n8,,\n9,0.5\n").expect("load");
        // The unnamed (index) column is ignored; the blank line is not a row.
        assert_eq!(names(&m), ["loss"]);
        assert_eq!(points(&m, "loss"), [(0, 1.0), (2, 0.5)]);
    }

    #[test]
    fn csv_skips_time_columns() {
        let m = load(
            "m.csv",
            "Timestamp,step,loss,wall_time\n2024-01-01T00:00:00,3,0.5,x\n",
        )
        .expect("load");
        assert_eq!(names(&m), ["loss"]);
        assert_eq!(points(&m, "loss"), [(3, 0.5)]);
    }

    #[test]
    fn mapping_files_keep_time_keys() {
        let m = load("m.json", r#"{"time": 3600, "acc": 0.5}"#).expect("load");
        assert_eq!(names(&m), ["acc", "time"]);
    }

    #[test]
    fn csv_only_empty_column_gives_no_series() {
        let m = load("m.csv", "step,a,b\n1,,2\n").expect("load");
        assert_eq!(names(&m), ["b"]);
    }

    #[test]
    fn tsv() {
        let m = load("m.TSV", "step\tloss\n1\t0.5\n2\t0.25\n").expect("load");
        assert_eq!(points(&m, "loss"), [(1, 0.5), (2, 0.25)]);
    }

    #[test]
    fn csv_non_numeric_cell_position() {
        let err = load("m.csv", "step,loss,acc\n1,0.5,0.1\n2,0.4,high\n").expect_err("fail");
        match &err {
            MetricsError::NotNumeric {
                line,
                column,
                key,
                value,
                ..
            } => {
                assert_eq!((*line, *column), (Some(3), Some(3)));
                assert_eq!(key, "acc");
                assert_eq!(value, "\"high\"");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err
            .to_string()
            .ends_with("m.csv:3:3: metric 'acc' is not a number: \"high\""));
    }

    #[test]
    fn csv_bad_step_position() {
        let err = load("m.csv", "loss,step\n0.5,1\n0.4,two\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::BadStep { line: Some(3), column: Some(2), value, .. } if value == "\"two\""),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .ends_with("m.csv:3:2: step is not an integer: \"two\""));
        let err = load("m.csv", "step,loss\n1.5,1\n").expect_err("fail");
        assert!(
            matches!(err, MetricsError::BadStep { line: Some(2), .. }),
            "{err:?}"
        );
        let err = load("m.csv", "step,loss\n,1\n").expect_err("fail");
        assert!(
            matches!(err, MetricsError::BadStep { line: Some(2), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn csv_line_numbers_follow_quoted_newlines() {
        let err = load("m.csv", ",loss\n\"two\nlines\",1\nx,bad\n").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::NotNumeric {
                    line: Some(4),
                    column: Some(2),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn csv_structure_errors() {
        let err = load("m.csv", "").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 1,
                    column: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("m.csv:1:1: missing header row"));

        let err = load("m.csv", "a,b,a\n1,2,3\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::Syntax { line: 1, column: 3, message, .. } if message == "duplicate column 'a'"),
            "{err:?}"
        );

        let err = load("m.csv", "step,a,STEP\n").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 1,
                    column: 3,
                    ..
                }
            ),
            "{err:?}"
        );

        let err = load("m.csv", "a,b\n1,2\n3,4,5\n").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 3,
                    column: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        // A trailing empty field is tolerated.
        let m = load("m.csv", "a,b\n1,2,\n").expect("trailing delimiter");
        assert_eq!(points(&m, "b"), [(0, 2.0)]);
    }

    #[test]
    fn csv_invalid_utf8_position() {
        let (_dir, path) = write_file("m.csv", b"a,b\n1,2\n3,\xff\n");
        let err = load_metrics_file(&path).expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn jsonl_records() {
        let m = load(
            "m.jsonl",
            "{\"step\": 5, \"loss\": 1.0, \"timestamp\": 17e8, \"wall_time\": 1, \"time\": 2}\r\n\
             \n\
             {\"loss\": 0.5, \"val\": {\"acc\": 0.75}}\n\
             {\"step\": 9, \"loss\": 0.25}",
        )
        .expect("load");
        assert_eq!(names(&m), ["loss", "val.acc"]);
        assert_eq!(points(&m, "loss"), [(5, 1.0), (1, 0.5), (9, 0.25)]);
        assert_eq!(points(&m, "val.acc"), [(1, 0.75)]);
    }

    #[test]
    fn ndjson_with_byte_order_mark() {
        let m = load("m.ndjson", "\u{feff}{\"a\": 1}\n{\"a\": 2}\n").expect("load");
        assert_eq!(points(&m, "a"), [(0, 1.0), (1, 2.0)]);
    }

    #[test]
    fn jsonl_malformed_line_position() {
        let err = load("m.jsonl", "{\"a\": 1}\n\n{\"a\": 2,}\n{\"a\": 3}\n").expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 3,
                    column: 9,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("m.jsonl:3:9: "), "{err}");
    }

    #[test]
    fn jsonl_non_object_line() {
        let err = load("m.jsonl", "{\"a\": 1}\n  [1, 2]\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::Syntax { line: 2, column: 3, message, .. } if message == "expected a JSON object"),
            "{err:?}"
        );
    }

    #[test]
    fn jsonl_not_numeric_names_line() {
        let err =
            load("m.jsonl", "{\"a\": 1}\n{\"a\": 2, \"phase\": \"train\"}\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::NotNumeric { line: Some(2), column: None, key, .. } if key == "phase"),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .ends_with("m.jsonl:2: metric 'phase' is not a number: \"train\""));
    }

    #[test]
    fn jsonl_bad_step_names_line() {
        let err = load("m.jsonl", "{\"step\": \"one\", \"a\": 1}\n").expect_err("fail");
        assert!(
            matches!(&err, MetricsError::BadStep { line: Some(1), column: None, value, .. } if value == "\"one\""),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .ends_with("m.jsonl:1: step is not an integer: \"one\""));
        let err = load("m.jsonl", "{\"step\": 18446744073709551615}\n").expect_err("fail");
        assert!(matches!(err, MetricsError::BadStep { .. }), "{err:?}");
    }

    #[test]
    fn jsonl_invalid_utf8_position() {
        let (_dir, path) = write_file("m.jsonl", b"{\"a\": 1}\n{\"\xc3\xa9\": \xff}\n");
        let err = load_metrics_file(&path).expect_err("fail");
        assert!(
            matches!(
                err,
                MetricsError::Syntax {
                    line: 2,
                    column: 7,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn lenient_keeps_good_lines() {
        let input =
            "{\"loss\": 1.0}\nnot json\n{\"loss\": \"x\"}\n\n{\"loss\": 0.5}\n{\"step\": 1.5}\n";
        let (m, errors) = parse_jsonl_lenient(Cursor::new(input), Path::new("log.jsonl"));
        // Steps are record indexes, bad lines included.
        assert_eq!(points(&m, "loss"), [(0, 1.0), (3, 0.5)]);
        let lines: Vec<Option<usize>> = errors
            .iter()
            .map(|e| match e {
                MetricsError::Syntax { line, .. } => Some(*line),
                MetricsError::NotNumeric { line, .. } | MetricsError::BadStep { line, .. } => *line,
                _ => None,
            })
            .collect();
        assert_eq!(lines, [Some(2), Some(3), Some(6)]);
        assert!(matches!(errors[0], MetricsError::Syntax { column: 2, .. }));
        assert!(matches!(errors[1], MetricsError::NotNumeric { .. }));
        assert!(matches!(errors[2], MetricsError::BadStep { .. }));
    }

    #[test]
    fn lenient_reports_read_errors() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let reader = std::io::Read::chain(Cursor::new("{\"a\": 1}\n"), Failing);
        let (m, errors) = parse_jsonl_lenient(BufReader::new(reader), Path::new("x.jsonl"));
        assert_eq!(points(&m, "a"), [(0, 1.0)]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .to_string()
            .ends_with("x.jsonl: cannot read: disk on fire"));
    }

    #[test]
    fn unknown_format_and_io() {
        for name in ["m.txt", "metrics", "m.parquet"] {
            let err = load(name, "{}").expect_err(name);
            assert!(matches!(err, MetricsError::UnknownFormat { .. }), "{name}");
            assert!(err.to_string().ends_with(&format!(
                "{name}: unknown metrics format (expected .json, .yaml, .yml, .csv, .tsv, .jsonl or .ndjson)"
            )));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["a.json", "a.yaml", "a.csv", "a.jsonl"] {
            let path = dir.path().join(name);
            let err = load_metrics_file(&path).expect_err(name);
            assert!(matches!(err, MetricsError::Io { .. }), "{name}: {err:?}");
            assert!(err
                .to_string()
                .starts_with(&format!("{}: cannot read: ", path.display())));
        }
    }

    #[test]
    fn strip_locations_only_removes_positions() {
        assert_eq!(
            strip_locations("bad at line 3 column 4, while parsing at line 1 column 1"),
            "bad, while parsing"
        );
        assert_eq!(strip_locations("at line x\nmore"), "at line x; more");
    }

    proptest! {
        #[test]
        fn lenient_never_panics(input in any::<String>()) {
            let (_, errors) = parse_jsonl_lenient(Cursor::new(input.as_bytes()), Path::new("p.jsonl"));
            for err in &errors {
                prop_assert!(!err.to_string().contains('\n'));
            }
        }

        #[test]
        fn lenient_never_panics_on_bytes(input in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_jsonl_lenient(Cursor::new(input), Path::new("p.jsonl"));
        }

        #[test]
        fn lenient_never_panics_on_json_like_lines(
            lines in prop::collection::vec(
                r#"[{}\[\]":,0-9a-z. \-eE]{0,30}"#,
                0..20,
            )
        ) {
            let input = lines.join("\n");
            let _ = parse_jsonl_lenient(Cursor::new(input), Path::new("p.jsonl"));
        }

        #[test]
        fn lenient_reads_generated_records(
            rows in prop::collection::vec(
                (prop::option::of(any::<i64>()), -1e9f64..1e9),
                0..30,
            )
        ) {
            let mut input = String::new();
            for (step, value) in &rows {
                match step {
                    Some(step) => input.push_str(&format!("{{\"step\": {step}, \"v\": {value:?}}}\n")),
                    None => input.push_str(&format!("{{\"v\": {value:?}}}\n")),
                }
            }
            let (m, errors) = parse_jsonl_lenient(Cursor::new(input), Path::new("p.jsonl"));
            prop_assert!(errors.is_empty(), "{:?}", errors);
            let expected: Vec<(i64, f64)> = rows
                .iter()
                .enumerate()
                .map(|(i, (step, value))| (step.unwrap_or(i as i64), *value))
                .collect();
            let actual: Vec<(i64, f64)> = m
                .get("v")
                .map(|s| s.points.iter().map(|p| (p.step, p.value)).collect())
                .unwrap_or_default();
            // serde_json (without its `float_roundtrip` feature) may read a
            // float one unit in the last place away from the shortest repr.
            prop_assert_eq!(actual.len(), expected.len());
            for ((step, value), (want_step, want_value)) in actual.into_iter().zip(expected) {
                prop_assert_eq!(step, want_step);
                prop_assert!((value - want_value).abs() <= want_value.abs() * 4.0 * f64::EPSILON);
            }
        }
    }
}
