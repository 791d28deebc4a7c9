//! Tests of the everyday commands.

use std::collections::{BTreeSet, HashMap};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;

// ---- helpers ------------------------------------------------------------------------------

/// `cairn show RUN --json`.
fn show_json(env: &Env, run: &str) -> Value {
    parse_json(&env.ok(&["show", run, "--json"]))
}

/// The full id `RUN` resolves to.
fn resolve(env: &Env, run: &str) -> String {
    show_json(env, run)["id"]
        .as_str()
        .expect("show --json has an id")
        .to_string()
}

/// `cairn log --json ARGS` as a list of runs.
fn log_json(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["log", "--json"];
    all.extend_from_slice(args);
    match parse_json(&env.ok(&all)) {
        Value::Array(v) => v,
        other => panic!("log --json is not an array: {other}"),
    }
}

/// The paths `cairn ls RUN PATH --json` lists.
fn ls_paths(env: &Env, run: &str, path: &str) -> BTreeSet<String> {
    ls_json(env, run, path)
        .iter()
        .map(|i| i["path"].as_str().expect("path").to_string())
        .collect()
}

fn ls_json(env: &Env, run: &str, path: &str) -> Vec<Value> {
    match parse_json(&env.ok(&["ls", run, path, "--json"])) {
        Value::Array(v) => v,
        other => panic!("ls --json is not an array: {other}"),
    }
}

/// Runs `fsck --json`, asserts it is clean, returns the number of objects.
fn fsck_objects(env: &Env) -> u64 {
    let out = env.run(&["fsck", "--json"]);
    assert!(out.status.success(), "fsck failed: {}", stdout_of(&out));
    let report = parse_json(&stdout_of(&out));
    assert_eq!(report["problems"], json!([]), "fsck problems: {report}");
    report["objects"].as_u64().expect("objects count")
}

/// How many runs HEAD's history holds and how many objects the store holds.
fn store_state(env: &Env) -> (usize, u64) {
    (log_json(env, &[]).len(), fsck_objects(env))
}

