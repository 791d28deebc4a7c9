//! Tests of remotes: folder and S3.
//!
//! Every scenario is written once against a remote "kind" and run for a folder remote and for
//! an S3 remote (a real S3-protocol server started by the harness; the S3 variant is skipped
//! when no server is available).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::*;

// ---- remotes of both kinds ------------------------------------------------------------------

type Kind = RemoteKind;

impl Remote {
    /// `cairn remote add NAME URL [--endpoint E]` in `env`.
    fn add(&self, env: &Env, name: &str) {
        env.ok(&self.with_endpoint(&["remote", "add", name, &self.url]));
    }

    /// A new environment whose work folder is a clone of this remote.
    fn clone_env(&self) -> Env {
        let env = Env::new();
        let dir = env.work.to_str().expect("utf-8 temp path").to_string();
        env.ok(&self.with_endpoint(&["clone", &self.url, &dir]));
        env
    }

    /// Runs `cairn clone` of this remote into a new environment's work folder, whatever it
    /// gives.
    fn try_clone(&self) -> (Env, Output) {
        let env = Env::new();
        let dir = env.work.to_str().expect("utf-8 temp path").to_string();
        let out = env.run(&self.with_endpoint(&["clone", &self.url, &dir]));
        (env, out)
    }
}

// ---- helpers --------------------------------------------------------------------------------

/// The full id `rev` resolves to.
fn show_id(env: &Env, rev: &str) -> String {
    parse_json(&env.ok(&["show", rev, "--json"]))["id"]
        .as_str()
        .expect("show --json has an id")
        .to_string()
}

/// Objects and bytes of the status line starting with `prefix` ("Pushed to ", "Fetched from "):
/// `Pushed to origin: 341 object(s), 2.9 MiB in 1 pack(s)`.
fn transfer(stderr: &str, prefix: &str) -> (u64, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} status line in:\n{stderr}"));
    let (_, rest) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("odd status line {line:?}"));
    let (n, rest) = rest
        .split_once(" object(s), ")
        .unwrap_or_else(|| panic!("odd status line {line:?}"));
    let size = rest.split(" in ").next().unwrap_or(rest);
    (
        n.parse()
            .unwrap_or_else(|_| panic!("odd object count in {line:?}")),
        parse_size(size),
    )
}

/// Pushes with `args` (after `push`), returns (objects, bytes) sent.
fn push_stats(env: &Env, args: &[&str]) -> (u64, f64) {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    transfer(&ok_stderr(env, &all), "Pushed to ")
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Writes the inputs of a run: code in `src/` (with an executable script and a nested
/// folder), a data folder of a few hundred small files (and a link), and a 3 MB model that is
/// stored in chunks.
fn make_inputs(env: &Env, seed: u64) {
    env.write("src/train.py", format!("import util\nSEED = {seed}\n"));
    env.write("src/util/__init__.py", "def f():\n    return 1\n");
    let script = env.write("src/run.sh", "#!/bin/sh\npython3 train.py\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for i in 0..300u64 {
        env.write(
            &format!("data/train/part{}/row{i}.csv", i % 6),
            format!("{i},{},{}\n", i * 7 + seed, i % 3),
        );
    }
    std::os::unix::fs::symlink("part0/row0.csv", env.path("data/train/latest.csv")).unwrap();
    env.write("model.bin", noise(seed, 3 << 20));
}

const RUN_ARGS: [&str; 6] = [
    "--code",
    "src",
    "--data",
    "train=data/train",
    "--artifact",
    "model.bin",
];

/// Commits the inputs made by [`make_inputs`] with `message`.
fn commit_inputs(env: &Env, message: &str) -> String {
    let mut args = vec!["-m", message];
    args.extend_from_slice(&RUN_ARGS);
    env.commit(&args)
}

/// What a checkout of a run made from [`make_inputs`] must contain.
fn inputs_snapshot(env: &Env) -> BTreeMap<PathBuf, Item> {
    snapshot_dir(&env.work)
        .into_iter()
        .filter(|(p, _)| {
            let first = p.components().next().map(|c| c.as_os_str().to_owned());
            matches!(
                first.as_deref().and_then(|s| s.to_str()),
                Some("src" | "data" | "model.bin")
            )
        })
        .collect()
}

// ---- 1. push, clone, pull -------------------------------------------------------------------

fn round_trip(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "roundtrip") else {
        return;
    };
    make_inputs(&a, 1);
    let run1 = commit_inputs(&a, "first");
    let expected1 = inputs_snapshot(&a);
    a.write("data/train/part1/row1.csv", "changed\n");
    a.write("data/train/new.csv", "1,2,3\n");
    a.write("src/util/extra.py", "X = 2\n");
    let mut model = noise(1, 3 << 20);
    model[1 << 20] ^= 0xff;
    a.write("model.bin", &model);
    let run2 = commit_inputs(&a, "second");
    let expected2 = inputs_snapshot(&a);
    a.ok(&["tag", "v1", &run1]);

    remote.add(&a, "origin");
    a.ok(&["push", "origin", "main", "v1"]);
    assert_eq!(show_id(&a, "origin/main"), run2, "push records origin/main");

    let b = remote.clone_env();
    assert_eq!(
        log_ids(&b, &[]),
        log_ids(&a, &[]),
        "clone has the same history"
    );
    assert_eq!(log_ids(&b, &[]), vec![run2.clone(), run1.clone()]);
    assert_eq!(show_id(&b, "v1"), run1, "the pushed tag came along");
    for run in [&run1, &run2] {
        assert_eq!(
            parse_json(&b.ok(&["show", run, "--json"])),
            parse_json(&a.ok(&["show", run, "--json"])),
            "run {run} reads the same in the clone"
        );
    }
    b.ok(&["checkout", &run1, "-o", "out1"]);
    assert_eq!(
        snapshot_dir(&b.path("out1")),
        expected1,
        "run 1 bit for bit"
    );
    b.ok(&["checkout", &run2, "-o", "out2"]);
    assert_eq!(
        snapshot_dir(&b.path("out2")),
        expected2,
        "run 2 bit for bit"
    );
    fsck_clean(&b);

    // A records another run and pushes it; B fast-forwards.
    a.write("model.bin", noise(3, 1 << 20));
    let run3 = a.commit(&["-m", "third", "--artifact", "model.bin", "-p", "lr=0.5"]);
    a.ok(&["push"]);
    let pulled = ok_stderr(&b, &["pull"]);
    assert!(
        pulled.contains("Pulled from origin"),
        "pull status: {pulled}"
    );
    assert_eq!(show_id(&b, "main"), run3, "pull fast-forwarded main");
    assert_eq!(log_ids(&b, &[]), log_ids(&a, &[]));
    assert_eq!(
        log_ids(&b, &["origin/main"]),
        vec![run3.clone(), run2.clone(), run1.clone()],
        "origin/main names the remote's branch in the RUN syntax"
    );
    assert_eq!(show_id(&b, "origin/main~2"), run1);
    assert_eq!(
        cat_bytes(&b, "origin/main:artifacts/model.bin"),
        noise(3, 1 << 20)
    );
    // A pull with nothing new keeps the branch where it is.
    b.ok(&["pull"]);
    assert_eq!(show_id(&b, "main"), run3);

    // Remote-tracking branches in the branch listing.
    let all = b.run(&["branch", "-a"]);
    if all.status.code() == Some(2) && text(&all.stderr).contains("unexpected argument") {
        eprintln!(
            "missing feature: `cairn branch -a` (list remote-tracking branches) does not exist"
        );
    } else {
        assert!(
            all.status.success(),
            "branch -a failed: {}",
            text(&all.stderr)
        );
        let listing = text(&all.stdout);
        assert!(
            listing.contains("origin/main"),
            "branch -a does not list origin/main:\n{listing}"
        );
    }
    fsck_clean(&b);
}

#[test]
fn round_trip_folder() {
    round_trip(Kind::Folder);
}

#[test]
fn round_trip_s3() {
    round_trip(Kind::S3);
}

// ---- 2. incremental push --------------------------------------------------------------------

fn incremental_push(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "incremental") else {
        return;
    };
    make_inputs(&a, 2);
    commit_inputs(&a, "first");
    remote.add(&a, "origin");
    let (first, first_bytes) = push_stats(&a, &[]);
    assert!(first > 300, "first push sent only {first} objects");
    assert!(
        first_bytes > 3e6,
        "first push sent only {first_bytes} bytes"
    );

    a.write("data/train/part2/row2.csv", "changed\n");
    a.write("data/train/part3/extra.csv", "new\n");
    a.write("src/train.py", "SEED = 99\n");
    commit_inputs(&a, "second");
    let (second, second_bytes) = push_stats(&a, &[]);
    assert!(second > 0, "second push sent nothing");
    assert!(
        second * 10 < first && second < 25,
        "second push sent {second} objects (first: {first})"
    );
    assert!(
        second_bytes < 64.0 * 1024.0,
        "second push sent {second_bytes} bytes"
    );

    // Nothing new: nothing sent.
    let again = ok_stderr(&a, &["push"]);
    assert_eq!(transfer(&again, "Pushed to "), (0, 0.0), "{again}");
    assert!(again.contains("up to date"), "{again}");

    // A large artifact, then a version of it with 2% of its bytes changed in four places.
    let big_len = 8 << 20;
    let big1 = noise(20, big_len);
    a.write("big.bin", &big1);
    let big_run1 = a.commit(&["-m", "big", "--artifact", "big.bin"]);
    let (_, big_bytes) = push_stats(&a, &[]);
    assert!(
        big_bytes >= big_len as f64,
        "big push sent {big_bytes} bytes"
    );
    let mut big2 = big1.clone();
    let span = big_len / 50 / 4;
    for k in 0..4 {
        let start = big_len / 5 * (k + 1) - span / 2;
        for (i, b) in big2[start..start + span].iter_mut().enumerate() {
            *b = b.wrapping_add(1 + (i % 250) as u8);
        }
    }
    a.write("big.bin", &big2);
    let big_run2 = a.commit(&["-m", "big v2", "--artifact", "big.bin"]);
    let (_, delta_bytes) = push_stats(&a, &[]);
    assert!(
        delta_bytes < big_len as f64 * 0.5,
        "a 2% change sent {delta_bytes} of {big_len} bytes"
    );
    assert!(
        delta_bytes >= (span * 4) as f64,
        "a 2% change sent only {delta_bytes} bytes"
    );

    let b = remote.clone_env();
    assert_eq!(
        cat_bytes(&b, &format!("{big_run1}:artifacts/big.bin")),
        big1
    );
    assert_eq!(
        cat_bytes(&b, &format!("{big_run2}:artifacts/big.bin")),
        big2
    );
    assert_eq!(log_ids(&b, &[]), log_ids(&a, &[]));
    fsck_clean(&b);
}

