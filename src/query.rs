//! The run query language: MLflow's search-filter grammar, so users can bring their habits,
//! with `OR`, `NOT` and parentheses besides.
//!
//! ```text
//! metrics.acc > 0.9 and params.optimizer = 'adam' and tags.team = 'vision'
//! attributes.status != 'failed' and attributes.start_time >= '2026-11-01'
//! params.model IN ('resnet', 'vit') and params.name ILIKE '%sweep%'
//! metrics.acc > 0.9 or (params.lr = 0.01 and not tags.team = 'nlp')
//! ```
//! A filter is comparisons joined by `AND` and `OR` (`AND` binds tighter, as in SQL and MLflow),
//! negated with `NOT`, grouped with parentheses. An identifier is `metrics.`, `params.`, `tags.`
//! or `attributes.` followed by a name (quote names with dots or spaces in backticks or double
//! quotes); operators are `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`,
//! and `IS NULL` / `IS NOT NULL` test whether a run has the field at all.
//!
//! Values: a quoted literal (`'1.10'`) compares as text, MLflow's rule, so `'1.1'` does not
//! match `'1.10'`; an unquoted number compares numerically, and a value that is not a number
//! never satisfies `<`, `<=`, `>`, `>=` or `=` against it. Metrics are numbers: they compare
//! with unquoted numbers only. Times (`attributes.start_time`, `end_time`) also take dates.
//!
//! Order expressions are identifiers followed by `ASC` or `DESC`. Errors name the column.

use std::collections::{BTreeMap, BTreeSet};

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
    /// An unquoted number: compares numerically.
    Num(f64),
    /// A quoted string: compares as text.
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
    /// `IS NULL`: the run has no value.
    IsNull,
    /// `IS NOT NULL`: the run has a value.
    IsNotNull,
}

/// One comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Cond {
    /// Left side.
    pub field: Field,
    /// Operator.
    pub op: Op,
    /// Right side (several for IN, none for IS NULL).
    pub values: Vec<Literal>,
    /// 1-based column of the field in the query (not part of equality).
    pub column: usize,
}

impl PartialEq for Cond {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.op == other.op && self.values == other.values
    }
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub enum Expr {
    /// Matches every run (the empty filter).
    #[default]
    All,
    /// One comparison.
    Cond(Cond),
    /// `NOT e`.
    Not(Box<Expr>),
    /// `a AND b AND ...`: all hold.
    And(Vec<Expr>),
    /// `a OR b OR ...`: one holds.
    Or(Vec<Expr>),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Filter {
    /// The expression.
    pub expr: Expr,
}

/// One ORDER BY key.
#[derive(Debug, Clone, Serialize)]
pub struct OrderKey {
    /// The field.
    pub field: Field,
    /// Descending.
    pub desc: bool,
    /// 1-based column of the field in the order expression (not part of equality).
    pub column: usize,
}

impl PartialEq for OrderKey {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.desc == other.desc
    }
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
            status: run.status.to_string(),
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

const OPERATORS: &str =
    "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL, IS NOT NULL)";

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

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if self.is_keyword(kw) {
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
            Some(Tok::Ident(word)) => {
                return self.err(format!(
                    "'{word}' is not a number; quote text: '{}'",
                    word.replace('\'', "''")
                ))
            }
            _ => return self.err("expected a number or a 'quoted string'"),
        };
        self.pos += 1;
        Ok(lit)
    }

    fn cond(&mut self) -> Result<Cond, QueryError> {
        let column = self.col();
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
                } else if self.keyword("is") {
                    let not = self.keyword("not");
                    if !self.keyword("null") {
                        return self.err(if not {
                            "expected NULL after IS NOT"
                        } else {
                            "expected NULL or NOT NULL after IS"
                        });
                    }
                    let op = if not { Op::IsNotNull } else { Op::IsNull };
                    return Ok(Cond {
                        field,
                        op,
                        values: Vec::new(),
                        column,
                    });
                } else {
                    return self.err(OPERATORS);
                }
            }
            _ => return self.err(OPERATORS),
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
        if matches!(op, Op::Like | Op::ILike) {
            if !matches!(values[0], Literal::Str(_)) {
                return Err(QueryError {
                    column: op_col,
                    message: "LIKE and ILIKE need a 'quoted pattern'".into(),
                });
            }
        } else if field.scope == Scope::Metric {
            if let Some(Literal::Str(text)) = values.iter().find(|v| matches!(v, Literal::Str(_))) {
                return Err(QueryError {
                    column: values_col,
                    message: format!(
                        "metrics are numbers: compare {field} with a number without quotes, not '{text}'"
                    ),
                });
            }
        } else if numeric_attribute(&field) {
            // Times and durations compare as numbers: a string must be one we can read.
            for v in &values {
                if let Literal::Str(text) = v {
                    if as_num(v, &field).is_none() {
                        let message = if field.name.ends_with("_time") {
                            format!("'{text}' is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS (UTC), RFC 3339, or milliseconds since the epoch")
                        } else {
                            format!("'{text}' is not a number of milliseconds")
                        };
                        return Err(QueryError {
                            column: values_col,
                            message,
                        });
                    }
                }
            }
        }
        Ok(Cond {
            field,
            op,
            values,
            column,
        })
    }

    /// `and ( OR and )*`
    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    /// `unary ( AND unary )*`
    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    /// `NOT unary | ( or ) | comparison`
    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            let open = self.col();
            self.pos += 1;
            let e = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return self.err(format!(
                    "expected AND, OR or ')' to close the '(' at column {open}"
                ));
            }
            self.pos += 1;
            return Ok(e);
        }
        Ok(Expr::Cond(self.cond()?))
    }
}

