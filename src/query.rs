//! The run query language: MLflow's search-filter grammar, so users can bring their habits.
//!
//! ```text
//! metrics.acc > 0.9 and params.optimizer = 'adam' and tags.team = 'vision'
//! attributes.status != 'failed' and attributes.start_time >= '2026-11-01'
//! params.model IN ('resnet', 'vit') and params.name ILIKE '%sweep%'
//! ```
//! A filter is comparisons joined by `AND`; an identifier is `metrics.`, `params.`, `tags.` or
//! `attributes.` followed by a name (quote names with dots or spaces in backticks or double
//! quotes); operators are `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`.
//! Order expressions are identifiers followed by `ASC` or `DESC`. Errors name the column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A malformed query, with the 1-based column where parsing failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("query error at column {column}: {message}")]
pub struct QueryError {
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Which part of a run an identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// `metrics.NAME`: last value.
    Metric,
    /// `params.NAME`: flattened param.
    Param,
    /// `tags.NAME`.
    Tag,
    /// `attributes.NAME`: status, start_time, end_time, duration, run_id, branch, message,
    /// author, host.
    Attribute,
}

/// `scope.name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Scope.
    pub scope: Scope,
    /// Name within the scope.
    pub name: String,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.scope {
            Scope::Metric => "metrics",
            Scope::Param => "params",
            Scope::Tag => "tags",
            Scope::Attribute => "attributes",
        };
        write!(f, "{s}.{}", self.name)
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Literal {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `ILIKE`
    ILike,
    /// `IN`
    In,
    /// `NOT IN`
    NotIn,
}

/// One comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cond {
    /// Left side.
    pub field: Field,
    /// Operator.
    pub op: Op,
    /// Right side (several for IN).
    pub values: Vec<Literal>,
}

/// A parsed filter: all conditions must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Filter {
    /// The conditions.
    pub conds: Vec<Cond>,
}

/// One ORDER BY key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderKey {
    /// The field.
    pub field: Field,
    /// Descending.
    pub desc: bool,
}

/// What queries see of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Run id (hex).
    pub id: String,
    /// Flattened params.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Last value of each metric.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// User tags.
    pub tags: BTreeMap<String, String>,
    /// Status.
    pub status: String,
    /// Start, ms since the epoch.
    pub start_time: i64,
    /// End, ms since the epoch.
    pub end_time: i64,
    /// Branch.
    pub branch: Option<String>,
    /// Message.
    pub message: String,
    /// Author.
    pub author: String,
    /// Host.
    pub host: String,
    /// Parent run ids (hex).
    #[serde(default)]
    pub parents: Vec<String>,
}

impl RunSummary {
    /// Summarises a run.
    pub fn of(id: &crate::hash::ObjectId, run: &crate::object::Run) -> Self {
        RunSummary {
            id: id.to_hex(),
            params: crate::capture::params::flatten(&run.params)
                .into_iter()
                .collect(),
            metrics: run
                .metrics
                .iter()
                .map(|(k, m)| (k.clone(), m.last))
                .collect(),
            tags: run.tags.clone(),
            status: run.status.clone(),
            start_time: run.started_at,
            end_time: run.ended_at,
            branch: run.branch.clone(),
            message: run.message.clone(),
            author: run.author.clone(),
            host: run.host.clone(),
            parents: run.parents.iter().map(|p| p.to_hex()).collect(),
        }
    }

