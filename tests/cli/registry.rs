//! Tests of the model registry: versions, stages, history, `model:` specs, gc, and sharing a
//! registry through folder and S3 remotes (including concurrent promotions).

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use crate::common::*;

// ---- utilities ------------------------------------------------------------------------------

/// Size of the model files of most tests.
const MODEL_LEN: usize = 3 << 20;

/// Runs `args`, asserts success, parses stdout as JSON.
fn json(env: &Env, args: &[&str]) -> Value {
    parse_json(&env.ok(args))
}

/// Runs `args`, asserts it fails with exit 1 and a single `error:` line that mentions every
/// one of `mentions`; returns that line.
fn fails_clearly(env: &Env, args: &[&str], mentions: &[&str]) -> String {
    let err = env.fails(args);
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "cairn {args:?}: the error should be one line:\n{err}"
    );
    for m in mentions {
        assert!(
            err.contains(m),
            "cairn {args:?}: the error does not mention {m:?}: {err}"
        );
    }
    lines[0].to_string()
}

/// The bytes `cairn ARGS` writes to stdout.
fn stdout_bytes(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = env.run(args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {}",
        text(&out.stderr)
    );
    out.stdout
}

/// The ids of `cairn model history NAME --json`, oldest first.
fn history_ids(env: &Env, name: &str) -> Vec<String> {
    match json(env, &["model", "history", name, "--json"]) {
        Value::Array(v) => v
            .iter()
            .map(|e| e["id"].as_str().expect("history entry id").to_string())
            .collect(),
        other => panic!("model history --json is not an array: {other}"),
    }
}

/// The version number `cairn model show SPEC --json` reports.
fn shown_version(env: &Env, spec: &str) -> u64 {
    json(env, &["model", "show", spec, "--json"])["version"]["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("model show {spec} --json has no version number"))
}

/// The single regular file below `dir`, as bytes (asserting there is exactly one).
fn only_file(dir: &std::path::Path) -> (PathBuf, Vec<u8>) {
    let files: Vec<PathBuf> = snapshot_dir(dir)
        .into_iter()
        .filter(|(_, i)| matches!(i, Item::File { .. }))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        files.len(),
        1,
        "expected one file in {}: {files:?}",
        dir.display()
    );
    let p = files[0].clone();
    let bytes = std::fs::read(dir.join(&p)).unwrap();
    (p, bytes)
}

/// Objects and bytes of `Fetched from REMOTE: N object(s), SIZE` on stderr.
fn fetched(stderr: &str) -> (u64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Fetched from "))
        .unwrap_or_else(|| panic!("no 'Fetched from' status line in:\n{stderr}"));
    let (_, rest) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("odd status line {line:?}"));
    let (n, size) = rest
        .split_once(" object(s), ")
        .unwrap_or_else(|| panic!("odd status line {line:?}"));
    (
        n.parse()
            .unwrap_or_else(|_| panic!("odd object count in {line:?}")),
        parse_size(size),
    )
}

/// Records a training run: `model.bin` of `len` bytes of noise from `seed`, a data folder,
/// a learning rate and a loss. Returns the run id and the model's bytes.
fn train(env: &Env, seed: u64, len: usize, lr: &str, loss: &str) -> (String, Vec<u8>) {
    let model = noise(seed, len);
    env.write("model.bin", &model);
    env.write("data/train/rows.csv", format!("{seed},1\n{seed},2\n"));
    env.write("metrics.json", format!("{{\"loss\": {loss}}}"));
    let run = env.commit(&[
        "-m",
        &format!("train {seed}"),
        "--param",
        &format!("lr={lr}"),
        "--metrics",
        "metrics.json",
        "--data",
        "train=data/train",
        "--artifact",
        "model.bin",
    ]);
    (run, model)
}

/// Registers `artifacts/model.bin` of `run` as the next version of `name`; returns "vN".
fn register(env: &Env, name: &str, run: &str) -> String {
    let out = env.ok(&[
        "model",
        "register",
        name,
        run,
        "--path",
        "artifacts/model.bin",
    ]);
    let printed = out.trim();
    let v = printed
        .strip_prefix(&format!("{name}@"))
        .unwrap_or_else(|| panic!("model register printed {printed:?}"));
    v.to_string()
}

// ---- remotes of both kinds ------------------------------------------------------------------

type Kind = RemoteKind;

impl Remote {
    /// `cairn remote add origin URL [--endpoint E]` in `env`.
    fn add_origin(&self, env: &Env) {
        env.ok(&self.with_endpoint(&["remote", "add", "origin", &self.url]));
    }

