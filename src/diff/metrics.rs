//! Comparing metrics: last values, change, direction, and step series summaries.

use serde::Serialize;

use crate::hash::ObjectId;
use crate::object::{Kind, MetricSummary};
use crate::store::{Session, StoreError};

/// Whether larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Larger is better (accuracy, F1...).
    Higher,
    /// Smaller is better (loss, error...).
    Lower,
}

const LOWER: &[&str] = &[
    "loss",
    "err",
    "error",
    "mse",
    "mae",
    "rmse",
    "perplexity",
    "ppl",
    "wer",
    "cer",
    "latency",
    "nll",
];
const HIGHER: &[&str] = &[
    "acc",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "auc",
    "map",
    "bleu",
    "rouge",
    "iou",
    "dice",
    "r2",
    "score",
    "reward",
    "top1",
    "top5",
];

/// The direction of `name`: explicit lists first, then common names (`loss` lower, `acc`
/// higher), matched on the last dotted or underscored word.
pub fn direction(name: &str, higher: &[String], lower: &[String]) -> Option<Direction> {
    if higher.iter().any(|h| h == name) {
        return Some(Direction::Higher);
    }
    if lower.iter().any(|l| l == name) {
        return Some(Direction::Lower);
    }
    let lname = name.to_ascii_lowercase();
    let words: Vec<&str> = lname
        .split(['.', '_', '-', '/'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| LOWER.contains(w)) {
        return Some(Direction::Lower);
    }
    if words.iter().any(|w| HIGHER.contains(w)) {
        return Some(Direction::Higher);
    }
    None
}

/// A metric on one side.
#[derive(Debug, Clone, Serialize)]
pub struct MetricSide {
    /// Last value.
    pub last: Option<f64>,
    /// Number of points.
    pub count: u64,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Step of the best value (when the direction is known and it is a series).
    pub best_step: Option<i64>,
    /// The best value.
    pub best: Option<f64>,
    /// A terminal sparkline of the series.
    pub sparkline: Option<String>,
}

/// One metric compared.
#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    /// Metric name.
    pub name: String,
    /// In run A.
    pub a: Option<MetricSide>,
    /// In run B.
    pub b: Option<MetricSide>,
    /// B's last minus A's last.
    pub abs_change: Option<f64>,
    /// Relative change (abs_change / |A|).
    pub rel_change: Option<f64>,
    /// The metric's direction, when known.
    pub direction: Option<Direction>,
    /// `a`, `b` or `same`, when the direction is known.
    pub better: Option<&'static str>,
}

/// Reads a series blob: `[[step, value|null], ...]`.
pub fn load_series(
    session: &Session,
    id: &ObjectId,
) -> Result<Vec<(i64, Option<f64>)>, StoreError> {
    let raw = session.read_kind(id, Kind::Blob)?;
    serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
        id: *id,
        reason: format!("not a metric series: {e}"),
    })
}

/// Eight-level Unicode sparkline of `values`, resampled to at most `width` columns.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let vals: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if vals.is_empty() || width == 0 {
        return String::new();
    }
    let cols = vals.len().min(width);
    let mut buckets = Vec::with_capacity(cols);
    for c in 0..cols {
        let lo = c * vals.len() / cols;
        let hi = ((c + 1) * vals.len() / cols).max(lo + 1);
        let slice = &vals[lo..hi.min(vals.len())];
        buckets.push(slice.iter().sum::<f64>() / slice.len() as f64);
    }
    let min = buckets.iter().copied().fold(f64::INFINITY, f64::min);
    let max = buckets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    buckets
        .iter()
        .map(|v| {
            if max <= min {
                BARS[3]
            } else {
                let i = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
        })
        .collect()
}

fn side(
    session: &Session,
    m: &MetricSummary,
    dir: Option<Direction>,
) -> Result<MetricSide, StoreError> {
    let mut s = MetricSide {
        last: m.last,
        count: m.count,
        min: m.min,
        max: m.max,
        best_step: None,
        best: None,
        sparkline: None,
    };
    if let Some(id) = m.series {
        let series = load_series(session, &id)?;
        let values: Vec<f64> = series.iter().filter_map(|(_, v)| *v).collect();
        s.sparkline = Some(sparkline(&values, 24));
        if let Some(d) = dir {
            let mut best: Option<(i64, f64)> = None;
            for (step, v) in &series {
                let Some(v) = v else { continue };
                let better = match best {
                    None => true,
                    Some((_, b)) => match d {
                        Direction::Higher => *v > b,
                        Direction::Lower => *v < b,
                    },
                };
                if better {
                    best = Some((*step, *v));
                }
            }
            s.best_step = best.map(|b| b.0);
            s.best = best.map(|b| b.1);
        }
    }
    Ok(s)
}

/// Compares one metric present in at least one of the runs.
pub fn compare(
    session: &Session,
    name: &str,
    a: Option<&MetricSummary>,
    b: Option<&MetricSummary>,
    higher: &[String],
    lower: &[String],
) -> Result<MetricChange, StoreError> {
    let direction = direction(name, higher, lower);
    let sa = a.map(|m| side(session, m, direction)).transpose()?;
    let sb = b.map(|m| side(session, m, direction)).transpose()?;
    let la = sa.as_ref().and_then(|s| s.last);
    let lb = sb.as_ref().and_then(|s| s.last);
    let (abs_change, rel_change) = match (la, lb) {
        (Some(x), Some(y)) => (Some(y - x), (x != 0.0).then(|| (y - x) / x.abs())),
        _ => (None, None),
    };
    let better = match (direction, la, lb) {
        (Some(d), Some(x), Some(y)) => Some(if x == y {
            "same"
        } else if (y > x) == (d == Direction::Higher) {
            "b"
        } else {
            "a"
        }),
        _ => None,
    };
    Ok(MetricChange {
        name: name.to_string(),
        a: sa,
        b: sb,
        abs_change,
        rel_change,
        direction,
        better,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_and_sparklines() {
        assert_eq!(direction("val_loss", &[], &[]), Some(Direction::Lower));
        assert_eq!(direction("eval.acc", &[], &[]), Some(Direction::Higher));
        assert_eq!(direction("throughput", &[], &[]), None);
        assert_eq!(
            direction("throughput", &["throughput".into()], &[]),
            Some(Direction::Higher)
        );
        let s = sparkline(&[1.0, 2.0, 3.0, 4.0], 10);
        assert_eq!(s.chars().count(), 4);
        assert!(s.starts_with('▁') && s.ends_with('█'));
        assert_eq!(
            sparkline(&(0..1000).map(f64::from).collect::<Vec<_>>(), 24)
                .chars()
                .count(),
            24
        );
        assert_eq!(sparkline(&[], 10), "");
    }
}
