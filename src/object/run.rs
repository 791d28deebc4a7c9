//! Runs: one recorded training run, immutable once written.
//!
//! A run's content is a JSON document (UTF-8, no byte-order mark). Readers must accept and
//! ignore fields they do not know; `format` names the major version of this document, and a
//! reader refuses a run whose format is newer than it understands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DecodeError, Kind};
use crate::hash::ObjectId;

/// The run document version this build writes and the newest it reads.
pub const RUN_FORMAT: u32 = 1;

/// One training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Document version, [`RUN_FORMAT`].
    pub format: u32,
    /// Parent runs (the branch tip the run was committed on, if any).
    #[serde(default)]
    pub parents: Vec<ObjectId>,
    /// The experiment branch the run was committed on.
    #[serde(default)]
    pub branch: Option<String>,
    /// The user's message.
    #[serde(default)]
    pub message: String,
    /// Who committed the run: `Name <email>`.
    #[serde(default)]
    pub author: String,
    /// Start time, milliseconds since the Unix epoch (UTC).
    pub started_at: i64,
    /// End time, milliseconds since the Unix epoch (UTC).
    pub ended_at: i64,
    /// The host the run was committed on.
    #[serde(default)]
    pub host: String,
    /// The training command, when known.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Working folder of the command, when known.
    #[serde(default)]
    pub cwd: Option<String>,
    /// How the run ended.
    #[serde(default)]
    pub status: RunStatus,
    /// The command's exit code, when a command ran.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The code the run was trained with.
    #[serde(default)]
    pub code: Option<CodeState>,
    /// Hyper-parameters: a nested JSON object.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Metrics by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Named data snapshots.
    #[serde(default)]
    pub data: BTreeMap<String, DataRef>,
    /// Model files and other outputs, as one tree laid out by their paths.
    #[serde(default)]
    pub artifacts: Option<ArtifactsRef>,
    /// User tags (`key = value`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Recorded environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Outputs of a wrapped command that it did not write (they predate the run): not stored
    /// in `artifacts`. Written only when not empty, so runs without any encode as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<StaleOutput>,
}

/// An output a run did not write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleOutput {
    /// Its path in the artifacts tree (relative to the repository root).
    pub path: String,
    /// Its modification time, ms since the Unix epoch.
    pub modified_at: i64,
}

/// How a run ended. Stored as its name (`completed`, `failed`, `killed`); a name this build
/// does not know (written by a newer cairn) is kept as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    /// The command exited with status 0, or the run was recorded by hand.
    #[default]
    Completed,
    /// The command exited with another status.
    Failed,
    /// The command was ended by a signal, or abandoned and salvaged.
    Killed,
    /// A status this build does not know.
    Other(String),
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
            RunStatus::Other(s) => s,
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> RunStatus {
        match s {
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "killed" => RunStatus::Killed,
            other => RunStatus::Other(other.to_string()),
        }
    }
}

impl From<&str> for RunStatus {
    fn from(s: &str) -> RunStatus {
        RunStatus::parse(s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RunStatus::parse(&String::deserialize(d)?))
    }
}

/// The code a run was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeState {
    /// Git state, when the code lives in a git repository.
    #[serde(default)]
    pub git: Option<GitInfo>,
    /// The snapshot of the code files (git-tracked files, or the whole folder without git).
    pub tree: ObjectId,
    /// Total bytes of the snapshot.
    pub size: u64,
    /// Number of files in the snapshot.
    #[serde(default)]
    pub files: u64,
    /// Where the snapshot's root sits relative to the repository root (`.` for the root).
    pub path: String,
}

/// Git state of the code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitInfo {
    /// HEAD commit (40 hex digits), absent on an unborn branch.
    #[serde(default)]
    pub commit: Option<String>,
    /// Checked-out branch, absent when detached.
    #[serde(default)]
    pub branch: Option<String>,
    /// Remote URL, with any credentials removed.
    #[serde(default)]
    pub remote_url: Option<String>,
    /// Whether tracked files differed from HEAD.
    pub dirty: bool,
    /// Blob holding the uncommitted changes as a unified diff.
    #[serde(default)]
    pub diff: Option<ObjectId>,
}

/// A metric's summary; the full series lives in a blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Value at the greatest step (null when not a finite number).
    pub last: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Number of points.
    pub count: u64,
    /// Greatest step.
    pub last_step: i64,
    /// Blob with the series as JSON `[[step, value], ...]`, when it has more than one point.
    #[serde(default)]
    pub series: Option<ObjectId>,
    /// A final value reported separately (a metrics file) under the name of a series, when it
    /// differs from the series' last value; absent otherwise (and in runs recorded before it).
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_value: Option<f64>,
}

/// A named data snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRef {
    /// `tree` for a folder, `file` for a single file.
    pub kind: String,
    /// The tree, or the file's blob / chunked object.
    pub id: ObjectId,
    /// Total bytes.
    pub size: u64,
    /// Number of files.
    pub files: u64,
    /// Path it was taken from, relative to the repository root, when inside it.
    #[serde(default)]
    pub path: Option<String>,
    /// For a single file: whether it was executable.
    #[serde(default)]
    pub executable: bool,
}

/// The artifacts tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactsRef {
    /// A tree laid out by the artifacts' paths relative to the repository root.
    pub tree: ObjectId,
    /// Total bytes.
    pub size: u64,
    /// Number of files.
    pub files: u64,
}

impl Run {
    /// The canonical content bytes (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail; fall back to an empty object defensively.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Decodes content bytes, refusing newer formats.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let run: Run =
            serde_json::from_slice(buf).map_err(|e| DecodeError::new(Kind::Run, e.to_string()))?;
        if run.format > RUN_FORMAT {
            return Err(DecodeError::new(
                Kind::Run,
                format!(
                    "run format {} is newer than this cairn understands ({RUN_FORMAT}); upgrade cairn",
                    run.format
                ),
            ));
        }
        Ok(run)
    }

    /// Every object id the run refers to directly.
    pub fn references(&self) -> Vec<ObjectId> {
        let mut out = self.parents.clone();
        if let Some(c) = &self.code {
            out.push(c.tree);
            if let Some(d) = c.git.as_ref().and_then(|g| g.diff) {
                out.push(d);
            }
        }
        out.extend(self.metrics.values().filter_map(|m| m.series));
        out.extend(self.data.values().map(|d| d.id));
        if let Some(a) = &self.artifacts {
            out.push(a.tree);
        }
        out
    }

    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_format_is_refused() {
        let doc = br#"{"format": 99, "started_at": 0, "ended_at": 0}"#;
        let e = Run::decode(doc).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        let ok = br#"{"format": 1, "started_at": 0, "ended_at": 5, "future_field": 1}"#;
        let r = Run::decode(ok).unwrap();
        assert_eq!(r.status, RunStatus::Completed);
        assert_eq!(Run::decode(&r.encode()).unwrap(), r);
    }
}
