//! Tests of diff, compare and find.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::common::*;

// ---- utilities ----------------------------------------------------------------------------

/// `cairn diff A B --json EXTRA...`.
fn diff_json(env: &Env, a: &str, b: &str, extra: &[&str]) -> Value {
    let mut args = vec!["diff", a, b, "--json"];
    args.extend_from_slice(extra);
    parse_json(&env.ok(&args))
}

/// `cairn diff A B EXTRA...` as text.
fn diff_text(env: &Env, a: &str, b: &str, extra: &[&str]) -> String {
    let mut args = vec!["diff", a, b];
    args.extend_from_slice(extra);
    env.ok(&args)
}

/// The exit code of `args`, asserting it ran to completion without panicking.
fn code_of(env: &Env, args: &[&str]) -> i32 {
    let out = env.run(args);
    assert!(
        !stderr_of(&out).contains("panicked"),
        "cairn {args:?} panicked: {}",
        stderr_of(&out)
    );
    out.status.code().expect("exit code")
}

fn assert_close(v: &Value, expected: f64, what: &str) {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {v} is not a number"));
    assert!(
        (x - expected).abs() < 1e-9,
        "{what}: expected {expected}, got {x}"
    );
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

fn line_starting<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

fn assert_no_escapes(what: &str, text: &str) {
    assert!(
        !text.contains('\x1b'),
        "{what}: output contains escape codes:\n{text:?}"
    );
}

/// The paths and kinds of change of a list of file diffs.
fn changes(files: &Value) -> Vec<(String, String)> {
    files
        .as_array()
        .expect("files is an array")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["change"].as_str().expect("change").to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The entry of `list` whose `key` is `name`.
fn entry<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .expect("array")
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no entry with {key} = {name} in {list:#}"))
}

/// `git rev-parse HEAD` in the work folder.
fn git_head(env: &Env) -> String {
    let out = std::process::Command::new("git")
        .current_dir(&env.work)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git");
    assert!(out.status.success(), "git rev-parse: {}", stderr_of(&out));
    stdout_of(&out).trim().to_string()
}

// ---- diff: params -------------------------------------------------------------------------

#[test]
fn params_are_flattened_with_added_removed_and_changed_keys() {
    let env = Env::init();
    env.write(
        "params.yaml",
        "optimizer:\n  name: adam\n  lr: 0.01\nbatch: 32\ndropout: 0.1\nmodel:\n  depth: 3\n",
    );
    let a = env.commit(&["-m", "a", "--params", "params.yaml"]);
    env.write(
        "params.yaml",
        "optimizer:\n  name: sgd\n  lr: 0.001\n  momentum: 0.9\nbatch: 32\nmodel: resnet\n",
    );
    let b = env.commit(&["-m", "b", "--params", "params.yaml"]);

    let text = diff_text(&env, &a, &b, &["--params"]);
    assert!(has_line(&text, "Params"), "{text}");
    let expect = [
        "- dropout             0.1",
        "+ model               resnet",
        "- model.depth         3",
        "~ optimizer.lr        0.01 -> 0.001",
        "+ optimizer.momentum  0.9",
        "~ optimizer.name      adam -> sgd",
    ];
    for l in expect {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
    assert!(!text.contains("batch"), "unchanged key shown:\n{text}");
    assert!(
        !text.contains("Metrics"),
        "--params shows only params:\n{text}"
    );

    let d = diff_json(&env, &a, &b, &[]);
    assert_eq!(
        d["params"],
        json!([
            {"key": "dropout", "change": "removed", "old": 0.1, "new": null},
            {"key": "model", "change": "added", "old": null, "new": "resnet"},
            {"key": "model.depth", "change": "removed", "old": 3, "new": null},
            {"key": "optimizer.lr", "change": "modified", "old": 0.01, "new": 0.001},
            {"key": "optimizer.momentum", "change": "added", "old": null, "new": 0.9},
            {"key": "optimizer.name", "change": "modified", "old": "adam", "new": "sgd"},
        ])
    );

    // Dotted --param keys nest like file keys and compare the same way.
    let c = env.commit(&[
        "-m",
        "c",
        "--params",
        "params.yaml",
        "--param",
        "optimizer.lr=0.5",
    ]);
    let d = diff_json(&env, &b, &c, &[]);
    assert_eq!(
        d["params"],
        json!([{"key": "optimizer.lr", "change": "modified", "old": 0.001, "new": 0.5}])
    );
}

// ---- diff: metrics ------------------------------------------------------------------------

/// Two runs with series (JSONL with steps) and scalar metrics.
fn metric_runs() -> (Env, String, String) {
    let env = Env::init();
    let write = |loss: [f64; 5], acc: [f64; 5], grad: &dyn Fn(i64) -> f64, scalars: &str| {
        let mut jsonl = String::new();
        for step in 0..100i64 {
            let mut rec = json!({"step": step, "grad_norm": grad(step)});
            if step < 5 {
                rec["loss"] = json!(loss[step as usize]);
                rec["acc"] = json!(acc[step as usize]);
            }
            jsonl.push_str(&rec.to_string());
            jsonl.push('\n');
        }
        env.write("metrics.jsonl", jsonl);
        env.write("summary.json", scalars);
    };
    write(
        [1.0, 0.6, 0.4, 0.45, 0.5],
        [0.5, 0.7, 0.8, 0.78, 0.75],
        &|s| (100 - s) as f64,
        r#"{"throughput": 100, "val_loss": 0.5, "latency_ms": 20, "eval": {"top1": 0.7}, "only_a": 1}"#,
    );
    let a = env.commit(&[
        "-m",
        "a",
        "--metrics",
        "metrics.jsonl",
        "--metrics",
        "summary.json",
    ]);
    write(
        [0.9, 0.5, 0.3, 0.25, 0.2],
        [0.55, 0.72, 0.85, 0.9, 0.91],
        &|s| s as f64,
        r#"{"throughput": 120, "val_loss": 0.6, "latency_ms": 20, "eval": {"top1": 0.65}, "only_b": 2}"#,
    );
    let b = env.commit(&[
        "-m",
        "b",
        "--metrics",
        "metrics.jsonl",
        "--metrics",
        "summary.json",
    ]);
    (env, a, b)
}

#[test]
fn metrics_last_values_changes_and_better_side() {
    let (env, a, b) = metric_runs();
    let d = diff_json(&env, &a, &b, &[]);
    let m = &d["metrics"];
    let names: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acc",
            "eval.top1",
            "grad_norm",
            "latency_ms",
            "loss",
            "only_a",
            "only_b",
            "throughput",
            "val_loss"
        ]
    );

    let acc = entry(m, "name", "acc");
    assert_close(&acc["a"]["last"], 0.75, "acc a.last");
    assert_close(&acc["b"]["last"], 0.91, "acc b.last");
    assert_close(&acc["abs_change"], 0.16, "acc abs_change");
    assert_close(&acc["rel_change"], 0.16 / 0.75, "acc rel_change");
    assert_eq!(acc["direction"], "higher");
    assert_eq!(acc["better"], "b");

    let loss = entry(m, "name", "loss");
    assert_close(&loss["abs_change"], -0.3, "loss abs_change");
    assert_close(&loss["rel_change"], -0.6, "loss rel_change");
    assert_eq!(loss["direction"], "lower");
    assert_eq!(loss["better"], "b");

    // Built-in names: *_loss lower, eval.top1 higher, latency_* lower (equal: same).
    let val = entry(m, "name", "val_loss");
    assert_eq!(
        (&val["direction"], &val["better"]),
        (&json!("lower"), &json!("a"))
    );
    let top1 = entry(m, "name", "eval.top1");
    assert_eq!(
        (&top1["direction"], &top1["better"]),
        (&json!("higher"), &json!("a"))
    );
    let lat = entry(m, "name", "latency_ms");
    assert_eq!(
        (&lat["direction"], &lat["better"]),
        (&json!("lower"), &json!("same"))
    );
    assert_close(&lat["abs_change"], 0.0, "latency abs_change");

    // Unknown direction: no verdict.
    let thr = entry(m, "name", "throughput");
    assert_eq!(thr["direction"], Value::Null);
    assert_eq!(thr["better"], Value::Null);
    assert_close(&thr["abs_change"], 20.0, "throughput abs_change");
    assert_close(&thr["rel_change"], 0.2, "throughput rel_change");

    // A metric on one side only.
    let only_a = entry(m, "name", "only_a");
    assert_close(&only_a["a"]["last"], 1.0, "only_a a.last");
    assert_eq!(only_a["b"], Value::Null);
    assert_eq!(only_a["abs_change"], Value::Null);
    assert_eq!(only_a["better"], Value::Null);
    assert_eq!(entry(m, "name", "only_b")["a"], Value::Null);

    let text = diff_text(&env, &a, &b, &["--metrics"]);
    assert!(has_line(&text, "Metrics"), "{text}");
    assert!(!text.contains("Params"), "{text}");
    let l = line_starting(&text, "  acc ");
    assert!(
        l.contains("0.75") && l.contains("0.91") && l.contains("+0.16 (+21.3%)"),
        "{l}"
    );
    assert!(l.ends_with("B better"), "{l}");
    assert!(line_starting(&text, "  loss ").ends_with("B better"));
    assert!(line_starting(&text, "  val_loss ").ends_with("A better"));
    assert!(line_starting(&text, "  eval.top1 ").ends_with("A better"));
    let l = line_starting(&text, "  throughput ");
    assert!(l.contains("+20 (+20.0%)") && !l.contains("better"), "{l}");
    let l = line_starting(&text, "  latency_ms ");
    assert!(l.contains(" = ") || l.trim_end().ends_with('='), "{l}");
    assert!(!l.contains("better"), "{l}");
}

#[test]
fn metric_series_summaries_and_sparklines() {
    let (env, a, b) = metric_runs();
    let d = diff_json(&env, &a, &b, &[]);
    let m = &d["metrics"];

    let acc = entry(m, "name", "acc");
    let (sa, sb) = (&acc["a"], &acc["b"]);
    assert_eq!(sa["count"], 5);
    assert_close(&sa["min"], 0.5, "acc a.min");
    assert_close(&sa["max"], 0.8, "acc a.max");
    assert_eq!(sa["best_step"], 2, "acc is higher-is-better: best at 0.8");
    assert_close(&sa["best"], 0.8, "acc a.best");
    assert_eq!(sb["best_step"], 4);
    let spark = sa["sparkline"].as_str().expect("series have a sparkline");
    assert_eq!(spark.chars().count(), 5, "{spark}");
    assert!(spark.starts_with('▁'), "lowest value first: {spark}");
    assert_eq!(
        spark.chars().nth(2),
        Some('█'),
        "highest value at step 2: {spark}"
    );

    let loss = entry(m, "name", "loss");
    assert_eq!(
        loss["a"]["best_step"], 2,
        "loss is lower-is-better: best at 0.4"
    );
    assert_close(&loss["a"]["best"], 0.4, "loss a.best");
    assert_eq!(loss["b"]["best_step"], 4);

    // A long series is resampled to a short sparkline; no direction, no best step.
    let g = entry(m, "name", "grad_norm");
    assert_eq!(g["a"]["count"], 100);
    assert_close(&g["a"]["min"], 1.0, "grad_norm a.min");
    assert_close(&g["a"]["max"], 100.0, "grad_norm a.max");
    assert_eq!(g["a"]["best_step"], Value::Null);
    let spark = g["b"]["sparkline"].as_str().unwrap();
    assert_eq!(spark.chars().count(), 24, "{spark}");
    assert!(spark.starts_with('▁') && spark.ends_with('█'), "{spark}");

    // Scalars: one point, no sparkline.
    let thr = entry(m, "name", "throughput");
    assert_eq!(thr["a"]["count"], 1);
    assert_eq!(thr["a"]["sparkline"], Value::Null);
    assert_eq!(thr["a"]["best_step"], Value::Null);

    let text = diff_text(&env, &a, &b, &["--metrics"]);
    let spark_a = sa["sparkline"].as_str().unwrap();
    assert!(
        text.lines().any(|l| l.trim_start()
            == format!("A {spark_a}  5 steps, min 0.5, max 0.8  best 0.8 at step 2")),
        "no sparkline line for acc A in:\n{text}"
    );
    // --stat keeps the table but drops the sparkline lines.
    let stat = diff_text(&env, &a, &b, &["--metrics", "--stat"]);
    assert!(
        line_starting(&stat, "  acc ").ends_with("B better"),
        "{stat}"
    );
    assert!(!stat.contains("steps, min"), "{stat}");
}

#[test]
fn metric_direction_overrides() {
    let (env, a, b) = metric_runs();
    let d = diff_json(&env, &a, &b, &["--higher-is-better", "throughput"]);
    let thr = entry(&d["metrics"], "name", "throughput");
    assert_eq!(
        (&thr["direction"], &thr["better"]),
        (&json!("higher"), &json!("b"))
    );

    // An explicit flag beats the built-in name: acc treated as lower-is-better.
    let d = diff_json(&env, &a, &b, &["--lower-is-better", "acc"]);
    let acc = entry(&d["metrics"], "name", "acc");
    assert_eq!(
        (&acc["direction"], &acc["better"]),
        (&json!("lower"), &json!("a"))
    );
    assert_eq!(acc["a"]["best_step"], 0);
    assert_close(&acc["a"]["best"], 0.5, "acc a.best (lower)");
    let d = diff_json(&env, &a, &b, &["--higher-is-better", "val_loss"]);
    let val = entry(&d["metrics"], "name", "val_loss");
    assert_eq!(
        (&val["direction"], &val["better"]),
        (&json!("higher"), &json!("b"))
    );

    // Comma-separated and repeated forms.
    for args in [
        vec!["--higher-is-better", "throughput,grad_norm"],
        vec![
            "--higher-is-better",
            "throughput",
            "--higher-is-better",
            "grad_norm",
        ],
    ] {
        let d = diff_json(&env, &a, &b, &args);
        let g = entry(&d["metrics"], "name", "grad_norm");
        assert_eq!(g["direction"], "higher", "{args:?}");
        assert_eq!(g["a"]["best_step"], 0, "{args:?}");
        assert_eq!(g["b"]["best_step"], 99, "{args:?}");
        assert_eq!(g["better"], "b", "{args:?}");
        assert_eq!(entry(&d["metrics"], "name", "throughput")["better"], "b");
    }
    let d = diff_json(&env, &a, &b, &["--lower-is-better", "grad_norm"]);
    let g = entry(&d["metrics"], "name", "grad_norm");
    assert_eq!(
        (&g["a"]["best_step"], &g["better"]),
        (&json!(99), &json!("a"))
    );

    let text = diff_text(
        &env,
        &a,
        &b,
        &["--metrics", "--higher-is-better", "throughput"],
    );
    assert!(
        line_starting(&text, "  throughput ").ends_with("B better"),
        "{text}"
    );
    let text = diff_text(&env, &a, &b, &["--metrics", "--lower-is-better", "acc"]);
    assert!(
        line_starting(&text, "  acc ").ends_with("A better"),
        "{text}"
    );
}

// ---- diff: code ---------------------------------------------------------------------------

#[test]
fn code_changes_text_and_binary_with_patch_and_dirty_flags() {
    let env = Env::init();
    env.git(&["init", "-q"]);
    env.write("src/train.py", "import sys\nlr = 0.1\nprint(lr)\n");
    env.write("src/old.py", "old = True\n");
    env.write("src/weights.bin", noise(1, 4096));
    env.write("notes.txt", "first\n");
    env.git(&[
        "add",
        "src/train.py",
        "src/old.py",
        "src/weights.bin",
        "notes.txt",
    ]);
    env.git(&["commit", "-q", "-m", "one"]);
    env.write("scratch.log", "untracked\n");
    let a = env.commit(&["-m", "a", "--code", "."]);
    let head_a = git_head(&env);

    env.write("src/train.py", "import sys\nlr = 0.01\nprint(lr)\n");
    env.write("src/weights.bin", noise(2, 4096));
    env.write("src/util.py", "def f():\n    return 1\n");
    env.git(&["add", "src/util.py"]);
    env.git(&["rm", "-q", "src/old.py"]);
    env.git(&["commit", "-q", "-a", "-m", "two"]);
    env.write("notes.txt", "first\nsecond\n"); // uncommitted: run B is dirty
    env.write("scratch.log", "still untracked\n");
    let b = env.commit(&["-m", "b", "--code", "."]);
    let head_b = git_head(&env);
    assert_ne!(head_a, head_b);

    let text = diff_text(&env, &a, &b, &["--code"]);
    assert!(
        has_line(
            &text,
            &format!("Code  {} -> {} (dirty)", &head_a[..12], &head_b[..12])
        ),
        "{text}"
    );
    for l in [
        "  M notes.txt  (6 B -> 13 B)",
        "  D src/old.py  (11 B)",
        "  M src/train.py  (30 B -> 31 B)",
        "  A src/util.py  (22 B)",
        "  M src/weights.bin  (4.0 KiB -> 4.0 KiB)",
    ] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
    assert!(
        !text.contains("scratch.log"),
        "untracked file in code diff:\n{text}"
    );
    assert!(!text.contains("@@"), "no patch without -p:\n{text}");

    let text = diff_text(&env, &a, &b, &["--code", "-p"]);
    for l in [
        "--- a/src/train.py",
        "+++ b/src/train.py",
        "-lr = 0.1",
        "+lr = 0.01",
        "+second",
        "  M src/weights.bin  (4.0 KiB -> 4.0 KiB)  binary",
    ] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
    assert!(!text.contains("a/src/weights.bin"), "{text}");

    let d = diff_json(&env, &a, &b, &["--code", "-p"]);
    let c = &d["code"];
    assert_eq!(c["old_commit"], head_a.as_str());
    assert_eq!(c["new_commit"], head_b.as_str());
    assert_eq!(c["old_dirty"], false);
    assert_eq!(c["new_dirty"], true);
    assert_eq!(
        changes(&c["files"]),
        pairs(&[
            ("notes.txt", "modified"),
            ("src/old.py", "removed"),
            ("src/train.py", "modified"),
            ("src/util.py", "added"),
            ("src/weights.bin", "modified"),
        ])
    );
    let w = entry(&c["files"], "path", "src/weights.bin");
    assert_eq!(w["binary"], true);
    assert!(w.get("patch").is_none(), "{w}");
    assert_eq!(
        (&w["old"]["size"], &w["new"]["size"]),
        (&json!(4096), &json!(4096))
    );
    assert_eq!(w["old"]["kind"], "file");
    let t = entry(&c["files"], "path", "src/train.py");
    let patch = t["patch"].as_str().expect("text files get a patch");
    assert!(patch.contains("\n-lr = 0.1\n+lr = 0.01\n"), "{patch}");
    assert!(t.get("binary").is_none(), "{t}");
    let old = entry(&c["files"], "path", "src/old.py");
    assert_eq!(old["new"], Value::Null);
    assert!(old["patch"].as_str().unwrap().contains("-old = True"));

    // Without -p: no patch, binary or rows keys.
    let d = diff_json(&env, &a, &b, &[]);
    for f in d["code"]["files"].as_array().unwrap() {
        assert!(
            f.get("patch").is_none() && f.get("binary").is_none() && f.get("rows").is_none(),
            "{f}"
        );
    }
}

// ---- diff: data ---------------------------------------------------------------------------

#[test]
fn data_folder_of_2000_files_with_three_changes() {
    let env = Env::init();
    for i in 0..2000 {
        env.write(
            &format!("ds/part{:02}/f{i:04}.txt", i / 100),
            format!("sample {i}\n"),
        );
    }
    let a = env.commit(&["-m", "a", "--data", "ds"]);
    env.write("ds/part03/f0333.txt", "changed\n");
    std::fs::remove_file(env.path("ds/part07/f0777.txt")).unwrap();
    env.write("ds/part19/new.txt", "brand new\n");
    let b = env.commit(&["-m", "b", "--data", "ds"]);

    let d = diff_json(&env, &a, &b, &["--data"]);
    let data = d["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["name"], "ds");
    assert_eq!(data[0]["change"], "modified");
    assert_eq!(
        changes(&data[0]["files"]),
        pairs(&[
            ("part03/f0333.txt", "modified"),
            ("part07/f0777.txt", "removed"),
            ("part19/new.txt", "added"),
        ])
    );
    let files = &data[0]["files"];
    let m = entry(files, "path", "part03/f0333.txt");
    assert_eq!(
        (&m["old"]["size"], &m["new"]["size"]),
        (&json!(11), &json!(8))
    );
    assert_ne!(m["old"]["id"], m["new"]["id"]);
    assert_eq!(entry(files, "path", "part07/f0777.txt")["new"], Value::Null);
    assert_eq!(entry(files, "path", "part19/new.txt")["old"], Value::Null);

    let text = diff_text(&env, &a, &b, &["--data"]);
    for l in [
        "Data",
        "  ds changed: 3 file(s)",
        "  M ds/part03/f0333.txt  (11 B -> 8 B)",
        "  D ds/part07/f0777.txt  (11 B)",
        "  A ds/part19/new.txt  (10 B)",
    ] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  ")).count(),
        4,
        "{text}"
    );

    let text = diff_text(&env, &a, &b, &["--data", "-p"]);
    for l in ["-sample 333", "+changed", "-sample 777", "+brand new"] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }

    let stat = diff_text(&env, &a, &b, &["--data", "--stat"]);
    assert!(
        has_line(&stat, "  1 added, 1 removed, 1 modified"),
        "{stat}"
    );
    assert!(!stat.contains("f0333"), "--stat lists files:\n{stat}");
}

