//! Rendering helpers: sizes, times, colour and error output.

use std::io::IsTerminal;

/// Bytes as a short human size (`1.5 GiB`).
pub fn size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Milliseconds since the epoch as local `YYYY-MM-DD HH:MM:SS`.
pub fn time(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => ms.to_string(),
    }
}

/// A duration in ms as `1h02m`, `3m05s`, `4.2s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A metric value, compactly.
pub fn number(v: Option<f64>) -> String {
    match v {
        None => "nan".into(),
        Some(v) if v == v.trunc() && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 1e-3 && v.abs() < 1e6 => {
            let s = format!("{v:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Some(v) => format!("{v:.3e}"),
    }
}

/// A JSON value as a short string for tables.
pub fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Colours for stdout, off when piped or when NO_COLOR is set.
#[derive(Clone, Copy)]
pub struct Style {
    on: bool,
}

impl Style {
    /// Decides from the environment.
    pub fn stdout() -> Self {
        Style {
            on: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Ids.
    pub fn id(&self, s: &str) -> String {
        self.paint("33", s)
    }
    /// Names of refs.
    pub fn name(&self, s: &str) -> String {
        self.paint("1;32", s)
    }
    /// Headings.
    pub fn head(&self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Secondary text.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Additions, improvements.
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Removals, regressions.
    pub fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }
}

/// Prints a JSON value to stdout.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let s = serde_json::to_string_pretty(v)?;
    println!("{s}");
    Ok(())
}