fn parser(input: &str) -> Result<Parser, QueryError> {
    Ok(Parser {
        toks: lex(input)?,
        pos: 0,
        end: input.chars().count() + 1,
    })
}

/// Parses a filter; an empty string matches everything.
pub fn parse_filter(input: &str) -> Result<Filter, QueryError> {
    let mut p = parser(input)?;
    if p.peek().is_none() {
        return Ok(Filter::default());
    }
    let expr = p.or()?;
    match p.peek() {
        None => Ok(Filter { expr }),
        Some(Tok::RParen) => p.err("')' without a matching '('"),
        Some(_) => p.err("expected AND, OR or the end of the query"),
    }
}

/// Parses an ORDER BY list: `metrics.acc DESC, params.lr`.
pub fn parse_order(input: &str) -> Result<Vec<OrderKey>, QueryError> {
    let mut p = parser(input)?;
    let mut keys = Vec::new();
    loop {
        let column = p.col();
        let field = p.field()?;
        let desc = if p.keyword("desc") {
            true
        } else {
            p.keyword("asc");
            false
        };
        keys.push(OrderKey {
            field,
            desc,
            column,
        });
        match p.peek() {
            None => break,
            Some(Tok::Comma) => p.pos += 1,
            Some(_) => return p.err("expected ',' or the end of the order"),
        }
    }
    Ok(keys)
}

// ---- evaluation ----------------------------------------------------------------------------

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

fn numeric_attribute(field: &Field) -> bool {
    field.scope == Scope::Attribute
        && matches!(field.name.as_str(), "start_time" | "end_time" | "duration")
}

/// A literal as a number: numbers, and for times and durations the strings naming one.
fn as_num(l: &Literal, field: &Field) -> Option<f64> {
    match l {
        Literal::Num(n) => Some(*n),
        Literal::Str(s) if numeric_attribute(field) => {
            let n = s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
            if field.name.ends_with("_time") {
                date_ms(s).or(n)
            } else {
                n
            }
        }
        Literal::Str(_) => None,
    }
}

/// A run's value as a query sees it: its text, and its number when it is one.
struct Value {
    text: String,
    num: Option<f64>,
}