#[test]
fn incremental_push_folder() {
    incremental_push(Kind::Folder);
}

#[test]
fn incremental_push_s3() {
    incremental_push(Kind::S3);
}

// ---- 3. interrupted push --------------------------------------------------------------------

/// When a push is killed.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this many milliseconds.
    Delay(u64),
    /// When its temporary pack appears in the local store.
    LocalPack,
    /// When a temporary upload appears in the remote folder.
    RemoteTemp,
    /// When a pack has landed on the remote folder.
    RemotePack,
    /// When a pack index has landed on the remote folder.
    RemoteIdx,
    /// When it takes the lock of the remote folder's branch.
    RefLock,
    /// This many milliseconds after its temporary pack reached the size of the data, that is
    /// while it uploads.
    Uploading(u64),
}

fn dir_has(dir: &Path, pred: impl Fn(&str) -> bool) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.file_name().to_str().is_some_and(&pred))
    })
}

/// Waits until `cond` holds while `child` runs; false when the child exited first.
fn wait_until(child: &mut Child, cond: impl Fn() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// Checks that a remote holds nothing half-pushed: a clone succeeds and, when the remote has
/// the branch, it names exactly `run` and the clone is fsck-clean.
fn assert_remote_consistent(remote: &Remote, run: &str, when: &str) {
    let (c, out) = remote.try_clone();
    // A remote whose first push never reached its ref has nothing to clone, and says so; then
    // the branch must indeed be absent there (checked on the folder itself where there is one).
    if !out.status.success() && text(&out.stderr).contains("nothing to clone") {
        if let Some(dir) = &remote.dir {
            assert!(
                !dir.join("refs/heads/main").exists(),
                "{when}: clone found nothing to clone, but the remote has refs/heads/main"
            );
        }
        return;
    }
    assert!(
        out.status.success(),
        "{when}: clone of the remote failed: {}",
        text(&out.stderr)
    );
    let ids = log_ids(&c, &[]);
    assert!(
        ids.is_empty() || ids == vec![run.to_string()],
        "{when}: the remote's main names {ids:?}"
    );
    fsck_clean(&c);
}

/// The local temporary-pack folder of a repository.
fn local_tmp(env: &Env) -> PathBuf {
    env.path(".cairn/tmp")
}

/// A lock a killed push left on a ref is documented to expire after a minute; make it look
/// that old.
fn age_ref_locks(dir: &Path) {
    let heads = dir.join("refs/heads");
    for e in std::fs::read_dir(heads).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".lock") {
            let old = SystemTime::now() - Duration::from_secs(120);
            filetime::set_file_mtime(e.path(), filetime::FileTime::from_system_time(old)).unwrap();
        }
    }
}