#[test]
fn data_snapshot_added_and_removed() {
    let env = Env::init();
    let a = env.commit(&["-m", "no data"]);
    env.write("ds/x.txt", "x\n");
    env.write("ds/sub/y.txt", "y\n");
    let b = env.commit(&["-m", "data", "--data", "ds"]);
    let d = diff_json(&env, &a, &b, &[]);
    assert_eq!(d["data"][0]["change"], "added");
    assert_eq!(
        changes(&d["data"][0]["files"]),
        pairs(&[("sub/y.txt", "added"), ("x.txt", "added")])
    );
    let d = diff_json(&env, &b, &a, &[]);
    assert_eq!(d["data"][0]["change"], "removed");
    assert_eq!(
        changes(&d["data"][0]["files"]),
        pairs(&[("sub/y.txt", "removed"), ("x.txt", "removed")])
    );
    let text = diff_text(&env, &b, &a, &["--data"]);
    assert!(has_line(&text, "  ds removed: 2 file(s)"), "{text}");
}

/// A CSV of `rows` data rows plus a header, over 1 MiB for 40,000 rows.
fn big_csv(rows: usize) -> String {
    let mut s = String::from("id,value,label\n");
    for i in 0..rows {
        s.push_str(&format!("{i},{},sample-label-{i:06}\n", i * 7));
    }
    s
}