    /// A fresh repository (`init` + `remote add origin`).
    fn fresh(&self) -> Env {
        let env = Env::init();
        self.add_origin(&env);
        env
    }
}

// ---- 1. versions, ls and show ---------------------------------------------------------------

#[test]
fn versions_are_listed_shown_and_immutable() {
    let env = Env::init();
    let (run1, model1) = train(&env, 1, MODEL_LEN, "0.1", "0.5");
    let (run2, model2) = train(&env, 2, MODEL_LEN, "0.2", "0.25");
    assert_ne!(model1, model2);
    env.ok(&[
        "model",
        "register",
        "resnet",
        &run1,
        "--path",
        "artifacts/model.bin",
        "-m",
        "first good one",
    ]);
    assert_eq!(register(&env, "resnet", &run2), "v2");

    // ls, text and JSON.
    let ls = env.ok(&["model", "ls"]);
    assert!(
        ls.contains("resnet") && ls.contains("latest v2"),
        "model ls:\n{ls}"
    );
    let listed = json(&env, &["model", "ls", "--json"]);
    let models = listed.as_array().expect("model ls --json is an array");
    assert_eq!(models.len(), 1, "{listed}");
    assert_eq!(models[0]["name"], "resnet");
    assert_eq!(models[0]["latest"], 2);
    assert_eq!(models[0]["versions"], 2);
    assert_eq!(models[0]["stages"], serde_json::json!({}));

    // show NAME@v1: the version, its run and its lineage.
    let v1 = json(&env, &["model", "show", "resnet@v1", "--json"]);
    assert_eq!(v1["model"], "resnet");
    assert_eq!(v1["version"]["version"], 1);
    assert_eq!(v1["version"]["run"], run1.as_str());
    assert_eq!(v1["version"]["path"], "artifacts/model.bin");
    assert_eq!(v1["version"]["message"], "first good one");
    assert_eq!(v1["version"]["author"], "tester");
    assert_eq!(v1["run_id"], run1.as_str());
    assert_eq!(v1["run"]["params"]["lr"], 0.1);
    assert_eq!(v1["run"]["metrics"]["loss"]["last"], 0.5);
    assert_eq!(v1["run"]["data"]["train"]["files"], 1);
    let files = v1["files"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{v1}");
    assert_eq!(files[0]["path"], "artifacts/model.bin");
    assert_eq!(files[0]["size"], MODEL_LEN as u64);
    assert_eq!(
        v1["version"]["content"], files[0]["id"],
        "the version pins the file's content"
    );
    let shown = env.ok(&["model", "show", "resnet@v1"]);
    for want in [
        "resnet@v1",
        "first good one",
        &run1,
        "artifacts/model.bin",
        "lr = 0.1",
        "loss = 0.5",
        "train",
    ] {
        assert!(
            shown.contains(want),
            "model show resnet@v1 lacks {want:?}:\n{shown}"
        );
    }

    // show NAME: the latest version; `model:` prefix accepted too.
    let latest = json(&env, &["model", "show", "resnet", "--json"]);
    assert_eq!(latest["version"]["version"], 2);
    assert_eq!(latest["run_id"], run2.as_str());
    assert_eq!(latest["run"]["params"]["lr"], 0.2);
    assert_eq!(latest["run"]["metrics"]["loss"]["last"], 0.25);
    assert_eq!(
        json(&env, &["model", "show", "model:resnet@v2", "--json"]),
        latest
    );

    // show NAME@STAGE.
    env.ok(&["model", "stage", "resnet", "v1", "production"]);
    let prod = json(&env, &["model", "show", "resnet@production", "--json"]);
    assert_eq!(prod["version"], v1["version"]);
    assert_eq!(prod["stages"], serde_json::json!(["production"]));
    let shown = env.ok(&["model", "show", "resnet@production"]);
    assert!(
        shown.contains("resnet@v1") && shown.contains("production"),
        "model show resnet@production:\n{shown}"
    );

    // Versions never change: registering again (even the same run) makes a new version, and
    // nothing re-points an existing one.
    assert_eq!(register(&env, "resnet", &run1), "v3");
    fails_clearly(
        &env,
        &["model", "register", "resnet@v1", &run2],
        &["resnet@v1"],
    );
    fails_clearly(
        &env,
        &["model", "stage", "resnet", "v2", "v1"],
        &["v1", "version"],
    );
    let v1_again = json(&env, &["model", "show", "resnet@v1", "--json"]);
    assert_eq!(v1_again["version"], v1["version"], "v1 changed");
    assert_eq!(v1_again["run"], v1["run"]);
    let v3 = json(&env, &["model", "show", "resnet@v3", "--json"]);
    assert_eq!(v3["version"]["content"], v1["version"]["content"]);
    assert_eq!(v3["run_id"], run1.as_str());
    let listed = json(&env, &["model", "ls", "--json"]);
    assert_eq!(listed[0]["latest"], 3);
    assert_eq!(listed[0]["versions"], 3);
    assert_eq!(listed[0]["stages"], serde_json::json!({"production": 1}));
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:resnet@v2:artifacts/model.bin"]),
        model2
    );
    fsck_clean(&env);
}

