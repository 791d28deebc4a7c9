//! Run parameters: loading them from files and editing them from the command line.
//!
//! A run's parameters (learning rate, optimizer settings, model size, ...) are
//! part of what makes two runs different, so cairn records them next to the
//! run's content and shows them in diffs. Users keep them in whatever format
//! their training code already reads — YAML, JSON or TOML — and override single
//! values with `--param KEY=VALUE`. This module turns all of those into one
//! canonical shape, a nested JSON object ([`Params`]), so the rest of cairn
//! only deals with a single representation:
//!
//! * [`load_params_file`] reads a file by its extension and converts it,
//!   reporting syntax errors as `path:line:column: message`;
//! * [`parse_assignment`], [`set_path`] and [`merge`] apply command-line
//!   overrides on top of a file;
//! * [`flatten`] lists the leaves under dotted names (`optimizer.lr`), which is
//!   the form used for display and comparison.
//!
//! JSON cannot hold every value the other formats can, so conversion is lossy
//! in a few documented places: non-finite floats become the strings `"nan"`,
//! `"inf"` and `"-inf"`, TOML datetimes become their RFC 3339 text, and YAML
//! keys that are not strings are rendered as strings.

use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

/// Run parameters: a nested JSON object whose leaves are the parameter values.
pub type Params = Map<String, Value>;

/// The deepest key accepted by [`parse_assignment`], in dot-separated segments.
///
/// It matches the nesting limit of the file parsers, so a value set from the
/// command line is never deeper than one a file could hold.
const MAX_KEY_SEGMENTS: usize = 128;

/// Why parameters could not be loaded or an assignment could not be parsed.
///
/// Every message is a single line that names the file (or the `--param`
/// argument) it is about.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file could not be read (missing, unreadable, not UTF-8, ...).
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, JSON or TOML. `line` and `column` are 1-based.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file parsed, but its top level is not a mapping (e.g. a list).
    #[error(
        "{}: expected a mapping of parameter names to values at the top level",
        .path.display()
    )]
    NotAMapping { path: PathBuf },
    /// The file's extension is not one of the supported formats.
    #[error(
        "{}: unknown params format (expected .yaml, .yml, .json or .toml)",
        .path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// A `--param KEY=VALUE` argument is malformed.
    #[error("--param {arg}: {reason}")]
    BadAssignment { arg: String, reason: String },
}

/// The syntax of a parameters file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsFormat {
    /// `.yaml` or `.yml`.
    Yaml,
    /// `.json`.
    Json,
    /// `.toml`.
    Toml,
}

impl ParamsFormat {
    /// The format a file's extension names (case-insensitive), if any.
    pub fn from_path(path: &Path) -> Option<ParamsFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(ParamsFormat::Yaml),
            "json" => Some(ParamsFormat::Json),
            "toml" => Some(ParamsFormat::Toml),
            _ => None,
        }
    }
}

/// Loads a parameters file, choosing the parser by extension (case-insensitive):
/// `.yaml`/`.yml`, `.json` or `.toml`.
///
/// The top level must be a mapping; an empty (or comments-only) YAML file is an
/// empty mapping. YAML anchors and `<<` merge keys are resolved, YAML tags are
/// dropped (the tagged value is kept), and YAML keys that are not strings are
/// rendered as strings (`1`, `true`, `null`). Non-finite floats become the
/// strings `"nan"`, `"inf"` and `"-inf"`; TOML datetimes become strings. A
/// leading UTF-8 byte-order mark is ignored.
pub fn load_params_file(path: &Path) -> Result<Params, ParamsError> {
    let format = ParamsFormat::from_path(path).ok_or_else(|| ParamsError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let bytes = std::fs::read(path).map_err(|source| ParamsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_params(&bytes, format, path)
}

/// Parses the content of a parameters file in `format`, exactly as [`load_params_file`] does
/// once it has read the file; `path` only names the source in errors. Content that is not
/// UTF-8 is an [`ParamsError::Io`] error, as it is when reading a file.
pub fn parse_params(
    bytes: &[u8],
    format: ParamsFormat,
    path: &Path,
) -> Result<Params, ParamsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParamsError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        ParamsFormat::Yaml => parse_yaml(text, path),
        ParamsFormat::Json => parse_json(text, path),
        ParamsFormat::Toml => parse_toml(text, path),
    }
}

fn parse_yaml(text: &str, path: &Path) -> Result<Params, ParamsError> {
    let syntax = |err: serde_yaml::Error| {
        let (line, column) = err
            .location()
            .map_or((1, 1), |loc| (loc.line().max(1), loc.column().max(1)));
        ParamsError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: strip_locations(&err.to_string()),
        }
    };
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).map_err(syntax)?;
    value.apply_merge().map_err(syntax)?;
    match untag_yaml(value) {
        serde_yaml::Value::Null => Ok(Params::new()),
        serde_yaml::Value::Mapping(mapping) => Ok(yaml_mapping_to_json(mapping)),
        _ => Err(ParamsError::NotAMapping {
            path: path.to_path_buf(),
        }),
    }
}