/// A set of owned strings, for comparisons.
fn strings(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs git in the work folder and returns its trimmed stdout.
fn git_stdout(env: &Env, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(&env.work)
        .env("HOME", &env.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", stderr_of(&out));
    stdout_of(&out).trim().to_string()
}

fn is_hex_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Asserts an error message is a single `error:` line (a `hint:` line may follow).
fn assert_one_line_error(stderr: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("hint: "))
        .collect();
    assert_eq!(lines.len(), 1, "error is not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
}

// ---- 1. init --------------------------------------------------------------------------------

#[test]
fn init_creates_a_repository_and_refuses_a_second_time() {
    let env = Env::new();
    let out = env.run(&["init"]);
    assert!(out.status.success(), "init failed: {}", stderr_of(&out));
    assert!(env.path(".cairn").is_dir());
    assert!(stderr_of(&out).contains(".cairn"), "{}", stderr_of(&out));
    // A fresh repository has no runs; the current branch is main.
    assert_eq!(log_json(&env, &[]), Vec::<Value>::new());
    assert!(env.ok(&["branch"]).contains("* main"));
    assert_eq!(fsck_objects(&env), 0);
    let err = env.fails(&["show"]);
    assert!(err.contains("no runs yet"), "{err}");

    let err = env.fails(&["init"]);
    assert_one_line_error(&err);
    assert!(err.contains("already a cairn repository"), "{err}");
    let root = env.work.canonicalize().unwrap();
    assert!(err.contains(&root.display().to_string()), "{err}");
}

#[test]
fn init_dir_creates_the_repository_in_that_folder() {
    let env = Env::new();
    // A folder that does not exist yet is created.
    let out = env.run(&["init", "nested/project"]);
    assert!(out.status.success(), "init DIR failed: {}", stderr_of(&out));
    assert!(env.path("nested/project/.cairn").is_dir());
    assert!(!env.path(".cairn").exists());
    // An existing folder gets the repository itself, not a folder of the same name inside.
    std::fs::create_dir_all(env.path("existing")).unwrap();
    env.ok(&["init", "existing"]);
    assert!(env.path("existing/.cairn").is_dir());
    assert!(
        !env.path("existing/existing").exists(),
        "created DIR inside DIR"
    );
    assert!(!env.path(".cairn").exists());
    // A second time names that folder.
    let err = env.fails(&["init", "nested/project"]);
    assert_one_line_error(&err);
    assert!(err.contains("nested/project"), "{err}");
    assert!(err.contains("already a cairn repository"), "{err}");
}

#[test]
fn commands_outside_a_repository_fail_with_not_a_cairn_repository() {
    let env = Env::new();
    env.write("d/a.txt", "a");
    let cases: &[&[&str]] = &[
        &["log"],
        &["show"],
        &["ls"],
        &["cat", "HEAD:data/d/a.txt"],
        &["commit", "-m", "x", "--data", "d"],
        &["checkout", "HEAD", "-o", "out"],
        &["branch"],
        &["branch", "exp"],
        &["switch", "-c", "exp"],
        &["tag"],
        &["note", "HEAD", "-m", "x"],
        &["fsck"],
        &["gc"],
    ];
    for args in cases {
        let err = env.fails(args);
        assert!(err.contains("not a cairn repository"), "{args:?}: {err}");
        assert!(err.contains("cairn init"), "{args:?}: no hint: {err}");
    }
    assert!(!env.path(".cairn").exists());
    assert!(!env.path("out").exists());
}

// ---- 2. commit inputs ---------------------------------------------------------------------

#[test]
fn commit_code_in_git_records_tracked_files_and_git_state() {
    let env = Env::new();
    env.git(&["init", "-q"]);
    env.write("train.py", "print('hello')\n");
    env.write("lib/model.py", "class Model:\n    pass\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "initial"]);
    env.write("scratch.txt", "untracked notes\n");
    env.ok(&["init"]);
    let head = git_stdout(&env, &["rev-parse", "HEAD"]);

    let clean = env.commit(&["-m", "clean", "--code", "."]);
    let paths = ls_paths(&env, &clean, "code");
    assert!(paths.contains("code/train.py"), "{paths:?}");
    assert!(paths.contains("code/lib/model.py"), "{paths:?}");
    assert!(
        !paths.contains("code/scratch.txt"),
        "untracked file recorded: {paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains(".cairn")), "{paths:?}");
    let v = show_json(&env, &clean);
    let code = &v["run"]["code"];
    assert_eq!(code["files"], 2, "{code}");
    let git = &code["git"];
    assert_eq!(git["commit"].as_str(), Some(head.as_str()), "{git}");
    assert_eq!(git["branch"], "main", "{git}");
    assert_eq!(
        git["dirty"], false,
        "an untracked file made the repo dirty: {git}"
    );
    assert!(git["diff"].is_null(), "{git}");

    // A modified tracked file: dirty, with the diff stored, and the snapshot holds the edit.
    env.write("train.py", "print('changed')\n");
    let dirty = env.commit(&["-m", "dirty", "--code", "."]);
    let v = show_json(&env, &dirty);
    let git = &v["run"]["code"]["git"];
    assert_eq!(git["dirty"], true, "{git}");
    assert!(is_hex_id(&git["diff"]), "no diff id: {git}");
    assert_eq!(git["commit"].as_str(), Some(head.as_str()), "{git}");
    assert_eq!(
        cat_bytes(&env, &format!("{dirty}:code/train.py")),
        b"print('changed')\n"
    );
    assert_eq!(
        cat_bytes(&env, &format!("{clean}:code/train.py")),
        b"print('hello')\n"
    );
    assert!(env.ok(&["show", &dirty]).contains("dirty"));

    // Committing the change in git makes the state clean again, at the new commit.
    env.git(&["commit", "-q", "-a", "-m", "second"]);
    let head2 = git_stdout(&env, &["rev-parse", "HEAD"]);
    let again = env.commit(&["-m", "clean again", "--code", "."]);
    let git = show_json(&env, &again)["run"]["code"]["git"].clone();
    assert_eq!(git["dirty"], false, "{git}");
    assert_eq!(git["commit"].as_str(), Some(head2.as_str()), "{git}");
}

#[test]
fn commit_code_outside_git_takes_the_whole_folder_and_honours_gitignore() {
    let env = Env::init();
    env.write("src/train.py", "print(1)\n");
    env.write("src/util/helpers.py", "X = 1\n");
    env.write("src/.gitignore", "*.log\ncache/\n");
    env.write("src/run.log", "noise\n");
    env.write("src/cache/big.bin", noise(1, 100));
    env.write("src/notes.txt", "kept\n");
    let id = env.commit(&["-m", "code", "--code", "src"]);
    let paths = ls_paths(&env, &id, "code");
    for want in [
        "code/train.py",
        "code/util/helpers.py",
        "code/.gitignore",
        "code/notes.txt",
    ] {
        assert!(paths.contains(want), "{want} missing: {paths:?}");
    }
    assert!(
        !paths.contains("code/run.log"),
        "ignored file recorded: {paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with("code/cache")),
        "ignored folder recorded: {paths:?}"
    );
    let code = show_json(&env, &id)["run"]["code"].clone();
    assert!(code["git"].is_null(), "{code}");
    assert_eq!(code["path"], "src", "{code}");
    assert_eq!(code["files"], 4, "{code}");
}

#[test]
fn commit_data_honours_nested_cairnignore_files() {
    let env = Env::init();
    env.write(
        "data/.cairnignore",
        "*.tmp\nscratch/\n/top-only.txt\n!keep.tmp\n",
    );
    env.write("data/sub/.cairnignore", "!sub-keep.tmp\nlocal.bin\n");
    for f in [
        "data/a.tmp",
        "data/keep.tmp",
        "data/scratch/x.bin",
        "data/scratch/deep/y.bin",
        "data/top-only.txt",
        "data/local.bin",
        "data/sub/top-only.txt",
        "data/sub/b.tmp",
        "data/sub/sub-keep.tmp",
        "data/sub/local.bin",
        "data/sub/deeper/c.tmp",
        "data/sub/deeper/local.bin",
        "data/plain.csv",
    ] {
        env.write(f, f.as_bytes());
    }
    let id = env.commit(&["-m", "ignores", "--data", "data"]);
    let got = ls_paths(&env, &id, "data/data");
    let want = strings(&[
        "data/data/.cairnignore",
        "data/data/keep.tmp",
        "data/data/local.bin",
        "data/data/plain.csv",
        "data/data/sub",
        "data/data/sub/.cairnignore",
        "data/data/sub/deeper",
        "data/data/sub/sub-keep.tmp",
        "data/data/sub/top-only.txt",
    ]);
    let files: BTreeSet<String> = ls_json(&env, &id, "data/data")
        .iter()
        .filter(|i| i["kind"] != "tree")
        .map(|i| i["path"].as_str().expect("path").to_string())
        .collect();
    assert!(got.is_superset(&files), "ls lists {got:?}, files {files:?}");
    let listed: BTreeSet<String> = got
        .iter()
        .filter(|p| !p.ends_with("/sub") && !p.ends_with("/deeper"))
        .cloned()
        .collect();
    let want_files: BTreeSet<String> = want
        .iter()
        .filter(|p| !p.ends_with("/sub") && !p.ends_with("/deeper"))
        .cloned()
        .collect();
    assert_eq!(listed, want_files, "recursive listing {got:?}");
    assert_eq!(show_json(&env, &id)["run"]["data"]["data"]["files"], 7);
}

/// The `.cairnignore` files of the folders above a snapshotted one, up to the repository root,
/// apply to it, deeper ones first; a folder named on the command line is snapshotted even when
/// a rule above would ignore it.
#[test]
fn cairnignore_files_above_the_snapshot_apply() {
    let env = Env::init();
    env.write(
        ".cairnignore",
        "*.tmp\ndatasets/train/cache/\nlogs/\noutputs/\n",
    );
    env.write("datasets/.cairnignore", "*.bak\n!wanted.tmp\n");
    for f in [
        "datasets/train/a.csv",
        "datasets/train/b.tmp",
        "datasets/train/wanted.tmp",
        "datasets/train/c.bak",
        "datasets/train/cache/x.bin",
        "datasets/train/logs/run.txt",
        "datasets/train/sub/d.tmp",
        "datasets/train/sub/e.csv",
        "outputs/model.bin",
        "outputs/step.tmp",
    ] {
        env.write(f, f.as_bytes());
    }
    let id = env.commit(&[
        "-m",
        "ignores",
        "--data",
        "train=datasets/train",
        "--artifact",
        "outputs",
    ]);
    let files: BTreeSet<String> = ls_json(&env, &id, "")
        .iter()
        .filter(|i| i["kind"] != "tree")
        .map(|i| i["path"].as_str().expect("path").to_string())
        .collect();
    let want: BTreeSet<String> = strings(&[
        "data/train/a.csv",
        "data/train/wanted.tmp",
        "data/train/sub/e.csv",
        "artifacts/outputs/model.bin",
    ])
    .into_iter()
    .collect();
    assert_eq!(files, want);
}

#[test]
fn code_outside_git_lets_cairnignore_overrule_gitignore() {
    let env = Env::init();
    env.write("src/.gitignore", "*.log\n");
    env.write("src/.cairnignore", "!important.log\nbuild/\n");
    env.write("src/train.py", "print(1)\n");
    env.write("src/noise.log", "noise\n");
    env.write("src/important.log", "keep me\n");
    env.write("src/build/out.o", "obj");
    let id = env.commit(&["-m", "code", "--code", "src"]);
    let paths = ls_paths(&env, &id, "code");
    assert!(paths.contains("code/important.log"), "{paths:?}");
    assert!(paths.contains("code/train.py"), "{paths:?}");
    assert!(!paths.contains("code/noise.log"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with("code/build")),
        "{paths:?}"
    );
}

#[test]
fn a_bad_cairnignore_pattern_is_named() {
    let env = Env::init();
    env.write("data/.cairnignore", "ok.txt\n{unclosed\n");
    env.write("data/a.txt", "a");
    let err = env.fails(&["commit", "-m", "x", "--data", "data"]);
    assert!(err.contains(".cairnignore"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The "N files read" count of a commit's status line.
fn files_read(status: &str) -> u64 {
    let before = status
        .split(" files read")
        .next()
        .unwrap_or_else(|| panic!("no files-read count in {status:?}"));
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no files-read count in {status:?}"))
}

#[test]
fn the_stat_cache_spares_reading_unchanged_files_and_never_vouches_for_changed_ones() {
    let env = Env::init();
    for d in 0..3 {
        for f in 0..40 {
            env.write(&format!("set/d{d}/f{f:02}.txt"), format!("{d}/{f}\n"));
        }
    }
    env.write("set/top.bin", noise(3, 5000));
    // Files younger than the timestamp granularity margin are always re-read: let them age.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let commit = |msg: &str| -> (String, u64) {
        let err = ok_stderr(&env, &["commit", "-m", msg, "--data", "set"]);
        let id = show_json(&env, "HEAD")["id"]
            .as_str()
            .expect("id")
            .to_string();
        (id, files_read(&err))
    };
    let (r1, n1) = commit("first");
    assert_eq!(n1, 121, "the first commit reads everything");
    let (r2, n2) = commit("again");
    assert_eq!(n2, 0, "an unchanged folder is not read again");
    let data = |r: &str| show_json(&env, r)["run"]["data"]["set"].clone();
    assert_eq!(data(&r1), data(&r2));

    // A changed file (same size, fresh times) is read; the others are not.
    env.write("set/d1/f07.txt", "1/X\n");
    let (r3, n3) = commit("one edit");
    assert_eq!(n3, 1);
    assert_eq!(
        cat_bytes(&env, &format!("{r3}:data/set/d1/f07.txt")),
        b"1/X\n"
    );
    assert_ne!(data(&r3)["id"], data(&r2)["id"]);
    // A file replaced by another with the same size and times but a new inode is read too.
    let p = env.path("set/d2/f00.txt");
    let md = std::fs::metadata(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(env.path("set/d2/f00.tmp"), "2/Z\n").unwrap();
    std::fs::rename(env.path("set/d2/f00.tmp"), &p).unwrap();
    filetime::set_file_mtime(&p, filetime::FileTime::from_last_modification_time(&md)).unwrap();
    let (r4, n4) = commit("replaced");
    assert!(n4 >= 1, "a replaced file must be read");
    assert_eq!(
        cat_bytes(&env, &format!("{r4}:data/set/d2/f00.txt")),
        b"2/Z\n"
    );
    // Deleted and added files.
    std::fs::remove_file(env.path("set/d0/f05.txt")).unwrap();
    env.write("set/d0/new.txt", "new\n");
    let (r5, _) = commit("add and delete");
    let paths = ls_paths(&env, &r5, "data/set/d0");
    assert!(paths.contains("data/set/d0/new.txt"), "{paths:?}");
    assert!(!paths.contains("data/set/d0/f05.txt"), "{paths:?}");
    assert_eq!(data(&r5)["files"], 121);
    // A single file of a cached folder, then the folder again: both agree with the content.
    let single = env.commit(&["-m", "single", "--data", "one=set/d1/f08.txt"]);
    assert_eq!(
        show_json(&env, &single)["run"]["data"]["one"]["id"],
        ls_json(&env, &r5, "data/set/d1/f08.txt")[0]["id"]
    );
    // gc drops cache entries only for removed content; the cache keeps working after it.
    env.ok(&["gc"]);
    let (r6, n6) = commit("after gc");
    assert_eq!(data(&r6)["id"], data(&r5)["id"]);
    assert!(
        n6 <= 3,
        "only the three young files may be read again, read {n6}"
    );
    // Checkout over the unchanged folder: nothing is written (the stat cache vouches for most
    // files, the rest are compared by content).
    let out = ok_stderr(&env, &["checkout", &r6, "--data", "--force"]);
    assert!(
        out.contains("0 file(s) written") && out.contains("121 unchanged"),
        "{out}"
    );
    // A file edited behind the cache's back (same size, new times) is still found and restored.
    env.write("set/d1/f09.txt", "1/Y\n");
    let out = ok_stderr(&env, &["checkout", &r6, "--data", "--force"]);
    assert!(
        out.contains("1 file(s) written") && out.contains("120 unchanged"),
        "{out}"
    );
    assert_eq!(std::fs::read(env.path("set/d1/f09.txt")).unwrap(), b"1/9\n");
    fsck_objects(&env);
}

#[test]
fn commit_data_named_unnamed_and_single_file() {
    let env = Env::init();
    env.write("datasets/train/a.csv", "x,y\n1,2\n");
    env.write("datasets/train/sub/b.csv", "x,y\n3,4\n");
    env.write("datasets/val/v.csv", "x,y\n5,6\n");
    env.write("labels.txt", "cat\ndog\n");
    set_mode(&env.write("bin/tool.sh", "#!/bin/sh\n"), 0o755);
    let id = env.commit(&[
        "-m",
        "data",
        "--data",
        "training=datasets/train",
        "--data",
        "datasets/val/",
        "--data",
        "labels.txt",
        "--data",
        "tool=bin/tool.sh",
    ]);
    let data = show_json(&env, &id)["run"]["data"].clone();
    let names: Vec<&String> = data.as_object().expect("data object").keys().collect();
    assert_eq!(names, ["labels.txt", "tool", "training", "val"], "{data}");
    assert_eq!(data["tool"]["kind"], "file");
    assert_eq!(data["tool"]["executable"], true, "{data}");
    assert_eq!(data["training"]["kind"], "tree");
    assert_eq!(data["training"]["files"], 2);
    assert_eq!(data["training"]["size"], 16);
    assert_eq!(data["training"]["path"], "datasets/train");
    assert_eq!(data["val"]["path"], "datasets/val");
    assert_eq!(data["val"]["files"], 1);
    assert_eq!(data["labels.txt"]["kind"], "file");
    assert_eq!(data["labels.txt"]["size"], 8);
    assert_eq!(data["labels.txt"]["files"], 1);
    for d in ["training", "val", "labels.txt"] {
        assert!(is_hex_id(&data[d]["id"]), "{data}");
    }
    let paths = ls_paths(&env, &id, "data");
    for want in [
        "data/training/a.csv",
        "data/training/sub/b.csv",
        "data/val/v.csv",
        "data/labels.txt",
    ] {
        assert!(paths.contains(want), "{want} missing: {paths:?}");
    }
    assert_eq!(
        cat_bytes(&env, &format!("{id}:data/labels.txt")),
        b"cat\ndog\n"
    );
    assert_eq!(
        cat_bytes(&env, &format!("{id}:data/training/sub/b.csv")),
        b"x,y\n3,4\n"
    );
    // Each snapshot goes back to where it was taken from.
    env.ok(&["checkout", &id, "--data", "-o", "restored"]);
    for part in ["datasets/train", "datasets/val"] {
        assert_eq!(
            snapshot_dir(&env.path(part)),
            snapshot_dir(&env.path(&format!("restored/{part}"))),
            "{part}"
        );
    }
    assert_eq!(
        std::fs::read(env.path("restored/labels.txt")).unwrap(),
        b"cat\ndog\n"
    );
    let tool = std::fs::metadata(env.path("restored/bin/tool.sh")).unwrap();
    assert!(
        tool.permissions().mode() & 0o111 != 0,
        "lost the executable bit"
    );
    // The text summary names each snapshot.
    let text = env.ok(&["show", &id]);
    for want in ["training", "val", "labels.txt", "from datasets/train"] {
        assert!(text.contains(want), "{want} missing: {text}");
    }
}

#[test]
fn commit_params_merge_files_in_order_then_param_overrides() {
    let env = Env::init();
    env.write(
        "params.yaml",
        "lr: 0.1\nepochs: 10\noptimizer:\n  name: sgd\n  momentum: 0.9\nlayers: [64, 32]\n",
    );
    env.write(
        "override.json",
        r#"{"epochs": 20, "optimizer": {"name": "adam"}}"#,
    );
    env.write("extra.toml", "[loader]\nbatch_size = 32\nshuffle = true\n");
    let id = env.commit(&[
        "--params",
        "params.yaml",
        "--params",
        "override.json",
        "--params",
        "extra.toml",
        "--param",
        "lr=0.01",
        "-p",
        "optimizer.beta.one=0.95",
        "--param",
        "loader.shuffle=false",
        "--param",
        "run_name=baseline",
        "--param",
        "seed=7",
    ]);
    let p = show_json(&env, &id)["run"]["params"].clone();
    assert_eq!(p["lr"], json!(0.01), "{p}");
    assert_eq!(p["epochs"], json!(20), "{p}");
    assert_eq!(p["layers"], json!([64, 32]), "{p}");
    assert_eq!(
        p["optimizer"],
        json!({"name": "adam", "momentum": 0.9, "beta": {"one": 0.95}}),
        "{p}"
    );
    assert_eq!(
        p["loader"],
        json!({"batch_size": 32, "shuffle": false}),
        "{p}"
    );
    assert_eq!(p["run_name"], json!("baseline"), "{p}");
    assert_eq!(p["seed"], json!(7), "{p}");
    assert_eq!(p.as_object().unwrap().len(), 7, "{p}");
    let text = env.ok(&["show", &id]);
    assert!(text.contains("optimizer.beta.one"), "{text}");
}

#[test]
fn commit_metrics_from_json_csv_and_jsonl() {
    let env = Env::init();
    env.write("final.json", r#"{"accuracy": 0.93, "f1": 0.5}"#);
    env.write(
        "train.csv",
        "step,loss,lr\n1,2.5,0.1\n2,1.5,0.1\n3,0.75,0.05\n",
    );
    env.write(
        "val.jsonl",
        "{\"step\": 10, \"val_loss\": 1.25}\n{\"step\": 20, \"val_loss\": 0.5}\n",
    );
    let id = env.commit(&[
        "-m",
        "metrics",
        "--metrics",
        "final.json",
        "--metrics",
        "train.csv",
        "--metrics",
        "val.jsonl",
    ]);
    let m = show_json(&env, &id)["run"]["metrics"].clone();
    let names: Vec<&String> = m.as_object().expect("metrics object").keys().collect();
    assert_eq!(names, ["accuracy", "f1", "loss", "lr", "val_loss"], "{m}");
    assert_eq!(m["accuracy"]["last"], json!(0.93));
    assert_eq!(m["accuracy"]["count"], 1);
    assert_eq!(m["loss"]["count"], 3, "{m}");
    assert_eq!(m["loss"]["last"], json!(0.75), "{m}");
    assert_eq!(m["loss"]["min"], json!(0.75), "{m}");
    assert_eq!(m["loss"]["max"], json!(2.5), "{m}");
    assert_eq!(m["loss"]["last_step"], 3, "{m}");
    assert!(is_hex_id(&m["loss"]["series"]), "series not stored: {m}");
    assert_eq!(m["lr"]["last"], json!(0.05), "{m}");
    assert_eq!(m["val_loss"]["count"], 2, "{m}");
    assert_eq!(m["val_loss"]["last"], json!(0.5), "{m}");
    assert_eq!(m["val_loss"]["last_step"], 20, "{m}");
    let log = log_json(&env, &[]);
    assert_eq!(log[0]["metrics"]["accuracy"], json!(0.93), "{log:?}");
    assert_eq!(log[0]["metrics"]["loss"], json!(0.75), "{log:?}");
}

#[test]
fn commit_artifacts_tags_and_branch_option() {
    let env = Env::init();
    let model = noise(11, 3000);
    env.write("model.bin", &model);
    env.write("outputs/report.txt", "all good\n");
    env.write("outputs/plots/curve.svg", "<svg/>\n");
    let base = env.commit(&[
        "-m",
        "artifacts",
        "--artifact",
        "model.bin",
        "--artifact",
        "outputs",
        "--tag",
        "owner=alice",
        "-t",
        "stage=dev",
    ]);
    let run = show_json(&env, &base)["run"].clone();
    assert_eq!(run["artifacts"]["files"], 3, "{run}");
    assert_eq!(run["artifacts"]["size"], 3000 + 9 + 7, "{run}");
    assert_eq!(
        run["tags"],
        json!({"owner": "alice", "stage": "dev"}),
        "{run}"
    );
    let paths = ls_paths(&env, &base, "artifacts");
    for want in [
        "artifacts/model.bin",
        "artifacts/outputs",
        "artifacts/outputs/report.txt",
        "artifacts/outputs/plots/curve.svg",
    ] {
        assert!(paths.contains(want), "{want} missing: {paths:?}");
    }
    assert_eq!(
        cat_bytes(&env, &format!("{base}:artifacts/model.bin")),
        model
    );
    let text = env.ok(&["show", &base]);
    assert!(text.contains("owner=alice"), "{text}");
    assert!(text.contains("outputs/plots/curve.svg"), "{text}");

    // -b commits onto another branch; HEAD stays where it was.
    let on_exp = env.commit(&["-m", "exp run", "-b", "exp/one", "-p", "x=1"]);
    assert_eq!(show_json(&env, &on_exp)["run"]["branch"], "exp/one");
    assert_eq!(resolve(&env, "HEAD"), base);
    assert_eq!(resolve(&env, "exp/one"), on_exp);
    let next = env.commit(&["-m", "exp run 2", "--branch", "exp/one", "-p", "x=2"]);
    let run = show_json(&env, &next)["run"].clone();
    assert_eq!(run["parents"], json!([on_exp]), "{run}");
    assert_eq!(run["branch"], "exp/one");
    assert_eq!(resolve(&env, "exp/one"), next);
    assert_eq!(resolve(&env, "main"), base);
    assert!(env.ok(&["branch"]).contains("exp/one"));
    // A run on main still follows main.
    let on_main = env.commit(&["-m", "main again"]);
    assert_eq!(show_json(&env, &on_main)["run"]["parents"], json!([base]));
}

// ---- 3. bit-for-bit round trips --------------------------------------------------------------

#[test]
fn checkout_restores_special_trees_bit_for_bit() {
    let env = Env::init();
    env.write("données/é t.csv", "a,b\n1,2\n");
    env.write("données/empty.txt", "");
    env.write("données/nested/deeper/file with spaces.bin", noise(7, 5000));
    env.write("données/nested/deeper/also empty", "");
    std::fs::create_dir_all(env.path("données/empty dir/inner empty")).unwrap();
    std::fs::create_dir_all(env.path("données/only empty")).unwrap();
    set_mode(&env.write("données/run.sh", "#!/bin/sh\necho hi\n"), 0o755);
    set_mode(&env.write("données/nested/tool", noise(8, 300)), 0o700);
    let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, env.path(at)).unwrap();
    link("é t.csv", "données/link to csv");
    link("../é t.csv", "données/nested/up-link");
    link("nested/deeper", "données/dir-link");
    link("does-not-exist-yet", "données/dangling");
    // Unicode names in code and artifacts too.
    env.write("src/模型.py", "print('模型')\n");
    env.write("out/résumé.txt", "ok\n");

    let id = env.commit(&[
        "-m",
        "special",
        "--data",
        "données",
        "--code",
        "src",
        "--artifact",
        "out",
    ]);
    env.ok(&["checkout", &id, "-o", "restored"]);
    let restored = env.path("restored");
    for part in ["données", "src", "out"] {
        assert_eq!(
            snapshot_dir(&env.path(part)),
            snapshot_dir(&restored.join(part)),
            "{part} differs after checkout"
        );
    }
    // Nothing but the recorded parts is written.
    let top: BTreeSet<String> = std::fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, strings(&["données", "out", "src"]), "{top:?}");
    // Spot checks that the comparison is about what it claims.
    let snap = snapshot_dir(&restored.join("données"));
    assert_eq!(
        snap.get(Path::new("dangling")),
        Some(&Item::Link("does-not-exist-yet".into()))
    );
    assert_eq!(
        snap.get(Path::new("empty dir/inner empty")),
        Some(&Item::Dir)
    );
    assert!(matches!(
        snap.get(Path::new("run.sh")),
        Some(Item::File { exec: true, .. })
    ));
    assert!(matches!(
        snap.get(Path::new("empty.txt")),
        Some(Item::File { len: 0, .. })
    ));
    let ls = ls_json(&env, &id, "data/données");
    let kind_of = |p: &str| {
        ls.iter()
            .find(|i| i["path"] == p)
            .map(|i| i["kind"].clone())
            .unwrap_or_else(|| panic!("{p} not listed: {ls:?}"))
    };
    assert_eq!(kind_of("data/données/run.sh"), "exec");
    assert_eq!(kind_of("data/données/é t.csv"), "file");
    assert_eq!(kind_of("data/données/dangling"), "link");
    assert_eq!(kind_of("data/données/empty dir/inner empty"), "tree");
    assert_eq!(
        cat_bytes(&env, &format!("{id}:data/données/é t.csv")),
        b"a,b\n1,2\n"
    );
}

#[test]
fn checkout_restores_large_sparse_and_chunked_files_bit_for_bit() {
    let env = Env::init();
    std::fs::create_dir_all(env.path("big")).unwrap();
    let sparse_len: u64 = 64 << 20;
    {
        let mut f = std::fs::File::create(env.path("big/sparse.bin")).unwrap();
        f.set_len(sparse_len).unwrap();
        for (offset, bytes) in [
            (0u64, &b"header"[..]),
            (sparse_len / 2 + 12345, &b"middle bytes"[..]),
            (sparse_len - 4, &b"tail"[..]),
        ] {
            f.seek(SeekFrom::Start(offset)).unwrap();
            f.write_all(bytes).unwrap();
        }
    }
    let chunky = noise(42, (3 << 20) + 123);
    env.write("big/noise.bin", &chunky);
    env.write("big/small.bin", noise(3, 100));
    let id = env.commit(&["-m", "big", "--data", "big", "--artifact", "big/noise.bin"]);
    let data = show_json(&env, &id)["run"]["data"]["big"].clone();
    assert_eq!(
        data["size"],
        sparse_len + chunky.len() as u64 + 100,
        "{data}"
    );
    assert_eq!(data["files"], 3, "{data}");

    env.ok(&["checkout", &id, "-o", "restored"]);
    let before = snapshot_dir(&env.path("big"));
    assert_eq!(before, snapshot_dir(&env.path("restored/big")));
    assert_eq!(
        std::fs::read(env.path("restored/big/noise.bin")).unwrap(),
        chunky
    );

    // cat streams the chunked artifact exactly, also into a file.
    assert_eq!(
        cat_bytes(&env, &format!("{id}:artifacts/big/noise.bin")),
        chunky
    );
    let file = std::fs::File::create(env.path("copy.bin")).unwrap();
    let status = env
        .cmd()
        .arg("cat")
        .arg(format!("{id}:data/big/sparse.bin"))
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    let copy = std::fs::read(env.path("copy.bin")).unwrap();
    assert_eq!(copy.len() as u64, sparse_len);
    assert_eq!(&copy[..6], b"header");
    assert_eq!(&copy[copy.len() - 4..], b"tail");
    assert_eq!(
        blake3::hash(&copy),
        blake3::hash(&std::fs::read(env.path("big/sparse.bin")).unwrap())
    );
    // The other form, RUN PATH.
    assert_eq!(
        env.run(&["cat", &id, "data/big/small.bin"]).stdout,
        noise(3, 100)
    );
}

// ---- 4. checkout into the repository --------------------------------------------------------

#[test]
fn checkout_into_the_repository_refuses_to_overwrite_without_force() {
    let env = Env::init();
    env.write("data/train/a.txt", "alpha\n");
    env.write("data/train/b.txt", "beta\n");
    env.write("data/train/c.txt", "gamma\n");
    env.write("model.pt", noise(5, 2000));
    env.write("src/train.py", "print('train')\n");
    let id = env.commit(&[
        "-m",
        "run",
        "--code",
        "src",
        "--data",
        "data/train",
        "--artifact",
        "model.pt",
    ]);
    let original = snapshot_dir(&env.work);
    let inode = |rel: &str| std::fs::metadata(env.path(rel)).unwrap().ino();
    let (model_ino, c_ino) = (inode("model.pt"), inode("data/train/c.txt"));

    // Everything identical: nothing written, all five files left alone.
    let out = env.run(&["checkout", &id]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msg = stderr_of(&out);
    assert!(msg.contains("0 file(s) written"), "{msg}");
    assert!(msg.contains("5 unchanged"), "{msg}");
    assert_eq!(snapshot_dir(&env.work), original);

    // A modified file and a missing one: refused, nothing at all is written.
    env.write("data/train/a.txt", "tampered\n");
    std::fs::remove_file(env.path("data/train/b.txt")).unwrap();
    let tampered = snapshot_dir(&env.work);
    let err = env.fails(&["checkout", &id]);
    assert!(err.contains("a.txt"), "{err}");
    assert!(err.contains("overwritten"), "{err}");
    assert!(err.contains("--force"), "no hint: {err}");
    assert!(
        !err.contains("b.txt"),
        "a missing file is not a conflict: {err}"
    );
    assert_eq!(
        std::fs::read(env.path("data/train/a.txt")).unwrap(),
        b"tampered\n"
    );
    assert!(
        !env.path("data/train/b.txt").exists(),
        "wrote despite refusing"
    );
    assert_eq!(snapshot_dir(&env.work), tampered);

    // An executable bit alone is a difference too.
    set_mode(&env.path("src/train.py"), 0o755);
    let err = env.fails(&["checkout", &id, "--code"]);
    assert!(err.contains("train.py"), "{err}");
    set_mode(&env.path("src/train.py"), 0o644);

    // --force restores; the identical files are left alone and counted.
    let out = env.run(&["checkout", &id, "--force"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let msg = stderr_of(&out);
    assert!(msg.contains("2 file(s) written"), "{msg}");
    assert!(msg.contains("3 unchanged"), "{msg}");
    assert_eq!(snapshot_dir(&env.work), original);
    assert_eq!(
        inode("model.pt"),
        model_ino,
        "an identical file was rewritten"
    );
    assert_eq!(
        inode("data/train/c.txt"),
        c_ino,
        "an identical file was rewritten"
    );
}

#[test]
fn checkout_parts_restore_only_that_part() {
    let env = Env::init();
    env.write("data/train/a.txt", "alpha\n");
    env.write("model.pt", noise(5, 2000));
    env.write("src/train.py", "print('train')\n");
    let id = env.commit(&[
        "--code",
        "src",
        "--data",
        "data/train",
        "--artifact",
        "model.pt",
    ]);
    let listing = |dir: &str| -> BTreeSet<String> {
        snapshot_dir(&env.path(dir))
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    };
    env.ok(&["checkout", &id, "--code", "-o", "only-code"]);
    assert_eq!(listing("only-code"), strings(&["src", "src/train.py"]));
    env.ok(&["checkout", &id, "--data", "-o", "only-data"]);
    assert_eq!(
        listing("only-data"),
        strings(&["data", "data/train", "data/train/a.txt"])
    );
    env.ok(&["checkout", &id, "--artifacts", "-o", "only-artifacts"]);
    assert_eq!(listing("only-artifacts"), strings(&["model.pt"]));
    env.ok(&["checkout", &id, "--code", "--artifacts", "-o", "two"]);
    assert_eq!(
        listing("two"),
        strings(&["model.pt", "src", "src/train.py"])
    );

    // In the repository: a changed artifact does not block restoring the data.
    env.write("model.pt", "retrained");
    std::fs::remove_file(env.path("data/train/a.txt")).unwrap();
    env.ok(&["checkout", &id, "--data"]);
    assert_eq!(
        std::fs::read(env.path("data/train/a.txt")).unwrap(),
        b"alpha\n"
    );
    assert_eq!(std::fs::read(env.path("model.pt")).unwrap(), b"retrained");
    env.fails(&["checkout", &id, "--artifacts"]);
    env.ok(&["checkout", &id, "--artifacts", "--force"]);
    assert_eq!(std::fs::read(env.path("model.pt")).unwrap(), noise(5, 2000));
}

#[test]
fn checkout_of_data_from_outside_the_repository_goes_to_data_name() {
    let env = Env::new();
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let out = env.cmd_in(&repo).arg("init").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    env.write("elsewhere/set/x.txt", "outside\n");
    let out = env
        .cmd_in(&repo)
        .args(["commit", "-q", "--data", "ext=../elsewhere/set"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let id = stdout_of(&out).trim().to_string();
    let out = env
        .cmd_in(&repo)
        .args(["checkout", &id, "-o", "restored"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::read(repo.join("restored/data/ext/x.txt")).unwrap(),
        b"outside\n"
    );
    assert!(!env.path("restored").exists());
}

// ---- 5. log, show, ls -----------------------------------------------------------------------

#[test]
fn log_lists_runs_newest_first() {
    let env = Env::init();
    env.write("m1.json", r#"{"loss": 0.5}"#);
    let r1 = env.commit(&["-m", "first run", "--metrics", "m1.json"]);
    let r2 = env.commit(&["-m", "second run\n\nwith a body"]);
    let r3 = env.commit(&["-m", "third run"]);
    let log = log_json(&env, &[]);
    let ids: Vec<&str> = log.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&r3, &r2, &r1]);
    let messages: Vec<&str> = log.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        ["third run", "second run\n\nwith a body", "first run"]
    );
    assert_eq!(log[2]["metrics"], json!({"loss": 0.5}));
    assert_eq!(log[0]["metrics"], json!({}));
    assert_eq!(log[0]["parents"], json!([r2]));
    assert_eq!(log[2]["parents"], json!([]));
    assert_eq!(log[0]["refs"], json!(["HEAD -> main"]));
    assert_eq!(log[0]["status"], "completed");

    assert_eq!(log_ids(&env, &["-n", "2"]), [r3.clone(), r2.clone()]);
    assert_eq!(log_ids(&env, &["--max-count", "1"]), [r3.as_str()]);
    assert_eq!(log_ids(&env, &[r2.as_str()]), [r2.clone(), r1.clone()]);
    assert_eq!(log_ids(&env, &["HEAD~2"]), [r1.as_str()]);

    let text = env.ok(&["log"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(&r3[..12]), "{text}");
    assert!(lines[0].contains("HEAD -> main"), "{text}");
    assert!(lines[1].starts_with(&r2[..12]) && lines[1].contains("second run"));
    assert!(
        !text.contains("with a body"),
        "log shows only the subject: {text}"
    );
    assert!(lines[2].contains("loss=0.5"), "{text}");
    assert_eq!(env.ok(&["log", "-n", "2"]).lines().count(), 2);

    // log BRANCH follows that branch.
    let e1 = env.commit(&["-m", "exp", "-b", "exp/x"]);
    let e2 = env.commit(&["-m", "exp 2", "-b", "exp/x"]);
    let exp = log_ids(&env, &["exp/x"]);
    assert_eq!(exp[..2], [e2.clone(), e1.clone()]);
    assert_eq!(
        log_ids(&env, &[])[0],
        r3,
        "log without a branch follows HEAD"
    );
    let err = env.fails(&["log", "no-such-branch"]);
    assert!(err.contains("no-such-branch"), "{err}");
}

#[test]
fn show_prints_a_run_in_full() {
    let env = Env::init();
    env.write("data/d/a.txt", "abc");
    env.write("m.json", r#"{"acc": 0.75}"#);
    let r1 = env.commit(&["-m", "one"]);
    let r2 = env.commit(&[
        "-m",
        "two\nmore text",
        "--data",
        "data/d",
        "--metrics",
        "m.json",
        "-p",
        "lr=0.5",
        "-t",
        "k=v",
    ]);
    let v = show_json(&env, "HEAD");
    assert_eq!(v["id"], r2.as_str());
    assert_eq!(v["notes"], json!([]));
    let run = &v["run"];
    assert_eq!(run["parents"], json!([r1]));
    assert_eq!(run["branch"], "main");
    assert_eq!(run["message"], "two\nmore text");
    assert_eq!(run["status"], "completed");
    assert!(run["author"].as_str().unwrap().contains("tester"), "{run}");
    assert!(run["started_at"].as_i64().unwrap() <= run["ended_at"].as_i64().unwrap());
    assert_eq!(run["params"], json!({"lr": 0.5}));
    assert_eq!(run["metrics"]["acc"]["last"], json!(0.75));
    assert_eq!(run["data"]["d"]["size"], 3);
    assert_eq!(run["tags"], json!({"k": "v"}));
    assert!(run["code"].is_null() && run["artifacts"].is_null(), "{run}");
    // Default RUN is HEAD.
    assert_eq!(parse_json(&env.ok(&["show", "--json"]))["id"], r2.as_str());

    let text = env.ok(&["show"]);
    assert!(text.starts_with(&format!("run {r2}")), "{text}");
    for want in [
        format!("Parent:   {}", &r1[..12]),
        "Branch:   main".to_string(),
        "Tag:      k=v".to_string(),
        "    more text".to_string(),
        "lr".to_string(),
        "acc".to_string(),
        "0.75".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} missing: {text}");
    }
}

#[test]
fn ls_lists_paths_with_sizes_and_kinds() {
    let env = Env::init();
    env.write("set/a.txt", "12345");
    env.write("set/sub/b.txt", "1234567890");
    set_mode(&env.write("set/sub/run.sh", "#!/bin/sh\n"), 0o755);
    env.write("w.bin", noise(2, 64));
    let id = env.commit(&["--data", "set", "--artifact", "w.bin"]);

    let all = ls_paths(&env, &id, "");
    let want = strings(&[
        "data",
        "data/set",
        "data/set/a.txt",
        "data/set/sub",
        "data/set/sub/b.txt",
        "data/set/sub/run.sh",
        "artifacts",
        "artifacts/w.bin",
    ]);
    assert_eq!(all, want);
    // ls without arguments is ls HEAD.
    let text = env.ok(&["ls"]);
    assert!(text.contains("data/set/sub/b.txt"), "{text}");
    assert!(text.contains("artifacts/w.bin"), "{text}");

    let items = ls_json(&env, &id, "data/set/sub");
    let by_path: HashMap<&str, &Value> = items
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i))
        .collect();
    assert_eq!(by_path.len(), 2, "{items:?}");
    assert_eq!(by_path["data/set/sub/b.txt"]["size"], 10);
    assert_eq!(by_path["data/set/sub/b.txt"]["kind"], "file");
    assert_eq!(by_path["data/set/sub/run.sh"]["kind"], "exec");
    assert!(is_hex_id(&by_path["data/set/sub/b.txt"]["id"]));
    // A tree's size is the total below it.
    let top = ls_json(&env, &id, "data");
    let set = top.iter().find(|i| i["path"] == "data/set").unwrap();
    assert_eq!(set["kind"], "tree");
    assert_eq!(set["size"], 5 + 10 + 10);
    // A single file, and the shallow listing.
    assert_eq!(
        ls_paths(&env, &id, "data/set/a.txt"),
        strings(&["data/set/a.txt"])
    );
    let shallow: BTreeSet<String> =
        match parse_json(&env.ok(&["ls", &id, "data/set", "-d", "--json"])) {
            Value::Array(v) => v
                .iter()
                .map(|i| i["path"].as_str().unwrap().to_string())
                .collect(),
            other => panic!("{other}"),
        };
    assert_eq!(shallow, strings(&["data/set/a.txt", "data/set/sub"]));

    let err = env.fails(&["ls", &id, "data/nope"]);
    assert_one_line_error(&err);
    assert!(err.contains("data/nope"), "{err}");
    assert!(err.contains("no path"), "{err}");
    let err = env.fails(&["ls", "HEAD", "code"]);
    assert!(err.contains("'code'"), "{err}");
    let err = env.fails(&["cat", &format!("{id}:data/set/missing.txt")]);
    assert!(err.contains("data/set/missing.txt"), "{err}");
    let err = env.fails(&["cat", &format!("{id}:data/set")]);
    assert!(err.contains("folder"), "{err}");
}

// ---- 6. RUN syntax --------------------------------------------------------------------------

#[test]
fn run_arguments_accept_ids_prefixes_names_and_ancestry() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "one"]);
    let r2 = env.commit(&["-m", "two"]);
    let r3 = env.commit(&["-m", "three"]);
    env.ok(&["tag", "v1", &r1]);
    env.ok(&["branch", "side", &r2]);
    let cases: Vec<(String, &String)> = vec![
        (r2.clone(), &r2),
        (r2[..4].to_string(), &r2),
        (r2[..9].to_string(), &r2),
        (r2[..6].to_ascii_uppercase(), &r2),
        ("HEAD".into(), &r3),
        ("@".into(), &r3),
        ("HEAD~1".into(), &r2),
        ("HEAD~2".into(), &r1),
        ("HEAD^".into(), &r2),
        ("HEAD^^".into(), &r1),
        ("HEAD~".into(), &r2),
        ("main".into(), &r3),
        ("main~1".into(), &r2),
        ("main~2".into(), &r1),
        ("side".into(), &r2),
        ("side~1".into(), &r1),
        ("v1".into(), &r1),
        (format!("{}~1", &r3[..8]), &r2),
        ("refs/heads/side".into(), &r2),
    ];
    for (spec, want) in &cases {
        assert_eq!(resolve(&env, spec), **want, "{spec} resolved wrongly");
    }
    // Other commands take the same syntax.
    assert_eq!(log_ids(&env, &["side"]), [r2.clone(), r1.clone()]);
    assert_eq!(
        parse_json(&env.ok(&["ls", "HEAD~1", "--json"])),
        json!([]),
        "a run without files lists nothing"
    );

    // Unknown names and ids.
    for spec in ["nope", "deadbeefdeadbeef", "HEAD~3", "main~10", "v1^"] {
        let err = env.fails(&["show", spec]);
        assert_one_line_error(&err);
        assert!(err.contains(spec), "{spec}: {err}");
    }
    let err = env.fails(&["show", "nope"]);
    assert!(err.contains("unknown run 'nope'"), "{err}");
    let zero = "0".repeat(64);
    let err = env.fails(&["show", &zero]);
    assert!(err.contains(&zero), "{err}");

    // Fewer than four digits is not an id prefix, even when it matches.
    let short = &r3[..3];
    let err = env.fails(&["show", short]);
    assert!(err.contains(&format!("'{short}'")), "{err}");
    assert!(err.contains("unknown run"), "{err}");

    // Names win over id prefixes.
    let prefix = &r1[..4];
    env.ok(&["branch", prefix, &r3]);
    assert_eq!(resolve(&env, prefix), r3);
    assert_eq!(resolve(&env, &r1[..5]), r1);
}

#[test]
fn ambiguous_id_prefix_lists_the_candidates() {
    let env = Env::init();
    let mut by_prefix: HashMap<String, String> = HashMap::new();
    let mut pair = None;
    // With 65536 four-digit prefixes, a collision among 1500 runs is all but certain
    // (expected after about 320).
    for i in 0..1500 {
        let id = env.commit(&["-p", &format!("i={i}")]);
        if let Some(other) = by_prefix.insert(id[..4].to_string(), id.clone()) {
            pair = Some((other, id));
            break;
        }
    }
    // The chance of no collision is about e^-17: treat it as the failure it almost surely is.
    let (a, b) = pair.expect("no two of 1500 runs share a four-digit id prefix");
    let prefix = &a[..4];
    let err = env.fails(&["show", prefix]);
    assert!(err.contains("ambiguous"), "{err}");
    assert!(err.contains(&format!("'{prefix}'")), "{err}");
    assert!(err.contains(&a[..12]), "{a} not listed: {err}");
    assert!(err.contains(&b[..12]), "{b} not listed: {err}");
    assert!(err.contains("more digits"), "no hint: {err}");
    env.fails(&["log", prefix]);
    env.fails(&["checkout", prefix, "-o", "x"]);
    assert!(!env.path("x").exists());
    // Enough digits to tell them apart resolve.
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    assert_eq!(resolve(&env, &a[..common + 1]), a);
    assert_eq!(resolve(&env, &b[..common + 1]), b);
}

// ---- 7. branches, switch, tags --------------------------------------------------------------

#[test]
fn branch_create_list_and_delete() {
    let env = Env::init();
    let list = env.ok(&["branch"]);
    assert!(
        list.contains("* main") && list.contains("no runs yet"),
        "{list}"
    );
    let err = env.fails(&["branch", "early"]);
    assert!(err.contains("no runs yet"), "{err}");

    let r1 = env.commit(&["-m", "one"]);
    let r2 = env.commit(&["-m", "two"]);
    env.ok(&["branch", "exp/a"]);
    env.ok(&["branch", "exp/b", &r1]);
    assert_eq!(resolve(&env, "exp/a"), r2);
    assert_eq!(resolve(&env, "exp/b"), r1);
    let list = env.ok(&["branch"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    let line = |name: &str| {
        *lines
            .iter()
            .find(|l| l[2..].starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
    };
    assert!(line("main").starts_with("* "), "{list}");
    assert!(line("main").contains(&r2[..12]), "{list}");
    assert!(line("exp/a").starts_with("  ") && line("exp/a").contains(&r2[..12]));
    assert!(line("exp/b").contains(&r1[..12]) && line("exp/b").contains("one"));

    let err = env.fails(&["branch", "exp/a", &r1]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(resolve(&env, "exp/a"), r2);
    env.ok(&["branch", "-f", "exp/a", &r1]);
    assert_eq!(resolve(&env, "exp/a"), r1);

    let err = env.fails(&["branch", "-d", "main"]);
    assert!(err.contains("current branch"), "{err}");
    assert_eq!(resolve(&env, "main"), r2);
    env.ok(&["branch", "-d", "exp/b"]);
    assert!(!env.ok(&["branch"]).contains("exp/b"));
    env.fails(&["show", "exp/b"]);
    let err = env.fails(&["branch", "-d", "exp/b"]);
    assert!(err.contains("exp/b"), "{err}");
    // Deleting a branch keeps its runs.
    assert_eq!(resolve(&env, &r1), r1);

    for bad in ["bad name", "a..b", "a/.hidden", "x~1", "HEAD", "trailing/"] {
        let err = env.fails(&["branch", bad]);
        assert!(err.contains("invalid branch name"), "{bad}: {err}");
    }
    assert_eq!(env.ok(&["branch"]).lines().count(), 2);
}

#[test]
fn switch_changes_where_the_next_run_goes() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "one"]);
    env.ok(&["branch", "exp/a"]);
    let out = env.run(&["switch", "exp/a"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("exp/a"));
    assert!(env.ok(&["branch"]).contains("* exp/a"));
    let r2 = env.commit(&["-m", "two"]);
    let run = show_json(&env, &r2)["run"].clone();
    assert_eq!(run["branch"], "exp/a");
    assert_eq!(run["parents"], json!([r1]));
    assert_eq!(resolve(&env, "main"), r1, "main moved");
    assert_eq!(resolve(&env, "exp/a"), r2);
    assert_eq!(resolve(&env, "HEAD"), r2);
    assert_eq!(log_json(&env, &[])[0]["refs"], json!(["HEAD -> exp/a"]));

    let err = env.fails(&["switch", "nope"]);
    assert!(err.contains("'nope'"), "{err}");
    assert!(err.contains("switch -c nope"), "no hint about -c: {err}");
    assert!(env.ok(&["branch"]).contains("* exp/a"));

    env.ok(&["switch", "-c", "exp/b"]);
    assert_eq!(resolve(&env, "exp/b"), r2);
    let r3 = env.commit(&["-m", "three"]);
    assert_eq!(show_json(&env, &r3)["run"]["parents"], json!([r2]));
    assert_eq!(resolve(&env, "exp/a"), r2);
    let err = env.fails(&["switch", "-c", "exp/b"]);
    assert!(err.contains("already exists"), "{err}");
    let err = env.fails(&["switch", "-c", "bad name"]);
    assert!(err.contains("invalid branch name"), "{err}");

    env.ok(&["switch", "main"]);
    let r4 = env.commit(&["-m", "four"]);
    assert_eq!(show_json(&env, &r4)["run"]["parents"], json!([r1]));
    assert_eq!(show_json(&env, &r4)["run"]["branch"], "main");
    // Now exp/a can be deleted, main cannot.
    env.ok(&["branch", "-d", "exp/a"]);
    env.fails(&["branch", "-d", "main"]);
}

#[test]
fn tags_name_runs_and_move_only_with_force() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "one"]);
    let r2 = env.commit(&["-m", "two"]);
    assert_eq!(env.ok(&["tag"]), "");
    env.ok(&["tag", "v1", &r1]);
    env.ok(&["tag", "latest"]);
    assert_eq!(resolve(&env, "v1"), r1);
    assert_eq!(resolve(&env, "latest"), r2);
    let list = env.ok(&["tag"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("latest") && lines[0].contains(&r2[..12]),
        "{list}"
    );
    assert!(
        lines[1].starts_with("v1") && lines[1].contains(&r1[..12]),
        "{list}"
    );
    assert!(lines[1].contains("one"), "{list}");
    assert!(env.ok(&["log"]).contains("tag: v1"));

    let err = env.fails(&["tag", "v1", &r2]);
    assert!(err.contains("-f"), "{err}");
    assert_eq!(resolve(&env, "v1"), r1, "tag moved without -f");
    // A new run does not move a tag either.
    env.commit(&["-m", "three"]);
    assert_eq!(resolve(&env, "latest"), r2);
    env.ok(&["tag", "-f", "v1", &r2]);
    assert_eq!(resolve(&env, "v1"), r2);

    env.ok(&["tag", "-d", "v1"]);
    assert!(!env.ok(&["tag"]).contains("v1"));
    let err = env.fails(&["show", "v1"]);
    assert!(err.contains("v1"), "{err}");
    let err = env.fails(&["tag", "-d", "v1"]);
    assert!(err.contains("no tag named 'v1'"), "{err}");
    let err = env.fails(&["tag", "bad:name"]);
    assert!(err.contains("invalid tag name"), "{err}");
    let err = env.fails(&["tag", "t", "nope"]);
    assert!(err.contains("nope"), "{err}");
    assert_eq!(env.ok(&["tag"]).lines().count(), 1);
}

#[test]
fn refusing_to_move_a_tag_names_the_tag() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "one"]);
    let r2 = env.commit(&["-m", "two"]);
    env.ok(&["tag", "release-candidate", &r1]);
    let err = env.fails(&["tag", "release-candidate", &r2]);
    assert_one_line_error(&err);
    assert!(err.contains("-f"), "{err}");
    assert!(
        err.contains("release-candidate"),
        "the error does not say which tag: {err}"
    );
    assert_eq!(resolve(&env, "release-candidate"), r1);
}

// ---- 8. notes -------------------------------------------------------------------------------

#[test]
fn notes_annotate_runs_without_changing_them() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "one", "-p", "lr=0.1"]);
    let r2 = env.commit(&["-m", "two"]);
    let log_before = log_json(&env, &[]);
    let run_before = show_json(&env, &r1)["run"].clone();

    env.ok(&["note", &r1, "-m", "diverged after epoch 40"]);
    env.ok(&["note", "HEAD", "-m", "best so far"]);
    env.ok(&["note", &r1[..8], "--message", "second thought"]);

    let listed = env.ok(&["note", &r1]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].contains("diverged after epoch 40"), "{listed}");
    assert!(
        lines[1].contains("second thought"),
        "oldest first: {listed}"
    );
    assert!(lines[0].contains("tester"), "{listed}");
    assert!(!listed.contains("best so far"), "{listed}");
    assert!(env.ok(&["note", "HEAD"]).contains("best so far"));

    let v = show_json(&env, &r1);
    assert_eq!(v["id"], r1.as_str(), "the run's id changed");
    assert_eq!(v["run"], run_before, "the run changed");
    let texts: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["diverged after epoch 40", "second thought"]);
    let text = env.ok(&["show", &r1]);
    assert!(
        text.contains("Notes") && text.contains("diverged after epoch 40"),
        "{text}"
    );
    assert_eq!(log_json(&env, &[]), log_before, "log changed after notes");
    assert_eq!(resolve(&env, "HEAD"), r2);

    let err = env.fails(&["note", &r1, "-m", "   "]);
    assert!(err.contains("empty"), "{err}");
    let err = env.fails(&["note", "nope", "-m", "x"]);
    assert!(err.contains("nope"), "{err}");
    assert_eq!(env.ok(&["note", &r1]).lines().count(), 2);
    fsck_objects(&env);
}