    /// The value of `field` for this run.
    pub fn get(&self, field: &Field) -> Option<Literal> {
        match field.scope {
            Scope::Metric => self
                .metrics
                .get(&field.name)
                .copied()
                .flatten()
                .map(Literal::Num),
            Scope::Param => self.params.get(&field.name).map(|v| match v {
                serde_json::Value::Number(n) => n
                    .as_f64()
                    .map(Literal::Num)
                    .unwrap_or(Literal::Str(n.to_string())),
                serde_json::Value::String(s) => Literal::Str(s.clone()),
                other => Literal::Str(other.to_string()),
            }),
            Scope::Tag => self.tags.get(&field.name).map(|s| Literal::Str(s.clone())),
            Scope::Attribute => match field.name.as_str() {
                "status" => Some(Literal::Str(self.status.clone())),
                "start_time" => Some(Literal::Num(self.start_time as f64)),
                "end_time" => Some(Literal::Num(self.end_time as f64)),
                "duration" => Some(Literal::Num((self.end_time - self.start_time) as f64)),
                "run_id" | "id" => Some(Literal::Str(self.id.clone())),
                "branch" => self.branch.clone().map(Literal::Str),
                "message" | "run_name" => Some(Literal::Str(self.message.clone())),
                "author" | "user_id" => Some(Literal::Str(self.author.clone())),
                "host" => Some(Literal::Str(self.host.clone())),
                _ => None,
            },
        }
    }
}

const ATTRIBUTES: &[&str] = &[
    "status",
    "start_time",
    "end_time",
    "duration",
    "run_id",
    "id",
    "branch",
    "message",
    "run_name",
    "author",
    "user_id",
    "host",
];

// ---- lexer ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Dot,
}

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, QueryError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let col = |i: usize| {
        input[..chars.get(i).map(|c| c.0).unwrap_or(input.len())]
            .chars()
            .count()
            + 1
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' => {
                out.push((Tok::LParen, col(start)));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, col(start)));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, col(start)));
                i += 1;
            }
            '.' if !chars.get(i + 1).is_some_and(|c| c.1.is_ascii_digit()) => {
                out.push((Tok::Dot, col(start)));
                i += 1;
            }
            '\'' | '"' | '`' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(QueryError {
                                column: col(start),
                                message: format!("unterminated {quote}quoted{quote} text"),
                            })
                        }
                        Some((_, ch)) if *ch == quote => {
                            // A doubled quote stands for itself.
                            if chars.get(i + 1).is_some_and(|n| n.1 == quote) {
                                s.push(quote);
                                i += 2;
                                continue;
                            }
                            i += 1;
                            break;
                        }
                        Some((_, ch)) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push((
                    if quote == '\'' {
                        Tok::Str(s)
                    } else {
                        Tok::Quoted(s)
                    },
                    col(start),
                ));
            }
            '=' => {
                out.push((Tok::Op("="), col(start)));
                i += if chars.get(i + 1).is_some_and(|n| n.1 == '=') {
                    2
                } else {
                    1
                };
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).map(|n| n.1);
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => {
                        return Err(QueryError {
                            column: col(start),
                            message: "expected '!='".into(),
                        })
                    }
                };
                out.push((Tok::Op(op), col(start)));
                i += len;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].1.is_ascii_alphanumeric() || matches!(chars[j].1, '.' | '-' | '+'))
                {
                    // Stop a sign that is not part of an exponent.
                    if matches!(chars[j].1, '-' | '+') && !matches!(chars[j - 1].1, 'e' | 'E') {
                        break;
                    }
                    j += 1;
                }
                let text: String = chars[i..j].iter().map(|c| c.1).collect();
                let v: f64 = text.parse().map_err(|_| QueryError {
                    column: col(start),
                    message: format!("'{text}' is not a number"),
                })?;
                out.push((Tok::Num(v), col(start)));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].1.is_alphanumeric() || matches!(chars[j].1, '_' | '-' | '/' | ':'))
                {
                    j += 1;
                }
                out.push((
                    Tok::Ident(chars[i..j].iter().map(|c| c.1).collect()),
                    col(start),
                ));
                i = j;
            }
            other => {
                return Err(QueryError {
                    column: col(start),
                    message: format!("unexpected character '{other}'"),
                })
            }
        }
    }
    Ok(out)
}