fn parse_json(text: &str, path: &Path) -> Result<Params, ParamsError> {
    let value: Value = serde_json::from_str(text).map_err(|err| ParamsError::Syntax {
        path: path.to_path_buf(),
        line: err.line().max(1),
        column: err.column().max(1),
        message: strip_locations(&err.to_string()),
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ParamsError::NotAMapping {
            path: path.to_path_buf(),
        }),
    }
}

fn parse_toml(text: &str, path: &Path) -> Result<Params, ParamsError> {
    let table: toml::Table = toml::from_str(text).map_err(|err| {
        let (line, column) = err
            .span()
            .map_or((1, 1), |span| line_column(text, span.start));
        ParamsError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: one_line(err.message()),
        }
    })?;
    Ok(toml_table_to_json(table))
}

/// Removes the tags around a YAML value (`!foo value` becomes `value`).
fn untag_yaml(mut value: serde_yaml::Value) -> serde_yaml::Value {
    while let serde_yaml::Value::Tagged(tagged) = value {
        value = tagged.value;
    }
    value
}

fn yaml_to_json(value: serde_yaml::Value) -> Value {
    match untag_yaml(value) {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => yaml_number_to_json(&n),
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(yaml_to_json).collect())
        }
        serde_yaml::Value::Mapping(mapping) => Value::Object(yaml_mapping_to_json(mapping)),
        // `untag_yaml` removed every tag; convert the (impossible) rest anyway.
        serde_yaml::Value::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn yaml_number_to_json(n: &serde_yaml::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Number(Number::from(i))
    } else if let Some(u) = n.as_u64() {
        Value::Number(Number::from(u))
    } else if let Some(f) = n.as_f64() {
        float_to_json(f)
    } else {
        Value::String(n.to_string())
    }
}

fn yaml_mapping_to_json(mapping: serde_yaml::Mapping) -> Params {
    let mut out = Params::new();
    for (key, value) in mapping {
        out.insert(yaml_key_to_string(key), yaml_to_json(value));
    }
    out
}

/// Renders a YAML mapping key as a string: strings as they are, scalars as
/// their text (`1`, `2.5`, `true`, `null`), collections as compact JSON.
fn yaml_key_to_string(key: serde_yaml::Value) -> String {
    match untag_yaml(key) {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Null => "null".to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => match yaml_number_to_json(&n) {
            Value::String(s) => s,
            other => other.to_string(),
        },
        other => yaml_to_json(other).to_string(),
    }
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(Number::from(i)),
        toml::Value::Float(f) => float_to_json(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(toml_table_to_json(table)),
    }
}

fn toml_table_to_json(table: toml::Table) -> Params {
    table
        .into_iter()
        .map(|(key, value)| (key, toml_to_json(value)))
        .collect()
}

/// A float as a JSON value; JSON has no NaN or infinities, so those become
/// the strings `"nan"`, `"inf"` and `"-inf"`.
fn float_to_json(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String("nan".to_string()),
        None if f > 0.0 => Value::String("inf".to_string()),
        None => Value::String("-inf".to_string()),
    }
}

/// The 1-based line and column (in characters) of a byte offset in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Joins a possibly multi-line parser message into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Removes the " at line N column M" parts that serde_json and serde_yaml put
/// in their messages, since the error reports the position itself.
fn strip_locations(message: &str) -> String {
    const MARKER: &str = " at line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(MARKER) {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let after_marker = tail.get(MARKER.len()..).unwrap_or("");
        match location_len(after_marker) {
            Some(len) => rest = after_marker.get(len..).unwrap_or(""),
            None => {
                out.push_str(MARKER);
                rest = after_marker;
            }
        }
    }
    out.push_str(rest);
    one_line(&out)
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

/// Parses one `--param KEY=VALUE` argument into a key path and a value.
///
/// The key (surrounding whitespace trimmed) is split on `.` into path
/// segments; an empty key or an empty segment (`a..b`, `.a`) is an error. The
/// value (surrounding whitespace trimmed) becomes, in this order of preference:
/// the string between matching single or double quotes if the whole value is
/// quoted (no escapes are interpreted); `true` or `false`; `null`; an integer;
/// a finite float; otherwise the text itself as a string (so `nan`, `inf` and
/// an empty value stay strings).
///
/// `lr=0.01` gives `(["lr"], 0.01)`, `optimizer.name=adam` gives
/// `(["optimizer", "name"], "adam")`.
pub fn parse_assignment(arg: &str) -> Result<(Vec<String>, Value), ParamsError> {
    let bad = |reason: String| ParamsError::BadAssignment {
        arg: arg.to_string(),
        reason,
    };
    let Some((key, raw_value)) = arg.split_once('=') else {
        return Err(bad("expected KEY=VALUE".to_string()));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("empty key before '='".to_string()));
    }
    let segments: Vec<String> = key.split('.').map(str::to_string).collect();
    if segments.iter().any(String::is_empty) {
        return Err(bad(format!("empty segment in key '{key}'")));
    }
    if segments.len() > MAX_KEY_SEGMENTS {
        return Err(bad(format!(
            "key has {} segments (at most {MAX_KEY_SEGMENTS} allowed)",
            segments.len()
        )));
    }
    Ok((segments, parse_scalar(raw_value.trim())))
}