// ---- 9. bad input ---------------------------------------------------------------------------

#[test]
fn bad_commit_input_fails_cleanly_and_writes_nothing() {
    let env = Env::init();
    env.write("good/a.txt", "a\n");
    env.write("other/good/b.txt", "b\n");
    env.write("src/train.py", noise(9, 4000));
    env.write("model.bin", noise(10, 5000));
    env.write("ok.yaml", "lr: 0.1\n");
    env.write("ok.json", r#"{"loss": 0.1}"#);
    env.write("bad.yaml", "lr: 0.1\nlayers: [1, 2\nepochs: 3\n");
    env.write("bad.json", "{\"loss\": 0.5,,}");
    env.write("words.json", r#"{"loss": 0.5, "quality": "high"}"#);
    env.write("bad.toml", "lr = 0.1\nlayers = [1,\n");
    env.write("cells.csv", "step,loss,acc\n1,0.5,0.1\n2,0.4,high\n");
    env.write(
        "broken.jsonl",
        "{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\":\n",
    );
    env.write("params.txt", "lr: 0.1\n");
    env.commit(&["-m", "base", "--data", "good"]);
    let before = store_state(&env);
    // Every case carries valid inputs too, so that a half-done commit would show.
    let valid = [
        "--code",
        "src",
        "--artifact",
        "model.bin",
        "--params",
        "ok.yaml",
    ];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--data", "missing/folder"], vec!["missing/folder"]),
        (vec!["--data", "set=missing"], vec!["missing"]),
        (vec!["--params", "bad.yaml"], vec!["bad.yaml:"]),
        (vec!["--metrics", "bad.json"], vec!["bad.json"]),
        (
            vec!["--metrics", "words.json"],
            vec!["words.json", "'quality'"],
        ),
        (
            vec!["--metrics", "ok.json", "--param", "noequals"],
            vec!["noequals", "KEY=VALUE"],
        ),
        (
            vec!["-b", "bad name"],
            vec!["invalid branch name", "bad name"],
        ),
        (
            vec!["--branch", "x..y"],
            vec!["invalid branch name", "x..y"],
        ),
        (
            vec!["--data", "good", "--data", "other/good"],
            vec!["'good'", "twice"],
        ),
        (
            vec!["--data", "x=good", "--data", "x=other/good"],
            vec!["'x'", "twice"],
        ),
        (vec!["--artifact", "nope.bin"], vec!["nope.bin"]),
        (vec!["--params", "nope.yaml"], vec!["nope.yaml"]),
        (vec!["--metrics", "nope.csv"], vec!["nope.csv"]),
        (vec!["--params", "bad.toml"], vec!["bad.toml:3:"]),
        (vec!["--params", "params.txt"], vec!["params.txt"]),
        (
            vec!["--metrics", "cells.csv"],
            vec!["cells.csv:3:", "'acc'"],
        ),
        (vec!["--metrics", "broken.jsonl"], vec!["broken.jsonl:2:"]),
        (vec!["--tag", "novalue"], vec!["novalue"]),
    ];
    for (args, wants) in &cases {
        let mut all = vec!["commit", "-m", "should not exist"];
        all.extend_from_slice(&valid);
        all.extend_from_slice(args);
        let err = env.fails(&all);
        assert_one_line_error(&err);
        for want in wants {
            assert!(err.contains(want), "{args:?}: {want:?} missing: {err}");
        }
        assert_eq!(store_state(&env), before, "{args:?} wrote something");
    }
    // The YAML error gives file:line:column.
    let err = env.fails(&["commit", "--params", "bad.yaml"]);
    let pos = err.find("bad.yaml:").unwrap() + "bad.yaml:".len();
    let loc: Vec<&str> = err[pos..].splitn(3, ':').collect();
    assert!(
        loc.len() == 3
            && loc[0].parse::<u32>().is_ok_and(|l| l >= 2)
            && loc[1].parse::<u32>().is_ok(),
        "no file:line:col in {err}"
    );
    // The JSON error points into the file too.
    let err = env.fails(&["commit", "--metrics", "bad.json"]);
    assert!(err.contains("bad.json:1:"), "{err}");
    assert_eq!(store_state(&env), before);
    assert!(!env.ok(&["branch"]).contains("bad"), "a branch was created");
}

// ---- 10. content ids ------------------------------------------------------------------------

#[test]
fn recommitting_unchanged_inputs_keeps_content_ids() {
    let env = Env::init();
    env.write("set/a.txt", "a\n");
    env.write("set/b.bin", noise(4, 400_000));
    env.write("src/train.py", "print(1)\n");
    env.write("model.bin", noise(6, 1000));
    let args = [
        "--data",
        "set",
        "--code",
        "src",
        "--artifact",
        "model.bin",
        "-p",
        "lr=0.1",
    ];
    let r1 = env.commit(&args);
    let r2 = env.commit(&args);
    assert_ne!(r1, r2, "a new run is a new run");
    let (v1, v2) = (
        show_json(&env, &r1)["run"].clone(),
        show_json(&env, &r2)["run"].clone(),
    );
    assert_eq!(v2["parents"], json!([r1]));
    assert_eq!(v1["data"], v2["data"]);
    assert!(is_hex_id(&v1["data"]["set"]["id"]));
    assert_eq!(v1["code"]["tree"], v2["code"]["tree"]);
    assert_eq!(v1["artifacts"]["tree"], v2["artifacts"]["tree"]);
    assert_eq!(v1["params"], v2["params"]);
}

#[test]
fn a_small_change_in_a_large_folder_gives_a_new_data_id() {
    let env = Env::init();
    for i in 0..500 {
        env.write(
            &format!("corpus/part{}/f{i:03}.txt", i % 7),
            format!("line {i}\n"),
        );
    }
    // Files younger than a couple of seconds are always re-read; let these age so that the
    // second and later commits may take unchanged files from the stat cache. The assertions
    // hold either way.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let r1 = env.commit(&["-m", "v1", "--data", "corpus"]);
    let id1 = show_json(&env, &r1)["run"]["data"]["corpus"].clone();
    assert_eq!(id1["files"], 500);
    let r1b = env.commit(&["-m", "v1 again", "--data", "corpus"]);
    assert_ne!(r1, r1b);
    assert_eq!(show_json(&env, &r1b)["run"]["data"]["corpus"], id1);

    env.write("corpus/part0/f007.txt", "edited seven\n");
    env.write("corpus/part5/f250.txt", "line 25X\n"); // same size
    env.write("corpus/part2/f499.txt", noise(1, 2000));
    let r2 = env.commit(&["-m", "v2", "--data", "corpus"]);
    let id2 = show_json(&env, &r2)["run"]["data"]["corpus"].clone();
    assert_eq!(id2["files"], 500);
    assert_ne!(id1["id"], id2["id"], "changed content, same data id");

    let entry = |run: &str, path: &str| -> Value {
        let items = ls_json(&env, run, path);
        assert_eq!(items.len(), 1, "{items:?}");
        items[0].clone()
    };
    for (path, content) in [
        ("part0/f007.txt", b"edited seven\n".to_vec()),
        ("part5/f250.txt", b"line 25X\n".to_vec()),
        ("part2/f499.txt", noise(1, 2000)),
    ] {
        let p = format!("data/corpus/{path}");
        let (old, new) = (entry(&r1, &p), entry(&r2, &p));
        assert_ne!(old["id"], new["id"], "{path}");
        assert_eq!(new["size"], content.len() as u64, "{path}");
        assert_eq!(cat_bytes(&env, &format!("{r2}:{p}")), content);
    }
    assert_eq!(
        cat_bytes(&env, &format!("{r1}:data/corpus/part0/f007.txt")),
        b"line 7\n"
    );
    let same = "data/corpus/part3/f003.txt";
    assert_eq!(entry(&r1, same)["id"], entry(&r2, same)["id"]);
    // Committing the changed folder again gives the same content id.
    let r2b = env.commit(&["-m", "v2 again", "--data", "corpus"]);
    assert_eq!(show_json(&env, &r2b)["run"]["data"]["corpus"], id2);
    // Back to the original content: back to the original id.
    env.write("corpus/part0/f007.txt", "line 7\n");
    env.write("corpus/part5/f250.txt", "line 250\n");
    env.write("corpus/part2/f499.txt", "line 499\n");
    let r3 = env.commit(&["-m", "v1 restored", "--data", "corpus"]);
    assert_eq!(
        show_json(&env, &r3)["run"]["data"]["corpus"]["id"],
        id1["id"]
    );
    let text = env.ok(&["ls", &r2, "data/corpus/part0"]);
    assert!(text.contains("data/corpus/part0/f007.txt"), "{text}");
    fsck_objects(&env);
}

// ---- 11. completions and help ---------------------------------------------------------------

/// The command names a clap help text lists under "Commands:" (without `help`).
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // Command lines are indented by two spaces; wrapped descriptions by more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .map(|w| w.trim_end_matches(',').to_string())
        .filter(|w| w != "help")
        .collect()
}