#[test]
fn large_tables_get_row_counts_and_small_text_files_line_diffs() {
    let env = Env::init();
    env.write("tables/big.csv", big_csv(40_000));
    env.write("tables/big.bin", noise(3, 1_200_000));
    env.write("tables/small.csv", "k,v\n1,a\n2,b\n3,c\n");
    env.write(
        "tables/config.json",
        "{\n  \"size\": 10,\n  \"name\": \"x\"\n}\n",
    );
    assert!(std::fs::metadata(env.path("tables/big.csv")).unwrap().len() > 1 << 20);
    let a = env.commit(&["-m", "a", "--data", "tables"]);
    env.write("tables/big.csv", big_csv(40_025));
    let mut bin = noise(3, 1_200_000);
    bin[600_000] ^= 0xff;
    env.write("tables/big.bin", bin);
    env.write("tables/small.csv", "k,v\n1,a\n2,B\n3,c\n");
    env.write(
        "tables/config.json",
        "{\n  \"size\": 12,\n  \"name\": \"x\"\n}\n",
    );
    let b = env.commit(&["-m", "b", "--data", "tables"]);

    let d = diff_json(&env, &a, &b, &["--data", "-p"]);
    let files = &d["data"][0]["files"];
    assert_eq!(
        changes(files),
        pairs(&[
            ("big.bin", "modified"),
            ("big.csv", "modified"),
            ("config.json", "modified"),
            ("small.csv", "modified"),
        ])
    );
    let csv = entry(files, "path", "big.csv");
    assert_eq!(
        csv["rows"],
        json!([40_001, 40_026]),
        "line counts, header included"
    );
    assert!(csv.get("patch").is_none(), "{csv}");
    assert!(csv.get("binary").is_none(), "{csv}");
    let bin = entry(files, "path", "big.bin");
    assert_eq!(bin["binary"], true);
    assert!(
        bin.get("rows").is_none() && bin.get("patch").is_none(),
        "{bin}"
    );
    let small = entry(files, "path", "small.csv")["patch"]
        .as_str()
        .expect("small CSV gets a line diff");
    assert!(small.contains("\n-2,b\n+2,B\n"), "{small}");
    let cfg = entry(files, "path", "config.json")["patch"]
        .as_str()
        .expect("small JSON gets a line diff");
    assert!(
        cfg.contains("\n-  \"size\": 10,\n+  \"size\": 12,\n"),
        "{cfg}"
    );

    let text = diff_text(&env, &a, &b, &["--data", "-p"]);
    assert!(
        line_starting(&text, "  M tables/big.csv ").ends_with("rows 40001 -> 40026"),
        "{text}"
    );
    assert!(line_starting(&text, "  M tables/big.bin ").ends_with("binary"));
    for l in ["-2,b", "+2,B", "--- a/small.csv", "+++ b/small.csv"] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
}

#[test]
fn single_file_csv_snapshot_gets_row_counts() {
    let env = Env::init();
    env.write("big.csv", big_csv(40_000));
    let a = env.commit(&["-m", "a", "--data", "big.csv"]);
    env.write("big.csv", big_csv(40_010));
    let b = env.commit(&["-m", "b", "--data", "big.csv"]);
    let d = diff_json(&env, &a, &b, &["-p"]);
    let f = &d["data"][0]["files"][0];
    assert_eq!(d["data"][0]["name"], "big.csv");
    assert_eq!(
        f["rows"],
        json!([40_001, 40_011]),
        "a large CSV given directly as --data should get row counts like one inside a folder: {f}"
    );
}