fn parse_scalar(text: &str) -> Value {
    if let Some(inner) = strip_matching_quotes(text) {
        return Value::String(inner.to_string());
    }
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(Number::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::Number(Number::from(u));
    }
    if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn strip_matching_quotes(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let (&first, &last) = (bytes.first()?, bytes.last()?);
    if bytes.len() >= 2 && first == last && (first == b'"' || first == b'\'') {
        // Both ends are ASCII quotes, so these offsets are character boundaries.
        text.get(1..text.len() - 1)
    } else {
        None
    }
}

/// Sets the value at `path`, creating intermediate objects as needed.
///
/// A non-object found on the way (e.g. `a = 1` when setting `a.b`) is
/// replaced by an object. An existing key keeps its position; a new key is
/// appended. An empty path changes nothing.
pub fn set_path(params: &mut Params, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = params;
    for segment in parents {
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Params::new()));
        if !entry.is_object() {
            *entry = Value::Object(Params::new());
        }
        current = match entry {
            Value::Object(map) => map,
            // Made an object just above.
            _ => return,
        };
    }
    current.insert(last.clone(), value);
}

/// Deep-merges `overlay` into `base`: where both hold an object under the same
/// key the objects are merged recursively, otherwise the overlay's value
/// replaces the base's (arrays are replaced, not concatenated).
pub fn merge(base: &mut Params, overlay: Params) {
    for (key, value) in overlay {
        if let Value::Object(overlay_map) = value {
            if let Some(Value::Object(base_map)) = base.get_mut(&key) {
                merge(base_map, overlay_map);
                continue;
            }
            base.insert(key, Value::Object(overlay_map));
        } else {
            base.insert(key, value);
        }
    }
}

/// The value at `path`, if the params hold one there.
pub fn get_path<'a>(params: &'a Params, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut current = params;
    for segment in parents {
        current = current.get(segment)?.as_object()?;
    }
    current.get(last)
}

/// A params file rewritten with new values (see [`rewrite_params`]).
#[derive(Debug, Clone)]
pub struct Rewritten {
    /// The new content.
    pub bytes: Vec<u8>,
    /// Whether the file was edited line by line, keeping its layout and comments; false when
    /// it had to be written anew from its values (a YAML or TOML file then loses its comments).
    pub in_place: bool,
}

/// Rewrites the content of a params file in `format` with each `(path, value)` set, keeping
/// the format. YAML and TOML files are edited in place, line by line, when every value to set
/// is a one-line scalar (comments and layout are kept); otherwise, and for JSON, the file is
/// written anew from its values. The result is always checked: it parses to exactly the
/// file's params with the values set.
pub fn rewrite_params(
    bytes: &[u8],
    format: ParamsFormat,
    path: &Path,
    sets: &[(Vec<String>, Value)],
) -> Result<Rewritten, ParamsError> {
    let mut expected = parse_params(bytes, format, path)?;
    for (p, v) in sets {
        set_path(&mut expected, p, v.clone());
    }
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let checks =
        |out: &str| parse_params(out.as_bytes(), format, path).is_ok_and(|got| got == expected);
    let edited = match format {
        ParamsFormat::Yaml => edit_lines(text, sets, yaml_line, yaml_scalar),
        ParamsFormat::Toml => edit_lines(text, sets, toml_line, toml_scalar),
        ParamsFormat::Json => None,
    };
    if let Some(out) = edited.filter(|o| checks(o)) {
        return Ok(Rewritten {
            bytes: out.into_bytes(),
            in_place: true,
        });
    }
    let cannot = |reason: String| ParamsError::Syntax {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        message: format!("cannot write the overridden values: {reason}"),
    };
    let out = match format {
        ParamsFormat::Json => {
            serde_json::to_string_pretty(&expected).map_err(|e| cannot(e.to_string()))? + "\n"
        }
        ParamsFormat::Yaml => {
            serde_yaml::to_string(&expected).map_err(|e| cannot(e.to_string()))?
        }
        ParamsFormat::Toml => {
            toml::to_string_pretty(&expected).map_err(|e| cannot(e.to_string()))?
        }
    };
    if !checks(&out) {
        return Err(cannot(
            "the values cannot be represented in this format".into(),
        ));
    }
    Ok(Rewritten {
        bytes: out.into_bytes(),
        in_place: false,
    })
}