// ---- 2. stages and history ------------------------------------------------------------------

#[test]
fn stages_move_and_history_records_every_change() {
    let env = Env::init();
    let (run1, _) = train(&env, 3, 1 << 20, "0.1", "0.5");
    let (run2, _) = train(&env, 4, 1 << 20, "0.2", "0.4");
    register(&env, "m", &run1);
    register(&env, "m", &run2);

    let out = ok_stderr(
        &env,
        &[
            "model",
            "stage",
            "m",
            "v1",
            "production",
            "-m",
            "passed eval",
        ],
    );
    assert!(out.contains("v1"), "{out}");
    let out = ok_stderr(&env, &["model", "stage", "m", "v2", "production"]);
    assert!(out.contains("v1") && out.contains("v2"), "{out}");
    env.ok(&["model", "stage", "m", "v1", "staging"]);

    // One version per stage.
    let ls = json(&env, &["model", "ls", "--json"]);
    assert_eq!(
        ls[0]["stages"],
        serde_json::json!({"production": 2, "staging": 1})
    );
    assert_eq!(shown_version(&env, "m@production"), 2);
    assert_eq!(shown_version(&env, "m@staging"), 1);
    let v1 = json(&env, &["model", "show", "m@v1", "--json"]);
    assert_eq!(v1["stages"], serde_json::json!(["staging"]));
    let text_ls = env.ok(&["model", "ls"]);
    assert!(
        text_ls.contains("production=v2") && text_ls.contains("staging=v1"),
        "{text_ls}"
    );
    // Staging the version a stage already holds changes nothing.
    fails_clearly(
        &env,
        &["model", "stage", "m", "v2", "production"],
        &["v2", "production"],
    );

    // Removing a stage.
    env.ok(&["model", "stage", "m", "staging", "--remove"]);
    let ls = json(&env, &["model", "ls", "--json"]);
    assert_eq!(ls[0]["stages"], serde_json::json!({"production": 2}));
    fails_clearly(&env, &["model", "show", "m@staging"], &["staging"]);
    fails_clearly(
        &env,
        &["model", "stage", "m", "staging", "--remove"],
        &["staging"],
    );

    // The history: every change, in order, with where each stage came from.
    let history = env.ok(&["model", "history", "m"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 6, "history:\n{history}");
    assert!(
        lines[0].contains("registered v1") && lines[0].contains(&run1[..12]),
        "{history}"
    );
    assert!(
        lines[1].contains("registered v2") && lines[1].contains(&run2[..12]),
        "{history}"
    );
    assert!(
        lines[2].contains("production: -> v1") && lines[2].contains("passed eval"),
        "{history}"
    );
    assert!(lines[3].contains("production: v1 -> v2"), "{history}");
    assert!(lines[4].contains("staging: -> v1"), "{history}");
    assert!(lines[5].contains("staging: v1 removed"), "{history}");
    assert!(lines.iter().all(|l| l.contains("tester")), "{history}");

    let events = json(&env, &["model", "history", "m", "--json"]);
    let events = events.as_array().expect("history --json is an array");
    assert_eq!(events.len(), 6);
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["action"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        actions,
        ["register", "register", "stage", "stage", "stage", "unstage"]
    );
    // A chain: each event names the one before it.
    assert_eq!(events[0]["event"]["previous"], Value::Null);
    for w in events.windows(2) {
        assert_eq!(w[1]["event"]["previous"], w[0]["id"], "broken chain");
    }
    assert_eq!(events[3]["event"]["stage"], "production");
    assert_eq!(events[3]["event"]["from_version"], 1);
    assert_eq!(events[3]["event"]["version"], 2);
    assert_eq!(events[0]["event"]["run"], run1.as_str());
    assert_eq!(events[0]["event"]["path"], "artifacts/model.bin");

    // Mistakes: exit 1, one clear line, nothing recorded.
    fails_clearly(&env, &["model", "stage", "m", "v9", "production"], &["v9"]);
    fails_clearly(
        &env,
        &["model", "stage", "nope", "v1", "production"],
        &["nope"],
    );
    fails_clearly(&env, &["model", "show", "model:m@nostage"], &["nostage"]);
    fails_clearly(&env, &["show", "model:m@nostage"], &["nostage"]);
    fails_clearly(
        &env,
        &["checkout", "model:m@nostage", "-o", "out"],
        &["nostage"],
    );
    fails_clearly(&env, &["model", "show", "nope"], &["nope"]);
    fails_clearly(&env, &["model", "history", "nope"], &["nope"]);
    fails_clearly(
        &env,
        &["model", "register", "m", &run1, "--path", "artifacts/nope"],
        &["artifacts/nope"],
    );
    fails_clearly(&env, &["model", "stage", "m", "v1"], &["stage"]);
    assert_eq!(
        json(&env, &["model", "history", "m", "--json"])
            .as_array()
            .map(Vec::len),
        Some(6),
        "a failed command recorded something"
    );
    assert!(!env.path("out").exists());
    fsck_clean(&env);
}

// ---- 3. `model:` specs wherever a RUN is accepted -------------------------------------------

#[test]
fn model_specs_work_as_runs() {
    let env = Env::init();
    let (run1, model1) = train(&env, 5, MODEL_LEN, "0.1", "0.5");
    let (run2, model2) = train(&env, 6, MODEL_LEN, "0.2", "0.3");
    register(&env, "m", &run1);
    register(&env, "m", &run2);
    env.ok(&["model", "stage", "m", "v1", "production"]);

    // show
    assert_eq!(
        json(&env, &["show", "model:m@production", "--json"]),
        json(&env, &["show", &run1, "--json"])
    );
    assert_eq!(
        json(&env, &["show", "model:m@v2", "--json"]),
        json(&env, &["show", &run2, "--json"])
    );
    assert_eq!(
        json(&env, &["show", "model:m", "--json"]),
        json(&env, &["show", &run2, "--json"]),
        "model:NAME is the latest version"
    );

    // ancestry: a version's run, then first parents back, as for any RUN.
    for (spec, want) in [
        ("model:m@v2~1", &run1),
        ("model:m~", &run1),
        ("model:m@v2^", &run1),
        ("model:m@production~0", &run1),
    ] {
        assert_eq!(
            json(&env, &["show", spec, "--json"])["id"],
            json(&env, &["show", want, "--json"])["id"],
            "{spec}"
        );
    }
    fails_clearly(&env, &["show", "model:m@v1~5"], &["model:m@v1~5"]);
    // Checked out, a run before a version is a whole run, not the registered file.
    env.ok(&["checkout", "model:m@v2~1", "-o", "before-v2"]);
    let whole = snapshot_dir(&env.path("before-v2"));
    assert!(whole.len() > 1, "only {whole:?}");
    env.ok(&["checkout", &run1, "-o", "run1"]);
    assert_eq!(whole, snapshot_dir(&env.path("run1")));

    // ls
    let ls = env.ok(&["ls", "model:m@production", "artifacts"]);
    assert!(ls.contains("artifacts/model.bin"), "{ls}");
    assert_eq!(ls, env.ok(&["ls", &run1, "artifacts"]));
    assert_eq!(env.ok(&["ls", "model:m@v2"]), env.ok(&["ls", &run2]));

    // cat: the colon after `model:` is not the RUN:PATH separator.
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:m@production:artifacts/model.bin"]),
        model1
    );
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:m@v2:artifacts/model.bin"]),
        model2
    );
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:m:artifacts/model.bin"]),
        model2
    );
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:m@production", "artifacts/model.bin"]),
        model1
    );
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:m@v1:data/train/rows.csv"]),
        b"5,1\n5,2\n"
    );

    // diff
    assert_eq!(
        json(&env, &["diff", "model:m@v1", "model:m@v2", "--json"]),
        json(&env, &["diff", &run1, &run2, "--json"])
    );
    let diff = env.ok(&["diff", "model:m@production", "model:m@v2"]);
    assert!(
        diff.contains("lr") && diff.contains("model.bin"),
        "diff model:m@production model:m@v2:\n{diff}"
    );

    // checkout: the registered file, bit for bit.
    let out = ok_stderr(&env, &["checkout", "model:m@production", "-o", "served"]);
    assert!(out.contains("m@v1"), "{out}");
    let (name, bytes) = only_file(&env.path("served"));
    assert_eq!(name, PathBuf::from("model.bin"));
    assert!(bytes == model1, "checkout of m@production differs from v1");
    // Again: nothing to do. Another version over it: refused without --force.
    env.ok(&["checkout", "model:m@production", "-o", "served"]);
    let err = env.fails(&["checkout", "model:m@v2", "-o", "served"]);
    assert!(err.contains("--force"), "{err}");
    assert!(
        only_file(&env.path("served")).1 == model1,
        "a refused checkout wrote"
    );
    env.ok(&["checkout", "model:m@v2", "-o", "served", "--force"]);
    assert!(only_file(&env.path("served")).1 == model2);

    // A version registered as a folder (the run's artifacts) checks out as that folder.
    env.ok(&["model", "register", "whole", &run2]);
    env.ok(&["checkout", "model:whole@v1", "-o", "whole"]);
    let (name, bytes) = only_file(&env.path("whole"));
    assert_eq!(name, PathBuf::from("model.bin"));
    assert!(bytes == model2);

    // log starts from the version's run.
    let log = json(&env, &["log", "--json", "model:m@production"]);
    assert_eq!(log[0]["id"], run1.as_str());
}