#[test]
fn single_file_snapshot_is_shown_by_its_name() {
    let env = Env::init();
    env.write("small.csv", "k,v\n1,a\n");
    let a = env.commit(&["-m", "a", "--data", "small.csv"]);
    env.write("small.csv", "k,v\n1,b\n");
    let b = env.commit(&["-m", "b", "--data", "small.csv"]);
    let text = diff_text(&env, &a, &b, &["--data", "-p"]);
    assert!(has_line(&text, "  small.csv changed: 1 file(s)"), "{text}");
    assert!(has_line(&text, "-1,a") && has_line(&text, "+1,b"), "{text}");
    assert!(
        !text.contains("small.csv/"),
        "a single-file snapshot is shown as a folder ('small.csv/'):\n{text}"
    );
    assert!(
        !has_line(&text, "--- a/"),
        "the patch header names no file:\n{text}"
    );
}

// ---- diff: artifacts, env, stat, exit code, colours, schema -------------------------------

#[test]
fn artifacts_added_removed_and_changed_with_sizes() {
    let env = Env::init();
    env.write("out/model.bin", noise(4, 3000));
    env.write("out/keep.txt", "same\n");
    env.write("out/gone.txt", "gone\n");
    env.write("out/sub/cfg.yaml", "a: 1\n");
    let a = env.commit(&["-m", "a", "--artifact", "out"]);
    env.write("out/model.bin", noise(5, 5000));
    std::fs::remove_file(env.path("out/gone.txt")).unwrap();
    env.write("out/added.txt", "added\n");
    env.write("out/sub/cfg.yaml", "a: 2\n");
    let b = env.commit(&["-m", "b", "--artifact", "out"]);

    let d = diff_json(&env, &a, &b, &["-p"]);
    let arts = &d["artifacts"];
    assert_eq!(
        changes(arts),
        pairs(&[
            ("out/added.txt", "added"),
            ("out/gone.txt", "removed"),
            ("out/model.bin", "modified"),
            ("out/sub/cfg.yaml", "modified"),
        ])
    );
    let m = entry(arts, "path", "out/model.bin");
    assert_eq!(
        (&m["old"]["size"], &m["new"]["size"]),
        (&json!(3000), &json!(5000))
    );
    assert_eq!(m["binary"], true);
    assert_eq!(entry(arts, "path", "out/gone.txt")["old"]["size"], 5);
    assert_eq!(entry(arts, "path", "out/added.txt")["new"]["size"], 6);
    assert!(entry(arts, "path", "out/sub/cfg.yaml")["patch"]
        .as_str()
        .unwrap()
        .contains("\n-a: 1\n+a: 2\n"));

    let text = diff_text(&env, &a, &b, &["--artifacts"]);
    for l in [
        "Artifacts",
        "  A out/added.txt  (6 B)",
        "  D out/gone.txt  (5 B)",
        "  M out/model.bin  (2.9 KiB -> 4.9 KiB)",
        "  M out/sub/cfg.yaml  (5 B -> 5 B)",
    ] {
        assert!(has_line(&text, l), "missing {l:?} in:\n{text}");
    }
    assert!(!text.contains("keep.txt"), "{text}");
    assert!(!text.contains("Data") && !text.contains("Params"), "{text}");

    let stat = diff_text(&env, &a, &b, &["--artifacts", "--stat"]);
    assert!(
        has_line(&stat, "  1 added, 1 removed, 2 modified"),
        "{stat}"
    );
    assert!(!stat.contains("model.bin"), "{stat}");
}

#[test]
fn env_section_appears_only_when_something_differs() {
    let env = Env::init();
    let a = env.commit(&["-m", "same", "--param", "x=1"]);
    let b = env.commit(&["-m", "same", "--param", "x=1"]);
    let c = env.commit(&["-m", "same", "--param", "x=1", "-b", "other"]);

    let text = diff_text(&env, &a, &b, &["--env"]);
    assert!(!text.contains("Environment"), "{text}");
    assert_eq!(diff_json(&env, &a, &b, &["--env"])["env"], json!([]));
    assert_eq!(code_of(&env, &["diff", &a, &b, "--exit-code", "--env"]), 0);

    let text = diff_text(&env, &a, &c, &["--env"]);
    assert!(has_line(&text, "Environment"), "{text}");
    assert!(has_line(&text, "  branch: main -> other"), "{text}");
    assert!(
        !text.contains("host:") && !text.contains("author:"),
        "{text}"
    );
    let text = diff_text(&env, &a, &c, &[]);
    assert!(!text.contains("Environment"), "--env not given:\n{text}");
    assert_eq!(
        diff_json(&env, &a, &c, &[])["env"],
        json!([{"field": "branch", "old": "main", "new": "other"}])
    );
    // Only the environment differs: --exit-code sees it only with --env.
    assert_eq!(code_of(&env, &["diff", &a, &c, "--exit-code"]), 0);
    assert_eq!(code_of(&env, &["diff", &a, &c, "--exit-code", "--env"]), 1);
}

#[test]
fn stat_keeps_params_and_metrics_in_full_and_counts_files() {
    let env = Env::init();
    env.write("art/x.txt", "1");
    env.write("m.json", r#"{"acc": 0.5, "loss": 1.0}"#);
    let a = env.commit(&[
        "--param",
        "a=1",
        "--param",
        "b=2",
        "--artifact",
        "art",
        "--metrics",
        "m.json",
    ]);
    env.write("art/x.txt", "2");
    env.write("art/y.txt", "3");
    env.write("m.json", r#"{"acc": 0.75, "loss": 1.0}"#);
    let b = env.commit(&[
        "--param",
        "a=5",
        "--param",
        "c=3",
        "--artifact",
        "art",
        "--metrics",
        "m.json",
    ]);
    let stat = diff_text(&env, &a, &b, &["--stat"]);
    let full = diff_text(&env, &a, &b, &[]);
    assert!(has_line(&stat, "Params"), "{stat}");
    for line in full.lines().skip_while(|l| l.trim() != "Params").take(4) {
        assert!(stat.lines().any(|l| l == line), "{line:?} missing:\n{stat}");
    }
    assert!(
        stat.contains("1 -> 5") && !stat.contains("1 added, 1 removed, 1 modified"),
        "{stat}"
    );
    let acc = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("acc"))
            .map(str::to_string)
    };
    assert!(acc(&stat).is_some() && acc(&stat) == acc(&full), "{stat}");
    // Files are still counted, not listed.
    assert!(stat.contains("1 added, 0 removed, 1 modified"), "{stat}");
    assert!(!stat.contains("y.txt"), "{stat}");
}

#[test]
fn exit_code_reports_whether_runs_differ() {
    let (env, a, b) = metric_runs();
    assert_eq!(code_of(&env, &["diff", &a, &b, "--exit-code"]), 1);
    assert_eq!(code_of(&env, &["diff", &a, &b]), 0, "no --exit-code: 0");
    assert_eq!(code_of(&env, &["diff", &a, &a, "--exit-code"]), 0);
    assert_eq!(code_of(&env, &["diff", &b, "--exit-code"]), 0, "B is HEAD");
    assert_eq!(code_of(&env, &["diff", &a, &b, "--exit-code", "--json"]), 1);
    // Only the shown sections count: the runs have equal (no) params, code and data.
    for section in ["--params", "--code", "--data", "--artifacts"] {
        assert_eq!(
            code_of(&env, &["diff", &a, &b, "--exit-code", section]),
            0,
            "{section}"
        );
    }
    assert_eq!(
        code_of(&env, &["diff", &a, &b, "--exit-code", "--metrics"]),
        1
    );
    // Identical runs: metrics are still listed, each unchanged; no other section.
    let same = diff_text(&env, &a, &a, &[]);
    let rows: Vec<&str> = same
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with(['A', 'B']))
        .collect();
    assert_eq!(rows.len(), 8, "{same}");
    assert!(rows.iter().all(|l| l.trim_end().ends_with('=')), "{same}");
    for heading in ["Params", "Code", "Data", "Artifacts", "Environment"] {
        assert!(!has_line(&same, heading), "{heading} in:\n{same}");
    }
    let err = env.fails(&["diff", &a, "nosuchrun"]);
    assert!(err.contains("nosuchrun"), "{err}");
}

#[test]
fn default_b_is_head() {
    let (env, a, b) = metric_runs();
    assert_eq!(env.ok(&["diff", &a]), env.ok(&["diff", &a, &b]));
    assert_eq!(env.ok(&["diff", "HEAD~1"]), env.ok(&["diff", &a, "HEAD"]));
    let d = parse_json(&env.ok(&["diff", "HEAD~1", "--json"]));
    assert_eq!((&d["a"], &d["b"]), (&json!(a), &json!(b)));
}