// ---- parser --------------------------------------------------------------------------------

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.end)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            column: self.col(),
            message: message.into(),
        })
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn field(&mut self) -> Result<Field, QueryError> {
        let scope = match self.peek() {
            Some(Tok::Ident(s)) => match s.to_ascii_lowercase().as_str() {
                "metrics" | "metric" => Scope::Metric,
                "params" | "param" | "parameters" => Scope::Param,
                "tags" | "tag" => Scope::Tag,
                "attributes" | "attribute" | "attr" | "run" => Scope::Attribute,
                _ => {
                    return self.err(format!(
                    "unknown identifier '{s}': expected metrics., params., tags. or attributes."
                ))
                }
            },
            Some(_) => return self.err("expected an identifier such as metrics.acc"),
            None => return self.err("expected an identifier such as metrics.acc"),
        };
        self.pos += 1;
        if self.peek() != Some(&Tok::Dot) {
            return self.err("expected '.' after the identifier's type");
        }
        self.pos += 1;
        let name_col = self.col();
        let mut name = match self.peek() {
            Some(Tok::Ident(s)) | Some(Tok::Quoted(s)) => s.clone(),
            Some(Tok::Str(s)) if scope != Scope::Attribute => s.clone(),
            _ => return self.err("expected a name after '.'"),
        };
        self.pos += 1;
        // Unquoted dotted names: metrics.eval.acc
        while self.peek() == Some(&Tok::Dot) {
            if let Some((Tok::Ident(s), _)) = self.toks.get(self.pos + 1) {
                name.push('.');
                name.push_str(s);
                self.pos += 2;
            } else {
                break;
            }
        }
        if scope == Scope::Attribute && !ATTRIBUTES.contains(&name.as_str()) {
            return Err(QueryError {
                column: name_col,
                message: format!(
                    "unknown attribute '{name}' (known: {})",
                    ATTRIBUTES.join(", ")
                ),
            });
        }
        Ok(Field { scope, name })
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        let lit = match self.peek() {
            Some(Tok::Num(n)) => Literal::Num(*n),
            Some(Tok::Str(s)) => Literal::Str(s.clone()),
            Some(Tok::Quoted(s)) => Literal::Str(s.clone()),
            _ => return self.err("expected a number or a 'quoted string'"),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn cond(&mut self) -> Result<Cond, QueryError> {
        let field = self.field()?;
        let op_col = self.col();
        let op = match self.peek() {
            Some(Tok::Op(o)) => {
                let op = match *o {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                };
                self.pos += 1;
                op
            }
            Some(Tok::Ident(_)) => {
                if self.keyword("like") {
                    Op::Like
                } else if self.keyword("ilike") {
                    Op::ILike
                } else if self.keyword("in") {
                    Op::In
                } else if self.keyword("not") {
                    if self.keyword("in") {
                        Op::NotIn
                    } else {
                        return self.err("expected IN after NOT");
                    }
                } else {
                    return self.err("expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)");
                }
            }
            _ => return self.err("expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)"),
        };
        let values_col = self.col();
        let values = if matches!(op, Op::In | Op::NotIn) {
            if self.peek() != Some(&Tok::LParen) {
                return self.err("expected '(' after IN");
            }
            self.pos += 1;
            let mut v = vec![self.literal()?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                v.push(self.literal()?);
            }
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected ',' or ')'");
            }
            self.pos += 1;
            v
        } else {
            vec![self.literal()?]
        };
        // Times compare as numbers: a date string must be one we can read.
        if field.scope == Scope::Attribute
            && field.name.ends_with("_time")
            && !matches!(op, Op::Like | Op::ILike)
        {
            for v in &values {
                if let Literal::Str(text) = v {
                    if date_ms(text).is_none() && text.parse::<f64>().is_err() {
                        return Err(QueryError {
                            column: values_col,
                            message: format!(
                                "'{text}' is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339, or milliseconds since the epoch"
                            ),
                        });
                    }
                }
            }
        }
        if matches!(op, Op::Like | Op::ILike) && !matches!(values[0], Literal::Str(_)) {
            return Err(QueryError {
                column: op_col,
                message: "LIKE and ILIKE need a 'quoted pattern'".into(),
            });
        }
        Ok(Cond { field, op, values })
    }
}

