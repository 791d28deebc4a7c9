//! Tests of cairn run, status, watch and reproduce, with real child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{spawn, stderr_of, stdout_of, Env};

/// A training script: prints to stdout and stderr, appends three metrics lines, writes
/// `model.bin` and `outputs/summary.txt`, and exits with $EXIT (0 by default).
const TRAIN: &str = r#"
echo "training with $(cat "$CAIRN_PARAMS" | tr -d ' \n')"
echo "a warning on stderr" >&2
for i in 1 2 3; do
  echo "{\"step\": $i, \"loss\": 0.$((9 - i)), \"acc\": 0.$((6 + i))}" >> "$CAIRN_METRICS"
done
echo "weights" > model.bin
mkdir -p outputs && echo "summary" > outputs/summary.txt
exit "${EXIT:-0}"
"#;

/// A long script: one metrics line and a marker file, then sleeps. On SIGTERM it writes a
/// last metric and a checkpoint and exits 0 (a graceful shutdown); SIGINT ends it.
const LONG: &str = r#"
trap 'echo "{\"step\": 2, \"loss\": 0.5}" >> "$CAIRN_METRICS"; echo ckpt > checkpoint.bin; exit 0' TERM
echo "{\"step\": 1, \"loss\": 1.0}" >> "$CAIRN_METRICS"
echo partial > partial.bin
echo started
touch started.marker
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo never
"#;