#[test]
fn piped_output_has_no_escape_codes() {
    let (env, a, b) = metric_runs();
    env.write("f.txt", "one\n");
    let c = env.commit(&["-m", "c", "--artifact", "f.txt", "--param", "x=1"]);
    for no_color in [true, false] {
        for args in [
            vec!["diff", a.as_str(), c.as_str(), "-p", "--env"],
            vec!["diff", a.as_str(), b.as_str(), "--metrics"],
            vec!["compare", "--all"],
            vec!["find", ""],
        ] {
            let mut cmd = env.cmd();
            cmd.args(&args);
            if !no_color {
                cmd.env_remove("NO_COLOR");
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
            let text = stdout_of(&out);
            assert!(!text.trim().is_empty(), "{args:?}");
            assert_no_escapes(&format!("{args:?} NO_COLOR={no_color}"), &text);
        }
    }
}

#[test]
fn json_schema_has_the_documented_keys() {
    let (env, a, b) = metric_runs();
    for extra in [&[][..], &["--params"][..], &["-p", "--stat"][..]] {
        let d = diff_json(&env, &a, &b, extra);
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schema",
                "a",
                "b",
                "params",
                "metrics",
                "code",
                "data",
                "artifacts",
                "env"
            ],
            "{extra:?}"
        );
        assert_eq!(d["schema"], 1);
        assert_eq!((&d["a"], &d["b"]), (&json!(a), &json!(b)));
        for k in ["params", "metrics", "data", "artifacts", "env"] {
            assert!(d[k].is_array(), "{k}");
        }
        let code: Vec<&str> = d["code"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            code,
            [
                "old_commit",
                "new_commit",
                "old_dirty",
                "new_dirty",
                "files"
            ]
        );
        let m: Vec<&str> = d["metrics"][0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            m,
            [
                "name",
                "a",
                "b",
                "abs_change",
                "rel_change",
                "direction",
                "better"
            ]
        );
        let side: Vec<&str> = d["metrics"][0]["a"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            side,
            [
                "last",
                "count",
                "min",
                "max",
                "best_step",
                "best",
                "sparkline"
            ]
        );
    }
}

// ---- compare and find ---------------------------------------------------------------------

struct SweepRun {
    id: String,
    lr: f64,
    optimizer: &'static str,
    seed: u32,
    acc: f64,
    loss: f64,
}

/// Twelve runs of a sweep on main (lr × optimizer × seed), then a branch `other` started at
/// the fifth run with two more runs (which also have a `desc` param and an `eval.top1` metric).
struct Sweep {
    env: Env,
    main: Vec<SweepRun>,
    other: Vec<String>,
}

impl Sweep {
    fn all_ids(&self) -> BTreeSet<String> {
        self.main
            .iter()
            .map(|r| r.id.clone())
            .chain(self.other.iter().cloned())
            .collect()
    }

    fn main_ids(&self, pred: impl Fn(&SweepRun) -> bool) -> BTreeSet<String> {
        self.main
            .iter()
            .filter(|r| pred(r))
            .map(|r| r.id.clone())
            .collect()
    }

    fn find(&self, query: &str) -> Vec<String> {
        find_ids(&self.env, &["find", query])
    }

    fn find_set(&self, query: &str) -> BTreeSet<String> {
        self.find(query).into_iter().collect()
    }
}

fn find_ids(env: &Env, args: &[&str]) -> Vec<String> {
    let out = env.ok(args);
    let ids: Vec<String> = out.lines().map(str::to_string).collect();
    for id in &ids {
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "not a run id: {id:?}"
        );
    }
    ids
}

fn two(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap()
}

fn sweep() -> Sweep {
    let env = Env::init();
    let mut main = Vec::new();
    let mut i = 0;
    for lr in ["0.1", "0.01", "0.001"] {
        for optimizer in ["adam", "sgd"] {
            for seed in [1u32, 2] {
                // Permutations of 0..12: best acc at run 7, best (lowest) loss at run 5.
                let acc = two(0.60 + 0.01 * ((5 * i) % 12) as f64);
                let loss = two(1.00 - 0.05 * ((7 * i) % 12) as f64);
                env.write(
                    "metrics.json",
                    format!(r#"{{"acc": {acc:.2}, "loss": {loss:.2}, "epochs_done": 10}}"#),
                );
                let id = env.commit(&[
                    "-m",
                    &format!("sweep {i}"),
                    "--param",
                    &format!("lr={lr}"),
                    "--param",
                    &format!("optimizer={optimizer}"),
                    "--param",
                    &format!("seed={seed}"),
                    "--param",
                    "epochs=10",
                    "--metrics",
                    "metrics.json",
                    "--tag",
                    "team=vision",
                ]);
                main.push(SweepRun {
                    id,
                    lr: lr.parse().unwrap(),
                    optimizer,
                    seed,
                    acc,
                    loss,
                });
                i += 1;
            }
        }
    }
    env.ok(&["branch", "other", &main[4].id]);
    let mut other = Vec::new();
    for k in 0..2 {
        env.write(
            "metrics.json",
            format!(r#"{{"acc": 0.5, "loss": 2, "epochs_done": 10, "eval": {{"top1": 0.{k}5}}}}"#),
        );
        other.push(env.commit(&[
            "-m",
            &format!("wide {k}"),
            "-b",
            "other",
            "--param",
            "lr=0.5",
            "--param",
            "optimizer=rmsprop",
            "--param",
            &format!("seed={}", 3 + k),
            "--param",
            "epochs=10",
            "--param",
            "desc=wide, deep",
            "--metrics",
            "metrics.json",
            "--tag",
            "team=nlp",
        ]));
    }
    Sweep { env, main, other }
}

/// The rows of a table: whitespace-separated cells, header first.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn assert_fits(text: &str, width: usize) {
    for l in text.lines() {
        assert!(
            l.chars().count() <= width,
            "line longer than {width}: {l:?}\n{text}"
        );
    }
}

#[test]
fn compare_shows_varying_columns_marks_best_and_fits_80_columns() {
    let s = sweep();
    let out = s.env.ok(&["compare"]);
    assert_fits(&out, 80);
    let t = table(&out);
    assert_eq!(
        t[0],
        ["run", "lr", "optimizer", "seed", "acc", "loss"],
        "{out}"
    );
    assert_eq!(t.len(), 13, "header and 12 runs of main:\n{out}");
    // Newest first.
    let ids: Vec<&str> = t[1..].iter().map(|r| r[0].as_str()).collect();
    let expected: Vec<&str> = s.main.iter().rev().map(|r| &r.id[..12]).collect();
    assert_eq!(ids, expected);
    // Cells match the runs; exactly the best acc (highest) and loss (lowest) are starred.
    for (row, run) in t[1..].iter().zip(s.main.iter().rev()) {
        assert_eq!(row[1].parse::<f64>().unwrap(), run.lr);
        assert_eq!(row[2], run.optimizer);
        assert_eq!(row[3], run.seed.to_string());
        let acc = row[4].trim_end_matches('*');
        let loss = row[5].trim_end_matches('*');
        assert_eq!(acc.parse::<f64>().unwrap(), run.acc);
        assert_eq!(loss.parse::<f64>().unwrap(), run.loss);
    }
    let starred: Vec<(usize, usize)> = t
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter(|(_, c)| c.ends_with('*'))
                .map(move |(j, _)| (i, j))
        })
        .collect();
    // Row 1 is run 11, so run k is row 12 - k.
    assert_eq!(starred, [(12 - 7, 4), (12 - 5, 5)], "{out}");
    assert!(!out.contains("epochs") && !out.contains("team"), "{out}");

    // Direction flags move the mark.
    let out = s.env.ok(&["compare", "--lower-is-better", "acc"]);
    let t = table(&out);
    let worst = s
        .main
        .iter()
        .rposition(|r| r.acc == s.main.iter().map(|r| r.acc).fold(1.0, f64::min))
        .unwrap();
    assert!(t[12 - worst][4].ends_with('*'), "{out}");
    assert_eq!(out.matches('*').count(), 2, "{out}");
    let out = s.env.ok(&["compare", "--metrics", "epochs_done,acc"]);
    assert_eq!(
        table(&out)[0],
        ["run", "lr", "optimizer", "seed", "epochs_done", "acc"]
    );
    assert_eq!(
        out.matches('*').count(),
        1,
        "epochs_done has no direction:\n{out}"
    );
}