fn interrupted_push(kind: Kind) {
    let a = Env::init();
    let Some(probe) = Remote::new(kind, &a, "killprobe") else {
        return;
    };
    drop(probe);
    // About 50 MB of noise for folders, 20 MB for S3.
    let files = if kind == Kind::Folder { 5 } else { 2 };
    let data_len = files * (10 << 20);
    for i in 0..files {
        a.write(&format!("big/part{i}.bin"), noise(100 + i, 10 << 20));
    }
    a.write("big/small.txt", "hello\n");
    let run = a.commit(&["-m", "big", "--artifact", "big"]);
    let expected = snapshot_dir(&a.path("big"));

    let plan: Vec<KillAt> = match kind {
        Kind::Folder => vec![
            KillAt::Delay(30),
            KillAt::LocalPack,
            KillAt::RemoteTemp,
            KillAt::RemotePack,
            KillAt::RemoteIdx,
            KillAt::RefLock,
        ],
        Kind::S3 => vec![KillAt::Delay(150), KillAt::Uploading(20)],
    };
    let rounds = plan.len();
    let mut killed = 0;
    for (round, at) in plan.into_iter().enumerate() {
        let remote = Remote::new(kind, &a, &format!("kill{round}")).expect("remote");
        let name = format!("r{round}");
        remote.add(&a, &name);
        let mut child = a
            .cmd()
            .args(["push", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn push");
        let packs = remote.dir.as_ref().map(|d| d.join("packs"));
        let tmp = local_tmp(&a);
        // Temporary packs a killed push of an earlier round may have left.
        let old_tmp: Vec<String> = std::fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let hit = match at {
            KillAt::Delay(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                true
            }
            KillAt::LocalPack => wait_until(&mut child, || {
                dir_has(&tmp, |n| {
                    n.starts_with("push-") && !old_tmp.iter().any(|o| o == n)
                })
            }),
            KillAt::RemoteTemp => wait_until(&mut child, || {
                dir_has(packs.as_deref().unwrap(), |n| n.starts_with(".tmp-"))
            }),
            KillAt::RemotePack => wait_until(&mut child, || {
                dir_has(packs.as_deref().unwrap(), |n| {
                    !n.starts_with(".tmp-") && n.ends_with(".pack")
                })
            }),
            KillAt::RemoteIdx => wait_until(&mut child, || {
                dir_has(packs.as_deref().unwrap(), |n| {
                    !n.starts_with(".tmp-") && n.ends_with(".idx")
                })
            }),
            KillAt::RefLock => wait_until(&mut child, || {
                let heads = remote.dir().join("refs/heads");
                dir_has(&heads, |n| n.ends_with(".lock"))
            }),
            KillAt::Uploading(ms) => {
                let packed = wait_until(&mut child, || {
                    std::fs::read_dir(&tmp)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            n.starts_with("push-")
                                && !old_tmp.contains(&n)
                                && e.metadata().is_ok_and(|m| m.len() >= data_len)
                        })
                });
                std::thread::sleep(Duration::from_millis(ms));
                packed
            }
        };
        let _ = child.kill();
        let status = child.wait().expect("wait push");
        if hit && !status.success() {
            killed += 1;
        } else {
            eprintln!(
                "round {round} ({at:?}): the push finished before it could be killed ({status})"
            );
        }
        let when = format!("after killing a push ({at:?})");
        assert_remote_consistent(&remote, &run, &when);
        fsck_clean(&a);
        // A push killed while it held the ref lock leaves the lock, documented to expire after
        // a minute: age it. (That the first push after that fails anyway is the subject of
        // `stale_ref_lock_on_folder_remote_is_broken`; here a second attempt is allowed.)
        let left_lock = remote
            .dir
            .as_ref()
            .is_some_and(|d| d.join("refs/heads/main.lock").exists());
        if let Some(d) = &remote.dir {
            age_ref_locks(d);
        }
        // Resuming sends what is missing and moves the branch.
        let out = a.run(&["push", &name]);
        let resumed = if !out.status.success()
            && left_lock
            && text(&out.stderr).contains("changed by someone else")
        {
            eprintln!("{when}: the first push after an expired lock failed; retrying");
            ok_stderr(&a, &["push", &name])
        } else {
            assert!(
                out.status.success(),
                "{when}: resuming failed: {}",
                text(&out.stderr)
            );
            text(&out.stderr)
        };
        assert!(
            resumed.contains("refs/heads/main"),
            "{when}: the resumed push did not report main: {resumed}"
        );
        let b = remote.clone_env();
        assert_eq!(log_ids(&b, &[]), vec![run.clone()], "{when}");
        b.ok(&["checkout", &run, "-o", "out"]);
        assert_eq!(
            snapshot_dir(&b.path("out/big")),
            expected,
            "{when}: bit for bit"
        );
        fsck_clean(&b);
        drop(b);
        if let Some(d) = &remote.dir {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    // A moment can be missed when the push gets there and finishes between two looks, but a
    // run in which most kills missed has not tested interruption at all.
    assert!(
        killed * 2 > rounds,
        "only {killed} of {rounds} pushes were killed before they finished"
    );
}

#[test]
fn interrupted_push_folder() {
    interrupted_push(Kind::Folder);
}

#[test]
fn interrupted_push_s3() {
    interrupted_push(Kind::S3);
}

/// A push killed while it held a folder remote's ref lock leaves the lock behind. While the
/// lock is fresh a push is refused (and nothing moves); once it is older than a minute it is
/// documented to be broken, so a push must then succeed.
#[test]
fn stale_ref_lock_on_folder_remote_is_broken() {
    let a = Env::init();
    let remote = Remote::new(Kind::Folder, &a, "stalelock").expect("folder remote");
    let run1 = a.commit(&["-m", "one", "-p", "x=1"]);
    remote.add(&a, "origin");
    a.ok(&["push"]);
    let run2 = a.commit(&["-m", "two", "-p", "x=2"]);
    let main = remote.dir().join("refs/heads/main");
    let lock = remote.dir().join("refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();

    let err = a.fails(&["push"]);
    assert!(err.contains("refs/heads/main"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&main).unwrap().trim(),
        run1,
        "a refused push moved the remote branch"
    );

    age_ref_locks(remote.dir());
    let out = a.run(&["push"]);
    assert!(
        out.status.success(),
        "push with a lock older than a minute failed: {}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&main).unwrap().trim(), run2);
    assert!(!lock.exists(), "the stale lock is still there");
}

// ---- 4. concurrent pushes -------------------------------------------------------------------

fn concurrent_pushes(kind: Kind, rounds: usize) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "race") else {
        return;
    };
    let base = a.commit(&["-m", "base", "-p", "round=0"]);
    remote.add(&a, "origin");
    a.ok(&["push"]);
    let b = remote.clone_env();
    let c = remote.clone_env();
    let mut winners = vec![base];
    for round in 0..rounds {
        let r = round.to_string();
        b.write("out.txt", format!("b {round}\n"));
        c.write("out.txt", format!("c {round}\n"));
        let rb = b.commit(&[
            "-m",
            "from b",
            "-p",
            &format!("round={r}"),
            "--artifact",
            "out.txt",
        ]);
        let rc = c.commit(&[
            "-m",
            "from c",
            "-p",
            &format!("round={r}"),
            "--artifact",
            "out.txt",
        ]);
        let pb = spawn(&b, &["push"]);
        let pc = spawn(&c, &["push"]);
        let ob = pb.wait_with_output().expect("wait");
        let oc = pc.wait_with_output().expect("wait");
        let (winner, wrun, loser, lrun, lout) = match (ob.status.success(), oc.status.success()) {
            (true, false) => (&b, &rb, &c, &rc, &oc),
            (false, true) => (&c, &rc, &b, &rb, &ob),
            _ => panic!(
                "round {round}: exactly one push must win; b: {:?} {}; c: {:?} {}",
                ob.status.code(),
                text(&ob.stderr),
                oc.status.code(),
                text(&oc.stderr)
            ),
        };
        let err = text(&lout.stderr);
        assert_eq!(lout.status.code(), Some(1), "round {round}: {err}");
        assert!(err.starts_with("error: "), "round {round}: {err}");
        assert!(
            err.contains("fetch first") || err.contains("changed by someone else"),
            "round {round}: the losing push does not say why: {err}"
        );
        assert_eq!(show_id(winner, "origin/main"), *wrun, "round {round}");

        // The remote names the winner's run; the loser learns it by fetching.
        loser.ok(&["fetch"]);
        assert_eq!(show_id(loser, "origin/main"), *wrun, "round {round}");
        let pull = loser.fails(&["pull"]);
        assert!(pull.contains("diverged"), "round {round}: {pull}");
        // Nothing is lost: the loser's run is still there, on its branch.
        assert_eq!(show_id(loser, lrun), *lrun);
        assert_eq!(
            show_id(loser, "main"),
            *lrun,
            "round {round}: pull moved main"
        );
        assert_eq!(
            cat_bytes(loser, &format!("{lrun}:artifacts/out.txt")),
            if std::ptr::eq(loser, &b) {
                format!("b {round}\n")
            } else {
                format!("c {round}\n")
            }
            .into_bytes()
        );
        // ... and it can still be shared on another branch.
        let rescue = format!("rescue-{round}");
        loser.ok(&["branch", &rescue, lrun]);
        loser.ok(&["push", "origin", &rescue]);
        loser.ok(&["branch", "-f", "main", "origin/main"]);
        winners.push(wrun.clone());
    }
    let d = remote.clone_env();
    winners.reverse();
    assert_eq!(log_ids(&d, &["main"]), winners, "the remote's main history");
    for round in 0..rounds {
        let rescued = show_id(&d, &format!("rescue-{round}"));
        assert!(!winners.contains(&rescued), "round {round}");
    }
    fsck_clean(&d);
}

#[test]
fn concurrent_pushes_folder() {
    concurrent_pushes(Kind::Folder, 4);
}

#[test]
fn concurrent_pushes_s3() {
    concurrent_pushes(Kind::S3, 3);
}

// ---- 5. non-fast-forward pushes and tags ----------------------------------------------------

fn non_fast_forward(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "nonff") else {
        return;
    };
    let run1 = a.commit(&["-m", "one", "-p", "x=1"]);
    a.ok(&["tag", "v1"]);
    remote.add(&a, "origin");
    a.ok(&["push", "origin", "main", "v1"]);
    let b = remote.clone_env();
    let run2 = a.commit(&["-m", "two", "-p", "x=2"]);
    a.ok(&["push"]);

    // B builds on the old tip: refused, whether or not it has seen the remote's run.
    let run3 = b.commit(&["-m", "three", "-p", "x=3"]);
    let err = b.fails(&["push"]);
    assert!(
        err.contains("fetch first") && err.contains("--force"),
        "unhelpful refusal: {err}"
    );
    b.ok(&["fetch"]);
    assert_eq!(show_id(&b, "origin/main"), run2);
    let err = b.fails(&["push"]);
    assert!(err.contains("not a fast-forward"), "{err}");
    assert_eq!(
        show_id(&remote.clone_env(), "main"),
        run2,
        "a refused push moved main"
    );

    // --force replaces it.
    b.ok(&["push", "--force"]);
    let fresh = remote.clone_env();
    assert_eq!(log_ids(&fresh, &[]), vec![run3.clone(), run1.clone()]);
    assert_eq!(show_id(&b, "origin/main"), run3);
    // A, whose run is no longer on the remote, cannot pull over it.
    let err = a.fails(&["pull"]);
    assert!(err.contains("diverged"), "{err}");
    assert_eq!(show_id(&a, "main"), run2);

    // Tags never move on the remote without --force.
    b.ok(&["tag", "-f", "v1", &run3]);
    let err = b.fails(&["push", "origin", "v1"]);
    assert!(err.contains("tags do not move"), "{err}");
    assert_eq!(show_id(&remote.clone_env(), "v1"), run1);
    // A fetch does not move a local tag either.
    let fetched = ok_stderr(&b, &["fetch"]);
    assert!(fetched.contains("kept local refs/tags/v1"), "{fetched}");
    assert_eq!(show_id(&b, "v1"), run3);
    b.ok(&["push", "origin", "v1", "--force"]);
    assert_eq!(show_id(&remote.clone_env(), "v1"), run3);
    let fetched = ok_stderr(&a, &["fetch"]);
    assert!(fetched.contains("kept local refs/tags/v1"), "{fetched}");
    assert_eq!(show_id(&a, "v1"), run1, "fetch moved a local tag");
    fsck_clean(&a);
    fsck_clean(&b);
}

#[test]
fn non_fast_forward_folder() {
    non_fast_forward(Kind::Folder);
}

#[test]
fn non_fast_forward_s3() {
    non_fast_forward(Kind::S3);
}

// ---- 6. hostile folder remote ---------------------------------------------------------------

/// One entry of a remote pack index.
#[derive(Debug, Clone)]
struct IdxEntry {
    id: String,
    offset: u64,
    stored_len: u32,
    kind: u8,
}

const IDX_ENTRY: usize = 32 + 8 + 4 + 8 + 1 + 1;
const RECORD_HEADER: u64 = 52;

fn idx_entries(bytes: &[u8]) -> Vec<IdxEntry> {
    assert_eq!(&bytes[..8], b"CAIRNIDX");
    let count = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| {
            let e = &bytes[16 + i * IDX_ENTRY..16 + (i + 1) * IDX_ENTRY];
            IdxEntry {
                id: e[..32].iter().map(|b| format!("{b:02x}")).collect(),
                offset: u64::from_le_bytes(e[32..40].try_into().unwrap()),
                stored_len: u32::from_le_bytes(e[40..44].try_into().unwrap()),
                kind: e[52],
            }
        })
        .collect()
}

