//! The run query language: `parse_filter` and `parse_order`.
//!
//! The library has no printer, so this target carries a small canonical one (every name in
//! backticks, every string in single quotes, numbers in Rust's shortest round-trip form).
//! Asserts: whatever parses prints to a query that parses to the same filter or order; errors
//! point at a column inside the input (or just past its end); the reprinted filter gives the
//! same answers as the original on a few runs, and sorting by a parsed order never panics.
#![no_main]

use cairn::query::{
    parse_filter, parse_order, sort, Cond, Expr, Field, Filter, Literal, Op, OrderKey, RunSummary,
    Scope,
};
use libfuzzer_sys::fuzz_target;

fn quote(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

fn field(f: &Field) -> String {
    let scope = match f.scope {
        Scope::Metric => "metrics",
        Scope::Param => "params",
        Scope::Tag => "tags",
        Scope::Attribute => "attributes",
    };
    format!("{scope}.{}", quote(&f.name, '`'))
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Str(s) => quote(s, '\''),
        Literal::Num(n) if n.is_nan() => "+NaN".to_string(),
        Literal::Num(n) if n.is_infinite() => if *n > 0.0 { "+inf" } else { "-inf" }.to_string(),
        Literal::Num(n) => format!("{n:?}"),
    }
}

fn op(o: Op) -> &'static str {
    match o {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Like => "LIKE",
        Op::ILike => "ILIKE",
        Op::In => "IN",
        Op::NotIn => "NOT IN",
        Op::IsNull => "IS NULL",
        Op::IsNotNull => "IS NOT NULL",
    }
}

fn cond(c: &Cond) -> String {
    let values = if matches!(c.op, Op::IsNull | Op::IsNotNull) {
        String::new()
    } else if matches!(c.op, Op::In | Op::NotIn) {
        let v: Vec<String> = c.values.iter().map(literal).collect();
        format!("({})", v.join(", "))
    } else {
        literal(&c.values[0])
    };
    format!("{} {} {}", field(&c.field), op(c.op), values)
        .trim_end()
        .to_string()
}

/// Every group in parentheses, so precedence never matters to the reprint.
fn print_expr(e: &Expr) -> String {
    match e {
        Expr::All => String::new(),
        Expr::Cond(c) => cond(c),
        Expr::Not(e) => format!("NOT ({})", print_expr(e)),
        Expr::And(v) => v
            .iter()
            .map(|e| format!("({})", print_expr(e)))
            .collect::<Vec<_>>()
            .join(" AND "),
        Expr::Or(v) => v
            .iter()
            .map(|e| format!("({})", print_expr(e)))
            .collect::<Vec<_>>()
            .join(" OR "),
    }
}

fn print_filter(f: &Filter) -> String {
    print_expr(&f.expr)
}

fn print_order(keys: &[OrderKey]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "{} {}",
                field(&k.field),
                if k.desc { "DESC" } else { "ASC" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Literal equality that treats NaN as equal to itself.
fn same_literal(a: &Literal, b: &Literal) -> bool {
    match (a, b) {
        (Literal::Num(x), Literal::Num(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}

fn same_cond(x: &Cond, y: &Cond) -> bool {
    x.field == y.field
        && x.op == y.op
        && x.values.len() == y.values.len()
        && x.values
            .iter()
            .zip(&y.values)
            .all(|(u, v)| same_literal(u, v))
}

fn same_expr(a: &Expr, b: &Expr) -> bool {
    match (a, b) {
        (Expr::All, Expr::All) => true,
        (Expr::Cond(x), Expr::Cond(y)) => same_cond(x, y),
        (Expr::Not(x), Expr::Not(y)) => same_expr(x, y),
        (Expr::And(x), Expr::And(y)) | (Expr::Or(x), Expr::Or(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(u, v)| same_expr(u, v))
        }
        _ => false,
    }
}

fn same_filter(a: &Filter, b: &Filter) -> bool {
    same_expr(&a.expr, &b.expr)
}

fn runs() -> Vec<RunSummary> {
    let mut a = RunSummary {
        id: "ab".repeat(32),
        status: "completed".into(),
        start_time: 1_780_000_000_000,
        end_time: 1_780_000_060_000,
        message: "Sweep lr".into(),
        branch: Some("main".into()),
        ..Default::default()
    };
    a.metrics.insert("acc".into(), Some(0.93));
    a.metrics.insert("loss".into(), None);
    a.params.insert("lr".into(), serde_json::json!(0.01));
    a.params
        .insert("optimizer".into(), serde_json::json!("adam"));
    a.params.insert("layers".into(), serde_json::json!([1, 2]));
    a.tags.insert("team".into(), "vision".into());
    let mut b = a.clone();
    b.id = "cd".repeat(32);
    b.metrics.insert("acc".into(), Some(f64::NAN));
    b.params.insert("lr".into(), serde_json::json!("1e-3"));
    b.branch = None;
    vec![a, b, RunSummary::default()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let end_col = input.chars().count() + 1;
    match parse_filter(input) {
        Ok(f) => {
            let printed = print_filter(&f);
            let again = parse_filter(&printed)
                .unwrap_or_else(|e| panic!("printed filter {printed:?} does not parse: {e}"));
            assert!(
                same_filter(&f, &again),
                "{input:?} -> {printed:?} -> {again:?}"
            );
            let runs = runs();
            let first: Vec<bool> = runs.iter().map(|r| f.matches(r)).collect();
            let second: Vec<bool> = runs.iter().map(|r| again.matches(r)).collect();
            assert_eq!(first, second);
        }
        Err(e) => assert!(
            (1..=end_col).contains(&e.column),
            "column {} of {input:?}",
            e.column
        ),
    }
    match parse_order(input) {
        Ok(keys) => {
            assert!(!keys.is_empty());
            let printed = print_order(&keys);
            let again = parse_order(&printed)
                .unwrap_or_else(|e| panic!("printed order {printed:?} does not parse: {e}"));
            assert_eq!(keys, again, "{input:?} -> {printed:?}");
            let mut x = runs();
            let mut y = runs();
            y.reverse();
            sort(&mut x, &keys);
            sort(&mut y, &keys);
            assert_eq!(x.len(), y.len());
        }
        Err(e) => assert!(
            (1..=end_col).contains(&e.column),
            "column {} of {input:?}",
            e.column
        ),
    }
});