// ---- 4. gc keeps what a model version needs -------------------------------------------------

#[test]
fn gc_keeps_registered_versions() {
    let env = Env::init();
    train(&env, 7, 1 << 20, "0.1", "0.5");
    env.ok(&["switch", "-c", "exp/wide"]);
    let (run, model) = train(&env, 8, MODEL_LEN, "0.3", "0.2");
    register(&env, "wide", &run);
    env.ok(&["model", "stage", "wide", "v1", "production"]);
    // Another branch's run that nothing registers: gc must remove that one.
    env.ok(&["switch", "-c", "exp/dead"]);
    train(&env, 9, 1 << 20, "0.9", "0.9");
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "-d", "exp/wide"]);
    env.ok(&["branch", "-d", "exp/dead"]);

    let gc = env.ok(&["gc", "--prune-now"]);
    let removed: u64 = gc
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("odd gc output: {gc}"));
    assert!(
        removed > 0,
        "gc removed nothing, not even the dead run: {gc}"
    );

    fsck_clean(&env);
    env.ok(&["checkout", "model:wide@production", "-o", "out"]);
    let (_, bytes) = only_file(&env.path("out"));
    assert!(bytes == model, "the model version changed after gc");
    assert_eq!(
        json(&env, &["show", "model:wide@v1", "--json"])["id"],
        run.as_str()
    );
    assert_eq!(
        stdout_bytes(&env, &["cat", "model:wide@v1:data/train/rows.csv"]),
        b"8,1\n8,2\n"
    );
    // A second gc finds nothing more to remove.
    let again = env.ok(&["gc", "--prune-now"]);
    assert!(again.starts_with("removed 0 object(s)"), "{again}");
    fsck_clean(&env);
}

