//! kill -9 loops: SIGKILL at seeded random moments during commit, checkout, push, fetch, pull,
//! gc and commands that only read. After every kill the store must be sound (`cairn fsck` passes, every run id cairn
//! printed is still there), and running the interrupted command again must succeed and give
//! the right result.
//!
//! Moments are drawn uniformly over the duration of an uninterrupted run of the same command,
//! measured first on the machine at hand (and again whenever a run ends before its moment), so
//! the kills spread over the whole command whatever the speed of the machine.
//!
//! Environment:
//! - `CAIRN_CRASH_ITERATIONS`: kills per scenario (default 6; S3 push does half as many, the
//!   reading commands 25 times as many, as each kill takes a few milliseconds).
//! - `CAIRN_CRASH_SEED`: the seed of the moments (default: taken from the clock; it is printed
//!   with every failure so a run can be repeated).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;

// ---- the moments --------------------------------------------------------------------------------

/// Kills per scenario: `CAIRN_CRASH_ITERATIONS`, default 6.
fn iterations() -> u64 {
    match std::env::var("CAIRN_CRASH_ITERATIONS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CAIRN_CRASH_ITERATIONS={v:?} is not a number")),
        Err(_) => 6,
    }
}

/// The base seed: `CAIRN_CRASH_SEED`, else one taken from the clock.
fn base_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("CAIRN_CRASH_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CAIRN_CRASH_SEED={v:?} is not a number")),
        Err(_) => SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    })
}

/// A small xorshift generator, seeded per scenario so that scenarios do not depend on the
/// order they run in.
struct Rng(u64);