/// Text that reads as a finite number (`3`, `0.1`, `1e-3`), for params and tags.
fn number_in(text: &str) -> Option<f64> {
    let t = text.trim();
    let looks = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && t.chars().any(|c| c.is_ascii_digit());
    if !looks {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn num_text(n: f64) -> String {
    n.to_string()
}

impl RunSummary {
    fn value(&self, field: &Field) -> Option<Value> {
        let text = |s: String| Value {
            num: number_in(&s),
            text: s,
        };
        let num = |n: f64| Value {
            text: num_text(n),
            num: Some(n),
        };
        match field.scope {
            Scope::Metric => self.metrics.get(&field.name).copied().flatten().map(num),
            Scope::Param => self.params.get(&field.name).map(|v| match v {
                serde_json::Value::Number(n) => Value {
                    text: n.to_string(),
                    num: n.as_f64(),
                },
                serde_json::Value::String(s) => text(s.clone()),
                other => Value {
                    text: other.to_string(),
                    num: None,
                },
            }),
            Scope::Tag => self.tags.get(&field.name).map(|s| text(s.clone())),
            Scope::Attribute => match self.get(field)? {
                Literal::Num(n) => Some(num(n)),
                Literal::Str(s) => Some(Value { text: s, num: None }),
            },
        }
    }
}

/// How a run's value compares with a literal; `None` when they cannot be compared (text
/// against a number).
fn order(v: &Value, lit: &Literal, field: &Field) -> Option<std::cmp::Ordering> {
    match lit {
        Literal::Str(s) if !numeric_attribute(field) => Some(v.text.as_str().cmp(s.as_str())),
        _ => v.num?.partial_cmp(&as_num(lit, field)?),
    }
}

impl Cond {
    /// Whether `run` satisfies this condition. A missing value, or one that cannot be compared
    /// with the literal (text against a number), satisfies only `!=` and `NOT IN`.
    pub fn matches(&self, run: &RunSummary) -> bool {
        let Some(v) = run.value(&self.field) else {
            return matches!(self.op, Op::Ne | Op::NotIn | Op::IsNull);
        };
        let Some(first) = self.values.first() else {
            return self.op == Op::IsNotNull;
        };
        let equal = |lit: &Literal| order(&v, lit, &self.field) == Some(std::cmp::Ordering::Equal);
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => equal(first),
            Op::Ne => !equal(first),
            Op::Lt => order(&v, first, &self.field) == Some(Less),
            Op::Le => matches!(order(&v, first, &self.field), Some(Less | Equal)),
            Op::Gt => order(&v, first, &self.field) == Some(Greater),
            Op::Ge => matches!(order(&v, first, &self.field), Some(Greater | Equal)),
            Op::Like | Op::ILike => match first {
                Literal::Str(p) => like(p, &v.text, self.op == Op::ILike),
                Literal::Num(_) => false,
            },
            Op::In => self.values.iter().any(equal),
            Op::NotIn => !self.values.iter().any(equal),
            Op::IsNull => false,
            Op::IsNotNull => true,
        }
    }
}

impl Expr {
    /// Whether `run` satisfies the expression.
    pub fn matches(&self, run: &RunSummary) -> bool {
        match self {
            Expr::All => true,
            Expr::Cond(c) => c.matches(run),
            Expr::Not(e) => !e.matches(run),
            Expr::And(v) => v.iter().all(|e| e.matches(run)),
            Expr::Or(v) => v.iter().any(|e| e.matches(run)),
        }
    }

    fn conds<'a>(&'a self, out: &mut Vec<&'a Cond>) {
        match self {
            Expr::All => {}
            Expr::Cond(c) => out.push(c),
            Expr::Not(e) => e.conds(out),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.conds(out)),
        }
    }
}

impl Filter {
    /// Whether `run` satisfies the filter.
    pub fn matches(&self, run: &RunSummary) -> bool {
        self.expr.matches(run)
    }

    /// Every comparison, in the order written.
    pub fn conds(&self) -> Vec<&Cond> {
        let mut out = Vec::new();
        self.expr.conds(&mut out);
        out
    }

    /// Checks that every metric and param the filter names is recorded by at least one run
    /// (see [`Known`]).
    pub fn check_known(&self, known: &Known) -> Result<(), QueryError> {
        for c in self.conds() {
            known.check(&c.field, c.column)?;
        }
        Ok(())
    }
}

/// Checks that every metric and param an order names is recorded by at least one run.
pub fn check_order_known(keys: &[OrderKey], known: &Known) -> Result<(), QueryError> {
    for k in keys {
        known.check(&k.field, k.column)?;
    }
    Ok(())
}

/// The metric and param names some run has, to refuse a query on a name no run has (a typo
/// would otherwise give an empty or unsorted answer).
#[derive(Debug, Clone, Default)]
pub struct Known {
    metrics: BTreeSet<String>,
    params: BTreeSet<String>,
    runs: usize,
}