// ---- 5. fetching one stage from a remote ----------------------------------------------------

fn fetch_one_stage(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "registry-stage") else {
        return;
    };
    let mut models = Vec::new();
    for seed in 11..14u64 {
        let (run, model) = train(&a, seed, MODEL_LEN, &format!("0.{seed}"), "0.5");
        register(&a, "m", &run);
        models.push(model);
    }
    a.ok(&["model", "stage", "m", "v2", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);

    // A serving machine: a fresh repository, only the production version.
    let b = remote.fresh();
    let err = ok_stderr(&b, &["fetch", "origin", "model:m@production"]);
    let (objects, bytes) = fetched(&err);
    let total = (3 * MODEL_LEN) as f64;
    assert!(objects > 0, "{err}");
    assert!(
        bytes < 0.6 * total,
        "fetch of one version moved {bytes} bytes; all three versions are {total}:\n{err}"
    );
    assert!(
        bytes >= MODEL_LEN as f64,
        "fetch moved {bytes} bytes, less than the model itself:\n{err}"
    );
    b.ok(&["checkout", "model:m@production", "-o", "srv"]);
    let (_, got) = only_file(&b.path("srv"));
    assert!(got == models[1], "the served model is not v2 bit for bit");
    assert_eq!(shown_version(&b, "m@production"), 2);
    assert_eq!(
        json(&b, &["model", "ls", "--json"])[0]["stages"],
        serde_json::json!({"production": 2})
    );
    // The whole history came along, even the versions whose files did not.
    assert_eq!(history_ids(&b, "m"), history_ids(&a, "m"));
    fsck_clean(&b);
    // A version that was not fetched is an error, not a crash.
    b.fails(&["checkout", "model:m@v1", "-o", "other"]);

    // Production moves on; the serving machine follows with the same two commands.
    a.ok(&["model", "stage", "m", "v3", "production", "-m", "better"]);
    a.ok(&["push", "origin", "model:m"]);
    let err = ok_stderr(&b, &["fetch", "origin", "model:m@production"]);
    let (_, bytes) = fetched(&err);
    assert!(bytes < 0.6 * total, "{err}");
    assert_eq!(shown_version(&b, "m@production"), 3);
    b.ok(&["checkout", "model:m@production", "-o", "srv", "--force"]);
    let (_, got) = only_file(&b.path("srv"));
    assert!(got == models[2], "the served model is not v3 bit for bit");
    assert_eq!(history_ids(&b, "m"), history_ids(&a, "m"));
    fsck_clean(&b);
}