#[test]
fn compare_many_columns_still_fits_80_columns() {
    let env = Env::init();
    for k in 0..3 {
        let mut args: Vec<String> = vec!["-m".into(), format!("r{k}")];
        for p in 0..10 {
            args.push("--param".into());
            args.push(format!("a_rather_long_parameter_name_{p}=value-{k}-{p}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        env.commit(&refs);
    }
    let out = env.run(&["compare"]);
    assert!(out.status.success());
    let text = stdout_of(&out);
    assert_fits(&text, 80);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        stderr_of(&out).contains("not shown"),
        "hidden columns are announced: {}",
        stderr_of(&out)
    );
    let mut cmd = env.cmd();
    let out = cmd
        .args(["compare"])
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let wide = stdout_of(&out);
    assert!(wide.lines().any(|l| l.chars().count() > 80), "{wide}");
    assert_fits(&wide, 200);
}

#[test]
fn compare_chooses_columns_filters_orders_and_limits() {
    let s = sweep();
    let out = s.env.ok(&["compare", "--params", "lr", "--metrics", "acc"]);
    let t = table(&out);
    assert_eq!(t[0], ["run", "lr", "acc"]);
    assert_eq!(t.len(), 13);
    let out = s.env.ok(&[
        "compare",
        "--params",
        "epochs,optimizer",
        "--metrics",
        "loss",
    ]);
    assert_eq!(table(&out)[0], ["run", "epochs", "optimizer", "loss"]);
    assert!(table(&out)[1..].iter().all(|r| r[1] == "10"));

    let q = "params.optimizer = 'adam' and metrics.acc > 0.65";
    let out = s.env.ok(&["compare", "--where", q]);
    let got: BTreeSet<String> = table(&out)[1..].iter().map(|r| r[0].clone()).collect();
    let expected: BTreeSet<String> = s
        .main
        .iter()
        .filter(|r| r.optimizer == "adam" && r.acc > 0.65)
        .map(|r| r.id[..12].to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "{out}");

    let out = s.env.ok(&["compare", "--order-by", "metrics.acc DESC"]);
    let accs: Vec<f64> = table(&out)[1..]
        .iter()
        .map(|r| r[4].trim_end_matches('*').parse().unwrap())
        .collect();
    let mut sorted: Vec<f64> = s.main.iter().map(|r| r.acc).collect();
    sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
    assert_eq!(accs, sorted);

    let out = s
        .env
        .ok(&["compare", "--order-by", "metrics.acc DESC", "-n", "3"]);
    let t = table(&out);
    assert_eq!(t.len(), 4, "{out}");
    let mut best = s.main.iter().collect::<Vec<_>>();
    best.sort_by(|a, b| b.acc.partial_cmp(&a.acc).unwrap());
    let top: Vec<&str> = best[..3].iter().map(|r| &r.id[..12]).collect();
    assert_eq!(
        t[1..].iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        top
    );

    // Several keys: lr ascending, then loss descending.
    let out = s.env.ok(&[
        "compare",
        "--order-by",
        "params.lr ASC, metrics.loss DESC",
        "--params",
        "lr",
        "--metrics",
        "loss",
    ]);
    let got: Vec<(f64, f64)> = table(&out)[1..]
        .iter()
        .map(|r| {
            (
                r[1].parse().unwrap(),
                r[2].trim_end_matches('*').parse().unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(f64, f64)> = s.main.iter().map(|r| (r.lr, r.loss)).collect();
    want.sort_by(|a, b| {
        a.0.partial_cmp(&b.0)
            .unwrap()
            .then(b.1.partial_cmp(&a.1).unwrap())
    });
    assert_eq!(got, want);

    let out = s.env.ok(&["compare", "--where", "metrics.acc > 5"]);
    assert!(out.trim().is_empty(), "{out}");
    let err = s.env.fails(&["compare", "--where", "metrics.acc >"]);
    assert!(
        err.contains("--where") && err.contains("column 14"),
        "{err}"
    );
    let err = s
        .env
        .fails(&["compare", "--order-by", "metrics.acc sideways"]);
    assert!(
        err.contains("--order-by") && err.contains("column 13"),
        "{err}"
    );
}

#[test]
fn compare_csv_and_json() {
    let s = sweep();
    let out = s.env.ok(&["compare", "--csv"]);
    assert!(!out.contains('*'), "{out}");
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, ["run", "lr", "optimizer", "seed", "acc", "loss"]);
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 12);
    for (row, run) in rows.iter().zip(s.main.iter().rev()) {
        assert_eq!(&row[0], &run.id[..12]);
        assert_eq!(row[1].parse::<f64>().unwrap(), run.lr);
        assert_eq!(&row[2], run.optimizer);
        assert_eq!(row[4].parse::<f64>().unwrap(), run.acc);
        assert_eq!(row[5].parse::<f64>().unwrap(), run.loss);
    }

    // Values with commas are quoted; missing values are empty.
    let out = s.env.ok(&["compare", "--all", "--csv"]);
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    let desc = header
        .iter()
        .position(|h| h == "desc")
        .expect("desc column");
    let top1 = header
        .iter()
        .position(|h| h == "eval.top1")
        .expect("eval.top1");
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 14);
    for row in &rows {
        let other = s.other.iter().any(|id| id.starts_with(&row[0]));
        assert_eq!(&row[desc], if other { "wide, deep" } else { "" });
        assert_eq!(row[top1].is_empty(), !other);
    }

    let v = parse_json(
        &s.env
            .ok(&["compare", "--json", "--where", "params.seed = 1"]),
    );
    let arr = v.as_array().expect("an array of run summaries");
    assert_eq!(arr.len(), 6);
    for r in arr {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "params",
                "metrics",
                "tags",
                "status",
                "start_time",
                "end_time",
                "branch",
                "message",
                "author",
                "host",
                "parents"
            ]
        );
        let run = s
            .main
            .iter()
            .find(|x| x.id == r["id"].as_str().unwrap())
            .expect("a run of the sweep");
        assert_eq!(r["params"]["seed"], 1);
        assert_eq!(r["params"]["optimizer"], run.optimizer);
        assert_eq!(r["params"]["epochs"], 10);
        assert_close(&r["metrics"]["acc"], run.acc, "acc");
        assert_eq!(r["tags"], json!({"team": "vision"}));
        assert_eq!(r["status"], "completed");
        assert_eq!(r["branch"], "main");
        assert!(r["start_time"].as_i64().unwrap() <= r["end_time"].as_i64().unwrap());
        assert!(r["message"].as_str().unwrap().starts_with("sweep "));
    }
}