fn parser(input: &str) -> Result<Parser, QueryError> {
    Ok(Parser {
        toks: lex(input)?,
        pos: 0,
        end: input.chars().count() + 1,
    })
}

/// Parses a filter (`a AND b AND ...`); an empty string matches everything.
pub fn parse_filter(input: &str) -> Result<Filter, QueryError> {
    let mut p = parser(input)?;
    let mut conds = Vec::new();
    if p.peek().is_none() {
        return Ok(Filter { conds });
    }
    loop {
        conds.push(p.cond()?);
        if p.peek().is_none() {
            break;
        }
        if p.keyword("or") {
            p.pos -= 1;
            return p.err("OR is not supported (as in MLflow): run several queries");
        }
        if !p.keyword("and") {
            return p.err("expected AND or the end of the query");
        }
    }
    Ok(Filter { conds })
}

/// Parses an ORDER BY list: `metrics.acc DESC, params.lr`.
pub fn parse_order(input: &str) -> Result<Vec<OrderKey>, QueryError> {
    let mut p = parser(input)?;
    let mut keys = Vec::new();
    loop {
        let field = p.field()?;
        let desc = if p.keyword("desc") {
            true
        } else {
            p.keyword("asc");
            false
        };
        keys.push(OrderKey { field, desc });
        match p.peek() {
            None => break,
            Some(Tok::Comma) => p.pos += 1,
            Some(_) => return p.err("expected ',' or the end of the order"),
        }
    }
    Ok(keys)
}

fn like(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if fold {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Iterative wildcard match: % any run, _ any one character.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// Parses a date (`2026-11-27`, RFC 3339) to ms since the epoch.
fn date_ms(s: &str) -> Option<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis() as f64);
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis() as f64);
        }
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis() as f64)
}

fn as_num(l: &Literal, field: &Field) -> Option<f64> {
    match l {
        Literal::Num(n) => Some(*n),
        Literal::Str(s) => {
            if field.scope == Scope::Attribute && field.name.ends_with("_time") {
                date_ms(s)
            } else {
                s.parse().ok()
            }
        }
    }
}

fn compare(a: &Literal, b: &Literal, field: &Field) -> Option<std::cmp::Ordering> {
    match (as_num(a, field), as_num(b, field)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => {
            let text = |l: &Literal| match l {
                Literal::Num(n) => n.to_string(),
                Literal::Str(s) => s.clone(),
            };
            Some(text(a).cmp(&text(b)))
        }
    }
}

impl Cond {
    /// Whether `run` satisfies this condition (a missing value never does, except `!=`/NOT IN).
    pub fn matches(&self, run: &RunSummary) -> bool {
        let Some(v) = run.get(&self.field) else {
            return matches!(self.op, Op::Ne | Op::NotIn);
        };
        let first = &self.values[0];
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => compare(&v, first, &self.field) == Some(Equal),
            Op::Ne => compare(&v, first, &self.field) != Some(Equal),
            Op::Lt => compare(&v, first, &self.field) == Some(Less),
            Op::Le => matches!(compare(&v, first, &self.field), Some(Less | Equal)),
            Op::Gt => compare(&v, first, &self.field) == Some(Greater),
            Op::Ge => matches!(compare(&v, first, &self.field), Some(Greater | Equal)),
            Op::Like | Op::ILike => match (&v, first) {
                (Literal::Str(t), Literal::Str(p)) => like(p, t, self.op == Op::ILike),
                (Literal::Num(n), Literal::Str(p)) => like(p, &n.to_string(), self.op == Op::ILike),
                _ => false,
            },
            Op::In => self
                .values
                .iter()
                .any(|x| compare(&v, x, &self.field) == Some(Equal)),
            Op::NotIn => !self
                .values
                .iter()
                .any(|x| compare(&v, x, &self.field) == Some(Equal)),
        }
    }
}

