//! I/O fault injection: the N-th write, fsync, rename or read at each site fails.
//!
//! The test build turns cairn's fail points on (see `src/fault.rs`); `FAILPOINTS` picks the
//! site and the call that fails. For every command and every site it uses, the sweep fails the
//! first call, then the second, and so on until the command no longer reaches the N-th call
//! (as SQLite's I/O-error tests do). After each injected failure: a one-line error that says
//! what failed (a hint may follow), no panic, refs unchanged, no temporary or half-written file left, and `fsck`
//! passes. Once the faults stop, the same command succeeds.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use crate::common::*;

/// The most calls per site the sweep fails one by one (the commands here stay below it).
const MAX_CALLS: usize = 12;

/// Files in `dir` and below, as relative paths (empty when it does not exist).
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap_or(&p);
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// What a failed command must leave as it was: the refs, and the store's content files (the
/// index database's own files excepted: the index may compact itself at any time).
#[derive(Debug, PartialEq, Eq)]
struct RepoState {
    branches: String,
    tags: String,
    files: BTreeSet<String>,
}

fn repo_state(env: &Env, dir: &Path) -> RepoState {
    let run = |args: &[&str]| {
        let out = env.cmd_in(dir).args(args).output().expect("spawn cairn");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let dot = dir.join(".cairn");
    // The cache of remote pack indexes mirrors what the remote holds, which a push that
    // failed late (at the ref) did change.
    let files = files_under(&dot)
        .into_iter()
        .filter(|f| {
            let cached_idx = f.starts_with("remotes/") && f.contains("/idx/");
            !(f.starts_with("index/") || cached_idx)
        })
        .collect();
    RepoState {
        branches: run(&["branch", "-a"]),
        tags: run(&["tag"]),
        files,
    }
}

fn fsck_passes(env: &Env, dir: &Path) {
    fsck_report_in(env, dir, &format!("in {}", dir.display()));
}

/// Runs `args` in `dir` with the fail point `site` failing its call number `n` (1-based).
fn run_failing(env: &Env, dir: &Path, args: &[&str], site: &str, n: usize) -> Output {
    let spec = if n == 1 {
        format!("{site}=return")
    } else {
        format!("{site}={}*off->return->off", n - 1)
    };
    env.cmd_in(dir)
        .args(args)
        .env("FAILPOINTS", spec)
        .output()
        .expect("spawn cairn")
}

/// Copies of folders taken before a sweep, put back whenever a run changed them.
struct Backup {
    saved: Vec<(std::path::PathBuf, tempfile::TempDir)>,
}

impl Backup {
    fn take(dirs: &[&Path]) -> Backup {
        let saved = dirs
            .iter()
            .map(|d| {
                let t = tempfile::tempdir().expect("tempdir");
                if d.exists() {
                    copy_tree(d, &t.path().join("copy"));
                }
                (d.to_path_buf(), t)
            })
            .collect();
        Backup { saved }
    }

    fn restore(&self) {
        for (d, t) in &self.saved {
            if d.exists() {
                std::fs::remove_dir_all(d).expect("remove");
            }
            let copy = t.path().join("copy");
            if copy.exists() {
                copy_tree(&copy, d);
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// The sweep's figures.
#[derive(Default, Debug)]
struct Tally {
    faults: usize,
    sites_reached: usize,
}

/// Fails each call at each site in turn while `args` runs in `dir`, checking after each
/// failure that the error is clean and that `unchanged` still holds; `may_land` names sites
/// after which the command's effect may be complete though it reported failure (the index
/// flush: its writes are done, their durability unconfirmed). Then runs `args` without faults.
/// `restore` lists folders (besides the repository's `.cairn`) that a successful run changes
/// and that are put back before the next site.
fn sweep(
    env: &Env,
    dir: &Path,
    args: &[&str],
    sites: &[&str],
    may_land: &[&str],
    restore: &[&Path],
    check: &dyn Fn(&Env, &Path),
) -> Tally {
    let mut tally = Tally::default();
    let dot = dir.join(".cairn");
    let mut dirs = vec![dot.as_path()];
    dirs.extend_from_slice(restore);
    let backup = Backup::take(&dirs);
    let before = repo_state(env, dir);
    for site in sites {
        let mut reached = false;
        for n in 1..=MAX_CALLS {
            let out = run_failing(env, dir, args, site, n);
            let err = text(&out.stderr);
            if out.status.success() {
                // The command made fewer than n calls here: the site is covered.
                assert!(
                    n > 1 || may_land.contains(site),
                    "cairn {args:?} never reached fail point {site}"
                );
                break;
            }
            reached = true;
            tally.faults += 1;
            assert_eq!(
                out.status.code(),
                Some(1),
                "{site} #{n}: exit status of {args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{site} #{n}: panic: {err}");
            assert!(
                err.contains(&format!("injected at {site}")),
                "{site} #{n}: the error does not say what failed: {err}"
            );
            assert_eq!(
                err.lines().filter(|l| !l.starts_with("hint: ")).count(),
                1,
                "{site} #{n}: not a one-line error (plus an optional hint): {err}"
            );
            fsck_passes(env, dir);
            let after = repo_state(env, dir);
            let landed = after.branches != before.branches;
            if !may_land.contains(site) || !landed {
                assert_eq!(
                    after, before,
                    "{site} #{n}: state changed by a failed {args:?}"
                );
            }
            check(env, dir);
            if landed {
                // The effect landed: from here the command is a different one.
                break;
            }
        }
        if reached {
            tally.sites_reached += 1;
        }
        // Undo what a run that got through changed, so every site starts alike.
        backup.restore();
        assert_eq!(repo_state(env, dir), before);
    }
    tally
}

fn data_set(env: &Env) {
    for i in 0..6 {
        env.write(
            &format!("data/part{}/f{i}.txt", i % 2),
            format!("row {i}\n"),
        );
    }
    // Larger than one chunk, so it is cut and stored as a chunked file.
    env.write("data/weights.bin", noise(9, 700_000));
}

const STORE_WRITES: &[&str] = &[
    "pack.create",
    "pack.write",
    "pack.fsync",
    "index.apply",
    "index.flush",
];

#[test]
fn commit_survives_every_failing_write_fsync_and_index_update() {
    let env = Env::init();
    data_set(&env);
    env.commit(&["-m", "base", "--data", "data"]);
    env.write("data/part0/f0.txt", "changed\n");
    env.write("data/weights.bin", noise(10, 700_000));
    let args = [
        "commit", "-m", "second", "--data", "data", "--param", "lr=0.1",
    ];
    let tally = sweep(
        &env,
        &env.work,
        &args,
        STORE_WRITES,
        &["index.flush"],
        &[],
        &|_, _| {},
    );
    eprintln!("commit: {tally:?}");
    assert!(tally.sites_reached >= 4, "{tally:?}");
    // Faults gone: the commit succeeds and its content reads back.
    let id = env.commit(&["-m", "second", "--data", "data"]);
    let out = env.run(&["cat", &format!("{id}:data/data/weights.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, noise(10, 700_000));
    fsck_passes(&env, &env.work);
}

#[test]
fn checkout_survives_failing_creates_writes_renames_and_reads() {
    let env = Env::init();
    data_set(&env);
    let id = env.commit(&["-m", "base", "--data", "data"]);
    let target = env.tmp.path().join("out");
    let target_s = target.to_str().expect("utf-8 path").to_string();
    let args = ["checkout", &id, "--data", "-o", &target_s, "--force"];
    let no_temp_files = |_: &Env, _: &Path| {
        let left: Vec<String> = files_under(&target)
            .into_iter()
            .filter(|f| f.contains(".cairn-tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    };
    let tally = sweep(
        &env,
        &env.work,
        &args,
        &[
            "restore.create",
            "restore.write",
            "restore.rename",
            "pack.read",
        ],
        &[],
        &[&target],
        &no_temp_files,
    );
    eprintln!("checkout: {tally:?}");
    assert_eq!(tally.sites_reached, 4, "{tally:?}");
    env.ok(&args);
    let restored = snapshot_dir(&target.join("data"));
    assert_eq!(restored, snapshot_dir(&env.path("data")));
}

#[test]
fn gc_survives_every_failing_write_and_index_update() {
    let env = Env::init();
    data_set(&env);
    let keep = env.commit(&["-m", "keep", "--data", "data"]);
    env.ok(&["branch", "scratch"]);
    env.ok(&["switch", "scratch"]);
    env.write("junk/big.bin", noise(11, 600_000));
    env.commit(&["-m", "junk", "--data", "junk"]);
    env.ok(&["switch", "main"]);
    env.ok(&["branch", "-d", "scratch"]);
    let args = ["gc", "--prune-now"];
    let kept_readable = |env: &Env, dir: &Path| {
        let out = env
            .cmd_in(dir)
            .args(["cat", &format!("{keep}:data/data/weights.bin")])
            .output()
            .expect("spawn cairn");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(out.stdout, noise(9, 700_000));
    };
    let tally = sweep(
        &env,
        &env.work,
        &args,
        &["index.apply", "index.flush", "pack.read"],
        &["index.flush"],
        &[],
        &kept_readable,
    );
    eprintln!("gc: {tally:?}");
    assert!(tally.sites_reached >= 1, "{tally:?}");
    env.ok(&args);
    kept_readable(&env, &env.work);
    fsck_passes(&env, &env.work);
}

#[test]
fn push_and_fetch_survive_failing_writes_on_both_sides() {
    let a = Env::init();
    data_set(&a);
    let first = a.commit(&["-m", "first", "--data", "data"]);
    let remote = a.tmp.path().join("remote");
    let url = remote.to_str().expect("utf-8 path").to_string();
    a.ok(&["remote", "add", "origin", &url]);
    a.ok(&["push", "origin", "main"]);
    a.write("data/weights.bin", noise(12, 700_000));
    let second = a.commit(&["-m", "second", "--data", "data"]);
    let remote_refs = || files_under(&remote.join("refs"));
    let ref_text = |name: &str| std::fs::read_to_string(remote.join("refs").join(name)).ok();
    let before = ref_text("heads/main");
    let clean_remote = |_: &Env, _: &Path| {
        assert_eq!(ref_text("heads/main"), before, "remote ref moved");
        let stray: Vec<String> = files_under(&remote)
            .into_iter()
            .filter(|f| f.contains(".tmp-") || f.ends_with(".lock"))
            .collect();
        assert!(stray.is_empty(), "temporary files on the remote: {stray:?}");
        let local_tmp = files_under(&a.work.join(".cairn/tmp"));
        assert!(local_tmp.is_empty(), "temporary packs left: {local_tmp:?}");
    };
    let refs_before = remote_refs();
    let push = ["push", "origin", "main"];
    let tally = sweep(
        &a,
        &a.work,
        &push,
        &[
            "pack.read",
            "push.create",
            "push.write",
            "remote.create",
            "remote.write",
            "remote.fsync",
            "remote.rename",
            "remote.ref",
        ],
        &[],
        &[&remote],
        &clean_remote,
    );
    eprintln!("push: {tally:?}");
    assert_eq!(tally.sites_reached, 8, "{tally:?}");
    assert_eq!(remote_refs(), refs_before);
    a.ok(&push);
    assert!(
        ref_text("heads/main").is_some_and(|t| t.trim() == second),
        "the push did not land"
    );

    // Fetch both runs into a new repository.
    let fetch_env = Env::init();
    fetch_env.ok(&["remote", "add", "origin", &url]);
    let fetch = ["fetch", "origin"];
    let tally = sweep(
        &fetch_env,
        &fetch_env.work,
        &fetch,
        STORE_WRITES,
        &["index.flush"],
        &[],
        &|_, _| {},
    );
    eprintln!("fetch: {tally:?}");
    assert!(tally.sites_reached >= 4, "{tally:?}");
    fetch_env.ok(&fetch);
    let out = fetch_env.run(&["cat", &format!("{second}:data/data/weights.bin")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, noise(12, 700_000));
    let out = fetch_env.run(&["cat", &format!("{first}:data/data/weights.bin")]);
    assert_eq!(out.stdout, noise(9, 700_000));
    fsck_passes(&fetch_env, &fetch_env.work);
}

#[test]
fn init_and_remote_add_leave_nothing_behind_when_a_write_fails() {
    let env = Env::new();
    let mut faults = 0;
    for site in ["init.write", "init.rename", "index.flush"] {
        let out = run_failing(&env, &env.work, &["init"], site, 1);
        assert_eq!(out.status.code(), Some(1), "{site}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("injected at {site}")), "{err}");
        let left: Vec<String> = std::fs::read_dir(&env.work)
            .expect("work folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{site}: init left {left:?}");
        faults += 1;
    }
    env.ok(&["init"]);
    let out = run_failing(
        &env,
        &env.work,
        &["remote", "add", "origin", "/tmp/somewhere"],
        "config.write",
        1,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    faults += 1;
    let listed = env.ok(&["remote"]);
    assert!(!listed.contains("origin"), "{listed}");
    let stray: Vec<String> = files_under(&env.work.join(".cairn"))
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    env.ok(&["remote", "add", "origin", "/tmp/somewhere"]);
    eprintln!("init and remote add: {faults} faults");
}

#[test]
fn cairn_run_does_not_start_when_its_record_cannot_be_written() {
    let env = Env::init();
    let marker = env.path("marker");
    let args = ["run", "-q", "-m", "wrapped", "--", "touch", "marker"];
    let not_started = |_: &Env, _: &Path| {
        assert!(
            !marker.exists(),
            "the command ran although its record failed"
        );
    };
    let tally = sweep(
        &env,
        &env.work,
        &args,
        &["run.write"],
        &[],
        &[],
        &not_started,
    );
    eprintln!("run: {tally:?}");
    assert_eq!(tally.sites_reached, 1, "{tally:?}");
    // Later writes of the record only report progress; once it exists, the run goes on.
    env.ok(&args);
    assert!(marker.exists());
    let runs = files_under(&env.work.join(".cairn/runs"));
    assert!(runs.is_empty(), "records left behind: {runs:?}");
}

/// A commit of more new objects than a writer keeps in memory indexes them in steps while it
/// writes, then publishes the run. Whichever index update fails — an early step or the
/// publication after one — the branch stays where it was and the store stays sound; what an
/// early step indexed is unreachable, and gc removes it.
#[test]
fn commit_failing_after_indexing_early_leaves_the_store_sound() {
    let env = Env::init();
    // Over 2048 new objects: at least one early step before the publication.
    for i in 0..2600 {
        env.write(&format!("data/d{}/f{i}.txt", i % 20), format!("row {i}\n"));
    }
    let args = ["commit", "-m", "big", "--data", "data"];
    let before = repo_state(&env, &env.work);
    // Call 1 of index.apply is the first early step; call 2 comes after it succeeded.
    for n in [1, 2] {
        let out = run_failing(&env, &env.work, &args, "index.apply", n);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "index.apply #{n}: {err}");
        assert!(err.contains("injected at index.apply"), "#{n}: {err}");
        fsck_passes(&env, &env.work);
        assert_eq!(
            repo_state(&env, &env.work).branches,
            before.branches,
            "index.apply #{n}: the branch moved"
        );
    }
    let report = fsck_report_in(&env, &env.work, "after the failed commits");
    let unreachable = report["unreachable"].as_u64().expect("unreachable count");
    assert!(
        unreachable >= 2048,
        "the early step's objects should be unreachable: {report}"
    );
    env.ok(&["gc", "--grace", "0"]);
    let report = fsck_report_in(&env, &env.work, "after gc");
    assert_eq!(report["unreachable"], 0, "{report}");
    // Without faults the commit succeeds and its files read back.
    let id = env.commit(&args[1..]);
    let out = env.run(&["cat", &format!("{id}:data/data/d7/f7.txt")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"row 7\n");
    fsck_passes(&env, &env.work);
}