#[test]
fn compare_csv_keeps_full_precision() {
    let env = Env::init();
    env.write("m.json", r#"{"acc": 0.123456789, "loss": 1234567.5}"#);
    let a = env.commit(&["--metrics", "m.json", "--param", "lr=0.000123456"]);
    env.write("m.json", r#"{"acc": 0.5, "loss": 2.25}"#);
    env.commit(&["--metrics", "m.json", "--param", "lr=0.1"]);
    let out = env.ok(&["compare", "--csv"]);
    let mut rd = csv::Reader::from_reader(out.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let row = rows.iter().find(|r| a.starts_with(&r[0])).expect("run a");
    assert_eq!(
        (&row[1], &row[2], &row[3]),
        ("0.000123456", "0.123456789", "1234567.5"),
        "CSV export rounds values:\n{out}"
    );
}

#[test]
fn compare_branch_all_and_run_list() {
    let s = sweep();
    let ids = |out: &str| -> Vec<String> { table(out)[1..].iter().map(|r| r[0].clone()).collect() };
    let short = |id: &str| id[..12].to_string();

    let out = s.env.ok(&["compare", "--branch", "other"]);
    let mut expected: Vec<String> = s.other.iter().rev().map(|i| short(i)).collect();
    expected.extend(s.main[..5].iter().rev().map(|r| short(&r.id)));
    assert_eq!(ids(&out), expected, "{out}");

    let out = s.env.ok(&["compare", "--all"]);
    let got: BTreeSet<String> = ids(&out).into_iter().collect();
    let all: BTreeSet<String> = s.all_ids().iter().map(|i| short(i)).collect();
    assert_eq!(got, all);
    assert!(table(&out)[0].contains(&"desc".to_string()), "{out}");

    let out = s
        .env
        .ok(&["compare", &s.main[0].id, &s.main[7].id[..10], &s.other[1]]);
    assert_eq!(
        ids(&out),
        [
            short(&s.main[0].id),
            short(&s.main[7].id),
            short(&s.other[1])
        ]
    );
    let out = s.env.ok(&["compare", "HEAD", "HEAD~2"]);
    assert_eq!(ids(&out), [short(&s.main[11].id), short(&s.main[9].id)]);

    s.env.fails(&["compare", "--branch", "nosuch"]);
    assert_eq!(
        code_of(&s.env, &["compare", "--branch", "other", "--all"]),
        2
    );
}

#[test]
fn find_prints_matching_ids_newest_first() {
    let s = sweep();
    let ids = s.find("metrics.acc > 0.66 and params.lr < 0.05");
    let expected = s.main_ids(|r| r.acc > 0.66 && r.lr < 0.05);
    assert!(!expected.is_empty());
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), expected);

    let all = s.find("");
    let mut newest_first: Vec<String> = s.other.iter().rev().cloned().collect();
    newest_first.extend(s.main.iter().rev().map(|r| r.id.clone()));
    assert_eq!(all, newest_first);
    assert_eq!(s.find("   "), newest_first);

    let best = find_ids(
        &s.env,
        &[
            "find",
            "tags.team = 'vision'",
            "--order-by",
            "metrics.acc DESC",
            "-n",
            "1",
        ],
    );
    assert_eq!(best, [s.main[7].id.clone()]);
    assert!(s.find("metrics.acc > 5").is_empty());

    let empty = Env::init();
    assert_eq!(empty.ok(&["find", ""]), "");
}

#[test]
fn find_query_grammar() {
    let s = sweep();
    let other: BTreeSet<String> = s.other.iter().cloned().collect();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "params.optimizer = 'adam'",
            s.main_ids(|r| r.optimizer == "adam"),
        ),
        (
            "params.optimizer = \"adam\"",
            s.main_ids(|r| r.optimizer == "adam"),
        ),
        (
            "params.optimizer != 'adam' AND tags.team = 'vision'",
            s.main_ids(|r| r.optimizer == "sgd"),
        ),
        ("params.lr = 0.01", s.main_ids(|r| r.lr == 0.01)),
        ("params.lr == '0.01'", s.main_ids(|r| r.lr == 0.01)),
        ("params.lr = 1e-2", s.main_ids(|r| r.lr == 0.01)),
        (
            "params.lr <> 0.01 and params.lr <= .1",
            s.main_ids(|r| r.lr != 0.01),
        ),
        (
            "params.`lr` >= 0.01 and params.\"seed\" = 2",
            s.main_ids(|r| r.lr >= 0.01 && r.seed == 2),
        ),
        (
            "params.optimizer IN ('sgd', 'rmsprop') and params.seed > 1",
            {
                let mut x = s.main_ids(|r| r.optimizer == "sgd" && r.seed == 2);
                x.extend(other.iter().cloned());
                x
            },
        ),
        (
            "params.optimizer NOT IN ('sgd', 'rmsprop')",
            s.main_ids(|r| r.optimizer == "adam"),
        ),
        (
            "params.optimizer LIKE 'ad%'",
            s.main_ids(|r| r.optimizer == "adam"),
        ),
        ("params.optimizer LIKE 'AD%'", BTreeSet::new()),
        (
            "params.optimizer ILIKE 'AD_M'",
            s.main_ids(|r| r.optimizer == "adam"),
        ),
        (
            "attributes.message LIKE 'sweep 1_'",
            s.main_ids(|r| r.id == s.main[10].id || r.id == s.main[11].id),
        ),
        ("attributes.branch = 'other'", other.clone()),
        ("attributes.status = 'completed'", s.all_ids()),
        ("tags.team = 'nlp'", other.clone()),
        ("tags.missing = 'x'", BTreeSet::new()),
        ("tags.missing != 'x'", s.all_ids()),
        ("metrics.eval.top1 > 0.1", [s.other[1].clone()].into()),
        ("metrics.`eval.top1` >= 0.05", other.clone()),
        ("metric.loss >= 2 and param.epochs = 10", other.clone()),
        ("attributes.run_id = '{}'", [s.main[3].id.clone()].into()),
    ];
    for (q, expected) in cases {
        let q = q.replace("{}", &s.main[3].id);
        assert_eq!(s.find_set(&q), expected, "{q}");
    }
}

#[test]
fn find_start_time_dates() {
    let s = sweep();
    let v = parse_json(&s.env.ok(&["compare", "--all", "--json"]));
    let times: Vec<(String, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["start_time"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        s.find_set("attributes.start_time >= '2000-01-01'"),
        s.all_ids()
    );
    assert!(s.find("attributes.start_time < '2000-01-01'").is_empty());
    assert!(s
        .find("attributes.start_time > '2999-12-31T00:00:00Z'")
        .is_empty());

    // RFC 3339 with milliseconds, at the start of the sixth run.
    let t6 = times.iter().find(|(id, _)| *id == s.main[6].id).unwrap().1;
    let stamp = chrono::DateTime::from_timestamp_millis(t6)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let expected: BTreeSet<String> = times
        .iter()
        .filter(|(_, t)| *t >= t6)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(expected.contains(&s.main[6].id) && !expected.contains(&s.main[5].id));
    assert_eq!(
        s.find_set(&format!("attributes.start_time >= '{stamp}'")),
        expected,
        "{stamp}"
    );
    // Another offset names the same instant.
    let shifted = chrono::DateTime::from_timestamp_millis(t6)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        s.find_set(&format!("attributes.start_time >= '{shifted}'")),
        expected,
        "{shifted}"
    );
    // A plain date is midnight UTC.
    let day = chrono::DateTime::from_timestamp_millis(t6)
        .unwrap()
        .date_naive();
    let midnight = day
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let expected: BTreeSet<String> = times
        .iter()
        .filter(|(_, t)| *t >= midnight)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        s.find_set(&format!(
            "attributes.start_time >= '{}'",
            day.format("%Y-%m-%d")
        )),
        expected
    );
    // Numbers are milliseconds since the epoch.
    assert_eq!(
        s.find_set(&format!("attributes.start_time >= {t6}")),
        times
            .iter()
            .filter(|(_, t)| *t >= t6)
            .map(|(id, _)| id.clone())
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn find_rejects_unparseable_dates_instead_of_matching_nothing() {
    let env = Env::init();
    let id = env.commit(&["-m", "x"]);
    // A date and time without an offset: either read (as UTC) or refused, never silently
    // compared as text.
    let out = env.run(&["find", "attributes.start_time > '2000-01-01T10:00:00'"]);
    let listed = stdout_of(&out).trim() == id;
    let refused = out.status.code() == Some(1) && stderr_of(&out).contains("column");
    assert!(
        listed || refused,
        "'2000-01-01T10:00:00' neither matched the run nor was refused: exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        stdout_of(&out),
        stderr_of(&out)
    );
    let err = env.fails(&["find", "attributes.start_time > 'yesterday'"]);
    assert!(err.contains("column"), "{err}");
}

#[test]
fn find_malformed_queries_name_the_column() {
    let env = Env::init();
    env.commit(&["-m", "x", "--param", "a=1"]);
    for (q, col) in [
        ("metrics.acc >", 14),
        ("metrics.acc > 1 or", 19),
        ("foo.acc > 1", 1),
        ("metrics.acc ~ 1", 13),
        ("metrics.acc > 1 and", 20),
        ("params.a IN ('x'", 17),
        ("params.a = 'unterminated", 12),
        ("attributes.bogus = 1", 12),
        ("metrics.acc LIKE 3", 13),
        ("metrics.acc > 1 metrics.b > 2", 17),
        ("metrics > 1", 9),
        ("params.a NOT 'x'", 14),
    ] {
        let err = env.fails(&["find", q]);
        assert!(err.contains(&format!("column {col}")), "{q}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == format!("  {q}"))
            .unwrap_or_else(|| panic!("{q}: query not echoed:\n{err}"));
        assert_eq!(
            lines.get(at + 1).copied(),
            Some(format!("  {}^", " ".repeat(col - 1)).as_str()),
            "{q}: caret not under column {col}:\n{err}"
        );
        assert!(env.run(&["find", q]).stdout.is_empty(), "{q}");
    }
    let err = env.fails(&["find", "", "--order-by", "metrics.acc DESC,"]);
    assert!(err.contains("column"), "{err}");
}

#[test]
fn reindex_keeps_results() {
    let s = sweep();
    let queries = [
        "",
        "metrics.acc > 0.65",
        "params.optimizer = 'sgd' and params.lr < 0.05",
        "attributes.branch = 'other'",
        "tags.team = 'vision' and metrics.loss <= 0.7",
    ];
    let before: Vec<Vec<String>> = queries.iter().map(|q| s.find(q)).collect();
    let table_before = s
        .env
        .ok(&["compare", "--all", "--order-by", "metrics.acc DESC"]);
    let out = s.env.run(&["reindex"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Reindexed 14 run(s)"),
        "{}",
        stderr_of(&out)
    );
    let after: Vec<Vec<String>> = queries.iter().map(|q| s.find(q)).collect();
    assert_eq!(before, after);
    assert_eq!(before[0].len(), 14);
    assert_eq!(
        s.env
            .ok(&["compare", "--all", "--order-by", "metrics.acc DESC"]),
        table_before
    );
    // Quiet reindex prints nothing; a second one is as good as the first.
    assert_eq!(s.env.ok(&["-q", "reindex"]), "");
    assert_eq!(s.find(queries[1]), before[1]);
}

#[test]
fn find_quoted_values_compare_as_text_and_numbers_numerically() {
    let env = Env::init();
    let v110 = env.commit(&[
        "-m",
        "a",
        "-p",
        "dataset_version='1.10'",
        "-p",
        "epochs=abc",
    ]);
    let v11 = env.commit(&["-m", "b", "-p", "dataset_version='1.1'", "-p", "epochs=40"]);
    let set = |q: &str| -> BTreeSet<String> { find_ids(&env, &["find", q]).into_iter().collect() };
    let one = |id: &String| BTreeSet::from([id.clone()]);
    let both = BTreeSet::from([v110.clone(), v11.clone()]);
    // Quoted: text, so '1.1' is not '1.10'.
    assert_eq!(set("params.dataset_version = '1.1'"), one(&v11));
    assert_eq!(set("params.dataset_version = '1.10'"), one(&v110));
    assert_eq!(set("params.dataset_version != '1.1'"), one(&v110));
    assert_eq!(set("params.dataset_version IN ('1.10', '2')"), one(&v110));
    // Unquoted: a number, so 1.1 and 1.10 are equal.
    assert_eq!(set("params.dataset_version = 1.1"), both);
    // A value that is not a number never orders against one.
    assert_eq!(set("params.epochs > 30"), one(&v11));
    assert_eq!(set("params.epochs <= 30"), BTreeSet::new());
    assert_eq!(
        set("params.epochs = 30 or params.epochs < 30"),
        BTreeSet::new()
    );
    assert_eq!(set("params.epochs != 30"), both);
    assert_eq!(set("params.epochs = 'abc'"), one(&v110));
    // The same parser behind compare --where.
    let out = env.ok(&[
        "compare",
        "--where",
        "params.dataset_version = '1.1'",
        "--csv",
    ]);
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].starts_with(&v11[..12]), "{out}");
}

#[test]
fn find_and_compare_where_take_or_not_parentheses_and_in() {
    let s = sweep();
    let other: BTreeSet<String> = s.other.iter().cloned().collect();
    let with_other = |mut x: BTreeSet<String>| {
        x.extend(other.iter().cloned());
        x
    };
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        (
            "metrics.acc > 0.69 or params.lr = 0.01",
            s.main_ids(|r| r.acc > 0.69 || r.lr == 0.01),
        ),
        // AND binds tighter: a or (b and c).
        (
            "params.optimizer = 'rmsprop' or params.lr = 0.1 and params.seed = 2",
            with_other(s.main_ids(|r| r.lr == 0.1 && r.seed == 2)),
        ),
        (
            "(params.optimizer = 'rmsprop' or params.lr = 0.1) and params.seed = 2",
            s.main_ids(|r| r.lr == 0.1 && r.seed == 2),
        ),
        (
            "params.lr = 0.1 and params.seed = 2 or params.optimizer = 'rmsprop'",
            with_other(s.main_ids(|r| r.lr == 0.1 && r.seed == 2)),
        ),
        (
            "not params.optimizer = 'adam' and tags.team = 'vision'",
            s.main_ids(|r| r.optimizer == "sgd"),
        ),
        (
            "NOT (params.optimizer = 'adam' OR tags.team = 'nlp')",
            s.main_ids(|r| r.optimizer == "sgd"),
        ),
        (
            "params.lr IN (0.1, 0.001) and not params.optimizer NOT IN ('sgd')",
            s.main_ids(|r| (r.lr == 0.1 || r.lr == 0.001) && r.optimizer == "sgd"),
        ),
        (
            "((metrics.acc > 0.705)) or (tags.team = 'nlp' and params.seed = 4)",
            [s.main[7].id.clone(), s.other[1].clone()]
                .into_iter()
                .collect(),
        ),
        ("metrics.eval.top1 IS NOT NULL", other.clone()),
        (
            "params.desc is null and params.seed = 1",
            s.main_ids(|r| r.seed == 1),
        ),
    ];
    for (q, expected) in &cases {
        assert!(!expected.is_empty(), "{q}");
        assert_eq!(&s.find_set(q), expected, "find {q}");
        let out = s.env.ok(&["compare", "--all", "--where", q, "--csv"]);
        let got: BTreeSet<String> = out.lines().skip(1).map(|l| l[..12].to_string()).collect();
        let want: BTreeSet<String> = expected.iter().map(|id| id[..12].to_string()).collect();
        assert_eq!(got, want, "compare --where {q}");
    }
    // Errors point at the column, for both commands.
    for (q, col) in [
        ("metrics.acc > 0.6 or (params.lr = 0.1", 38),
        ("metrics.acc > 0.6 or params.lr = 0.1)", 37),
        ("not or metrics.acc > 0.6", 5),
        ("params.lr IN (0.1,)", 19),
    ] {
        for args in [vec!["find", q], vec!["compare", "--where", q]] {
            let err = s.env.fails(&args);
            assert!(err.contains(&format!("column {col}:")), "{q}: {err}");
            let caret = format!("  {}^", " ".repeat(col - 1));
            assert!(err.lines().any(|l| l == caret), "{q}: {err}");
        }
    }
}