/// The one pack of a folder remote and its index.
fn remote_pack(dir: &Path) -> (PathBuf, PathBuf) {
    let mut packs: Vec<PathBuf> = std::fs::read_dir(dir.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    assert_eq!(packs.len(), 1, "expected one pack: {packs:?}");
    let pack = packs.pop().unwrap();
    let idx = pack.with_extension("idx");
    assert!(idx.exists());
    (pack, idx)
}

/// A repository with a run (data files and a chunked model) pushed to a folder remote.
fn hostile_setup(tag: &str) -> (Env, Remote, String) {
    let a = Env::init();
    let remote = Remote::new(Kind::Folder, &a, tag).expect("folder remote");
    for i in 0..20u64 {
        a.write(&format!("data/f{i}.txt"), format!("line {i}\n").repeat(50));
    }
    a.write("model.bin", noise(9, 600 << 10));
    let run = a.commit(&["-m", "victim", "--data", "data", "--artifact", "model.bin"]);
    remote.add(&a, "origin");
    a.ok(&["push"]);
    (a, remote, run)
}

/// Asserts that a failed clone left nothing behind but, at most, an empty and sound repository.
fn assert_clone_stored_nothing(env: &Env, what: &str) {
    if env.path(".cairn").exists() {
        assert_eq!(
            fsck_clean(env),
            0,
            "{what}: the failed clone stored objects"
        );
        assert_eq!(log_ids(env, &[]), Vec::<String>::new(), "{what}");
    }
}

/// A repository with one run of its own and the remote `origin` added.
fn bystander(remote: &Remote) -> (Env, String, u64) {
    let c = Env::init();
    let own = c.commit(&["-m", "own", "-p", "y=1"]);
    remote.add(&c, "origin");
    let objects = fsck_clean(&c);
    (c, own, objects)
}

/// Asserts that a failed fetch changed nothing in a repository made by [`bystander`].
fn assert_fetch_stored_nothing(c: &Env, own: &str, objects: u64, what: &str) {
    assert_eq!(
        fsck_clean(c),
        objects,
        "{what}: the failed fetch stored objects"
    );
    assert_eq!(log_ids(c, &[]), vec![own.to_string()], "{what}");
    let out = c.run(&["show", "origin/main"]);
    assert!(
        !out.status.success(),
        "{what}: the failed fetch created origin/main"
    );
}

#[test]
fn hostile_remote_flipped_record_byte_is_refused() {
    let (_a, remote, _run) = hostile_setup("flip");
    let (pack, idx) = remote_pack(remote.dir());
    let entries = idx_entries(&std::fs::read(&idx).unwrap());
    // A data blob and a chunk of the model: each damaged in turn.
    let mut victims: Vec<IdxEntry> = entries
        .iter()
        .filter(|e| e.kind == 1 && e.stored_len > 64)
        .cloned()
        .collect();
    victims.sort_by_key(|e| std::cmp::Reverse(e.stored_len));
    let victims = [victims[0].clone(), victims[victims.len() - 1].clone()];
    for victim in victims {
        let at = victim.offset + RECORD_HEADER + u64::from(victim.stored_len) / 2;
        flip(&pack, at);
        let (b, out) = remote.try_clone();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "clone of a damaged pack: {err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(
            err.contains(&victim.id),
            "the error does not name the damaged object {}: {err}",
            victim.id
        );
        assert!(
            err.split(|c: char| !c.is_ascii_hexdigit()).any(is_hex64),
            "{err}"
        );
        assert_clone_stored_nothing(&b, "damaged record");

        let (c, own, objects) = bystander(&remote);
        let err = c.fails(&["fetch"]);
        assert!(err.contains(&victim.id), "{err}");
        assert_fetch_stored_nothing(&c, &own, objects, "damaged record");
        flip(&pack, at);
    }
    // Repaired, it clones.
    let b = remote.clone_env();
    fsck_clean(&b);
}

/// Runs `cairn ARGS` in `env` and returns its output and its peak memory (max RSS, KiB).
// The child is reaped by `wait4` (to read its own resource usage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(env: &Env, args: &[&str]) -> (Output, i64) {
    use std::io::Read;
    let mut child = env
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cairn");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    let mut status = 0;
    // SAFETY: plain syscalls on our own child; rusage is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (
        Output {
            status,
            stdout: out,
            stderr: err,
        },
        usage.ru_maxrss,
    )
}