/// One line of a YAML or TOML file, as far as [`edit_lines`] understands it.
enum Line {
    /// Blank or a comment: skipped.
    Skip,
    /// Opens a section at this path (a TOML table header).
    Section(Option<Vec<String>>),
    /// `key: value` (or `key = value`) with this indentation; `value` is the byte range of the
    /// value text on the line (empty when the value follows on the next lines).
    Key {
        indent: usize,
        key: String,
        value: std::ops::Range<usize>,
    },
    /// Anything else: the edit gives up on the file.
    Other,
}

/// Sets one-line scalar values in place: finds each key's line and replaces its value text,
/// keeping what follows (a comment). `None` when a key is not found on a line of its own.
fn edit_lines(
    text: &str,
    sets: &[(Vec<String>, Value)],
    parse: fn(&str) -> Line,
    render: fn(&Value) -> Option<String>,
) -> Option<String> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    for (path, value) in sets {
        let rendered = render(value)?;
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut section: Vec<String> = Vec::new();
        let mut in_section = true;
        let mut found = false;
        for line in lines.iter_mut() {
            match parse(line) {
                Line::Skip => {}
                Line::Other => return None,
                Line::Section(s) => {
                    in_section = s.is_some();
                    section = s.unwrap_or_default();
                    stack.clear();
                }
                Line::Key { indent, key, value } => {
                    if !in_section {
                        continue;
                    }
                    while stack.last().is_some_and(|(i, _)| *i >= indent) {
                        stack.pop();
                    }
                    stack.push((indent, key));
                    let here: Vec<&String> =
                        section.iter().chain(stack.iter().map(|(_, k)| k)).collect();
                    if here.len() == path.len()
                        && here.iter().zip(path).all(|(a, b)| *a == b)
                        && !value.is_empty()
                    {
                        line.replace_range(value, &rendered);
                        found = true;
                        break;
                    }
                }
            }
        }
        if !found {
            return None;
        }
    }
    Some(lines.concat())
}

/// The end of a value's text on a line: before a ` #` comment outside quotes, trimmed.
fn value_end(line: &str, start: usize) -> usize {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut end = line.trim_end_matches(['\n', '\r']).len();
    let mut i = start;
    while i < end {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'#' && (i == start || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                end = i;
                break;
            }
            None => {}
        }
        i += 1;
    }
    start + line[start..end].trim_end().len()
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn yaml_line(line: &str) -> Line {
    let body = line.trim_end_matches(['\n', '\r']);
    let trimmed = body.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Skip;
    }
    if trimmed.starts_with("---") && body.trim() == "---" {
        return Line::Skip;
    }
    let indent = body.len() - trimmed.len();
    let Some(colon) = trimmed.find(':') else {
        return Line::Other;
    };
    let key = &trimmed[..colon];
    if !is_plain_key(key) {
        return Line::Other;
    }
    let after = &trimmed[colon + 1..];
    if !after.is_empty() && !after.starts_with([' ', '\t']) {
        return Line::Other;
    }
    let start = indent + colon + 1 + (after.len() - after.trim_start().len());
    let end = value_end(line, start);
    let value = &line[start..end];
    if value.starts_with(['|', '>', '&', '*', '!', '{', '[']) {
        return Line::Other;
    }
    Line::Key {
        indent,
        key: key.to_string(),
        value: start..end,
    }
}

fn toml_line(line: &str) -> Line {
    let body = line.trim_end_matches(['\n', '\r']);
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Line::Skip;
    }
    if trimmed.starts_with("[[") {
        return Line::Section(None);
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Line::Other;
        };
        let name: Vec<String> = rest[..close]
            .split('.')
            .map(|s| s.trim().to_string())
            .collect();
        if !name.iter().all(|s| is_plain_key(s)) {
            return Line::Section(None);
        }
        return Line::Section(Some(name));
    }
    let indent = body.len() - body.trim_start().len();
    let Some(eq) = body.find('=') else {
        return Line::Other;
    };
    let key = body[..eq].trim();
    if !is_plain_key(key) {
        return Line::Other;
    }
    let after = &body[eq + 1..];
    let start = eq + 1 + (after.len() - after.trim_start().len());
    let end = value_end(line, start);
    // Keys of one table are all at the same level, whatever their indentation.
    let _ = indent;
    Line::Key {
        indent: 0,
        key: key.to_string(),
        value: start..end,
    }
}

fn yaml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::String(_) => Some(v.to_string()),
        _ => None,
    }
}

fn toml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Bool(_) | Value::Number(_) | Value::String(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Lists the leaves of `params` in order, under their keys joined with `.`
/// (`{"optimizer": {"lr": 0.1}}` gives `[("optimizer.lr", 0.1)]`).
///
/// Arrays are leaves, and so is an empty object (so that it is not lost).
pub fn flatten(params: &Params) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    flatten_into(params, None, &mut out);
    out
}