impl Rng {
    fn for_scenario(name: &str) -> (Rng, u64) {
        let base = base_seed();
        let mut s = base ^ 0x2545_F491_4F6C_DD1D;
        for b in name.bytes() {
            s = (s ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        (Rng(s | 1), base)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A moment drawn uniformly over `span`.
    fn moment(&mut self, span: Duration) -> Duration {
        let micros = span.as_micros().max(1) as u64;
        Duration::from_micros(self.next() % micros)
    }
}

/// Counts and reports the kills of one scenario.
struct Scenario {
    name: &'static str,
    rng: Rng,
    seed: u64,
    /// Durations of uninterrupted runs of the command.
    runs: Vec<Duration>,
    /// The median of `runs`: the span moments are drawn from.
    span: Duration,
    /// Kills that hit the command while it ran.
    hits: u64,
    /// Rounds where the command finished before its moment came.
    finished: u64,
}

impl Scenario {
    fn new(name: &'static str) -> Scenario {
        let (rng, seed) = Rng::for_scenario(name);
        eprintln!("crash {name}: CAIRN_CRASH_SEED={seed}");
        Scenario {
            name,
            rng,
            seed,
            runs: Vec::new(),
            span: Duration::ZERO,
            hits: 0,
            finished: 0,
        }
    }

    /// Runs `f` uninterrupted and records how long it took: the span to kill in is the
    /// median of such runs (so one slowed down by a busy machine does not stretch it).
    fn calibrate<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.record(t.elapsed());
        out
    }

    /// Adds the duration of an uninterrupted run to the measurements of the span.
    fn record(&mut self, took: Duration) {
        self.runs.push(took);
        let mut sorted = self.runs.clone();
        sorted.sort();
        self.span = sorted[sorted.len() / 2];
    }

    /// Context for assertion messages.
    fn at(&self, round: u64, moment: Duration) -> String {
        format!(
            "crash {} round {round} (killed at {moment:?} of {:?}; CAIRN_CRASH_SEED={})",
            self.name, self.span, self.seed
        )
    }

    /// Starts `cairn ARGS` in `dir`, kills it at the next moment, returns what it printed.
    fn kill(&mut self, env: &Env, dir: &Path, args: &[&str]) -> Killed {
        let moment = self.rng.moment(self.span);
        let mut child = env
            .cmd_in(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cairn");
        // Watch the child until the moment, to know how long it took when it ends first.
        let started = Instant::now();
        let ended = loop {
            if child.try_wait().expect("try_wait").is_some() {
                break Some(started.elapsed());
            }
            let elapsed = started.elapsed();
            if elapsed >= moment {
                break None;
            }
            std::thread::sleep((moment - elapsed).min(Duration::from_millis(1)));
        };
        let ran = ended.is_none();
        if ran {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("wait for cairn");
        match ended {
            None => self.hits += 1,
            Some(took) => {
                self.finished += 1;
                // The command is faster than the span says (the machine was busier when it
                // was measured): its duration joins the measurements the span comes from.
                self.record(took);
            }
        }
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "cairn {args:?} panicked: {stderr}"
        );
        if !ran {
            // It ended on its own: then it must have succeeded.
            assert!(
                out.status.success(),
                "cairn {args:?} failed without being killed: {stderr}"
            );
        }
        Killed {
            moment,
            stdout: text(&out.stdout),
        }
    }

    /// Prints the counts; asserts the scenario killed the command while it ran at least once.
    fn done(&self) {
        eprintln!(
            "crash {}: {} iteration(s), {} kill(s) while running, {} finished first, span {:?}, CAIRN_CRASH_SEED={}",
            self.name,
            self.hits + self.finished,
            self.hits,
            self.finished,
            self.span,
            self.seed
        );
        assert!(
            self.hits + self.finished == 0 || self.hits > 0,
            "crash {}: no kill landed while the command ran",
            self.name
        );
    }
}

/// What a killed command printed.
struct Killed {
    moment: Duration,
    stdout: String,
}

impl Killed {
    /// The run id a killed commit printed, when it got that far.
    fn printed_id(&self) -> Option<String> {
        let id = self.stdout.trim();
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    }
}

// ---- checks -------------------------------------------------------------------------------------

/// The invariant: fsck passes with no problem, and every run in `runs` is still readable.
/// Returns the number of unreachable objects.
fn assert_sound(env: &Env, dir: &Path, runs: &[String], when: &str) -> u64 {
    let out = env.cmd_in(dir).args(["fsck", "--json"]).output().unwrap();
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{when}: fsck panicked: {stderr}"
    );
    assert!(
        out.status.success(),
        "{when}: fsck failed: {stdout}{stderr}"
    );
    let report = parse_json(&stdout);
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{when}: {report}"
    );
    for id in runs {
        let out = env
            .cmd_in(dir)
            .args(["show", "--json", id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{when}: run {id} that cairn printed is gone: {}",
            text(&out.stderr)
        );
    }
    report["unreachable"].as_u64().expect("unreachable count")
}

/// The full id `rev` names in the repository at `dir`, if it names one.
fn try_rev(env: &Env, dir: &Path, rev: &str) -> Option<String> {
    let out = env
        .cmd_in(dir)
        .args(["show", "--json", rev])
        .output()
        .unwrap();
    out.status.success().then(|| {
        parse_json(&text(&out.stdout))["id"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

/// Runs `cairn ARGS` in `dir`, asserts success.
fn ok_in(env: &Env, dir: &Path, args: &[&str]) -> String {
    let out = env.cmd_in(dir).args(args).output().expect("spawn cairn");
    assert!(
        out.status.success(),
        "cairn {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Sets the modification time of every file below `dir`, so the stat cache vouches for none.
fn touch_all(dir: &Path, secs: i64) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            touch_all(&p, secs);
        } else {
            filetime::set_file_mtime(&p, filetime::FileTime::from_unix_time(secs, 0)).unwrap();
        }
    }
}

/// A data folder: `big` files of `size` bytes of noise and 60 small text files in folders.
fn make_data(env: &Env, dir: &str, seed: u64, big: u64, size: usize) {
    for i in 0..big {
        env.write(&format!("{dir}/big{i}.bin"), noise(seed * 100 + i, size));
    }
    for i in 0..60u64 {
        env.write(
            &format!("{dir}/rows/part{}/row{i}.csv", i % 5),
            format!("{i},{seed},{}\n", i * 31 % 7),
        );
    }
}

// ---- commit -------------------------------------------------------------------------------------

#[test]
fn kill9_loop_commit() {
    let env = Env::init();
    let mut sc = Scenario::new("commit");
    make_data(&env, "data", 1, 4, 3 << 20);
    let mut printed = vec![sc.calibrate(|| env.commit(&["--data", "data", "-m", "warm"]))];
    for round in 0..iterations() {
        // New content in two files and a new time on every file, so the commit reads all of
        // them again and stores new objects.
        env.write("data/big0.bin", noise(1000 + round, 3 << 20));
        env.write(&format!("data/rows/new{round}.csv"), format!("{round}\n"));
        touch_all(&env.path("data"), 1_600_000_000 + round as i64);
        let want = snapshot_dir(&env.path("data"));
        let msg = format!("round {round}");
        let args = ["commit", "-q", "--data", "data", "-m", &msg];
        let k = sc.kill(&env, &env.work, &args);
        let when = sc.at(round, k.moment);
        printed.extend(k.printed_id());
        assert_sound(
            &env,
            &env.work,
            &printed,
            &format!("{when}: after the kill"),
        );
        // The same command again.
        let id = sc.calibrate(|| env.commit(&args[2..]));
        printed.push(id.clone());
        assert_sound(
            &env,
            &env.work,
            &printed,
            &format!("{when}: after the re-run"),
        );
        let dest = format!("out{round}");
        env.ok(&["checkout", &id, "--data", "-o", &dest]);
        assert_eq!(
            snapshot_dir(&env.path(&dest).join("data")),
            want,
            "{when}: the re-run's run restores other files"
        );
        std::fs::remove_dir_all(env.path(&dest)).unwrap();
    }
    // Every printed run is on main, newest first.
    let log = log_ids_in(&env, &env.work, &[]);
    for id in &printed {
        assert!(log.contains(id), "run {id} is not in the log of main");
    }
    assert_eq!(log.first(), printed.last());
    sc.done();
}

// ---- commands that only read -------------------------------------------------------------------

/// Commands that only read write to the index too: sled writes a snapshot of its page table
/// while it opens, whenever its log has grown since the last one. Killed at any moment, a
/// reading command must leave an index the next command opens. (sled 0.34 takes a snapshot a
/// killed process left half-written for the newest one and then refuses to open at all; before
/// cairn set such files aside, about one kill in two hundred here left the index unreadable.)
#[test]
fn kill9_loop_reading_commands() {
    let env = Env::init();
    let mut sc = Scenario::new("read");
    env.write("params.yaml", "lr: 0.1\n");
    let run = env.commit(&["--params", "params.yaml", "-m", "base"]);
    let reads: [&[&str]; 3] = [&["log", "-n", "1"], &["show", "HEAD"], &["ls", "HEAD"]];
    // A write before every read, so that every read opens an index whose log has grown.
    let write = |n: u64| env.ok(&["note", &run, "-m", &format!("note {n}")]);
    for (n, args) in reads.iter().enumerate() {
        write(n as u64);
        sc.calibrate(|| env.ok(args));
    }
    let rounds = iterations() * 25;
    for round in 0..rounds {
        write(100 + round);
        let args = reads[round as usize % reads.len()];
        let k = sc.kill(&env, &env.work, args);
        let when = format!("{} ({args:?})", sc.at(round, k.moment));
        let out = env.run(&["log", "-n", "1"]);
        assert!(
            out.status.success(),
            "{when}: the index no longer opens: {}",
            text(&out.stderr)
        );
        if round % 25 == 24 || round + 1 == rounds {
            assert_sound(&env, &env.work, std::slice::from_ref(&run), &when);
        }
    }
    sc.done();
}

// ---- checkout -----------------------------------------------------------------------------------

#[test]
fn kill9_loop_checkout() {
    let env = Env::init();
    let mut sc = Scenario::new("checkout");
    make_data(&env, "data", 2, 4, 4 << 20);
    let id = env.commit(&["--data", "data", "-m", "to restore"]);
    // A checkout into a fresh folder, and a forced one over a complete checkout (which reads
    // every file already there first), take different times: a span for each.
    sc.calibrate(|| env.ok(&["checkout", &id, "-q", "--data", "-o", "reference"]));
    let fresh = sc.span;
    let t = Instant::now();
    env.ok(&[
        "checkout",
        &id,
        "-q",
        "--data",
        "-o",
        "reference",
        "--force",
    ]);
    let forced = t.elapsed();
    let want = snapshot_dir(&env.path("reference"));
    env.ok(&["checkout", &id, "-q", "--data", "-o", "co-again"]);
    assert_eq!(
        snapshot_dir(&env.path("reference/data")),
        snapshot_dir(&env.path("data"))
    );
    for round in 0..iterations() {
        // Into a fresh folder, or over a complete earlier checkout (forced).
        let dest = if round % 2 == 0 {
            format!("co{round}")
        } else {
            "co-again".to_string()
        };
        let mut args = vec!["checkout", &id, "-q", "--data", "-o", &dest];
        sc.span = fresh;
        if round % 2 == 1 {
            args.push("--force");
            sc.span = forced;
        }
        let k = sc.kill(&env, &env.work, &args);
        let when = sc.at(round, k.moment);
        assert_sound(
            &env,
            &env.work,
            std::slice::from_ref(&id),
            &format!("{when}: after the kill"),
        );
        // The same command again (forced: the killed one may have left files).
        env.ok(&["checkout", &id, "-q", "--data", "-o", &dest, "--force"]);
        // Bit for bit, and no temporary file of the killed checkout left.
        assert_eq!(
            snapshot_dir(&env.path(&dest)),
            want,
            "{when}: the forced re-run restored other files"
        );
        if round % 2 == 0 {
            std::fs::remove_dir_all(env.path(&dest)).unwrap();
        }
    }
    sc.done();
}

// ---- push ---------------------------------------------------------------------------------------

impl Remote {
    /// Clones the remote into `dir` (inside `env`'s temporary folder).
    fn clone_into(&self, env: &Env, dir: &Path) {
        let d = dir.to_str().expect("utf-8 temp path");
        ok_in(
            env,
            &env.work,
            &self.with_endpoint(&["clone", &self.url, d]),
        );
    }

    /// A killed push may leave a folder remote's ref lock, documented to expire after a
    /// minute: make such locks look that old.
    fn age_locks(&self) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        let mut found = false;
        for e in std::fs::read_dir(dir.join("refs/heads"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().ends_with(".lock") {
                found = true;
                let old = SystemTime::now() - Duration::from_secs(120);
                filetime::set_file_mtime(e.path(), filetime::FileTime::from_system_time(old))
                    .unwrap();
            }
        }
        found
    }
}

/// The files of a run made by [`push_round`] as checked out with `--artifacts`.
fn artifacts(dir: &Path) -> BTreeMap<PathBuf, Item> {
    snapshot_dir(&dir.join("model"))
}

/// Makes new artifacts in `a` and commits them; returns the run id.
fn push_round(a: &Env, seed: u64, size: usize) -> String {
    a.write("model/weights.bin", noise(5000 + seed, size));
    a.write("model/head.bin", noise(9000 + seed, size / 4));
    a.write("model/config.json", format!("{{\"round\": {seed}}}\n"));
    a.commit(&["--artifact", "model", "-m", &format!("round {seed}")])
}

fn kill9_loop_push(mut sc: Scenario, remote: Remote, rounds: u64, size: usize) {
    let a = Env::init();
    let add = remote.with_endpoint(&["remote", "add", "origin", &remote.url]);
    a.ok(&add);
    let mut printed = vec![push_round(&a, 0, size)];
    sc.calibrate(|| a.ok(&["push", "-q", "origin"]));
    // A clone that watches the remote.
    let b = a.tmp.path().join("watcher");
    remote.clone_into(&a, &b);
    for round in 1..=rounds {
        let prev = printed.last().unwrap().clone();
        let run = push_round(&a, round, size);
        printed.push(run.clone());
        let want = artifacts(&a.work);
        let k = sc.kill(&a, &a.work, &["push", "-q", "origin"]);
        let when = sc.at(round, k.moment);
        assert_sound(
            &a,
            &a.work,
            &printed,
            &format!("{when}: pusher after the kill"),
        );
        // The remote names the old run or the new one, and all it names can be fetched.
        ok_in(&a, &b, &["fetch", "-q", "origin"]);
        assert_sound(&a, &b, &[], &format!("{when}: a fetch after the kill"));
        let tip = try_rev(&a, &b, "origin/main");
        assert!(
            tip.as_ref() == Some(&prev) || tip.as_ref() == Some(&run),
            "{when}: the remote's main names {tip:?}"
        );
        // The same command again; a lock the killed push held on a folder remote's ref is
        // aged first, and the first push after an expired lock may be refused once.
        let left_lock = remote.age_locks();
        // (Not timed: a re-run sends only what the killed push did not.)
        let out = a.run(&["push", "-q", "origin"]);
        if !out.status.success() {
            let err = text(&out.stderr);
            assert!(
                left_lock && err.contains("changed by someone else"),
                "{when}: the re-run push failed: {err}"
            );
            a.ok(&["push", "-q", "origin"]);
        }
        assert_sound(&a, &a.work, &printed, &format!("{when}: after the re-run"));
        ok_in(&a, &b, &["fetch", "-q", "origin"]);
        assert_eq!(
            try_rev(&a, &b, "origin/main").as_ref(),
            Some(&run),
            "{when}: the re-run did not move the remote's main"
        );
        assert_sound(
            &a,
            &b,
            std::slice::from_ref(&run),
            &format!("{when}: fetched"),
        );
        let out = b.join(format!("out{round}"));
        let o = out.to_str().unwrap();
        ok_in(&a, &b, &["checkout", &run, "-q", "--artifacts", "-o", o]);
        assert_eq!(artifacts(&out), want, "{when}: the pushed run differs");
        std::fs::remove_dir_all(&out).unwrap();
    }
    sc.done();
}

#[test]
fn kill9_loop_push_folder() {
    let sc = Scenario::new("push-folder");
    let env = Env::new();
    let remote = Remote::folder(&env, "push");
    kill9_loop_push(sc, remote, iterations(), 4 << 20);
}

#[test]
fn kill9_loop_push_s3() {
    let Some(remote) = Remote::s3("crash-push") else {
        return;
    };
    let sc = Scenario::new("push-s3");
    kill9_loop_push(sc, remote, iterations().div_ceil(2), 2 << 20);
}

// ---- fetch and pull -----------------------------------------------------------------------------

#[test]
fn kill9_loop_fetch_and_pull() {
    let mut sc = Scenario::new("fetch-pull");
    let a = Env::init();
    let remote = Remote::folder(&a, "fetch");
    a.ok(&["remote", "add", "origin", &remote.url]);
    let first = push_round(&a, 0, 4 << 20);
    a.ok(&["push", "-q", "origin"]);
    let b = a.tmp.path().join("receiver");
    sc.calibrate(|| remote.clone_into(&a, &b));
    let mut have = vec![first];
    for round in 1..=iterations() {
        let prev = have.last().unwrap().clone();
        let run = push_round(&a, round, 4 << 20);
        a.ok(&["push", "-q", "origin"]);
        let want = artifacts(&a.work);
        // Fetch on even rounds, pull (fetch, then move main) on odd ones.
        let args: &[&str] = if round % 2 == 0 {
            &["fetch", "-q", "origin"]
        } else {
            &["pull", "-q"]
        };
        let k = sc.kill(&a, &b, args);
        let when = format!("{} ({args:?})", sc.at(round, k.moment));
        assert_sound(&a, &b, &have, &format!("{when}: after the kill"));
        // The tracking ref names the old run or the new one; main too, for a pull.
        let tip = try_rev(&a, &b, "origin/main");
        assert!(
            tip.as_ref() == Some(&prev) || tip.as_ref() == Some(&run),
            "{when}: origin/main names {tip:?}"
        );
        let main = try_rev(&a, &b, "main");
        assert!(
            main.as_ref() == Some(&prev) || (round % 2 == 1 && main.as_ref() == Some(&run)),
            "{when}: main names {main:?}"
        );
        // The same command again.
        ok_in(&a, &b, args);
        have.push(run.clone());
        assert_sound(&a, &b, &have, &format!("{when}: after the re-run"));
        assert_eq!(
            try_rev(&a, &b, "origin/main").as_ref(),
            Some(&run),
            "{when}"
        );
        if round % 2 == 1 {
            assert_eq!(try_rev(&a, &b, "main").as_ref(), Some(&run), "{when}");
        } else {
            // Keep main in step for the next pull.
            ok_in(&a, &b, &["pull", "-q"]);
        }
        let out = b.join(format!("out{round}"));
        let o = out.to_str().unwrap();
        ok_in(&a, &b, &["checkout", &run, "-q", "--artifacts", "-o", o]);
        assert_eq!(artifacts(&out), want, "{when}: the fetched run differs");
        std::fs::remove_dir_all(&out).unwrap();
    }
    sc.done();
}

// ---- gc -----------------------------------------------------------------------------------------

/// Makes garbage for gc in round `round`: a run on a branch that is then deleted, which holds
/// a large file and a small one that a kept run on main shares (so its pack is mostly dead and
/// is rewritten), and a run on another deleted branch whose pack is entirely dead. Returns the
/// kept run and the two doomed ones.
fn make_garbage(env: &Env, round: u64) -> (String, [String; 2]) {
    let shared = format!("shared by round {round}\n").repeat(200);
    env.write(&format!("g{round}/big.bin"), noise(7000 + round, 3 << 20));
    env.write(&format!("g{round}/shared.txt"), &shared);
    // Many small shared objects, so that marking and rewriting take a while.
    for i in 0..300 {
        let row = format!("{round},{i},{:02x?}\n", noise(round * 1000 + i, 24));
        env.write(&format!("g{round}/rows/{i}.csv"), &row);
        env.write(&format!("k{round}/rows/{i}.csv"), &row);
    }
    let doomed = env.commit(&[
        "-b",
        &format!("doomed-{round}"),
        "--data",
        &format!("g{round}"),
    ]);
    env.write(&format!("k{round}/shared.txt"), &shared);
    env.write(&format!("k{round}/own.txt"), format!("kept {round}\n"));
    let kept = env.commit(&["--data", &format!("k{round}"), "-m", "kept"]);
    env.write(
        &format!("h{round}/all-dead.bin"),
        noise(8000 + round, 2 << 20),
    );
    let dead = env.commit(&[
        "-b",
        &format!("dead-{round}"),
        "--data",
        &format!("h{round}"),
    ]);
    env.ok(&["branch", "-d", &format!("doomed-{round}")]);
    env.ok(&["branch", "-d", &format!("dead-{round}")]);
    (kept, [doomed, dead])
}

/// Every kept run reads back: its files match what was committed.
fn assert_kept_readable(env: &Env, kept: &[(u64, String)], when: &str) {
    for (round, id) in kept {
        let spec = format!("{id}:data/k{round}/shared.txt");
        let out = env.run(&["cat", &spec]);
        assert!(
            out.status.success(),
            "{when}: cat {spec}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            out.stdout,
            std::fs::read(env.path(&format!("k{round}/shared.txt"))).unwrap(),
            "{when}: {spec}"
        );
    }
}

#[test]
fn kill9_loop_gc() {
    let mut sc = Scenario::new("gc");
    let env = Env::init();
    make_data(&env, "base", 3, 2, 1 << 20);
    env.commit(&["--data", "base", "-m", "base"]);
    let (k0, _) = make_garbage(&env, 0);
    let mut kept = vec![(0, k0)];
    let report = sc.calibrate(|| env.ok(&["gc", "--prune-now"]));
    assert!(
        report.contains("rewrote 1 pack(s)"),
        "no pack rewritten: {report}"
    );
    for round in 1..=iterations() {
        let (k, doomed) = make_garbage(&env, round);
        kept.push((round, k));
        let ids: Vec<String> = kept.iter().map(|(_, k)| k.clone()).collect();
        let garbage = assert_sound(&env, &env.work, &ids, "before gc");
        assert!(garbage > 0, "round {round}: no garbage made");
        let k = sc.kill(&env, &env.work, &["gc", "--prune-now"]);
        let when = sc.at(round, k.moment);
        assert_sound(&env, &env.work, &ids, &format!("{when}: after the kill"));
        assert_kept_readable(&env, &kept, &format!("{when}: after the kill"));
        // The same command again: everything unreachable goes, everything kept stays.
        env.ok(&["gc", "--prune-now"]);
        let left = assert_sound(&env, &env.work, &ids, &format!("{when}: after the re-run"));
        assert_eq!(left, 0, "{when}: the re-run left unreachable objects");
        assert_kept_readable(&env, &kept, &format!("{when}: after the re-run"));
        for id in &doomed {
            assert!(
                try_rev(&env, &env.work, id).is_none(),
                "{when}: the unreachable run {id} survived gc"
            );
        }
        // No pack file that no index entry names is left behind.
        let packs = std::fs::read_dir(env.path(".cairn/packs")).unwrap().count();
        let out = env.ok(&["gc", "--prune-now", "--dry-run"]);
        assert!(
            out.starts_with("would remove 0 object(s) (0 B) and 0 pack file(s)"),
            "{when}: {packs} pack file(s), and gc still finds work: {out}"
        );
    }
    sc.done();
}