/// Rewrites entry `i` of a pack index with `edit`, and the checksum after it.
fn edit_idx_entry(idx: &Path, i: usize, edit: impl FnOnce(&mut [u8])) {
    let mut bytes = std::fs::read(idx).unwrap();
    let body_len = bytes.len() - 32;
    edit(&mut bytes[16 + i * IDX_ENTRY..16 + (i + 1) * IDX_ENTRY]);
    let sum = blake3::hash(&bytes[..body_len]);
    bytes[body_len..].copy_from_slice(sum.as_bytes());
    std::fs::write(idx, bytes).unwrap();
}

#[test]
fn hostile_remote_zstd_bomb_and_oversized_records_are_refused_in_bounded_memory() {
    let (_a, remote, _run) = hostile_setup("bomb");
    let (pack, idx) = remote_pack(remote.dir());
    let idx_bytes = std::fs::read(&idx).unwrap();
    let entries = idx_entries(&idx_bytes);
    // The largest chunk of the model: raw (noise does not compress), tens of KiB.
    let (vi, victim) = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == 1)
        .max_by_key(|(_, e)| e.stored_len)
        .map(|(i, e)| (i, e.clone()))
        .unwrap();
    // A zstd frame of 1 GiB of zeros, padded with a skippable frame to the record's size.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
    }
    let mut bomb = enc.finish().unwrap();
    let room = victim.stored_len as usize;
    assert!(
        bomb.len() + 8 <= room,
        "bomb {} > record {room}",
        bomb.len()
    );
    let pad = room - bomb.len() - 8;
    bomb.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
    bomb.extend_from_slice(&(pad as u32).to_le_bytes());
    bomb.resize(room, 0);
    let original_pack = std::fs::read(&pack).unwrap();
    let mut hostile = original_pack.clone();
    let at = victim.offset as usize;
    hostile[at + 5] = 1; // codec: zstd
    hostile[at + RECORD_HEADER as usize..at + RECORD_HEADER as usize + room].copy_from_slice(&bomb);
    std::fs::write(&pack, &hostile).unwrap();
    edit_idx_entry(&idx, vi, |e| e[53] = 1);

    let check = |what: &str| {
        let b = Env::new();
        let dir = b.work.to_str().unwrap().to_string();
        let (out, rss_kib) = run_measured(&b, &["clone", &remote.url, &dir]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{what}: {err}"
        );
        assert!(
            err.contains(&victim.id),
            "{what}: the error does not name {}: {err}",
            victim.id
        );
        assert!(rss_kib < 512 * 1024, "{what}: the clone used {rss_kib} KiB");
        assert_clone_stored_nothing(&b, what);
        let (c, own, objects) = bystander(&remote);
        let (out, rss_kib) = run_measured(&c, &["fetch"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        assert!(rss_kib < 512 * 1024, "{what}: the fetch used {rss_kib} KiB");
        assert_fetch_stored_nothing(&c, &own, objects, what);
    };
    check("a zstd frame expanding to 1 GiB");

    // A record that declares a raw size of a terabyte, in its header and the index alike.
    std::fs::write(&pack, &original_pack).unwrap();
    std::fs::write(&idx, &idx_bytes).unwrap();
    let huge: u64 = 1 << 40;
    let mut hostile = original_pack.clone();
    hostile[at + 12..at + 20].copy_from_slice(&huge.to_le_bytes());
    std::fs::write(&pack, &hostile).unwrap();
    edit_idx_entry(&idx, vi, |e| e[44..52].copy_from_slice(&huge.to_le_bytes()));
    check("a record declaring 1 TiB");

    // Repaired, it clones.
    std::fs::write(&pack, &original_pack).unwrap();
    std::fs::write(&idx, &idx_bytes).unwrap();
    let b = remote.clone_env();
    fsck_clean(&b);
}

#[test]
fn hostile_remote_truncated_pack_is_refused() {
    let (a, remote, _run) = hostile_setup("trunc");
    // The first run's pack is damaged; a second run, in its own pack, is sound, so a fetch
    // receives good objects before it meets the damage.
    let (pack, _) = remote_pack(remote.dir());
    a.write("data/f0.txt", "changed\n");
    a.write("model.bin", noise(10, 600 << 10));
    let run2 = a.commit(&["-m", "second", "--data", "data", "--artifact", "model.bin"]);
    a.ok(&["push"]);
    assert_eq!(show_id(&a, "origin/main"), run2);
    let len = std::fs::metadata(&pack).unwrap().len();
    for keep in [len / 2, len - 1] {
        let original = std::fs::read(&pack).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&pack)
            .unwrap()
            .set_len(keep)
            .unwrap();
        let (b, out) = remote.try_clone();
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "clone of a truncated pack: {err}"
        );
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{err}"
        );
        assert!(
            err.contains(".pack") || err.contains("truncated"),
            "unclear: {err}"
        );
        assert_clone_stored_nothing(&b, "truncated pack");
        let (c, own, objects) = bystander(&remote);
        c.fails(&["fetch"]);
        assert_fetch_stored_nothing(&c, &own, objects, "truncated pack");
        std::fs::write(&pack, original).unwrap();
    }
}

#[test]
fn hostile_remote_ref_to_missing_object_is_refused() {
    let (_a, remote, _run) = hostile_setup("dangling");
    let missing = blake3::hash(b"not on the remote").to_hex().to_string();
    std::fs::write(
        remote.dir().join("refs/heads/ghost"),
        format!("{missing}\n"),
    )
    .unwrap();
    let (b, out) = remote.try_clone();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "clone with a dangling ref: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(&missing),
        "the error does not name {missing}: {err}"
    );
    assert_clone_stored_nothing(&b, "dangling ref");
    let (c, own, objects) = bystander(&remote);
    let err = c.fails(&["fetch"]);
    assert!(err.contains(&missing), "{err}");
    assert_fetch_stored_nothing(&c, &own, objects, "dangling ref");

    // A ref that is not an id at all.
    std::fs::write(remote.dir().join("refs/heads/ghost"), "garbage\n").unwrap();
    let (b, out) = remote.try_clone();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "clone with a malformed ref: {err}"
    );
    assert!(err.contains("refs/heads/ghost"), "{err}");
    assert_clone_stored_nothing(&b, "malformed ref");
}

#[test]
fn hostile_remote_corrupted_index_is_refused() {
    let (_a, remote, _run) = hostile_setup("idx");
    let (_, idx) = remote_pack(remote.dir());
    let original = std::fs::read(&idx).unwrap();
    let mid = original.len() as u64 / 2;
    flip(&idx, mid);
    let (b, out) = remote.try_clone();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "clone with a damaged index: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(".idx"),
        "the error does not name the index: {err}"
    );
    assert_clone_stored_nothing(&b, "damaged index");
    let (c, own, objects) = bystander(&remote);
    c.fails(&["fetch"]);
    assert_fetch_stored_nothing(&c, &own, objects, "damaged index");

    // An index with a valid checksum that lies about where objects are: two records swapped.
    let mut lying = original.clone();
    let entries = idx_entries(&original);
    let blobs: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].kind == 1)
        .collect();
    let (i, j) = (blobs[0], blobs[1]);
    let field = |k: usize| 16 + k * IDX_ENTRY + 32..16 + k * IDX_ENTRY + 52;
    let (fi, fj) = (original[field(i)].to_vec(), original[field(j)].to_vec());
    lying[field(i)].copy_from_slice(&fj);
    lying[field(j)].copy_from_slice(&fi);
    let body = lying.len() - 32;
    let sum = *blake3::hash(&lying[..body]).as_bytes();
    lying[body..].copy_from_slice(&sum);
    std::fs::write(&idx, &lying).unwrap();
    let (b, out) = remote.try_clone();
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "clone with a lying index: {err}"
    );
    assert!(
        err.contains(&entries[i].id) || err.contains(&entries[j].id),
        "{err}"
    );
    assert_clone_stored_nothing(&b, "lying index");
    std::fs::write(&idx, &original).unwrap();
    fsck_clean(&remote.clone_env());
}