#[test]
fn query_errors_say_query_once_and_suggest_quotes_for_a_bare_word() {
    let s = sweep();
    let err = s.env.fails(&["find", "metrics.acc > high"]);
    assert_eq!(err.matches("query").count(), 1, "{err}");
    assert!(err.starts_with("error: query at column 15: "), "{err}");
    assert!(err.contains("'high'") && err.contains("quote"), "{err}");
    let err = s
        .env
        .fails(&["compare", "--where", "params.optimizer = adam"]);
    assert!(
        err.contains("--where") && err.contains("column 20"),
        "{err}"
    );
    assert!(err.contains("'adam'"), "{err}");
    // Metrics are numbers: a quoted one is refused, not compared as text.
    let err = s.env.fails(&["find", "metrics.acc > '0.9'"]);
    assert!(err.contains("column 15") && err.contains("number"), "{err}");
}

#[test]
fn filter_or_order_on_a_name_no_run_has_is_an_error_with_a_suggestion() {
    let s = sweep();
    let err = s.env.fails(&["find", "metrics.accuracy > 0.5"]);
    assert!(
        err.contains("column 1:") && err.contains("accuracy"),
        "{err}"
    );
    assert!(err.contains("did you mean metrics.acc?"), "{err}");
    let err = s
        .env
        .fails(&["compare", "--where", "params.optimiser = 'adam'"]);
    assert!(err.contains("did you mean params.optimizer?"), "{err}");
    let err = s
        .env
        .fails(&["compare", "--order-by", "metrics.acc DESC, metrics.los"]);
    assert!(err.contains("--order-by at column 19:"), "{err}");
    assert!(err.contains("did you mean metrics.loss?"), "{err}");
    let err = s.env.fails(&["find", "", "--order-by", "params.zzzzzz"]);
    assert!(
        err.contains("zzzzzz") && err.contains("params recorded"),
        "{err}"
    );
    // A name some run has is fine even when no selected run matches; tags are free.
    assert!(s.find("metrics.eval.top1 > 5").is_empty());
    assert!(s.find("tags.owner = 'ada'").is_empty());
    let out = s.env.ok(&["compare", "--where", "metrics.eval.top1 > 0"]);
    assert!(out.trim().is_empty(), "{out}");
}

#[test]
fn compare_fits_the_terminal_when_columns_is_not_set() {
    let env = Env::init();
    for k in 0..3 {
        let mut args: Vec<String> = vec!["-m".into(), format!("r{k}")];
        for p in 0..10 {
            args.push("--param".into());
            args.push(format!("a_rather_long_parameter_name_{p}=value-{k}-{p}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        env.commit(&refs);
    }
    let width = |text: &str| text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let (code, wide) = env.run_in_terminal(&["compare"], 200);
    assert_eq!(code, Some(0), "{wide}");
    assert!(width(&wide) > 80 && width(&wide) <= 200, "{wide}");
    let (code, narrow) = env.run_in_terminal(&["compare"], 60);
    assert_eq!(code, Some(0), "{narrow}");
    assert!(width(&narrow) <= 60 && width(&narrow) > 0, "{narrow}");
    // COLUMNS, when set, still decides; a pipe without it gets 80.
    let out = env
        .cmd()
        .args(["compare"])
        .env("COLUMNS", "120")
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(width(&text) > 80 && width(&text) <= 120, "{text}");
    assert!(width(&env.ok(&["compare"])) <= 80);
}

#[test]
fn compare_all_shows_branch_and_status() {
    let env = Env::init();
    env.commit(&["-m", "ok", "--param", "lr=0.1"]);
    env.ok(&["branch", "exp"]);
    env.write("fail.sh", "exit 3\n");
    let out = env.run(&["run", "-b", "exp", "-p", "lr=0.2", "--", "sh", "fail.sh"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let out = env.ok(&["compare", "--all"]);
    let t = table(&out);
    assert_eq!(t[0][..3], ["run", "branch", "status"], "{out}");
    let mut rows: Vec<(String, String)> = t[1..]
        .iter()
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("exp".to_string(), "failed".to_string()),
            ("main".to_string(), "completed".to_string())
        ],
        "{out}"
    );
    // Without --all, the table is as before.
    assert_eq!(table(&env.ok(&["compare"]))[0][0], "run");
    assert!(!env.ok(&["compare"]).contains("status"));
}