#[test]
fn completions_and_help() {
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]);
    assert!(script.contains("_cairn"), "{script}");
    assert!(script.contains("complete"), "{script}");
    for sub in ["commit", "checkout", "switch", "--data"] {
        assert!(script.contains(sub), "{sub} missing from the bash script");
    }
    let out = env.run(&["completions", "no-such-shell"]);
    assert_eq!(out.status.code(), Some(2));

    let subcommands = [
        "init",
        "commit",
        "log",
        "show",
        "ls",
        "cat",
        "checkout",
        "branch",
        "switch",
        "tag",
        "note",
        "fsck",
        "gc",
        "completions",
    ];
    let top = env.ok(&["--help"]);
    assert!(top.contains("Examples"), "{top}");
    for sub in subcommands {
        assert!(top.contains(sub), "{sub} missing from --help: {top}");
    }
    // Every command listed by --help, at every level, has its own help with examples.
    let mut todo: Vec<Vec<String>> = listed_commands(&top).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() >= 25, "too few commands listed: {top}");
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = env.run(&args);
        let name = path.join(" ");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name} --help: {}",
            stderr_of(&out)
        );
        let text = stdout_of(&out);
        assert!(
            text.contains("Examples"),
            "{name} --help has no examples: {text}"
        );
        assert!(
            text.contains(&format!("cairn {}", path[0])),
            "{name}: {text}"
        );
        for child in listed_commands(&text) {
            let mut p = path.clone();
            p.push(child);
            todo.push(p);
        }
    }
    // Unknown commands are usage errors (exit 2), not failures.
    assert_eq!(env.run(&["frobnicate"]).status.code(), Some(2));
}