/// Branch and tag names a remote offers are checked like local ones: a hostile remote cannot
/// create local refs that `cairn branch` would refuse (with spaces, leading dots or dashes,
/// terminal escapes).
#[test]
fn hostile_remote_ref_names_are_not_taken() {
    let (_a, remote, run) = hostile_setup("names");
    let bad = ["bad name", ".hidden", "-rf", "esc\x1b[2Jx"];
    std::fs::create_dir_all(remote.dir().join("refs/tags")).unwrap();
    for name in bad {
        for kind in ["heads", "tags"] {
            let path = remote.dir().join("refs").join(kind).join(name);
            std::fs::write(path, format!("{run}\n")).unwrap();
        }
    }
    let (b, out) = remote.try_clone();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "clone: {}",
        text(&out.stderr)
    );
    if out.status.success() {
        let branches = b.ok(&["branch"]);
        let tags = b.ok(&["tag"]);
        for name in bad {
            assert!(
                !branches.contains(name),
                "a remote's invalid branch name {name:?} became a local branch:\n{branches}"
            );
            assert!(
                !tags.contains(name),
                "a remote's invalid tag name {name:?} became a local tag:\n{tags}"
            );
        }
        assert_eq!(show_id(&b, "main"), run);
    }
}

// ---- 7. fetch --only -----------------------------------------------------------------------