#[test]
fn fetch_one_stage_folder() {
    fetch_one_stage(Kind::Folder);
}

#[test]
fn fetch_one_stage_s3() {
    fetch_one_stage(Kind::S3);
}

#[test]
fn fetching_one_stage_keeps_a_whole_model_whole() {
    let a = Env::init();
    let remote = Remote::new(Kind::Folder, &a, "registry-whole").expect("folder remote");
    let (run1, _) = train(&a, 21, 1 << 20, "0.1", "0.5");
    let (run2, _) = train(&a, 22, 1 << 20, "0.2", "0.4");
    register(&a, "m", &run1);
    register(&a, "m", &run2);
    a.ok(&["model", "stage", "m", "v1", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);
    // A repository that has the model whole asks for one stage: it must stay whole.
    a.ok(&["fetch", "origin", "model:m@production"]);
    a.ok(&["model", "stage", "m", "v2", "staging"]);
    a.ok(&[
        "model",
        "register",
        "m",
        &run1,
        "--path",
        "artifacts/model.bin",
    ]);
    fsck_clean(&a);
}

#[test]
fn clone_brings_models_and_no_stray_branches() {
    let a = Env::init();
    let remote = Remote::new(Kind::Folder, &a, "registry-clone").expect("folder remote");
    let (run, model) = train(&a, 23, 1 << 20, "0.1", "0.5");
    register(&a, "m", &run);
    a.ok(&["model", "stage", "m", "v1", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);

    let b = Env::new();
    let dir = b.work.to_str().expect("utf-8 temp path").to_string();
    b.ok(&["clone", &remote.url, &dir]);
    assert_eq!(
        json(&b, &["model", "ls", "--json"]),
        json(&a, &["model", "ls", "--json"])
    );
    assert_eq!(history_ids(&b, "m"), history_ids(&a, "m"));
    b.ok(&["checkout", "model:m@production", "-o", "srv"]);
    assert!(only_file(&b.path("srv")).1 == model);
    let branches = b.ok(&["branch"]);
    assert!(
        !branches.contains("models/"),
        "clone made the remote's model into a branch:\n{branches}"
    );
    fsck_clean(&b);
}

// ---- 6. concurrent promotions ---------------------------------------------------------------

fn text_of(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn concurrent_promotion(kind: Kind, rounds: usize) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "registry-race") else {
        return;
    };
    for seed in 31..34u64 {
        let (run, _) = train(&a, seed, 256 << 10, "0.1", "0.5");
        register(&a, "m", &run);
    }
    a.ok(&["model", "stage", "m", "v2", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);
    let c = remote.fresh();
    a.ok(&["fetch", "origin", "model:m"]);
    c.ok(&["fetch", "origin", "model:m"]);
    assert_eq!(history_ids(&c, "m"), history_ids(&a, "m"));

    for round in 0..rounds {
        let before = history_ids(&a, "m");
        assert_eq!(history_ids(&c, "m"), before, "round {round}: not in sync");
        let current = shown_version(&a, "m@production");
        let others: Vec<u64> = (1..=3).filter(|v| *v != current).collect();
        let (va, vc) = (format!("v{}", others[1]), format!("v{}", others[0]));
        let (ma, mc) = (format!("round {round} by a"), format!("round {round} by c"));
        a.ok(&["model", "stage", "m", &va, "production", "-m", &ma]);
        c.ok(&["model", "stage", "m", &vc, "production", "-m", &mc]);

        let pa = spawn(&a, &["push", "origin", "model:m"]);
        let pc = spawn(&c, &["push", "origin", "model:m"]);
        let oa = pa.wait_with_output().expect("wait");
        let oc = pc.wait_with_output().expect("wait");
        let (winner, wmsg, wver, loser, lout) = match (oa.status.success(), oc.status.success()) {
            (true, false) => (&a, &ma, &va, &c, &oc),
            (false, true) => (&c, &mc, &vc, &a, &oa),
            _ => panic!(
                "round {round}: exactly one push must win; a: {:?} {}; c: {:?} {}",
                oa.status.code(),
                text_of(&oa),
                oc.status.code(),
                text_of(&oc)
            ),
        };
        let err = text(&lout.stderr);
        assert_eq!(lout.status.code(), Some(1), "round {round}: {err}");
        assert!(err.starts_with("error: "), "round {round}: {err}");
        assert!(
            err.contains("fetch"),
            "round {round}: the refused push does not say to fetch first: {err}"
        );

        // The winner's history is the old one plus its event.
        let won = history_ids(winner, "m");
        assert_eq!(won.len(), before.len() + 1, "round {round}");
        assert_eq!(won[..before.len()], before[..], "round {round}");
        assert_eq!(
            shown_version(winner, "m@production"),
            wver[1..].parse::<u64>().unwrap()
        );

        // The loser fetches and sees the winner's event; nothing earlier is lost.
        loser.ok(&["fetch", "origin", "model:m"]);
        let lost = history_ids(loser, "m");
        assert!(
            lost.len() > before.len() && lost[..=before.len()] == won[..],
            "round {round}: after fetching, the loser's history is {lost:?}, the remote's {won:?}"
        );
        let shown = loser.ok(&["model", "history", "m"]);
        assert!(
            shown.contains(wmsg.as_str()),
            "round {round}: the loser's history lacks the winner's event:\n{shown}"
        );

        // Whatever the loser still has to say goes after it; then both are in sync again.
        loser.ok(&["push", "origin", "model:m"]);
        winner.ok(&["fetch", "origin", "model:m"]);
        let observer = remote.fresh();
        observer.ok(&["fetch", "origin", "model:m"]);
        let remote_history = history_ids(&observer, "m");
        assert_eq!(
            remote_history[..=before.len()],
            won[..],
            "round {round}: the remote lost an event"
        );
        assert_eq!(history_ids(winner, "m"), remote_history, "round {round}");
        assert_eq!(history_ids(loser, "m"), remote_history, "round {round}");
    }

    // Every round's winning promotion is on the remote, in order, and it checks.
    let observer = remote.fresh();
    observer.ok(&["fetch", "origin"]);
    let history = observer.ok(&["model", "history", "m"]);
    for round in 0..rounds {
        assert!(
            history.contains(&format!("round {round} by a"))
                || history.contains(&format!("round {round} by c")),
            "round {round} is missing from the remote:\n{history}"
        );
    }
    fsck_clean(&observer);
}

#[test]
fn concurrent_promotion_folder() {
    concurrent_promotion(Kind::Folder, 3);
}

#[test]
fn concurrent_promotion_s3() {
    concurrent_promotion(Kind::S3, 1);
}

#[test]
fn fetch_only_one_file_of_a_model_stage() {
    let a = Env::init();
    let remote = Remote::new(Kind::Folder, &a, "registry-only").expect("folder remote");
    let (run1, model1) = train(&a, 31, 1 << 20, "0.1", "0.5");
    let (run2, _) = train(&a, 32, 1 << 20, "0.2", "0.4");
    register(&a, "m", &run1);
    register(&a, "m", &run2);
    a.ok(&["model", "stage", "m", "v1", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);

    // The model ref names a history event, not a run: --only must go through the stage.
    let b = remote.fresh();
    b.ok(&[
        "fetch",
        "origin",
        "model:m@production",
        "--only",
        "artifacts/model.bin",
    ]);
    assert!(
        stdout_bytes(&b, &["cat", "model:m@production:artifacts/model.bin"]) == model1,
        "the fetched file is not v1 bit for bit"
    );
    assert_eq!(shown_version(&b, "m@production"), 1);
    fsck_clean(&b);

    // A version that did not come says which fetch brings it.
    let err = b.fails(&["model", "show", "m@v2"]);
    assert!(
        err.contains("m@v2") && err.contains("not in this repository"),
        "{err}"
    );
    assert!(
        err.contains("hint: `cairn fetch origin model:m@v2` brings it"),
        "{err}"
    );
    let err = b.fails(&["cat", "model:m@v2:artifacts/model.bin"]);
    assert!(err.contains("cairn fetch origin model:m@v2"), "{err}");
    b.ok(&["fetch", "origin", "model:m@v2"]);
    assert_eq!(shown_version(&b, "m@v2"), 2);

    // A repository that has the run whole keeps it whole: it can still push it elsewhere.
    a.ok(&[
        "fetch",
        "origin",
        "model:m@production",
        "--only",
        "artifacts/model.bin",
    ]);
    let backup = Remote::new(Kind::Folder, &a, "registry-only-backup").expect("folder remote");
    a.ok(&["remote", "add", "backup", &backup.url]);
    a.ok(&["push", "backup", "--all"]);
    fsck_clean(&a);
}

#[test]
fn a_new_stage_differing_only_in_case_is_warned_about() {
    let env = Env::init();
    let (run1, _) = train(&env, 41, 1024, "0.1", "0.5");
    let (run2, _) = train(&env, 42, 1024, "0.2", "0.4");
    register(&env, "logreg", &run1);
    register(&env, "logreg", &run2);
    let err = ok_stderr(&env, &["model", "stage", "logreg", "v1", "production"]);
    assert!(!err.contains("warning"), "{err}");
    let err = ok_stderr(&env, &["model", "stage", "logreg", "v2", "Production"]);
    assert!(
        err.contains("warning:") && err.contains("'Production' and 'production'"),
        "{err}"
    );
    assert!(err.contains("differ only in case"), "{err}");
    // Moving an existing stage is not warned about again.
    let err = ok_stderr(&env, &["model", "stage", "logreg", "v1", "Production"]);
    assert!(!err.contains("warning"), "{err}");
}

// ---- 6. a deploy machine fetches only the model ------------------------------------------------

/// A deploy machine asks for a model stage and receives the model's files and its run's
/// record — params, metrics, code version — but not the run's data set, code or other outputs,
/// which stay on the remote until asked for; `--with-run` then brings the rest.
fn deploy_fetches_only_the_model(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "deploy") else {
        return;
    };
    // 50 data files of 80 KB (4 MB that do not compress) and a 200 KB model beside a log.
    for i in 0..50u64 {
        a.write(&format!("data/f{i}.bin"), noise(300 + i, 80_000));
    }
    const MODEL_BYTES: usize = 200_000;
    let model = noise(7, MODEL_BYTES);
    a.write("out/model.bin", &model);
    a.write("out/train.log", noise(8, 300_000));
    a.write("params.json", "{\"lr\": 0.25}");
    let run = a.commit(&[
        "-m",
        "train",
        "--data",
        "data",
        "--params",
        "params.json",
        "--artifact",
        "out/model.bin",
        "--artifact",
        "out/train.log",
    ]);
    a.ok(&[
        "model",
        "register",
        "churn",
        &run,
        "--path",
        "artifacts/out/model.bin",
    ]);
    a.ok(&["model", "stage", "churn", "v1", "production"]);
    remote.add_origin(&a);
    a.ok(&["push", "origin", "--all"]);

    let b = remote.fresh();
    let err = ok_stderr(&b, &["fetch", "origin", "model:churn@production"]);
    let (_, bytes) = fetched(&err);
    assert!(
        bytes < 1.5 * MODEL_BYTES as f64 + 16_384.0,
        "fetching the model moved {bytes} bytes for a {MODEL_BYTES}-byte model:\n{err}"
    );
    b.ok(&["checkout", "model:churn@production", "-o", "srv"]);
    let (_, got) = only_file(&b.path("srv"));
    assert!(got == model, "the served model differs");
    // The run's record came: its params read back.
    let shown = b.ok(&["show", "model:churn@production", "--json"]);
    assert_eq!(parse_json(&shown)["run"]["params"]["lr"], 0.25, "{shown}");
    // What did not come says how to get it.
    for path in ["data/data/f3.bin", "artifacts/out/train.log"] {
        let err = b.fails(&["cat", &format!("{run}:{path}")]);
        assert!(
            err.contains("was not fetched") && err.contains(&format!("--only {path}")),
            "{path}: no way to get it named: {err}"
        );
    }
    fsck_clean(&b);

    let err = ok_stderr(
        &b,
        &["fetch", "origin", "model:churn@production", "--with-run"],
    );
    let (_, more) = fetched(&err);
    assert!(
        more > 4_000_000.0,
        "--with-run moved only {more} bytes:\n{err}"
    );
    let out = b.run(&["cat", &format!("{run}:data/data/f3.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == noise(303, 80_000), "the data file differs");
    fsck_clean(&b);
}

#[test]
fn deploy_fetches_only_the_model_folder() {
    deploy_fetches_only_the_model(Kind::Folder);
}

#[test]
fn deploy_fetches_only_the_model_s3() {
    deploy_fetches_only_the_model(Kind::S3);
}