impl Known {
    /// The names recorded by `runs`.
    pub fn of<'a>(runs: impl IntoIterator<Item = &'a RunSummary>) -> Known {
        let mut k = Known::default();
        for r in runs {
            k.runs += 1;
            k.metrics.extend(r.metrics.keys().cloned());
            k.params.extend(r.params.keys().cloned());
        }
        k
    }

    /// An error at `column` when `field` is a metric or param no run has (never when there are
    /// no runs at all), with the closest existing name.
    pub fn check(&self, field: &Field, column: usize) -> Result<(), QueryError> {
        let (names, kind) = match field.scope {
            Scope::Metric => (&self.metrics, "metric"),
            Scope::Param => (&self.params, "param"),
            Scope::Tag | Scope::Attribute => return Ok(()),
        };
        if self.runs == 0 || names.contains(&field.name) {
            return Ok(());
        }
        let prefix = field.to_string();
        let prefix = &prefix[..prefix.len() - field.name.len()];
        let hint = match closest(&field.name, names.iter().map(String::as_str)) {
            Some(c) => format!("; did you mean {prefix}{c}?"),
            None if names.is_empty() => format!("; no run has any {kind}"),
            None => format!(
                "; {kind}s recorded: {}",
                names
                    .iter()
                    .take(8)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Err(QueryError {
            column,
            message: format!("no run has the {kind} '{}'{hint}", field.name),
        })
    }
}

/// The candidate nearest to `word` by edit distance, when near enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| {
            let c = c.to_lowercase();
            *d <= (c.chars().count().max(lower.chars().count()) / 3).max(1)
                || (c.len().min(lower.len()) >= 3
                    && (c.starts_with(&lower) || lower.starts_with(&c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Sorts runs by `keys`; runs lacking a key sort last. Numbers sort numerically, before text.
pub fn sort(runs: &mut [RunSummary], keys: &[OrderKey]) {
    runs.sort_by(|a, b| {
        for k in keys {
            let (x, y) = (a.value(&k.field), b.value(&k.field));
            let ord = match (&x, &y) {
                (Some(x), Some(y)) => {
                    let o = match (x.num, y.num) {
                        (Some(m), Some(n)) => {
                            m.partial_cmp(&n).unwrap_or(std::cmp::Ordering::Equal)
                        }
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => x.text.cmp(&y.text),
                    };
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
        r.params.insert("version".into(), serde_json::json!("1.10"));
        r.params.insert("epochs".into(), serde_json::json!("abc"));
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
            "params.version = '1.10'",
            "params.version = 1.1",
            "params.epochs != 30",
            "params.epochs = 'abc'",
            "metrics.acc < 0.5 or params.lr = 0.01",
            "not metrics.acc < 0.5",
            "(metrics.acc < 0.5 or tags.team = 'vision') and params.lr = 0.01",
            "metrics.acc > 0.9 or metrics.acc < 0.5 and params.lr = 7",
            "NOT (params.optimizer IN ('sgd') OR tags.team = 'nlp')",
            "tags.missing IS NULL and params.lr is not null",
        ] {
            let f = parse_filter(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            assert!(f.matches(&r), "{q}");
        }
        for q in [
            "metrics.acc < 0.9",
            "params.optimizer = 'sgd'",
            "tags.missing = 'x'",
            "params.optimizer LIKE 'a_'",
            "params.version = '1.1'",
            "params.epochs > 30",
            "params.epochs <= 30",
            "params.epochs = 30",
            "params.epochs IN (30, 40)",
            "params.lr = '0.010'",
            "(metrics.acc > 0.9 or metrics.acc < 0.5) and params.lr = 7",
            "not (metrics.acc > 0.5)",
            "metrics.acc < 0.5 or not tags.team = 'vision'",
            "tags.team IS NULL",
            "tags.missing IS NOT NULL",
        ] {
            assert!(!parse_filter(q).unwrap().matches(&r), "{q}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3").unwrap();
        let Expr::Or(terms) = &f.expr else {
            panic!("{f:?}")
        };
        assert_eq!(terms.len(), 2);
        assert!(matches!(terms[0], Expr::Cond(_)));
        assert!(matches!(&terms[1], Expr::And(v) if v.len() == 2));
    }

    #[test]
    fn invalid_queries_name_the_column() {
        for (q, col) in [
            ("metrics.acc >", 14),
            ("metric.acc > 1 or", 18),
            ("metric.acc > 'x'", 14),
            ("foo.acc > 1", 1),
            ("metrics.acc ~ 1", 13),
            ("metrics.acc > 1 and", 20),
            ("params.a IN ('x'", 17),
            ("params.a = 'unterminated", 12),
            ("attributes.bogus = 1", 12),
            ("metrics.acc LIKE 3", 13),
            ("metrics.acc > 1 metrics.b > 2", 17),
            ("metrics.acc > high", 15),
            ("(metrics.acc > 1", 17),
            ("metrics.acc > 1)", 16),
            ("not", 4),
            ("()", 2),
            ("attributes.duration > 'long'", 23),
            ("tags.a IS 1", 11),
            ("tags.a IS NOT 'x'", 15),
        ] {
            let e = parse_filter(q).expect_err(q);
            assert_eq!(e.column, col, "{q}: {e}");
        }
        let e = parse_filter("metrics.acc > high").unwrap_err();
        assert!(e.message.contains("'high'"), "{e}");
    }

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let runs = [run()];
        let known = Known::of(&runs);
        let f = parse_filter("params.lr = 1 and metrics.accuracy > 0.5").unwrap();
        let e = f.check_known(&known).unwrap_err();
        assert_eq!(e.column, 19);
        assert!(
            e.message.contains("accuracy") && e.message.contains("metrics.acc?"),
            "{e}"
        );
        let order = parse_order("params.lr, params.zzzzzzzz DESC").unwrap();
        let e = check_order_known(&order, &known).unwrap_err();
        assert_eq!(e.column, 12);
        assert!(!e.message.contains("did you mean"), "{e}");
        assert!(parse_filter("tags.x = 'y' and metrics.acc > 1")
            .unwrap()
            .check_known(&known)
            .is_ok());
        // No runs at all: nothing to check against.
        assert!(f.check_known(&Known::of(&[])).is_ok());
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

    /// A generated filter and what it means, for the reference evaluator.
    #[derive(Debug, Clone)]
    enum Gen {
        /// `params.pI OP LIT`: param index, operator, literal text, whether quoted.
        Leaf(usize, &'static str, String, bool),
        Not(Box<Gen>),
        And(Vec<Gen>),
        Or(Vec<Gen>),
    }

    /// Param values of the reference run: numbers, numeric text and plain text.
    const VALUES: [&str; 4] = ["3", "1.10", "abc", "10"];

    fn reference_leaf(i: usize, op: &str, lit: &str, quoted: bool) -> bool {
        let v = VALUES[i];
        if quoted {
            let o = v.cmp(lit);
            return match op {
                "=" => o.is_eq(),
                "!=" => o.is_ne(),
                "<" => o.is_lt(),
                ">=" => o.is_ge(),
                _ => unreachable!(),
            };
        }
        let n: f64 = lit.parse().unwrap();
        match v.parse::<f64>().ok().filter(|_| v != "abc") {
            None => op == "!=",
            Some(x) => match op {
                "=" => x == n,
                "!=" => x != n,
                "<" => x < n,
                ">=" => x >= n,
                _ => unreachable!(),
            },
        }
    }

    fn reference(g: &Gen) -> bool {
        match g {
            Gen::Leaf(i, op, lit, q) => reference_leaf(*i, op, lit, *q),
            Gen::Not(e) => !reference(e),
            Gen::And(v) => v.iter().all(reference),
            Gen::Or(v) => v.iter().any(reference),
        }
    }

    /// Prints with the fewest parentheses MLflow's precedence allows, plus `extra` ones.
    fn print(g: &Gen, extra: bool) -> String {
        let wrap = |s: String, need: bool| if need || extra { format!("({s})") } else { s };
        match g {
            Gen::Leaf(i, op, lit, q) => {
                let lit = if *q { format!("'{lit}'") } else { lit.clone() };
                format!("params.p{i} {op} {lit}")
            }
            Gen::Not(e) => format!(
                "NOT {}",
                wrap(print(e, extra), !matches!(**e, Gen::Leaf(..)))
            ),
            Gen::And(v) => v
                .iter()
                .map(|e| wrap(print(e, extra), matches!(e, Gen::Or(_))))
                .collect::<Vec<_>>()
                .join(" and "),
            Gen::Or(v) => v
                .iter()
                .map(|e| print(e, extra))
                .collect::<Vec<_>>()
                .join(" OR "),
        }
    }

    fn gen() -> impl Strategy<Value = Gen> {
        let leaf = (
            0..VALUES.len(),
            prop::sample::select(vec!["=", "!=", "<", ">="]),
            prop::sample::select(vec!["3", "1.1", "1.10", "abc", "10", "2"]),
            any::<bool>(),
        )
            .prop_filter_map("numbers only unquoted", |(i, op, lit, q)| {
                (q || lit.parse::<f64>().is_ok()).then(|| Gen::Leaf(i, op, lit.to_string(), q))
            });
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Gen::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Gen::And),
                prop::collection::vec(inner, 2..4).prop_map(Gen::Or),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = parse_filter(&s);
            let _ = parse_order(&s);
        }

        #[test]
        fn filters_mean_what_the_reference_says(g in gen(), extra in any::<bool>()) {
            let mut r = RunSummary::default();
            for (i, v) in VALUES.iter().enumerate() {
                let value = match v.parse::<i64>() {
                    Ok(n) if i == 0 => serde_json::json!(n),
                    _ => serde_json::json!(v),
                };
                r.params.insert(format!("p{i}"), value);
            }
            let text = print(&g, extra);
            let f = parse_filter(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(f.matches(&r), reference(&g), "{}", text);
        }
    }
}