fn flatten_into(map: &Params, prefix: Option<&str>, out: &mut Vec<(String, Value)>) {
    for (key, value) in map {
        let name = match prefix {
            Some(prefix) => format!("{prefix}.{key}"),
            None => key.clone(),
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten_into(inner, Some(&name), out),
            _ => out.push((name, value.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, format: ParamsFormat, sets: &[(&str, Value)]) -> Rewritten {
        let sets: Vec<(Vec<String>, Value)> = sets
            .iter()
            .map(|(k, v)| (k.split('.').map(str::to_string).collect(), v.clone()))
            .collect();
        rewrite_params(text.as_bytes(), format, Path::new("p"), &sets).unwrap()
    }

    #[test]
    fn rewriting_keeps_comments_when_it_can() {
        let yaml = "# top\ntrain:\n  lr: 0.1  # rate\n  name: 'sgd'\nlr: 5\n";
        let r = set(
            yaml,
            ParamsFormat::Yaml,
            &[
                ("train.lr", serde_json::json!(0.3)),
                ("train.name", serde_json::json!("adam")),
            ],
        );
        assert!(r.in_place);
        assert_eq!(
            String::from_utf8(r.bytes).unwrap(),
            "# top\ntrain:\n  lr: 0.3  # rate\n  name: \"adam\"\nlr: 5\n"
        );
        let toml = "a = 1 # one\n[train]\nlr = 0.1 # rate\n[other]\nlr = 2\n";
        let r = set(
            toml,
            ParamsFormat::Toml,
            &[("train.lr", serde_json::json!(0.3))],
        );
        assert!(r.in_place);
        assert_eq!(
            String::from_utf8(r.bytes).unwrap(),
            "a = 1 # one\n[train]\nlr = 0.3 # rate\n[other]\nlr = 2\n"
        );
    }

    #[test]
    fn rewriting_falls_back_to_the_values() {
        // A new key, and a flow mapping, cannot be edited in place.
        let r = set(
            "lr: 0.1 # c\n",
            ParamsFormat::Yaml,
            &[("momentum", serde_json::json!(0.9))],
        );
        assert!(!r.in_place);
        let back = parse_params(&r.bytes, ParamsFormat::Yaml, Path::new("p")).unwrap();
        assert_eq!(back["momentum"], 0.9);
        assert_eq!(back["lr"], 0.1);
        let r = set(
            "train: {lr: 0.1}\n",
            ParamsFormat::Yaml,
            &[("train.lr", serde_json::json!(2))],
        );
        let back = parse_params(&r.bytes, ParamsFormat::Yaml, Path::new("p")).unwrap();
        assert_eq!(back["train"]["lr"], 2);
        let r = set(
            "{\"lr\": 1}",
            ParamsFormat::Json,
            &[("lr", serde_json::json!(2))],
        );
        assert_eq!(String::from_utf8(r.bytes).unwrap(), "{\n  \"lr\": 2\n}\n");
        // TOML has no null.
        let e = rewrite_params(
            b"lr = 1\n",
            ParamsFormat::Toml,
            Path::new("p.toml"),
            &[(vec!["lr".into()], Value::Null)],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("p.toml:"), "{e}");
    }
    use proptest::prelude::*;
    use serde_json::json;
    use std::io::Write;

    /// Writes `content` to a temporary file named `name`; keep the dir alive.
    fn write_file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(content.as_bytes()).expect("write");
        (dir, path)
    }

    fn load(name: &str, content: &str) -> Result<Params, ParamsError> {
        let (_dir, path) = write_file(name, content);
        load_params_file(&path)
    }

    fn obj(value: Value) -> Params {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn syntax_position(err: &ParamsError) -> (usize, usize) {
        match err {
            ParamsError::Syntax { line, column, .. } => (*line, *column),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn yaml_nested_and_typed() {
        let params = load(
            "p.yaml",
            "lr: 0.01\nepochs: 10\nname: run\nflag: true\nnothing: ~\n\
             optimizer:\n  name: adam\n  betas: [0.9, 0.999]\n",
        )
        .expect("load");
        assert_eq!(
            Value::Object(params),
            json!({
                "lr": 0.01, "epochs": 10, "name": "run", "flag": true, "nothing": null,
                "optimizer": {"name": "adam", "betas": [0.9, 0.999]}
            })
        );
    }

    #[test]
    fn yaml_keeps_key_order() {
        let params = load("p.yml", "z: 1\na: 2\nm: 3\n").expect("load");
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn yaml_non_string_keys_become_strings() {
        let params = load("p.yaml", "1: one\ntrue: yes\n~: nil\n2.5: x\n").expect("load");
        assert_eq!(
            Value::Object(params),
            json!({"1": "one", "true": "yes", "null": "nil", "2.5": "x"})
        );
    }

    #[test]
    fn yaml_non_finite_floats_become_strings() {
        let params = load("p.yaml", "a: .nan\nb: .inf\nc: -.inf\nd: [.NaN]\n").expect("load");
        assert_eq!(
            Value::Object(params),
            json!({"a": "nan", "b": "inf", "c": "-inf", "d": ["nan"]})
        );
    }

    #[test]
    fn yaml_tags_anchors_and_merge_keys() {
        let params = load(
            "p.yaml",
            "base: &base\n  lr: 0.1\n  wd: 0.0\nrun:\n  <<: *base\n  lr: 0.2\ntagged: !custom 5\n",
        )
        .expect("load");
        assert_eq!(params["run"], json!({"lr": 0.2, "wd": 0.0}));
        assert_eq!(params["tagged"], json!(5));
    }

    #[test]
    fn yaml_empty_and_comment_only_files_are_empty_maps() {
        assert!(load("p.yaml", "").expect("empty").is_empty());
        assert!(load("p.yaml", "# nothing here\n")
            .expect("comment")
            .is_empty());
    }

    #[test]
    fn yaml_syntax_error_has_position() {
        let err = load("p.yaml", "a: 1\nb: [1, 2\nc: 3\n").expect_err("must fail");
        let (line, column) = syntax_position(&err);
        assert!(line >= 2, "line {line}");
        assert!(column >= 1);
        let text = err.to_string();
        assert!(
            text.contains(&format!("p.yaml:{line}:{column}: ")),
            "{text}"
        );
        assert!(!text.contains(" at line "), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn yaml_bad_indentation_position_is_exact() {
        // The stray key on line 3 is at column 2.
        let err = load("p.yaml", "a:\n  b: 1\n c: 2\n").expect_err("must fail");
        assert_eq!(syntax_position(&err), (3, 2), "{err}");
    }

    #[test]
    fn yaml_top_level_list_is_not_a_mapping() {
        let err = load("p.yaml", "- 1\n- 2\n").expect_err("must fail");
        assert!(matches!(err, ParamsError::NotAMapping { .. }));
        assert!(err
            .to_string()
            .ends_with("p.yaml: expected a mapping of parameter names to values at the top level"));
    }

    #[test]
    fn json_nested_and_ordered() {
        let params = load(
            "p.json",
            r#"{"z": 1, "a": {"b": [1, 2], "c": "x"}, "big": 18446744073709551615}"#,
        )
        .expect("load");
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(keys, ["z", "a", "big"]);
        assert_eq!(params["a"], json!({"b": [1, 2], "c": "x"}));
        assert_eq!(params["big"], json!(u64::MAX));
    }

    #[test]
    fn json_with_byte_order_mark() {
        let params = load("p.json", "\u{feff}{\"a\": 1}").expect("load");
        assert_eq!(params["a"], json!(1));
    }

    #[test]
    fn json_syntax_error_position() {
        let err = load("p.json", "{\n  \"a\": 1,\n  \"b\": ]\n}").expect_err("must fail");
        assert_eq!(syntax_position(&err), (3, 8));
        let text = err.to_string();
        assert!(text.ends_with("p.json:3:8: expected value"), "{text}");
    }

    #[test]
    fn json_empty_file_is_a_syntax_error() {
        let err = load("p.json", "").expect_err("must fail");
        assert_eq!(syntax_position(&err), (1, 1));
    }

    #[test]
    fn json_top_level_array_is_not_a_mapping() {
        let err = load("p.json", "[1, 2]").expect_err("must fail");
        assert!(matches!(err, ParamsError::NotAMapping { .. }));
    }

    #[test]
    fn toml_nested_datetimes_and_specials() {
        let params = load(
            "p.toml",
            "lr = 0.01\nepochs = 3\nwhen = 1979-05-27T07:32:00Z\nday = 1979-05-27\n\
             a = nan\nb = inf\nc = -inf\n\n[optimizer]\nname = \"adam\"\nbetas = [0.9, 0.99]\n",
        )
        .expect("load");
        assert_eq!(
            Value::Object(params),
            json!({
                "lr": 0.01, "epochs": 3, "when": "1979-05-27T07:32:00Z", "day": "1979-05-27",
                "a": "nan", "b": "inf", "c": "-inf",
                "optimizer": {"name": "adam", "betas": [0.9, 0.99]}
            })
        );
    }

    #[test]
    fn toml_syntax_error_position() {
        let err = load("p.toml", "a = 1\nb = \"x\"\nc = = 2\n").expect_err("must fail");
        assert_eq!(syntax_position(&err), (3, 5), "{err}");
        let text = err.to_string();
        assert!(text.contains("p.toml:3:5: "), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn toml_error_column_counts_characters() {
        // "é" is two bytes but one column.
        let err = load("p.toml", "s = \"é\" x\n").expect_err("must fail");
        assert_eq!(syntax_position(&err), (1, 9), "{err}");
    }

    #[test]
    fn unknown_format() {
        for name in ["p.txt", "params", "p.ini"] {
            let err = load(name, "a: 1").expect_err("must fail");
            assert!(matches!(err, ParamsError::UnknownFormat { .. }), "{name}");
            assert!(err.to_string().ends_with(&format!(
                "{name}: unknown params format (expected .yaml, .yml, .json or .toml)"
            )));
        }
    }

    #[test]
    fn extension_is_case_insensitive() {
        let params = load("P.YML", "a: 1\n").expect("load");
        assert_eq!(params["a"], json!(1));
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.yaml");
        let err = load_params_file(&path).expect_err("must fail");
        assert!(matches!(err, ParamsError::Io { .. }));
        let text = err.to_string();
        assert!(text.starts_with(&format!("{}: cannot read: ", path.display())));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn invalid_utf8_is_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.json");
        std::fs::write(&path, b"{\"a\": \"\xff\"}").expect("write");
        let err = load_params_file(&path).expect_err("must fail");
        assert!(matches!(err, ParamsError::Io { .. }), "{err:?}");
    }

    #[test]
    fn assignment_values() {
        let cases = [
            ("lr=0.01", json!(0.01)),
            ("n=42", json!(42)),
            ("n=-7", json!(-7)),
            ("n=18446744073709551615", json!(u64::MAX)),
            ("x=1e-3", json!(0.001)),
            ("b=true", json!(true)),
            ("b=false", json!(false)),
            ("v=null", Value::Null),
            ("s=adam", json!("adam")),
            ("s=True", json!("True")),
            ("s=\"42\"", json!("42")),
            ("s='true'", json!("true")),
            ("s=\"\"", json!("")),
            ("s='mixed\"", json!("'mixed\"")),
            ("s=\"", json!("\"")),
            ("s=", json!("")),
            ("s=nan", json!("nan")),
            ("s=inf", json!("inf")),
            ("s=a=b", json!("a=b")),
            (" k = 3 ", json!(3)),
        ];
        for (arg, expected) in cases {
            let (_, value) = parse_assignment(arg).expect(arg);
            assert_eq!(value, expected, "{arg}");
        }
    }

    #[test]
    fn assignment_keys() {
        let (path, value) = parse_assignment("optimizer.name=adam").expect("parse");
        assert_eq!(path, ["optimizer", "name"]);
        assert_eq!(value, json!("adam"));
        let (path, _) = parse_assignment("lr=0.01").expect("parse");
        assert_eq!(path, ["lr"]);
    }

    #[test]
    fn assignment_errors() {
        let cases = [
            ("lr", "--param lr: expected KEY=VALUE"),
            ("=1", "--param =1: empty key before '='"),
            ("  =1", "--param   =1: empty key before '='"),
            ("a..b=1", "--param a..b=1: empty segment in key 'a..b'"),
            (".a=1", "--param .a=1: empty segment in key '.a'"),
            ("a.=1", "--param a.=1: empty segment in key 'a.'"),
        ];
        for (arg, message) in cases {
            let err = parse_assignment(arg).expect_err(arg);
            assert!(
                matches!(&err, ParamsError::BadAssignment { arg: a, .. } if a == arg),
                "{err:?}"
            );
            assert_eq!(err.to_string(), message);
        }
        let deep = format!("{}=1", vec!["k"; MAX_KEY_SEGMENTS + 1].join("."));
        assert!(matches!(
            parse_assignment(&deep),
            Err(ParamsError::BadAssignment { .. })
        ));
    }

    #[test]
    fn set_path_creates_and_replaces() {
        let mut params = obj(json!({"a": 1, "keep": {"x": 1}}));
        set_path(&mut params, &["a".into(), "b".into(), "c".into()], json!(2));
        set_path(&mut params, &["keep".into(), "y".into()], json!(3));
        set_path(&mut params, &["top".into()], json!("t"));
        set_path(&mut params, &[], json!("ignored"));
        assert_eq!(
            Value::Object(params),
            json!({"a": {"b": {"c": 2}}, "keep": {"x": 1, "y": 3}, "top": "t"})
        );
    }

    #[test]
    fn set_path_keeps_position_of_existing_key() {
        let mut params = obj(json!({"a": 1, "b": 2}));
        set_path(&mut params, &["a".into()], json!(9));
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn merge_is_deep_and_overlay_wins() {
        let mut base = obj(json!({
            "lr": 0.1,
            "opt": {"name": "sgd", "momentum": 0.9},
            "layers": [1, 2, 3],
            "scalar": 1
        }));
        let overlay = obj(json!({
            "lr": 0.2,
            "opt": {"name": "adam", "eps": 1e-8},
            "layers": [4],
            "scalar": {"now": "object"},
            "new": true
        }));
        merge(&mut base, overlay);
        assert_eq!(
            Value::Object(base),
            json!({
                "lr": 0.2,
                "opt": {"name": "adam", "momentum": 0.9, "eps": 1e-8},
                "layers": [4],
                "scalar": {"now": "object"},
                "new": true
            })
        );
    }

    #[test]
    fn merge_object_over_scalar_and_scalar_over_object() {
        let mut base = obj(json!({"a": {"x": 1}, "b": 1}));
        merge(&mut base, obj(json!({"a": 5, "b": {"y": 2}})));
        assert_eq!(Value::Object(base), json!({"a": 5, "b": {"y": 2}}));
    }

    #[test]
    fn flatten_joins_keys_in_order() {
        let params = obj(json!({
            "lr": 0.1,
            "opt": {"name": "adam", "betas": [0.9, 0.99], "inner": {"deep": null}},
            "empty": {},
            "last": "x"
        }));
        assert_eq!(
            flatten(&params),
            vec![
                ("lr".to_string(), json!(0.1)),
                ("opt.name".to_string(), json!("adam")),
                ("opt.betas".to_string(), json!([0.9, 0.99])),
                ("opt.inner.deep".to_string(), Value::Null),
                ("empty".to_string(), json!({})),
                ("last".to_string(), json!("x")),
            ]
        );
        assert!(flatten(&Params::new()).is_empty());
    }

    #[test]
    fn overrides_on_top_of_a_file() {
        let mut params = load("p.yaml", "opt:\n  lr: 0.1\n  name: sgd\n").expect("load");
        for arg in ["opt.lr=0.5", "opt.extra.depth=2"] {
            let (path, value) = parse_assignment(arg).expect("parse");
            set_path(&mut params, &path, value);
        }
        assert_eq!(
            flatten(&params),
            vec![
                ("opt.lr".to_string(), json!(0.5)),
                ("opt.name".to_string(), json!("sgd")),
                ("opt.extra.depth".to_string(), json!(2)),
            ]
        );
    }

    #[test]
    fn strip_locations_only_removes_positions() {
        assert_eq!(
            strip_locations("bad thing at line 3 column 4, while parsing at line 1 column 1"),
            "bad thing, while parsing"
        );
        assert_eq!(strip_locations("seen at line x"), "seen at line x");
        assert_eq!(strip_locations("at line 3 column"), "at line 3 column");
    }

    #[test]
    fn line_column_of_offsets() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4));
        // Inside the two-byte "é": rounds down to its start.
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 2));
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,5}"
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            "[a-z ]{0,8}".prop_map(Value::from),
            Just(Value::Null),
            prop::collection::vec(any::<i32>(), 0..3).prop_map(Value::from),
        ]
    }

    proptest! {
        #[test]
        fn assignment_round_trips_integers(n in any::<i64>(), key in segment()) {
            let (path, value) = parse_assignment(&format!("{key}={n}")).expect("parse");
            prop_assert_eq!(path, vec![key]);
            prop_assert_eq!(value, Value::from(n));
        }

        #[test]
        fn assignment_round_trips_floats(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
            // `{:?}` always writes a fraction or exponent, so it never reads back as an integer.
            let (_, value) = parse_assignment(&format!("x={f:?}")).expect("parse");
            prop_assert_eq!(value.as_f64(), Some(f));
            prop_assert!(value.is_f64());
        }

        #[test]
        fn assignment_round_trips_bools(b in any::<bool>()) {
            let (_, value) = parse_assignment(&format!("x={b}")).expect("parse");
            prop_assert_eq!(value, Value::Bool(b));
        }

        #[test]
        fn assignment_round_trips_quoted_strings(s in any::<String>()) {
            let (_, value) = parse_assignment(&format!("x=\"{s}\"")).expect("parse");
            prop_assert_eq!(value, Value::String(s));
        }

        #[test]
        fn assignment_round_trips_plain_words(s in "[a-zA-Z_][a-zA-Z0-9_-]{0,12}") {
            prop_assume!(!["true", "false", "null"].contains(&s.as_str()));
            prop_assume!(s.parse::<f64>().is_err());
            let (_, value) = parse_assignment(&format!("x={s}")).expect("parse");
            prop_assert_eq!(value, Value::String(s));
        }

        #[test]
        fn assignment_never_panics(arg in any::<String>()) {
            let _ = parse_assignment(&arg);
        }

        #[test]
        fn flatten_lists_every_set_path(
            entries in prop::collection::vec(
                (prop::collection::vec(segment(), 1..5), leaf()),
                0..12,
            )
        ) {
            // Keep only paths that neither equal nor prefix another kept path,
            // so that every set survives as its own leaf.
            let mut kept: Vec<(Vec<String>, Value)> = Vec::new();
            for (path, value) in entries {
                let clash = kept.iter().any(|(other, _)| {
                    other.starts_with(&path) || path.starts_with(other)
                });
                if !clash {
                    kept.push((path, value));
                }
            }
            let mut params = Params::new();
            for (path, value) in &kept {
                set_path(&mut params, path, value.clone());
            }
            let mut expected: Vec<(String, Value)> =
                kept.into_iter().map(|(path, value)| (path.join("."), value)).collect();
            let mut actual = flatten(&params);
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            actual.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(actual, expected);
        }
    }
}