fn fetch_only(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "only") else {
        return;
    };
    for i in 0..4u64 {
        a.write(&format!("data/big/f{i}.bin"), noise(40 + i, 5 << 20));
    }
    let model = noise(50, 1 << 20);
    a.write("model.bin", &model);
    let run = a.commit(&[
        "-m",
        "large",
        "--data",
        "big=data/big",
        "--artifact",
        "model.bin",
    ]);
    remote.add(&a, "origin");
    let (_, full) = push_stats(&a, &[]);
    assert!(full > 20e6, "the run is {full} bytes");

    let c = Env::init();
    remote.add(&c, "origin");
    let got = ok_stderr(
        &c,
        &[
            "fetch",
            "origin",
            &run[..12],
            "--only",
            "artifacts/model.bin",
        ],
    );
    let (objects, bytes) = transfer(&got, "Fetched from ");
    assert!(objects > 0, "{got}");
    assert!(
        bytes >= model.len() as f64 && bytes < 1.3 * model.len() as f64,
        "fetch --only received {bytes} bytes for a {} byte file (run: {full}): {got}",
        model.len()
    );
    assert_eq!(cat_bytes(&c, &format!("{run}:artifacts/model.bin")), model);
    fsck_clean(&c);
    // What was not fetched is reported as missing, not read as something else.
    let out = c.run(&["cat", &format!("{run}:data/big/f0.bin")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    // A partial run is not pushed anywhere.
    let other = Remote::new(Kind::Folder, &c, "partial-copy").expect("folder remote");
    other.add(&c, "copy");
    c.ok(&["branch", "partial", &run]);
    let err = c.fails(&["push", "copy", "partial"]);
    assert!(err.contains("partial"), "{err}");

    // A full fetch completes it.
    c.ok(&["fetch"]);
    assert_eq!(
        cat_bytes(&c, &format!("{run}:data/big/f3.bin")),
        noise(43, 5 << 20)
    );
    c.ok(&["push", "copy", "partial"]);
    fsck_clean(&c);
}

#[test]
fn fetch_only_folder() {
    fetch_only(Kind::Folder);
}

#[test]
fn fetch_only_s3() {
    fetch_only(Kind::S3);
}

// ---- 8. managing remotes --------------------------------------------------------------------

fn manage_remotes(kind: Kind) {
    let a = Env::init();
    let Some(remote) = Remote::new(kind, &a, "manage") else {
        return;
    };
    assert_eq!(a.ok(&["remote"]), "");
    remote.add(&a, "origin");
    assert_eq!(a.ok(&["remote"]), "origin\n");
    let listing = a.ok(&["remote", "-v"]);
    let line = listing
        .lines()
        .find(|l| l.starts_with("origin"))
        .unwrap_or_else(|| panic!("remote -v: {listing}"));
    assert!(line.contains(&remote.url), "remote -v: {listing}");
    if let Some(e) = &remote.endpoint {
        assert!(line.contains(e), "remote -v omits the endpoint: {listing}");
    }

    // The same name twice, an unknown scheme, a bad name.
    let err = a.fails(&remote.with_endpoint(&["remote", "add", "origin", &remote.url]));
    assert!(err.contains("origin") && err.contains("exists"), "{err}");
    let err = a.fails(&["remote", "add", "web", "http://x"]);
    assert!(err.contains("http"), "{err}");
    assert!(err.contains("scheme"), "{err}");
    a.fails(&["remote", "add", "a/b", &remote.url]);
    assert_eq!(a.ok(&["remote"]), "origin\n");

    let run = a.commit(&["-m", "one", "-p", "x=1"]);
    a.ok(&["push"]);
    assert_eq!(show_id(&a, "origin/main"), run);
    let removed = ok_stderr(&a, &["remote", "remove", "origin"]);
    assert!(removed.contains("origin"), "{removed}");
    assert_eq!(a.ok(&["remote"]), "");
    let out = a.run(&["show", "origin/main"]);
    assert!(
        !out.status.success(),
        "remote-tracking refs survived the removal"
    );
    let err = a.fails(&["push", "origin"]);
    assert!(err.contains("origin"), "{err}");
    let err = a.fails(&["fetch", "origin"]);
    assert!(err.contains("origin"), "{err}");
    let err = a.fails(&["remote", "remove", "origin"]);
    assert!(err.contains("origin"), "{err}");

    // Added again, the remote still has the run.
    remote.add(&a, "origin");
    a.ok(&["fetch"]);
    assert_eq!(show_id(&a, "origin/main"), run);
    if kind == Kind::Folder {
        // file:// URLs and relative folders name the same remote.
        let file_url = format!("file://{}", remote.url);
        a.ok(&["remote", "add", "viafile", &file_url]);
        a.ok(&["fetch", "viafile"]);
        assert_eq!(show_id(&a, "viafile/main"), run);
        let rel = remote.dir().strip_prefix(a.tmp.path()).unwrap();
        let rel = format!("../{}", rel.display());
        a.ok(&["remote", "add", "rel", &rel]);
        let listing = a.ok(&["remote", "-v"]);
        let line = listing.lines().find(|l| l.starts_with("rel")).unwrap();
        assert!(
            line.contains("\t/"),
            "relative folder not made absolute: {line}"
        );
        a.ok(&["fetch", "rel"]);
        assert_eq!(show_id(&a, "rel/main"), run);
    }
    fsck_clean(&a);
}

#[test]
fn manage_remotes_folder() {
    manage_remotes(Kind::Folder);
}

#[test]
fn manage_remotes_s3() {
    manage_remotes(Kind::S3);
}

/// Failing S3 commands say what failed without ever printing the secret key.
#[test]
fn s3_errors_never_show_the_secret() {
    let Some(s3) = s3_server() else {
        return;
    };
    let a = Env::init();
    a.commit(&["-m", "one", "-p", "x=1"]);
    let url = s3_url("secret");
    let bad_bucket = "s3://ab/prefix";
    let mut failures: Vec<(String, Output)> = Vec::new();
    let args = [
        "remote",
        "add",
        "bad",
        bad_bucket,
        "--endpoint",
        &s3.endpoint,
    ];
    failures.push((format!("{args:?}"), a.run(&args)));
    let args = ["clone", bad_bucket, "cloned", "--endpoint", &s3.endpoint];
    failures.push((format!("{args:?}"), a.run(&args)));
    let args = [
        "remote",
        "add",
        "nocheck",
        bad_bucket,
        "--endpoint",
        &s3.endpoint,
        "--no-check",
    ];
    a.ok(&args);
    failures.push(("push nocheck".into(), a.run(&["push", "nocheck"])));
    // A wrong key id: the server refuses the signed request; the secret is still in the
    // environment.
    a.ok(&["remote", "add", "origin", &url, "--endpoint", &s3.endpoint]);
    let out = a
        .cmd()
        .args(["push", "origin"])
        .env("AWS_ACCESS_KEY_ID", "wrongkeyid")
        .output()
        .unwrap();
    failures.push(("push with a wrong key id".into(), out));
    for (what, out) in failures {
        let err = text(&out.stderr);
        let all = format!("{}{err}", text(&out.stdout));
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.starts_with("error: "), "{what}: {err}");
        assert!(!all.contains(S3_SECRET), "{what} printed the secret: {all}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    assert!(
        !a.path("cloned/.cairn").exists(),
        "a failed clone left a repository"
    );
    // The remotes file never holds a credential.
    let config = std::fs::read_to_string(a.path(".cairn/remotes.toml")).unwrap();
    assert!(
        !config.contains(S3_SECRET) && !config.contains(S3_KEY),
        "{config}"
    );
}

/// An S3 endpoint that is not a URL is refused with a clear error, not a crash.
#[test]
fn s3_malformed_endpoint_is_a_clear_error() {
    let a = Env::init();
    let url = s3_url("endpoint");
    let err = a.fails(&["remote", "add", "origin", &url, "--endpoint", "not a url"]);
    assert!(
        err.contains("not a url") || err.contains("endpoint"),
        "{err}"
    );
    a.ok(&[
        "remote",
        "add",
        "later",
        &url,
        "--endpoint",
        "not a url",
        "--no-check",
    ]);
    a.commit(&["-m", "one", "-p", "x=1"]);
    let err = a.fails(&["push", "later"]);
    assert!(
        err.contains("endpoint") || err.contains("not a url"),
        "{err}"
    );
    assert!(!err.contains(S3_SECRET), "{err}");
}

// ---- interrupted fetch -----------------------------------------------------------------------

/// A fetch killed at any moment leaves the receiving repository sound, with no remote-tracking
/// ref naming anything incomplete; fetching again completes it, and the run restores bit for bit.
#[test]
fn interrupted_fetch_folder() {
    let a = Env::init();
    make_inputs(&a, 7);
    a.write("big.bin", noise(99, 40 << 20));
    let run = a.commit(&["-m", "big", "--artifact", "big.bin", "--data", "data"]);
    let remote = Remote::new(Kind::Folder, &a, "fetch-kill").expect("folder remote");
    remote.add(&a, "origin");
    a.ok(&["push", "-q", "origin"]);
    let want = snapshot_dir(&a.work);
    for (i, delay_ms) in [5u64, 40, 120, 300].into_iter().enumerate() {
        let b = Env::init();
        remote.add(&b, "origin");
        let mut child = spawn(&b, &["fetch", "-q", "origin"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        fsck_clean(&b);
        // The tracking ref exists only if everything it reaches arrived.
        let tracked = b.run(&["show", "--json", "origin/main"]);
        if tracked.status.success() {
            assert!(
                text(&tracked.stdout).contains(&run),
                "round {i}: origin/main names another run"
            );
            let out = b.tmp.path().join(format!("check-{i}"));
            b.ok(&[
                "checkout",
                "origin/main",
                "-o",
                out.to_str().expect("utf-8 path"),
            ]);
        }
        // Fetching again finishes the job.
        b.ok(&["fetch", "-q", "origin"]);
        fsck_clean(&b);
        let out = b.tmp.path().join(format!("restored-{i}"));
        b.ok(&[
            "checkout",
            "origin/main",
            "--data",
            "--artifacts",
            "-o",
            out.to_str().expect("utf-8 path"),
        ]);
        let got = snapshot_dir(&out);
        for path in [
            PathBuf::from("big.bin"),
            PathBuf::from("data/train/part1/row1.csv"),
        ] {
            assert_eq!(
                got.get(&path),
                want.get(&path),
                "round {i}: {} differs",
                path.display()
            );
        }
    }
}

/// A killed push leaves its half-written `.tmp-*` file on a folder remote; the next push removes
/// those nothing has written to for an hour, and leaves a recent one (an upload in progress)
/// and every other file alone.
#[test]
fn stale_temporary_files_on_a_folder_remote_are_removed_by_a_push() {
    let a = Env::init();
    make_inputs(&a, 3);
    commit_inputs(&a, "first");
    let remote = Remote::folder(&a, "sweep");
    let dir = remote.dir.clone().expect("folder remote");
    a.ok(&["remote", "add", "origin", &remote.url]);
    a.ok(&["push", "-q", "origin"]);
    let packs = dir.join("packs");
    let before: Vec<String> = std::fs::read_dir(&packs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!before.is_empty());
    let old = packs.join(".tmp-4242-0123456789abcdef.pack");
    let fresh = packs.join(".tmp-4343-fedcba9876543210.pack");
    std::fs::write(&old, noise(1, 1 << 16)).unwrap();
    std::fs::write(&fresh, noise(2, 1 << 16)).unwrap();
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    filetime::set_file_mtime(&old, filetime::FileTime::from_system_time(two_hours_ago)).unwrap();
    a.write("model.bin", noise(4, 3 << 20));
    commit_inputs(&a, "second");
    a.ok(&["push", "-q", "origin"]);
    assert!(!old.exists(), "a stale temporary file is still there");
    assert!(fresh.exists(), "a recent temporary file was removed");
    for name in before {
        assert!(packs.join(&name).exists(), "{name} was removed");
    }
    // The remote is sound: a clone gets both runs.
    let b = a.tmp.path().join("clone");
    a.ok(&["clone", &remote.url, b.to_str().expect("utf-8 temp path")]);
    let log = a.cmd_in(&b).args(["log", "--json"]).output().unwrap();
    assert_eq!(
        parse_json(&text(&log.stdout)).as_array().map(Vec::len),
        Some(2)
    );
}

/// A push copies its objects into packs and sends them without holding the index, so other
/// commands are not kept waiting by a large push: with the push paused in the middle of its
/// packing, `cairn log` gets the index at once (allowed no time at all to wait for it).
#[test]
fn push_packs_and_sends_without_holding_the_index() {
    let a = Env::init();
    make_inputs(&a, 5);
    let run = commit_inputs(&a, "first");
    let remote = Remote::folder(&a, "hold");
    a.ok(&["remote", "add", "origin", &remote.url]);
    let mut child = a
        .cmd()
        .env("FAILPOINTS", "push.write=1*sleep(4000)")
        .args(["push", "-q", "origin"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The push is packing once its temporary pack exists (it pauses at its first write).
    let packing = wait_for_file(&a.path(".cairn/tmp"), |n| n.starts_with("push-"));
    assert!(packing, "the push never started packing");
    let log = a
        .cmd()
        .env("CAIRN_LOCK_TIMEOUT", "0")
        .args(["log", "-n", "1"])
        .output()
        .unwrap();
    let still_pushing = child.try_wait().unwrap().is_none();
    assert!(
        log.status.success(),
        "log could not get the index while the push was packing: {}",
        text(&log.stderr)
    );
    assert!(still_pushing, "the push ended before log ran");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "push: {}", text(&out.stderr));
    let b = a.tmp.path().join("clone");
    a.ok(&["clone", &remote.url, b.to_str().expect("utf-8 temp path")]);
    let shown = a
        .cmd_in(&b)
        .args(["show", "--json", "main"])
        .output()
        .unwrap();
    assert_eq!(parse_json(&text(&shown.stdout))["id"], run.as_str());
}

// ---- a server that ignores conditional writes ------------------------------------------------

/// An S3 server that ignores `If-None-Match` and `If-Match` would let two pushes both move a
/// branch. Adding it as a remote is refused with one line and a hint, nothing is recorded and
/// no ref is written there; `--no-check` adds it anyway (and then pushes work, which shows the
/// refusal was about the server, not a broken connection).
#[test]
fn s3_server_ignoring_conditional_writes_is_refused() {
    let Some(server) = lax_s3_server() else {
        return;
    };
    let env = Env::init();
    make_inputs(&env, 3);
    let run = commit_inputs(&env, "first");
    let url = format!("s3://{S3_BUCKET}/lax");
    let ep = server.endpoint.as_str();
    let err = env.fails(&["remote", "add", "origin", &url, "--endpoint", ep]);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and a hint: {err}");
    assert!(
        lines[0].contains("ignores conditional writes (If-None-Match)"),
        "{err}"
    );
    assert!(lines[1].starts_with("hint: use --no-check"), "{err}");
    // Nothing recorded, nothing pushed.
    assert_eq!(env.ok(&["remote"]), "");
    let err = env.fails(&["push", "origin"]);
    assert!(err.contains("no remote named 'origin'"), "{err}");
    let c = Env::new();
    let dir = c.work.join("clone");
    let out = c.run(&["clone", &url, dir.to_str().unwrap(), "--endpoint", ep]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing to clone"),
        "{}",
        text(&out.stderr)
    );
    // With --no-check it is added, and a push and a clone work.
    env.ok(&["remote", "add", "lax", &url, "--endpoint", ep, "--no-check"]);
    env.ok(&["push", "-q", "lax"]);
    let out = c.run(&["clone", &url, dir.to_str().unwrap(), "--endpoint", ep]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = c.cmd_in(&dir).args(["log", "--json"]).output().unwrap();
    let ids: Vec<String> = match parse_json(&text(&log.stdout)) {
        Value::Array(v) => v
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect(),
        other => panic!("log --json: {other}"),
    };
    assert_eq!(ids, vec![run]);
}

/// A cached copy of a remote pack index that was cut short (a fetch killed while writing it, or
/// a full disk) is not trusted: the next fetch reads the index from the remote again.
#[test]
fn damaged_cached_pack_index_is_read_again_from_the_remote() {
    let a = Env::init();
    make_inputs(&a, 11);
    let first = commit_inputs(&a, "first");
    let remote = Remote::new(Kind::Folder, &a, "idx-cache").expect("folder remote");
    remote.add(&a, "origin");
    a.ok(&["push", "-q", "origin"]);
    let b = remote.clone_env();
    let cache = b.path(".cairn/remotes/origin/idx");
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("no pack index cache at {}: {e}", cache.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!cached.is_empty(), "no cached pack index");
    for (i, p) in cached.iter().enumerate() {
        let bytes = std::fs::read(p).unwrap();
        // Cut one short, empty another.
        let keep = if i % 2 == 0 { bytes.len() / 2 } else { 0 };
        std::fs::write(p, &bytes[..keep]).unwrap();
    }
    a.write("model.bin", noise(12, 1 << 20));
    let second = commit_inputs(&a, "second");
    a.ok(&["push", "-q", "origin"]);
    b.ok(&["pull", "-q"]);
    assert_eq!(log_ids(&b, &[]), vec![second, first]);
    fsck_clean(&b);
    // The cache holds whole copies again.
    for p in &cached {
        let bytes = std::fs::read(p).unwrap();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            blake3::hash(&bytes).to_hex().starts_with(&stem),
            "{} is still damaged",
            p.display()
        );
    }
}

#[test]
fn a_folder_remote_whose_parent_is_missing_needs_create() {
    let a = Env::init();
    a.commit(&["-m", "one", "-p", "x=1"]);
    let missing = a.tmp.path().join("no-such-drive/dir/x");
    let url = missing.to_str().unwrap();
    let err = a.fails(&["remote", "add", "bad", url]);
    assert!(
        err.contains("does not exist") && err.contains("--create"),
        "{err}"
    );
    assert_eq!(a.ok(&["remote"]), "", "a refused remote was recorded");
    assert!(!a.tmp.path().join("no-such-drive").exists());

    // With --create the folders are made at once, and the push lands there.
    a.ok(&["remote", "add", "bad", url, "--create"]);
    assert!(missing.is_dir());
    a.ok(&["push", "-q", "bad"]);
    assert!(missing.join("refs/heads/main").is_file());

    // A folder remote whose parent went away (an unmounted drive) is not re-created by a push.
    std::fs::remove_dir_all(a.tmp.path().join("no-such-drive")).unwrap();
    let err = a.fails(&["push", "bad"]);
    assert!(err.contains("--create"), "{err}");
    assert!(!a.tmp.path().join("no-such-drive").exists());
    // A clone of it says there is no such folder (clone has no --create).
    let dest = a.tmp.path().join("cloned");
    let err = a.fails(&["clone", url, dest.to_str().unwrap()]);
    assert!(
        err.contains("no such folder") && !err.contains("--create"),
        "{err}"
    );

    // A folder whose parent exists is still created by the first push, as before.
    let fresh = a.tmp.path().join("fresh-remote");
    a.ok(&["remote", "add", "fresh", fresh.to_str().unwrap()]);
    a.ok(&["push", "-q", "fresh"]);
    assert!(fresh.join("refs/heads/main").is_file());
}

#[test]
fn pushing_to_an_unknown_remote_hints_how_to_add_one() {
    let a = Env::init();
    a.commit(&["-m", "one", "-p", "x=1"]);
    for cmd in ["push", "fetch", "pull"] {
        let err = a.fails(&[cmd, "upstream"]);
        assert!(err.contains("no remote named 'upstream'"), "{err}");
        assert!(
            err.contains("hint: `cairn remote -v` lists the remotes; `cairn remote add upstream URL` adds one"),
            "{cmd}: {err}"
        );
    }
}

/// A loopback port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn s3_without_credentials_says_so_at_once() {
    let a = Env::init();
    // No credentials in the environment, and an instance metadata service that is not there
    // (a closed loopback port stands for the link-local address off EC2).
    let metadata = format!("http://127.0.0.1:{}", closed_port());
    let run = |args: &[&str]| {
        a.cmd()
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_METADATA_ENDPOINT", &metadata)
            .env("AWS_PROFILE", "team")
            .args(args)
            .output()
            .expect("spawn cairn")
    };
    let out = run(&["remote", "add", "origin", "s3://bucket/team"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("no AWS credentials found (AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    assert!(
        err.contains("AWS_PROFILE is set, but profiles are not read"),
        "{err}"
    );
    assert!(!err.contains("169.254") && !err.contains("403"), "{err}");
    assert_eq!(a.ok(&["remote"]), "", "a refused remote was recorded");
    // Added without the check, a push says the same.
    assert!(
        run(&["remote", "add", "origin", "s3://bucket/team", "--no-check"])
            .status
            .success()
    );
    a.commit(&["-m", "one", "-p", "x=1"]);
    let out = run(&["push", "origin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no AWS credentials found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn s3_endpoint_that_refuses_connections_says_so_at_once() {
    let a = Env::init();
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let err = a.fails(&[
        "remote",
        "add",
        "origin",
        "s3://bucket/team",
        "--endpoint",
        &endpoint,
    ]);
    assert!(
        err.contains(&endpoint) && err.contains("connection refused"),
        "{err}"
    );
    assert!(err.contains("is the server running?"), "{err}");
    a.ok(&[
        "remote",
        "add",
        "origin",
        "s3://bucket/team",
        "--endpoint",
        &endpoint,
        "--no-check",
    ]);
    a.commit(&["-m", "one", "-p", "x=1"]);
    for cmd in ["push", "fetch"] {
        let err = a.fails(&[cmd, "origin"]);
        assert!(err.contains("connection refused"), "{cmd}: {err}");
    }
}
