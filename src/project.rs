//! The project file, `cairn.toml` at the repository root: defaults for `cairn run`.
//!
//! It names what a training command reads and writes (params files, data inputs, metrics files,
//! outputs) and which environment variables to record, so that `cairn run -- python train.py`
//! needs no flags. Paths in it are relative to the repository root. Command-line options add to
//! these defaults. The reference is in `docs/run.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The name of the project file, at the repository root.
pub const PROJECT_FILE: &str = "cairn.toml";

/// The project file's contents. Unknown top-level tables are ignored (other tools may keep
/// settings there); unknown keys inside `[run]` are errors, to catch typos.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Project {
    /// `[run]`: defaults for `cairn run`.
    #[serde(default)]
    pub run: RunDefaults,
}

/// `[run]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// The code folder to snapshot (`"."` by default), or `false` for none.
    #[serde(default)]
    pub code: Option<CodeSetting>,
    /// Params files, merged in order.
    #[serde(default)]
    pub params: Vec<PathBuf>,
    /// Metrics files, read when the command ends.
    #[serde(default)]
    pub metrics: Vec<PathBuf>,
    /// Data inputs by name.
    #[serde(default)]
    pub data: BTreeMap<String, PathBuf>,
    /// Outputs stored as artifacts when the command ends.
    #[serde(default)]
    pub outputs: Vec<PathBuf>,
    /// Environment variables to record besides the built-in list (`*` matches any text).
    #[serde(default)]
    pub env: Vec<String>,
    /// User tags, `key = "value"`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Commit onto this branch instead of the current one.
    #[serde(default)]
    pub branch: Option<String>,
}

/// `code = "src"` or `code = false`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CodeSetting {
    /// `true` for the repository root, `false` for no code snapshot.
    Enabled(bool),
    /// A folder relative to the repository root.
    Path(PathBuf),
}

impl Project {
    /// Reads `cairn.toml` in `root`; `None` when there is none.
    pub fn load(root: &Path) -> Result<Option<Project>> {
        let path = root.join(PROJECT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        Project::parse(&text, &path).map(Some)
    }

    /// Parses the text of a project file; `path` is used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Project> {
        let project: Project =
            toml::from_str(text).map_err(|e| crate::error::toml_error(path, text, &e))?;
        if let Some(b) = &project.run.branch {
            crate::refs::validate("branch", b)?;
        }
        Ok(project)
    }

    /// The commented example `cairn init` writes.
    pub fn example_text() -> &'static str {
        EXAMPLE
    }
}

const EXAMPLE: &str = r#"# cairn project file: defaults for `cairn run`, so that
#   cairn run -- python train.py
# needs no flags. Paths are relative to this folder (the repository root).
# Command-line options add to these defaults; `cairn run --help` describes each one.

[run]
# Code to snapshot when the command starts: a folder, or false for none.
# In a git repository only tracked files are taken, with the uncommitted diff.
# code = "."

# Params files (YAML, JSON or TOML), merged in order; --param KEY=VALUE overrides.
# The merged params are also passed to the command as a JSON file in $CAIRN_PARAMS.
# params = ["params.yaml"]

# Metrics files read when the command ends (JSON/YAML name -> number, CSV, JSONL),
# for numbers the command does not log as it goes: lines appended to the file named
# by $CAIRN_METRICS are always read, and need no entry here. A name found in both
# keeps its series of steps; a differing value from a file is recorded beside it.
# metrics = ["eval.json"]

# Outputs stored with the run when the command ends (files or folders).
# A missing output is a warning, not an error.
# outputs = ["model.pt", "outputs/"]

# Environment variables to record, besides the built-in list (CUDA_VISIBLE_DEVICES,
# PYTHONHASHSEED, OMP_NUM_THREADS, ...). `*` matches any text. Names containing
# KEY, SECRET, TOKEN, PASSWORD or CREDENTIAL are never recorded.
# env = ["WANDB_PROJECT", "MYAPP_*"]

# Commit runs onto this branch instead of the current one.
# branch = "experiments"

# Data inputs, snapshotted when the command ends: name = "path".
# [run.data]
# train = "data/train"
# val = "data/val"

# User tags recorded on every run.
# [run.tags]
# team = "vision"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_is_empty() {
        let p = Project::parse(EXAMPLE, Path::new("cairn.toml")).unwrap();
        assert!(p.run.params.is_empty() && p.run.code.is_none());
    }

    #[test]
    fn full_file() {
        let text = r#"
[run]
code = "src"
params = ["params.yaml"]
metrics = ["m.json"]
outputs = ["model.pt"]
env = ["A_*"]
branch = "exp"
[run.data]
train = "data/train"
[run.tags]
team = "x"
[other]
anything = 1
"#;
        let p = Project::parse(text, Path::new("cairn.toml")).unwrap();
        assert_eq!(p.run.code, Some(CodeSetting::Path("src".into())));
        assert_eq!(p.run.data["train"], PathBuf::from("data/train"));
        assert_eq!(p.run.branch.as_deref(), Some("exp"));
        let off = Project::parse("[run]\ncode = false\n", Path::new("c")).unwrap();
        assert_eq!(off.run.code, Some(CodeSetting::Enabled(false)));
    }

    #[test]
    fn typos_are_errors() {
        let e = Project::parse("[run]\noutput = [\"x\"]\n", Path::new("cairn.toml")).unwrap_err();
        assert!(e.to_string().contains("output"), "{e}");
        assert!(Project::parse("[run]\nbranch = \"a..b\"\n", Path::new("c")).is_err());
    }
}