fn show(env: &Env, run: &str) -> serde_json::Value {
    let out = env.ok(&["show", run, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["run"].clone()
}

fn run_count(env: &Env) -> usize {
    let out = env.ok(&["log", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .map_or(0, Vec::len)
}

fn head_id(env: &Env) -> String {
    let out = env.ok(&["show", "HEAD", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn cat(env: &Env, spec: &str) -> Vec<u8> {
    let out = env.run(&["cat", spec]);
    assert!(out.status.success(), "cat {spec}: {}", stderr_of(&out));
    out.stdout
}

fn runs_folder(env: &Env) -> PathBuf {
    env.path(".cairn/runs")
}

/// The in-progress folders.
fn in_progress(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(runs_folder(env))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to a child process of this test.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "kill failed");
}

fn metric_points(env: &Env, run: &serde_json::Value, name: &str) -> Vec<(i64, f64)> {
    let m = &run["metrics"][name];
    match m["series"].as_str() {
        Some(id) => {
            let v = read_blob(env, id);
            let v: Vec<(i64, Option<f64>)> = serde_json::from_slice(&v).unwrap();
            v.into_iter().map(|(s, x)| (s, x.unwrap())).collect()
        }
        None => vec![(
            m["last_step"].as_i64().unwrap(),
            m["last"].as_f64().unwrap(),
        )],
    }
}

/// A blob's bytes, read with the library (no command shows raw blobs).
fn read_blob(env: &Env, id: &str) -> Vec<u8> {
    let repo = cairn::repo::Repo::open(&env.work).unwrap();
    let session = repo.store().session().unwrap();
    let id = cairn::ObjectId::from_hex(id).unwrap();
    session.read_kind(&id, cairn::object::Kind::Blob).unwrap()
}

fn has_file(list: &str, path: &str) -> bool {
    list.lines()
        .any(|l| l.ends_with(&format!("  {path}")) || l.ends_with(&format!(" {path}")))
}

// ---- success, failure, output --------------------------------------------------------------

#[test]
fn run_records_a_successful_command() {
    let env = Env::init();
    env.write("train.sh", TRAIN);
    env.write("params.yaml", "lr: 0.01\nmodel:\n  depth: 4\n");
    env.write("data/train/a.csv", "x\n1\n");
    let out = env
        .cmd()
        .args([
            "run",
            "-m",
            "baseline",
            "--params",
            "params.yaml",
            "-p",
            "model.depth=8",
            "--data",
            "train=data/train",
            "--out",
            "model.bin",
            "--out",
            "outputs",
            "-t",
            "owner=ada",
            "--",
            "sh",
            "train.sh",
        ])
        .output()
        .unwrap();
    let (so, se) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{se}");
    // The command's output is shown, each stream on its own stream.
    assert!(
        so.contains(r#"training with {"lr":0.01,"model":{"depth":8}}"#),
        "{so}"
    );
    assert!(se.contains("a warning on stderr"), "{se}");
    assert!(!so.contains("a warning on stderr"), "{so}");
    assert!(se.contains("committed run"), "{se}");

    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["message"], "baseline");
    assert_eq!(run["command"], serde_json::json!(["sh", "train.sh"]));
    assert_eq!(
        run["cwd"].as_str().map(Path::new),
        Some(env.work.canonicalize().unwrap().as_path())
    );
    assert!(run["ended_at"].as_i64() >= run["started_at"].as_i64());
    assert_eq!(run["params"]["lr"], 0.01);
    assert_eq!(run["params"]["model"]["depth"], 8);
    assert_eq!(run["tags"]["owner"], "ada");
    assert_eq!(run["env"]["user"], "tester");
    assert!(!run["host"].as_str().unwrap().is_empty());
    assert_eq!(run["data"]["train"]["files"], 1);
    // Live metrics became step series.
    assert_eq!(
        metric_points(&env, &run, "loss"),
        [(1, 0.8), (2, 0.7), (3, 0.6)]
    );
    assert_eq!(run["metrics"]["acc"]["last"], 0.9);
    // The code snapshot was taken at the start: no outputs in it.
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(has_file(&ls, "code/train.sh"), "{ls}");
    assert!(!has_file(&ls, "code/model.bin"), "{ls}");
    assert!(has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(has_file(&ls, "artifacts/outputs/summary.txt"), "{ls}");
    assert!(has_file(&ls, "artifacts/cairn-run.log"), "{ls}");
    // The log holds both streams.
    let log = String::from_utf8(cat(&env, "HEAD:artifacts/cairn-run.log")).unwrap();
    assert!(log.contains("training with"), "{log}");
    assert!(log.contains("a warning on stderr"), "{log}");
    // Nothing is left in progress.
    assert!(in_progress(&env).is_empty(), "{:?}", in_progress(&env));
    assert_eq!(run_count(&env), 1);

    // The next run's code snapshot leaves the outputs out even outside git.
    env.ok(&["run", "-q", "--out", "model.bin", "--", "true"]);
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(!has_file(&ls, "code/model.bin"), "{ls}");
    let run = show(&env, "HEAD");
    assert_eq!(run["message"], "true", "the command is the default message");
}

#[test]
fn a_failing_command_is_committed_as_failed_with_its_exit_code() {
    let env = Env::init();
    env.write("train.sh", TRAIN);
    let out = env
        .cmd()
        .env("EXIT", "3")
        .args(["run", "--out", "model.bin", "--", "sh", "train.sh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["metrics"]["loss"]["count"], 3);
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(has_file(&ls, "artifacts/cairn-run.log"), "{ls}");

    // A command killed by a signal of its own: killed, 128 + N.
    let out = env.run(&["run", "-q", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr_of(&out));
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "killed");
    assert_eq!(run["exit_code"], 137);
    assert_eq!(run_count(&env), 2);
}

#[test]
fn a_command_that_cannot_start_records_nothing() {
    let env = Env::init();
    let err = env.fails(&["run", "--", "no-such-program-here"]);
    assert!(err.contains("no-such-program-here"), "{err}");
    assert!(in_progress(&env).is_empty());
    assert_eq!(run_count(&env), 0);
    // Bad inputs are refused before the command runs.
    let err = env.fails(&["run", "--data", "missing", "--", "sh", "-c", "touch ran"]);
    assert!(err.contains("missing"), "{err}");
    let err = env.fails(&["run", "-p", "=1", "--", "sh", "-c", "touch ran"]);
    assert!(err.contains("--param"), "{err}");
    assert!(
        !env.path("ran").exists(),
        "the command ran despite bad inputs"
    );
    // `--` and a command are required.
    let out = env.run(&["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn megabytes_of_output_are_shown_and_stored_whole() {
    let env = Env::init();
    // 200,000 numbered lines on stdout (about 1.3 MB) and 20,000 on stderr.
    let script = "i=0; seq 1 200000; seq 1 20000 | sed 's/^/err /' >&2";
    env.write("loud.sh", script);
    let out = env.run(&["run", "-q", "--", "sh", "loud.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out.stdout.len(), expected.len());
    assert!(
        stdout_of(&out) == expected,
        "stdout was not passed through intact"
    );
    assert!(stderr_of(&out).contains("err 20000\n"));
    let log = cat(&env, "HEAD:artifacts/cairn-run.log");
    let err_len: usize = (1..=20000).map(|i| format!("err {i}\n").len()).sum();
    assert_eq!(log.len(), expected.len() + err_len);
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "completed");
}

#[test]
fn a_malformed_metrics_line_is_reported_and_the_rest_kept() {
    let env = Env::init();
    let script = r#"
echo '{"step": 1, "loss": 0.9}' >> "$CAIRN_METRICS"
echo 'this is not json' >> "$CAIRN_METRICS"
echo '{"step": 3, "loss": "high"}' >> "$CAIRN_METRICS"
echo '{"step": 4, "loss": 0.7}' >> "$CAIRN_METRICS"
"#;
    env.write("m.sh", script);
    let out = env.run(&["run", "--", "sh", "m.sh"]);
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(se.contains("warning"), "{se}");
    assert!(se.contains("CAIRN_METRICS:2"), "no line number: {se}");
    assert!(se.contains("CAIRN_METRICS:3"), "no line number: {se}");
    let run = show(&env, "HEAD");
    assert_eq!(metric_points(&env, &run, "loss"), [(1, 0.9), (4, 0.7)]);
    assert_eq!(run["status"], "completed");
}

#[test]
fn missing_outputs_and_metrics_files_are_warnings() {
    let env = Env::init();
    env.write("train.sh", TRAIN);
    let out = env.run(&[
        "run",
        "--out",
        "model.bin",
        "--out",
        "never-written.pt",
        "--metrics",
        "final.json",
        "--",
        "sh",
        "train.sh",
    ]);
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(
        se.contains("output never-written.pt does not exist"),
        "{se}"
    );
    assert!(se.contains("final.json does not exist"), "{se}");
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "completed");
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(!ls.contains("never-written"), "{ls}");

    // A metrics file read at the end joins the live metrics.
    env.write("final.json", r#"{"test_acc": 0.91}"#);
    env.ok(&[
        "run",
        "-q",
        "--metrics",
        "final.json",
        "--",
        "sh",
        "train.sh",
    ]);
    let run = show(&env, "HEAD");
    assert_eq!(run["metrics"]["test_acc"]["last"], 0.91);
    assert_eq!(run["metrics"]["loss"]["count"], 3);
}

// ---- interrupts --------------------------------------------------------------------------------

#[test]
fn sigint_mid_run_commits_a_killed_run_once() {
    let env = Env::init();
    env.write("long.sh", LONG);
    let child = spawn(
        &env,
        &[
            "run",
            "--out",
            "partial.bin",
            "--out",
            "checkpoint.bin",
            "--",
            "sh",
            "long.sh",
        ],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{se}");
    assert!(se.contains("received SIGINT"), "{se}");
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "killed");
    assert_eq!(metric_points(&env, &run, "loss"), [(1, 1.0)]);
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(has_file(&ls, "artifacts/partial.bin"), "{ls}");
    assert!(!ls.contains("checkpoint.bin"), "{ls}");
    let log = String::from_utf8(cat(&env, "HEAD:artifacts/cairn-run.log")).unwrap();
    assert!(log.contains("started"), "{log}");
    assert!(!log.contains("never"), "{log}");
    assert_eq!(run_count(&env), 1, "committed more than once");
    assert!(in_progress(&env).is_empty());
    assert!(stdout_of(&out).contains("started"));
}

#[test]
fn sigterm_is_forwarded_and_a_graceful_shutdown_is_kept() {
    let env = Env::init();
    env.write("long.sh", LONG);
    let child = spawn(
        &env,
        &["run", "--out", "checkpoint.bin", "--", "sh", "long.sh"],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let se = stderr_of(&out);
    // The command exited 0 after its trap, but cairn was told to stop: killed, 128 + 15.
    assert_eq!(out.status.code(), Some(143), "{se}");
    assert!(se.contains("received SIGTERM"), "{se}");
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "killed");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(metric_points(&env, &run, "loss"), [(1, 1.0), (2, 0.5)]);
    let ls = env.ok(&["ls", "HEAD"]);
    assert!(has_file(&ls, "artifacts/checkpoint.bin"), "{ls}");
    assert_eq!(run_count(&env), 1);
}

#[test]
fn a_command_ignoring_interrupts_is_killed_on_the_third() {
    let env = Env::init();
    let script = "trap '' INT; touch started.marker; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done";
    env.write("stubborn.sh", script);
    let child = spawn(&env, &["run", "--", "sh", "stubborn.sh"]);
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    for _ in 0..3 {
        signal(&child, libc::SIGINT);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(137), "{se}");
    assert!(se.contains("killed the command"), "{se}");
    assert_eq!(show(&env, "HEAD")["status"], "killed");
    assert_eq!(run_count(&env), 1);
}

// ---- status and watch --------------------------------------------------------------------------

#[test]
fn status_and_watch_show_a_run_in_progress() {
    let env = Env::init();
    env.write("long.sh", LONG);
    env.write(
        "cairn.toml",
        "[run]\nparams = [\"params.json\"]\noutputs = [\"model.bin\"]\n",
    );
    env.write("params.json", r#"{"lr": 0.5}"#);
    let out = env.ok(&["status"]);
    assert!(out.contains("No runs in progress"), "{out}");
    assert!(out.contains("params.json"), "{out}");
    assert!(out.contains("lr=0.5"), "{out}");
    assert!(out.contains("model.bin (missing)"), "{out}");

    let child = spawn(&env, &["run", "--", "sh", "long.sh"]);
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    let live = v["in_progress"].as_array().unwrap();
    assert_eq!(live.len(), 1, "{v}");
    assert_eq!(live[0]["state"], "running");
    assert_eq!(live[0]["command"], serde_json::json!(["sh", "long.sh"]));
    let id = live[0]["id"].as_str().unwrap().to_string();
    let text = env.ok(&["status"]);
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("step 1: loss 1"), "{text}");

    let w = env.ok(&["watch", &id[..4]]);
    assert!(w.contains(&format!("run {id}")), "{w}");
    assert!(w.contains("loss"), "{w}");
    assert!(w.contains("▄"), "no sparkline: {w}");
    assert!(w.contains("output: started"), "{w}");
    // Follow until the run ends.
    let follower = spawn(&env, &["watch", "--follow", "--interval", "0.05"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    let f = follower.wait_with_output().unwrap();
    let fo = stdout_of(&f);
    assert_eq!(f.status.code(), Some(0), "{fo}{}", stderr_of(&f));
    assert!(fo.contains("loss"), "{fo}");
    assert!(fo.contains(&format!("run {id} has ended")), "{fo}");
    assert!(env.ok(&["status"]).contains("No runs in progress"));
    // A committed run's metrics can be watched too.
    let w = env.ok(&["watch", "HEAD"]);
    assert!(w.contains("not in progress") && w.contains("loss"), "{w}");
    // Nothing to watch.
    let err = env.fails(&["watch"]);
    assert!(err.contains("no run in progress"), "{err}");
}

#[test]
fn an_abandoned_run_is_shown_and_can_be_cleaned() {
    let env = Env::init();
    env.write("long.sh", LONG);
    let mut child = spawn(&env, &["run", "--", "sh", "long.sh"]);
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    wait_for("the record to name the command", || {
        in_progress(&env).iter().any(|f| {
            std::fs::read_to_string(f.join("run.json")).is_ok_and(|t| t.contains("\"running\""))
        })
    });
    // cairn itself is killed: nothing can be committed, the folder stays.
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let text = env.ok(&["status"]);
    assert!(text.contains("abandoned"), "{text}");
    assert_eq!(in_progress(&env).len(), 1);
    let folder = &in_progress(&env)[0];
    assert!(folder.join("output.log").exists());
    // End the orphaned command.
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("run.json")).unwrap()).unwrap();
    let pgid = rec["child_pid"].as_i64().unwrap() as i32;
    // SAFETY: ending the process group the test started.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    env.ok(&["status", "--clean"]);
    assert!(in_progress(&env).is_empty());
    assert_eq!(run_count(&env), 0);
}

// ---- project file, environment ----------------------------------------------------------------

#[test]
fn cairn_toml_supplies_the_defaults() {
    let env = Env::init();
    let example = std::fs::read_to_string(env.path("cairn.toml")).unwrap();
    assert!(
        example.contains("[run]"),
        "init wrote no example: {example}"
    );
    env.write("train.sh", TRAIN);
    env.write("params.yaml", "lr: 0.02\n");
    env.write("data/train/a.csv", "x\n1\n");
    env.write("data/val/b.csv", "x\n2\n");
    env.write(
        "cairn.toml",
        r#"
[run]
params = ["params.yaml"]
metrics = ["final.json"]
outputs = ["sub/model.bin", "sub/outputs"]
env = ["MYAPP_*"]
branch = "exp"

[run.data]
train = "data/train"
val = "data/val"

[run.tags]
team = "vision"
"#,
    );
    env.write("final.json", r#"{"test_acc": 0.5}"#);
    env.write("sub/.keep", "");
    let out = env
        .cmd_in(&env.path("sub"))
        .env("MYAPP_MODE", "fast")
        .env("MYAPP_API_KEY", "hunter2")
        .env("PYTHONHASHSEED", "7")
        .args(["run", "-q", "-p", "lr=0.03", "--", "sh", "../train.sh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let run = show(&env, "exp");
    assert_eq!(run["branch"], "exp");
    assert_eq!(run["params"]["lr"], 0.03, "--param overrides the file");
    assert_eq!(run["metrics"]["test_acc"]["last"], 0.5);
    assert_eq!(run["metrics"]["loss"]["count"], 3);
    assert_eq!(run["tags"]["team"], "vision");
    let data: Vec<&String> = run["data"].as_object().unwrap().keys().collect();
    assert_eq!(data, ["train", "val"]);
    assert_eq!(run["env"]["MYAPP_MODE"], "fast");
    assert_eq!(run["env"]["PYTHONHASHSEED"], "7");
    assert!(
        run["env"].get("MYAPP_API_KEY").is_none(),
        "a secret was recorded"
    );
    assert_eq!(run["env"]["cairn.cwd"], "sub");
    // Paths in cairn.toml are relative to the repository root, not to the working folder.
    let ls = env.ok(&["ls", "exp"]);
    assert!(has_file(&ls, "artifacts/sub/model.bin"), "{ls}");
    assert!(has_file(&ls, "artifacts/sub/outputs/summary.txt"), "{ls}");
    let log = cat(&env, "exp:artifacts/cairn-run.log");
    assert!(!String::from_utf8_lossy(&log).contains("hunter2"));

    // --no-project ignores it; a typo in it is an error naming the key.
    env.ok(&["run", "-q", "--no-project", "--", "true"]);
    assert!(show(&env, "HEAD")["tags"].as_object().unwrap().is_empty());
    env.write("cairn.toml", "[run]\noutput = [\"model.bin\"]\n");
    let err = env.fails(&["run", "--", "true"]);
    assert!(
        err.contains("cairn.toml") && err.contains("output"),
        "{err}"
    );
}

#[test]
fn the_gpu_model_is_recorded_when_nvidia_smi_answers() {
    let env = Env::init();
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("nvidia-smi");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'NVIDIA A100-SXM4-40GB'\necho 'NVIDIA A100-SXM4-40GB'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .cmd()
        .env("PATH", &path)
        .env("CUDA_VISIBLE_DEVICES", "0,1")
        .args(["run", "-q", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let run = show(&env, "HEAD");
    assert_eq!(run["env"]["gpu"], "NVIDIA A100-SXM4-40GB x2");
    assert_eq!(run["env"]["CUDA_VISIBLE_DEVICES"], "0,1");
}

// ---- git state and reproduce -------------------------------------------------------------------

#[test]
fn a_run_from_a_dirty_git_repo_is_reproduced_with_its_diff() {
    let env = Env::new();
    env.git(&["init", "-q"]);
    env.write("train.sh", TRAIN);
    env.write("params.yaml", "lr: 0.01\n");
    env.write("data/train/a.csv", "x\n1\n");
    env.git(&["add", "train.sh", "params.yaml", "data"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    env.ok(&["init"]);
    // An uncommitted change to the training script.
    let dirty = TRAIN.replace("echo \"weights\"", "echo \"dirty weights\"");
    env.write("train.sh", &dirty);
    let out = env
        .cmd()
        .env("PYTHONHASHSEED", "11")
        .args([
            "run",
            "-q",
            "-m",
            "dirty run",
            "--params",
            "params.yaml",
            "--new-param",
            "-p",
            "epochs=2",
            "--data",
            "train=data/train",
            "--out",
            "model.bin",
            "--out",
            "outputs",
            "--",
            "sh",
            "train.sh",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let id = head_id(&env);
    let run = show(&env, &id);
    let git = &run["code"]["git"];
    assert_eq!(git["dirty"], true, "{git}");
    let diff_id = git["diff"].as_str().expect("the diff is kept").to_string();
    let patch = String::from_utf8(read_blob(&env, &diff_id)).unwrap();
    assert!(patch.contains("+echo \"dirty weights\""), "{patch}");
    assert_eq!(
        cat(&env, &format!("{id}:code/train.sh")),
        dirty.as_bytes(),
        "the snapshot holds the uncommitted edit"
    );
    assert_eq!(
        cat(&env, &format!("{id}:artifacts/model.bin")),
        b"dirty weights\n"
    );

    // Reproduce into a folder: code (with the edit), data and params come back.
    let dir = env.tmp.path().join("repro");
    let out = env.run(&["reproduce", &id[..12], "-o", dir.to_str().unwrap()]);
    let (so, se) = (stdout_of(&out), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert_eq!(
        std::fs::read_to_string(dir.join("train.sh")).unwrap(),
        dirty
    );
    assert_eq!(
        std::fs::read(dir.join("data/train/a.csv")).unwrap(),
        b"x\n1\n"
    );
    assert_eq!(
        std::fs::read(dir.join("model.bin")).unwrap(),
        b"dirty weights\n"
    );
    assert!(
        so.contains(r#"training with {"lr":0.01,"epochs":2}"#),
        "{so}"
    );
    // The diff of the two runs is printed: same params, code and data; other cwd.
    assert!(so.contains(&format!("diff {}", &id[..12])), "{so}");
    assert!(!so.contains("\nParams"), "params differ: {so}");
    assert!(!so.contains("\nCode"), "code differs: {so}");
    assert!(!so.contains("\nData"), "data differ: {so}");
    assert!(so.contains("cwd"), "{so}");

    let new = show(&env, &format!("reproduce/{}", &id[..12]));
    assert_eq!(new["parents"][0], id.as_str());
    assert_eq!(new["code"], run["code"]);
    assert_eq!(new["data"], run["data"]);
    assert_eq!(new["params"], run["params"]);
    assert_eq!(
        new["env"]["PYTHONHASHSEED"], "11",
        "recorded variables are restored"
    );
    assert_eq!(new["status"], "completed");
    assert_eq!(new["metrics"]["loss"]["count"], 3);
    let ls = env.ok(&["ls", &format!("reproduce/{}", &id[..12])]);
    assert!(has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(has_file(&ls, "artifacts/outputs/summary.txt"), "{ls}");
    // HEAD's branch did not move.
    assert_eq!(head_id(&env), id);
    assert_eq!(run_count(&env), 1);

    // A run made by `cairn commit` has no command to reproduce.
    let c = env.commit(&["-m", "plain"]);
    let err = env.fails(&["reproduce", &c]);
    assert!(err.contains("no command"), "{err}");
}

#[test]
fn reproduce_defaults_to_a_new_temporary_folder() {
    let env = Env::init();
    env.write("train.sh", TRAIN);
    env.ok(&["run", "-q", "--out", "model.bin", "--", "sh", "train.sh"]);
    let id = head_id(&env);
    let out = env.run(&["reproduce", "HEAD"]);
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{se}");
    let line = se
        .lines()
        .find(|l| l.starts_with("Restored"))
        .unwrap_or_else(|| panic!("{se}"));
    let dir = PathBuf::from(line.rsplit(" into ").next().unwrap());
    assert!(dir.join("train.sh").exists(), "{se}");
    assert!(dir.join("model.bin").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    let new = show(&env, &format!("reproduce/{}", &id[..12]));
    assert_eq!(new["parents"][0], id.as_str());
    // A failing reproduction still exits with the command's code and is committed.
    env.write("fail.sh", "exit 4");
    let out = env.run(&["run", "-q", "--", "sh", "fail.sh"]);
    assert_eq!(out.status.code(), Some(4));
    let out = env.run(&["reproduce", "HEAD", "-o", "again"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
}

#[test]
fn the_python_example_reports_live_metrics() {
    // python3 is one of the README's prerequisites: its absence is a failure, not a skip.
    let py = which("python3").expect("python3 on PATH");
    let env = Env::init();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/train_live.py");
    let out = env.run(&[
        "run",
        "-q",
        "-p",
        "lr=0.2",
        "--out",
        "model.txt",
        "--",
        py.to_str().unwrap(),
        example.to_str().unwrap(),
        "--epochs",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("step   5"));
    let run = show(&env, "HEAD");
    assert_eq!(run["metrics"]["loss"]["count"], 5);
    assert_eq!(run["metrics"]["acc"]["count"], 5);
    assert!(
        run["metrics"]["loss"]["last"].as_f64().unwrap() < 0.1,
        "{run}"
    );
    assert!(cat(&env, "HEAD:artifacts/model.txt").starts_with(b"weight = "));
}

fn which(exe: &str) -> Result<PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").ok_or(())?)
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn two_runs_at_once_are_both_committed() {
    let env = Env::init();
    env.write("long.sh", LONG);
    let script = "touch go.$1; while [ ! -e release ]; do sleep 0.05; done; echo \"{\\\"loss\\\": $1}\" >> \"$CAIRN_METRICS\"";
    env.write("wait.sh", script);
    let a = spawn(&env, &["run", "-m", "a", "--", "sh", "wait.sh", "1"]);
    let b = spawn(&env, &["run", "-m", "b", "--", "sh", "wait.sh", "2"]);
    wait_for("both commands", || {
        env.path("go.1").exists() && env.path("go.2").exists()
    });
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).unwrap();
    assert_eq!(v["in_progress"].as_array().unwrap().len(), 2, "{v}");
    env.write("release", "");
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }
    assert_eq!(run_count(&env), 2);
    let messages: Vec<String> = ["HEAD", "HEAD~1"]
        .iter()
        .map(|r| show(&env, r)["message"].as_str().unwrap().to_string())
        .collect();
    assert!(messages.contains(&"a".to_string()) && messages.contains(&"b".to_string()));
    assert!(in_progress(&env).is_empty());
}

#[test]
fn an_output_that_cannot_be_stored_does_not_lose_the_run() {
    let env = Env::init();
    let script =
        "mkfifo pipe.fifo; echo '{\"step\": 1, \"loss\": 0.5}' >> \"$CAIRN_METRICS\"; echo done";
    env.write("fifo.sh", script);
    let out = env.run(&["run", "--out", "pipe.fifo", "--", "sh", "fifo.sh"]);
    let se = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(se.contains("without its outputs"), "{se}");
    let run = show(&env, "HEAD");
    assert_eq!(run["metrics"]["loss"]["last"], 0.5);
    let log = cat(&env, "HEAD:artifacts/cairn-run.log");
    assert_eq!(log, b"done\n");
    assert_eq!(run_count(&env), 1);
}

#[test]
fn a_signal_ignored_at_the_start_stays_ignored() {
    let nohup = which("nohup").expect("nohup (coreutils) on PATH");
    let env = Env::init();
    let script = "touch started.marker; sleep 0.5; echo survived";
    env.write("hup.sh", script);
    // nohup ignores SIGHUP, then runs cairn (same process).
    let child = std::process::Command::new(nohup)
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["run", "--", "sh", "hup.sh"])
        .current_dir(&env.work)
        .env("HOME", &env.home)
        .env("USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    signal(&child, libc::SIGHUP);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("survived"));
    assert_eq!(show(&env, "HEAD")["status"], "completed");
}

// ---- a run records only what happened -------------------------------------------------------

/// Writes `model.bin` and `outputs/a.txt` only when $FULL is set, always `outputs/b.txt`, and
/// exits with $EXIT.
const OUTPUTS: &str = r#"
mkdir -p outputs
if [ -n "$FULL" ]; then echo "model $FULL" > model.bin; echo "a $FULL" > outputs/a.txt; fi
echo "b ${FULL:-again}" > outputs/b.txt
exit "${EXIT:-0}"
"#;

#[test]
fn outputs_the_run_did_not_write_are_stale_not_its_artifacts() {
    let env = Env::init();
    env.write("train.sh", OUTPUTS);
    let args = [
        "run",
        "--out",
        "model.bin",
        "--out",
        "outputs",
        "--",
        "sh",
        "train.sh",
    ];
    let out = env.cmd().env("FULL", "1").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let ls = env.ok(&["ls", "HEAD", "artifacts"]);
    assert!(has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(
        show(&env, "HEAD").get("stale").is_none(),
        "a fresh run has no stale outputs"
    );

    // The next run fails before writing the model: the old one is not its artifact.
    let out = env.cmd().env("EXIT", "3").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let se = stderr_of(&out);
    assert!(
        se.contains("warning") && se.contains("model.bin") && se.contains("stale"),
        "the summary does not warn: {se}"
    );
    let ls = env.ok(&["ls", "HEAD", "artifacts"]);
    assert!(!has_file(&ls, "artifacts/model.bin"), "{ls}");
    assert!(!has_file(&ls, "artifacts/outputs/a.txt"), "{ls}");
    assert!(
        has_file(&ls, "artifacts/outputs/b.txt"),
        "only the new file of the folder: {ls}"
    );
    assert!(has_file(&ls, "artifacts/cairn-run.log"), "{ls}");
    assert_eq!(cat(&env, "HEAD:artifacts/outputs/b.txt"), b"b again\n");
    let run = show(&env, "HEAD");
    let stale: Vec<&str> = run["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["model.bin", "outputs/a.txt"]);
    assert!(
        run["stale"][0]["modified_at"].as_i64().unwrap() <= run["started_at"].as_i64().unwrap()
    );
    let text = env.ok(&["show", "HEAD"]);
    assert!(
        text.contains("Stale outputs") && text.contains("  model.bin  last modified"),
        "{text}"
    );
    assert!(text.contains("before the run started"), "{text}");
    // The user's files are left alone.
    assert_eq!(std::fs::read(env.path("model.bin")).unwrap(), b"model 1\n");
    assert_eq!(std::fs::read(env.path("outputs/a.txt")).unwrap(), b"a 1\n");
}

/// Prints the params file it reads, reports `lr` from it as a metric, and exits with $EXIT.
const READS_PARAMS: &str = r#"
cat "$PARAMS_FILE"
lr=$(grep -E '^ *"?lr"? *[:=]' "$PARAMS_FILE" | head -1 | sed -E 's/.*[:=] *([0-9.]+).*/\1/')
echo "{\"step\": 1, \"seen_lr\": $lr}" >> "$CAIRN_METRICS"
exit "${EXIT:-0}"
"#;

#[test]
fn a_param_override_reaches_the_command_through_its_params_file() {
    let env = Env::init();
    env.write("train.sh", READS_PARAMS);
    let files = [
        (
            "params.yaml",
            "# settings\ntrain:\n  lr: 0.1   # learning rate\n  epochs: 3\n",
        ),
        (
            "params.json",
            "{\n    \"train\": {\"lr\": 0.1, \"epochs\": 3}\n}\n",
        ),
        (
            "params.toml",
            "# settings\n[train]\nlr = 0.1 # learning rate\nepochs = 3\n",
        ),
    ];
    for (name, text) in files {
        env.write(name, text);
        for exit in ["0", "2"] {
            let out = env
                .cmd()
                .env("PARAMS_FILE", name)
                .env("EXIT", exit)
                .args([
                    "run",
                    "--params",
                    name,
                    "-p",
                    "train.lr=0.3",
                    "--",
                    "sh",
                    "train.sh",
                ])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(exit.parse().unwrap()),
                "{}",
                stderr_of(&out)
            );
            let run = show(&env, "HEAD");
            assert_eq!(run["params"]["train"]["lr"], 0.3, "{name}");
            assert_eq!(
                run["metrics"]["seen_lr"]["last"],
                0.3,
                "{name}: the command saw {}",
                stdout_of(&out)
            );
            assert_eq!(
                std::fs::read_to_string(env.path(name)).unwrap(),
                text,
                "{name} is not restored byte for byte"
            );
        }
        // Comments survive in the command's copy of YAML and TOML files.
        if !name.ends_with(".json") {
            let log = String::from_utf8(cat(&env, "HEAD:artifacts/cairn-run.log")).unwrap();
            assert!(log.contains("# learning rate"), "{log}");
        }
    }

    // An interrupted run puts the file back too.
    let (name, text) = files[0];
    env.write(
        "slow.sh",
        "touch started.marker\nwhile :; do sleep 0.1; done\n",
    );
    let child = spawn(
        &env,
        &[
            "run",
            "--params",
            name,
            "-p",
            "train.lr=0.5",
            "--",
            "sh",
            "slow.sh",
        ],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    assert!(std::fs::read_to_string(env.path(name))
        .unwrap()
        .contains("lr: 0.5"));
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(env.path(name)).unwrap(), text);
    assert_eq!(show(&env, "HEAD")["params"]["train"]["lr"], 0.5);
}

#[test]
fn a_param_in_no_params_file_needs_new_param() {
    let env = Env::init();
    env.write("params.yaml", "lr: 0.1\n");
    env.write("train.sh", "cat params.yaml\n");
    let err = env.fails(&[
        "run",
        "--params",
        "params.yaml",
        "-p",
        "momentum=0.9",
        "--",
        "sh",
        "train.sh",
    ]);
    assert!(
        err.contains("momentum") && err.contains("params.yaml") && err.contains("--new-param"),
        "{err}"
    );
    assert_eq!(run_count(&env), 0, "a run was made");
    assert!(in_progress(&env).is_empty());
    let out = env.ok(&[
        "run",
        "-q",
        "--params",
        "params.yaml",
        "--new-param",
        "-p",
        "momentum=0.9",
        "--",
        "sh",
        "train.sh",
    ]);
    assert!(
        out.contains("momentum: 0.9"),
        "the command did not see it: {out}"
    );
    assert_eq!(show(&env, "HEAD")["params"]["momentum"], 0.9);
    assert_eq!(
        std::fs::read_to_string(env.path("params.yaml")).unwrap(),
        "lr: 0.1\n"
    );
}

#[test]
fn checkout_gives_back_the_params_the_run_saw_and_not_its_log() {
    let env = Env::init();
    env.write("params.yaml", "# settings\nlr: 0.1  # learning rate\n");
    env.write("train.sh", "cat params.yaml\necho trained > model.bin\n");
    env.ok(&[
        "run",
        "-q",
        "--params",
        "params.yaml",
        "-p",
        "lr=0.3",
        "--out",
        "model.bin",
        "--",
        "sh",
        "train.sh",
    ]);
    // Reproduce gives the command the params the run saw, in the file it reads.
    let repro = env.tmp.path().join("repro");
    let out = env.run(&["reproduce", "HEAD", "-o", repro.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let so = stdout_of(&out);
    assert!(so.contains("lr: 0.3  # learning rate"), "{so}");
    let dir = env.tmp.path().join("restored");
    env.ok(&["checkout", "HEAD", "-o", dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dir.join("params.yaml")).unwrap(),
        "# settings\nlr: 0.3  # learning rate\n"
    );
    assert_eq!(std::fs::read(dir.join("model.bin")).unwrap(), b"trained\n");
    assert!(
        !dir.join("cairn-run.log").exists(),
        "the log was checked out"
    );
    // Again: the files are the run's, nothing to overwrite.
    env.ok(&["checkout", "HEAD", "-o", dir.to_str().unwrap()]);
    // In place: the params as the run saw them, and no log in the project.
    env.ok(&["checkout", "HEAD"]);
    assert!(
        !env.path("cairn-run.log").exists(),
        "the log was dropped into the project"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("params.yaml")).unwrap(),
        "# settings\nlr: 0.3  # learning rate\n"
    );
}

#[test]
fn an_abandoned_run_is_salvaged_as_killed_with_what_it_wrote() {
    let env = Env::init();
    env.write("params.yaml", "lr: 0.1\n");
    env.write("old.bin", "from before\n");
    env.write("long.sh", LONG);
    let mut child = spawn(
        &env,
        &[
            "run",
            "--params",
            "params.yaml",
            "-p",
            "lr=0.7",
            "--out",
            "partial.bin",
            "--out",
            "old.bin",
            "--",
            "sh",
            "long.sh",
        ],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    wait_for("the record to say running", || {
        in_progress(&env).iter().any(|f| {
            std::fs::read_to_string(f.join("run.json")).is_ok_and(|t| t.contains("\"running\""))
        })
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let folder = in_progress(&env)[0].clone();
    let id = folder.file_name().unwrap().to_str().unwrap().to_string();
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("run.json")).unwrap()).unwrap();
    let pgid = rec["child_pid"].as_i64().unwrap() as i32;
    // The command still runs: it cannot be salvaged yet.
    let err = env.fails(&["run", "--salvage", &id]);
    assert!(err.contains("still running"), "{err}");
    let status = env.ok(&["status"]);
    assert!(
        status.contains(&format!("cairn run --salvage {id}")),
        "{status}"
    );
    assert!(status.contains("params.yaml"), "{status}");
    // SAFETY: ending the process group the test started.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    wait_for("the command to end", || {
        // SAFETY: probing the process group the test started.
        unsafe { libc::kill(-pgid, 0) != 0 }
    });
    env.ok(&["run", "--salvage", &id]);
    let run = show(&env, "HEAD");
    assert_eq!(run["status"], "killed");
    assert_eq!(run["params"]["lr"], 0.7);
    assert_eq!(metric_points(&env, &run, "loss"), [(1, 1.0)]);
    let ls = env.ok(&["ls", "HEAD", "artifacts"]);
    assert!(has_file(&ls, "artifacts/partial.bin"), "{ls}");
    assert!(!has_file(&ls, "artifacts/old.bin"), "{ls}");
    assert_eq!(run["stale"][0]["path"], "old.bin");
    let log = String::from_utf8(cat(&env, "HEAD:artifacts/cairn-run.log")).unwrap();
    assert!(log.contains("started"), "{log}");
    assert_eq!(
        std::fs::read_to_string(env.path("params.yaml")).unwrap(),
        "lr: 0.1\n"
    );
    assert!(in_progress(&env).is_empty());
    assert_eq!(run_count(&env), 1);
}

#[test]
fn cleaning_an_abandoned_run_puts_its_params_file_back() {
    let env = Env::init();
    env.write("params.yaml", "lr: 0.1\n");
    env.write("long.sh", LONG);
    let mut child = spawn(
        &env,
        &[
            "run",
            "--params",
            "params.yaml",
            "-p",
            "lr=0.7",
            "--",
            "sh",
            "long.sh",
        ],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let folder = in_progress(&env)[0].clone();
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("run.json")).unwrap()).unwrap();
    let pgid = rec["child_pid"].as_i64().unwrap() as i32;
    // SAFETY: ending the process group the test started.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    assert_eq!(
        std::fs::read_to_string(env.path("params.yaml")).unwrap(),
        "lr: 0.7\n"
    );
    // Another override of the same file would take 0.7 for the user's value: refused.
    let err = env.fails(&[
        "run",
        "--params",
        "params.yaml",
        "-p",
        "lr=0.2",
        "--",
        "sh",
        "-c",
        "touch ran",
    ]);
    assert!(
        err.contains("params.yaml") && err.contains("--salvage"),
        "{err}"
    );
    assert!(!env.path("ran").exists());
    env.ok(&["status", "--clean"]);
    assert_eq!(
        std::fs::read_to_string(env.path("params.yaml")).unwrap(),
        "lr: 0.1\n"
    );
    assert!(in_progress(&env).is_empty());
}

#[test]
fn a_command_without_the_double_dash_gets_a_hint() {
    let env = Env::init();
    let err = env.fails(&["run", "python", "train.py", "--lr", "0.1"]);
    assert!(
        err.contains("'python'") && err.contains("cairn run -- python train.py --lr 0.1"),
        "{err}"
    );
    assert_eq!(run_count(&env), 0);
}

#[test]
fn watch_names_the_run_committed_on_another_branch() {
    use std::io::BufRead;
    let env = Env::init();
    env.write(
        "wait.sh",
        "touch started.marker\nwhile [ ! -e go ]; do sleep 0.05; done\n",
    );
    let run = spawn(
        &env,
        &["run", "-q", "-b", "exp/other", "--", "sh", "wait.sh"],
    );
    wait_for("the command to start", || {
        env.path("started.marker").exists()
    });
    wait_for("the record to say running", || {
        in_progress(&env).iter().any(|f| {
            std::fs::read_to_string(f.join("run.json")).is_ok_and(|t| t.contains("\"running\""))
        })
    });
    let id = in_progress(&env)[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut watch = env
        .cmd()
        .args(["watch", &id, "-f", "--interval", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(&id), "{first}");
    env.write("go", "");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(watch.wait().unwrap().success());
    let last = rest.last().cloned().unwrap_or_default();
    let full = serde_json::from_str::<serde_json::Value>(&env.ok(&["show", "exp/other", "--json"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last.contains(&full[..12]) && last.contains("exp/other") && !last.contains("log -n 1"),
        "{last}"
    );
}

#[test]
fn a_cairn_toml_that_does_not_parse_shows_the_line_and_a_caret() {
    let env = Env::init();
    env.write(
        "cairn.toml",
        "[run]\nparams = [\"p.yaml\"]\noutput = [\"model.bin\"]\n",
    );
    let err = env.fails(&["run", "--", "true"]);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains("cairn.toml:3:1: unknown field `output`, expected one of"),
        "{err}"
    );
    assert_eq!(
        lines[1..4],
        ["  |", "3 | output = [\"model.bin\"]", "  | ^^^^^^"],
        "{err}"
    );
    // A syntax error: the message on the first line, the caret where the parser stopped.
    env.write("cairn.toml", "[run]\ncode = \"src\" x\n");
    let err = env.fails(&["run", "--", "true"]);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("cairn.toml:2:14: "), "{err}");
    assert_eq!(
        lines[2..4],
        ["2 | code = \"src\" x", "  |              ^"],
        "{err}"
    );
    assert_eq!(
        env.ok(&["log", "--json"]).trim(),
        "[]",
        "a run was recorded"
    );
}