impl Filter {
    /// Whether `run` satisfies every condition.
    pub fn matches(&self, run: &RunSummary) -> bool {
        self.conds.iter().all(|c| c.matches(run))
    }
}

/// Sorts runs by `keys`; runs lacking a key sort last.
pub fn sort(runs: &mut [RunSummary], keys: &[OrderKey]) {
    runs.sort_by(|a, b| {
        for k in keys {
            let (x, y) = (a.get(&k.field), b.get(&k.field));
            let ord = match (&x, &y) {
                (Some(x), Some(y)) => {
                    let o = compare(x, y, &k.field).unwrap_or(std::cmp::Ordering::Equal);
                    if k.desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run() -> RunSummary {
        let mut r = RunSummary {
            id: "ab".repeat(32),
            status: "completed".into(),
            start_time: 1_780_000_000_000,
            end_time: 1_780_000_060_000,
            message: "Sweep lr".into(),
            ..Default::default()
        };
        r.metrics.insert("acc".into(), Some(0.93));
        r.metrics.insert("eval.loss".into(), Some(0.2));
        r.params
            .insert("optimizer".into(), serde_json::json!("adam"));
        r.params.insert("lr".into(), serde_json::json!(0.01));
        r.tags.insert("team".into(), "vision".into());
        r
    }

    #[test]
    fn valid_queries_match() {
        let r = run();
        for q in [
            "",
            "metrics.acc > 0.9 and params.optimizer = 'adam' and tags.team = 'vision'",
            "metrics.acc >= 0.93 AND metrics.acc <= 0.93",
            "metrics.eval.loss < 0.5",
            "metrics.`eval.loss` < 0.5",
            "params.lr = 0.01",
            "params.lr = '0.01'",
            "params.optimizer IN ('sgd', 'adam')",
            "params.optimizer NOT IN ('sgd')",
            "params.optimizer LIKE 'ad%'",
            "attributes.message ILIKE '%SWEEP%'",
            "attributes.status != 'failed'",
            "attributes.start_time > '2026-01-01'",
            "attributes.duration = 60000",
            "tags.missing != 'x'",
            "metrics.acc = 9.3e-1",
        ] {
            let f = parse_filter(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert!(f.matches(&r), "{q}");
        }
        for q in [
            "metrics.acc < 0.9",
            "params.optimizer = 'sgd'",
            "tags.missing = 'x'",
            "params.optimizer LIKE 'a_'",
        ] {
            assert!(!parse_filter(q).unwrap().matches(&r), "{q}");
        }
    }

    #[test]
    fn invalid_queries_name_the_column() {
        for (q, col) in [
            ("metrics.acc >", 14),
            ("metric.acc > 'x' or params.a = 1", 18),
            ("foo.acc > 1", 1),
            ("metrics.acc ~ 1", 13),
            ("metrics.acc > 1 and", 20),
            ("params.a IN ('x'", 17),
            ("params.a = 'unterminated", 12),
            ("attributes.bogus = 1", 12),
            ("metrics.acc LIKE 3", 13),
            ("metrics.acc > 1 metrics.b > 2", 17),
        ] {
            let e = parse_filter(q).expect_err(q);
            assert_eq!(e.column, col, "{q}: {e}");
        }
    }

    #[test]
    fn ordering() {
        let mut a = run();
        a.metrics.insert("acc".into(), Some(0.5));
        let b = run();
        let mut c = run();
        c.metrics.remove("acc");
        let mut v = vec![a.clone(), c.clone(), b.clone()];
        sort(&mut v, &parse_order("metrics.acc DESC").unwrap());
        assert_eq!(v, vec![b, a, c]);
        assert!(parse_order("metrics.acc DESC,").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse_filter(&s);
            let _ = parse_order(&s);
        }
    }
}