/// Bytes in the repository's pack files.
fn packs_size(env: &Env) -> u64 {
    std::fs::read_dir(env.path(".cairn/packs"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// A large file is compressed when a sample of its start compresses well, and stored raw when
/// it does not (as model weights barely compress); either way it restores bit for bit.
#[test]
fn large_files_are_compressed_only_when_it_pays() {
    let env = Env::init();
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < 12 << 20 {
        text.extend_from_slice(
            format!("step {i},loss {:.4},lr 0.001\n", 1.0 / (i + 1) as f64).as_bytes(),
        );
        i += 1;
    }
    env.write("metrics.log", &text);
    let first = env.commit(&["--artifact", "metrics.log"]);
    let text_stored = packs_size(&env);
    assert!(
        text_stored < text.len() as u64 / 3,
        "{text_stored} bytes stored for {} of text",
        text.len()
    );
    let weights = noise(3, 12 << 20);
    env.write("model.bin", &weights);
    let id = env.commit(&["--artifact", "model.bin"]);
    let weights_stored = packs_size(&env) - text_stored;
    assert!(
        weights_stored >= weights.len() as u64,
        "{weights_stored} bytes stored for {} of noise: compressed",
        weights.len()
    );
    env.ok(&["checkout", &id, "--artifacts", "-o", "out"]);
    assert!(std::fs::read(env.path("out/model.bin")).unwrap() == weights);
    env.ok(&["checkout", &first, "--artifacts", "-o", "out1"]);
    assert!(std::fs::read(env.path("out1/metrics.log")).unwrap() == text);
}

#[test]
fn author_comes_from_cairn_then_the_projects_git_config_then_the_global_one() {
    let env = Env::init();
    let author = |env: &Env| {
        let id = env.commit(&["-m", "x"]);
        show_json(env, &id)["run"]["author"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The global git configuration alone.
    std::fs::write(
        env.home.join(".gitconfig"),
        "[user]\n\tname = Global Person\n\temail = global@example.com\n",
    )
    .unwrap();
    assert_eq!(author(&env), "Global Person <global@example.com>");
    // The project's git configuration wins over the global one, key by key.
    env.git(&["init", "-q"]);
    env.git(&["config", "user.name", "Project Person"]);
    assert_eq!(author(&env), "Project Person <global@example.com>");
    env.git(&["config", "user.email", "project@example.com"]);
    assert_eq!(author(&env), "Project Person <project@example.com>");
    // From a subfolder too.
    std::fs::create_dir_all(env.path("sub")).unwrap();
    let out = env
        .cmd_in(&env.path("sub"))
        .args(["commit", "-q", "-m", "sub"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let id = stdout_of(&out).trim().to_string();
    assert_eq!(
        show_json(&env, &id)["run"]["author"],
        "Project Person <project@example.com>"
    );
    // cairn's own setting wins over both.
    let cfg = env.path(".cairn/config");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("# name = \"Ada Lovelace\"", "name = \"Ada\""),
    )
    .unwrap();
    assert_eq!(author(&env), "Ada <project@example.com>");
}

/// A 20-step `train_loss` series as JSON Lines, last point 0.52 at step 19.
fn loss_series() -> String {
    (0..20)
        .map(|i| {
            let v = if i == 19 { 0.52 } else { 2.0 - 0.05 * i as f64 };
            format!("{{\"step\": {i}, \"train_loss\": {v}}}\n")
        })
        .collect()
}

#[test]
fn commit_keeps_a_series_when_a_metrics_file_reports_the_same_name() {
    let env = Env::init();
    env.write("a.jsonl", loss_series());
    env.write("b.json", r#"{"train_loss": 0.4918, "acc": 0.9}"#);
    env.write("same.json", r#"{"train_loss": 0.52}"#);
    for order in [["a.jsonl", "b.json"], ["b.json", "a.jsonl"]] {
        let id = env.commit(&["-m", "x", "--metrics", order[0], "--metrics", order[1]]);
        let run = show_json(&env, &id)["run"].clone();
        let loss = &run["metrics"]["train_loss"];
        assert_eq!(loss["count"], 20, "{order:?}: {loss}");
        assert_eq!(loss["last"], json!(0.52), "{order:?}: {loss}");
        assert_eq!(loss["last_step"], 19, "{order:?}: {loss}");
        assert!(loss["series"].is_string(), "{order:?}: {loss}");
        assert_eq!(loss["final"], json!(0.4918), "{order:?}: {loss}");
        assert_eq!(run["metrics"]["acc"]["last"], json!(0.9));
        assert!(run["metrics"]["acc"].get("final").is_none(), "{run}");
        let text = env.ok(&["show", &id]);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("train_loss"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("20 steps"), "{line}");
        assert!(
            line.contains("final value") && line.contains("0.4918"),
            "{line}"
        );
    }
    // A final value equal to the last point is not recorded twice.
    let id = env.commit(&["-m", "x", "--metrics", "a.jsonl", "--metrics", "same.json"]);
    let loss = &show_json(&env, &id)["run"]["metrics"]["train_loss"];
    assert_eq!(loss["count"], 20, "{loss}");
    assert!(loss.get("final").is_none(), "{loss}");
    assert!(!env.ok(&["show", &id]).contains("final value"));
}

#[test]
fn run_keeps_live_series_beside_a_project_metrics_file_of_the_same_name() {
    let env = Env::init();
    env.write("cairn.toml", "[run]\nmetrics = [\"metrics.json\"]\n");
    let script = r#"
for i in 1 2 3 4 5; do
  echo "{\"step\": $i, \"train_loss\": 0.$((9 - i))}" >> "$CAIRN_METRICS"
done
echo '{"train_loss": 0.4918}' > metrics.json
"#;
    env.write("train.sh", script);
    let out = env.run(&["run", "--", "sh", "train.sh"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let loss = show_json(&env, "HEAD")["run"]["metrics"]["train_loss"].clone();
    assert_eq!(loss["count"], 5, "{loss}");
    assert_eq!(loss["last"], json!(0.4), "{loss}");
    assert_eq!(loss["final"], json!(0.4918), "{loss}");
    assert!(env.ok(&["show"]).contains("final value"));
}

#[test]
fn init_template_does_not_suggest_a_metrics_file_colliding_with_live_metrics() {
    let env = Env::init();
    let text = std::fs::read_to_string(env.path("cairn.toml")).unwrap();
    let example = text
        .lines()
        .find(|l| l.trim_start_matches(['#', ' ']).starts_with("metrics ="))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!example.contains("metrics.json"), "{example}");
    assert!(text.contains("$CAIRN_METRICS"), "{text}");
}

#[test]
fn log_scopes_to_a_branch_takes_ranges_all_and_oneline() {
    let env = Env::init();
    let r1 = env.commit(&["-m", "r1"]);
    let r2 = env.commit(&["-m", "r2"]);
    env.ok(&["branch", "exp"]);
    let e1 = env.commit(&["-m", "e1", "-b", "exp"]);
    let e2 = env.commit(&["-m", "e2", "-b", "exp"]);
    let m3 = env.commit(&["-m", "m3"]);
    // The first word of each line, matched to the full ids.
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["log"];
        all.extend_from_slice(args);
        env.ok(&all)
            .lines()
            .map(|l| {
                let short = l.split_whitespace().next().unwrap_or_default();
                [&r1, &r2, &e1, &e2, &m3]
                    .into_iter()
                    .find(|id| id.starts_with(short) && !short.is_empty())
                    .unwrap_or_else(|| panic!("{l:?}"))
                    .to_string()
            })
            .collect()
    };
    let own = vec![e2.clone(), e1.clone()];
    assert_eq!(
        listed(&["exp"]),
        [&e2, &e1, &r2, &r1].map(String::clone),
        "first parents, as before"
    );
    assert_eq!(listed(&["exp", "--branch-only"]), own);
    assert_eq!(listed(&["main..exp"]), own);
    assert_eq!(listed(&["exp..main"]), vec![m3.clone()]);
    assert_eq!(
        listed(&["main", "--branch-only"]),
        [&m3, &r2, &r1].map(String::clone)
    );
    env.ok(&["switch", "exp"]);
    assert_eq!(listed(&["--branch-only"]), own);
    assert_eq!(listed(&["main.."]), own);
    assert_eq!(listed(&["--branch-only", "-n", "1"]), vec![e2.clone()]);
    // Every run, of every branch, newest first.
    assert_eq!(
        listed(&["--all", "--oneline"]),
        [&m3, &e2, &e1, &r2, &r1].map(String::clone)
    );
    // --oneline: id, names, subject; nothing else.
    let text = env.ok(&["log", "--oneline", "-n", "1"]);
    assert_eq!(text, format!("{} (HEAD -> exp) e2\n", &e2[..12]), "{text}");
    let json = parse_json(&env.ok(&["log", "main..exp", "--json"]));
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");
    // --branch-only needs a branch.
    let err = env.fails(&["log", &r2, "--branch-only"]);
    assert!(
        err.contains("--branch-only") && err.contains("not a branch"),
        "{err}"
    );
    env.fails(&["log", "nosuch..exp"]);
}

/// `cairn log | less` must not lock the repository: log (and show) read what they print, give
/// the index up, then print. Here the reader takes one byte and then nothing, so the command
/// blocks on a full pipe; a commit must still get the index (before, it waited for the reader
/// until its lock timeout and failed).
#[test]
fn log_and_show_give_the_index_up_before_a_slow_reader_drains_them() {
    use std::io::Read;
    let env = Env::init();
    // More output than a pipe holds (64 KiB): 30 runs with 4 KB messages, and one of 100 KB.
    let long = "x".repeat(4000);
    for i in 0..30 {
        env.commit(&["-m", &format!("run {i} {long}")]);
    }
    let big = env.commit(&["-m", &"y".repeat(100_000)]);
    for (round, args) in [&["log", "--json"][..], &["show", &big][..]]
        .iter()
        .enumerate()
    {
        let mut reader = env
            .cmd()
            .args(*args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn cairn");
        let mut out = reader.stdout.take().expect("stdout");
        let mut first = [0u8; 1];
        out.read_exact(&mut first).expect("printed nothing");
        // The command is printing now, and stays blocked on the pipe until we read on.
        let commit = env
            .cmd()
            .args(["commit", "-q", "-m", "while printing", "-p"])
            .arg(format!("x={round}"))
            .env("CAIRN_LOCK_TIMEOUT", "20")
            .output()
            .expect("spawn commit");
        let mut rest = Vec::new();
        out.read_to_end(&mut rest).expect("read output");
        assert!(reader.wait().expect("wait").success(), "{args:?}");
        assert!(
            commit.status.success(),
            "commit while {args:?}'s reader was slow: {}",
            text(&commit.stderr)
        );
        assert!(
            rest.len() > 64 * 1024,
            "{args:?} printed only {} bytes",
            rest.len()
        );
    }
}

#[test]
fn a_tag_named_like_a_branch_is_warned_about() {
    let env = Env::init();
    let first = env.commit(&["-m", "one", "-p", "x=1"]);
    env.ok(&["branch", "best"]);
    env.commit(&["-m", "two", "-p", "x=2"]);
    // Tagging main's tip as `best` while a branch `best` names the first run.
    let out = env.run(&["tag", "best"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: 'best' is also a branch") && err.contains("refs/tags/best"),
        "{err}"
    );
    // What the warning says: the name means the branch.
    assert_eq!(resolve(&env, "best"), first);
    // A tag without a branch of its name is not warned about; a branch named like a tag is.
    let out = env.run(&["tag", "v1"]);
    assert!(!stderr_of(&out).contains("warning"), "{}", stderr_of(&out));
    let out = env.run(&["branch", "v1", &first]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("warning: 'v1' is also a tag"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn misspelt_names_get_a_did_you_mean() {
    let env = Env::init();
    env.write("out/model.npz", "weights");
    let run = env.commit(&["-m", "one", "-p", "x=1", "--artifact", "out/model.npz"]);
    env.ok(&["branch", "exp/momentum"]);

    // A path given without its folders, or with a typo in a name.
    let err = env.fails(&["cat", "HEAD:model.npz"]);
    assert_one_line_error(&err);
    assert!(
        err.contains("hint: did you mean 'artifacts/out/model.npz'?"),
        "{err}"
    );
    let err = env.fails(&["cat", "HEAD:artifacts/out/modle.npz"]);
    assert!(
        err.contains("hint: did you mean 'artifacts/out/model.npz'?"),
        "{err}"
    );
    let err = env.fails(&["ls", "HEAD", "artefacts"]);
    assert!(err.contains("did you mean 'artifacts'?"), "{err}");

    // Branches, wherever a RUN or a branch is named.
    for args in [
        &["switch", "exp/momentun"][..],
        &["log", "exp/momentun"],
        &["show", "momentum"],
        &["checkout", "exp/momentun", "-o", "out2"],
    ] {
        let err = env.fails(args);
        assert!(
            err.contains("hint: did you mean 'exp/momentum'?"),
            "{args:?}: {err}"
        );
    }
    assert!(!env.path("out2").exists());
    // Nothing close: no suggestion.
    let err = env.fails(&["show", "zzzzzzzz"]);
    assert!(!err.contains("did you mean"), "{err}");

    // A prefix under four digits says the minimum.
    let err = env.fails(&["show", &run[..3]]);
    assert_one_line_error(&err);
    assert!(err.contains("at least 4 hex digits"), "{err}");

    // Commands: the closest first.
    let out = env.run(&["comit"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    let commit = err.find("'commit'").unwrap_or_else(|| panic!("{err}"));
    if let Some(other) = err.find("'completions'") {
        assert!(commit < other, "commit should come first: {err}");
    }
}

#[test]
fn help_keeps_global_options_apart_and_names_no_file_paths() {
    let env = Env::new();
    let mut todo: Vec<Vec<String>> = listed_commands(&env.ok(&["--help"]))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    assert!(todo.len() > 20, "{todo:?}");
    while let Some(cmd) = todo.pop() {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let help = env.ok(&args);
        for child in listed_commands(&help) {
            let mut c = cmd.clone();
            c.push(child);
            todo.push(c);
        }
        // -C and -q under their own heading, not among the command's options.
        let (own, global) = help
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("{cmd:?}: no 'Global options:' heading:\n{help}"));
        assert!(
            global.contains("-C <DIR>") && global.contains("-q, --quiet"),
            "{cmd:?}:\n{help}"
        );
        assert!(
            !own.contains("-C <DIR>") && !own.contains("--quiet"),
            "{cmd:?}:\n{help}"
        );
        assert!(!help.contains("[default: \"\"]"), "{cmd:?}:\n{help}");
        assert!(
            !help.contains("docs/") && !help.contains(".md"),
            "{cmd:?}: help names a file of the source tree:\n{help}"
        );
    }
}

/// The values (without their descriptions and without options) the dynamic completion offers
/// for the command line `words`, the last being the word under the cursor; asked as fish does.
fn completed(env: &Env, words: &[&str]) -> Vec<String> {
    let out = env
        .cmd()
        .env("CAIRN_COMPLETE", "fish")
        .arg("--")
        .arg("cairn")
        .args(words)
        .output()
        .expect("spawn cairn");
    assert!(out.status.success(), "{words:?}: {}", stderr_of(&out));
    stdout_of(&out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .filter(|v| !v.starts_with('-'))
        .collect()
}

#[test]
fn dynamic_completion_offers_branch_tag_remote_and_model_names() {
    let env = Env::init();
    env.write("model.bin", "weights");
    env.commit(&["-m", "one", "-p", "x=1", "--artifact", "model.bin"]);
    env.ok(&["branch", "exp/wide"]);
    env.ok(&["branch", "exp/deep"]);
    env.ok(&["tag", "v1.0"]);
    env.ok(&["model", "register", "resnet", "HEAD"]);
    let remote = env.tmp.path().join("remote");
    env.ok(&["remote", "add", "origin", remote.to_str().unwrap()]);

    assert_eq!(
        completed(&env, &["switch", "exp/"]),
        ["exp/deep", "exp/wide"]
    );
    assert_eq!(
        completed(&env, &["switch", ""]),
        ["exp/deep", "exp/wide", "main"]
    );
    assert_eq!(completed(&env, &["tag", "-d", ""]), ["v1.0"]);
    assert_eq!(completed(&env, &["push", ""]), ["origin"]);
    assert_eq!(completed(&env, &["remote", "remove", "o"]), ["origin"]);
    assert_eq!(completed(&env, &["model", "stage", ""]), ["resnet"]);
    assert_eq!(completed(&env, &["model", "show", "r"]), ["resnet"]);
    let runs = completed(&env, &["log", ""]);
    for name in ["HEAD", "exp/wide", "main", "v1.0", "model:resnet"] {
        assert!(runs.iter().any(|r| r == name), "{name} not in {runs:?}");
    }
    assert_eq!(completed(&env, &["checkout", "v"]), ["v1.0"]);
    assert_eq!(
        completed(&env, &["push", "origin", "model:"]),
        ["model:resnet"]
    );
    // Outside a repository: nothing, and no error.
    let outside = Env::new();
    assert!(completed(&outside, &["switch", ""]).is_empty());
    // The static scripts still work, and the registration script names the variable.
    assert!(env.ok(&["completions", "bash"]).contains("_cairn"));
    let out = env
        .cmd()
        .env("CAIRN_COMPLETE", "bash")
        .output()
        .expect("spawn cairn");
    assert!(
        stdout_of(&out).contains("CAIRN_COMPLETE"),
        "{}",
        stdout_of(&out)
    );
}
