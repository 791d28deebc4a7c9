//! Faults of the file system: a full disk and a read-only one, made real with a small tmpfs
//! mounted for the test (the tests run as root, in CI too; without the right to mount they
//! fail and say why rather than pass without testing anything).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

// ---- a small file system of our own ---------------------------------------------------------------

/// A tmpfs mounted on a folder for the life of the value (unmounted on drop, also when the test
/// panics).
struct Tmpfs {
    dir: PathBuf,
}

fn mount(args: &[&str]) -> std::process::Output {
    std::process::Command::new("mount")
        .args(args)
        .output()
        .expect("run mount")
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`"8m"`) on `dir`, which must exist and be empty.
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let d = dir.to_str().expect("utf-8 temp path");
        let out = mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", d]);
        assert!(
            out.status.success(),
            "these tests mount a small tmpfs to get a real full or read-only disk, which needs \
             root (uid here: {uid}) and the right to mount: mount -t tmpfs {d} failed: {}",
            text(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// `mount -o remount,OPTS`.
    fn remount(&self, opts: &str) {
        let d = self.dir.to_str().unwrap();
        let out = mount(&["-o", &format!("remount,{opts}"), d]);
        assert!(
            out.status.success(),
            "mount -o remount,{opts} {d}: {}",
            text(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .output();
    }
}

/// Fills the file system of `dir` with a file `dir/filler` until `free` bytes are left (to
/// within a page).
fn fill_leaving(dir: &Path, free: u64) -> PathBuf {
    let filler = dir.join("filler");
    let _ = std::fs::remove_file(&filler);
    let avail = available(dir);
    let len = avail.saturating_sub(free);
    std::fs::write(&filler, vec![0x5a; len as usize]).expect("write the filler");
    filler
}

/// Bytes available on the file system of `dir`.
fn available(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0, "statvfs");
        s.f_bavail * s.f_frsize
    }
}

// ---- checks -----------------------------------------------------------------------------------

/// Every file below `.cairn` and its length — packs, temporaries, configuration — except
/// the index database's own files (sled writes and grows those as it likes) and the cache of
/// remote pack indexes, each of which must be whole (its name is the start of its hash).
fn store_files(work: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, u64>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if rel == Path::new("index") {
                continue;
            }
            let cached_idx = rel.starts_with("remotes")
                && rel.parent().is_some_and(|d| d.ends_with("idx"))
                && rel.extension().is_some_and(|x| x == "idx");
            if cached_idx {
                let hash = blake3::hash(&std::fs::read(&p).unwrap()).to_hex();
                let stem = rel.file_stem().unwrap().to_string_lossy().into_owned();
                assert!(
                    hash.starts_with(&stem),
                    "cached pack index {} is not whole",
                    rel.display()
                );
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, e.metadata().unwrap().len());
            }
        }
    }
    let mut out = BTreeMap::new();
    let root = work.join(".cairn");
    walk(&root, &root, &mut out);
    out
}

/// Paths below `dir` whose names mark a temporary file of a restore.
fn restore_temps(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains(".cairn-tmp-") {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(restore_temps(&p));
        }
    }
    out
}

/// Asserts a failed command said so on one line (a hint line may follow) without panicking,
/// and that the line names `problem`.
fn assert_one_line_error(stderr: &str, problem: &str, what: &str) {
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        !lines.is_empty() && lines[0].starts_with("error: "),
        "{what}: no error line: {stderr}"
    );
    assert!(
        lines.iter().skip(1).all(|l| l.starts_with("hint: ")),
        "{what}: the error takes more than one line: {stderr}"
    );
    assert!(
        lines[0].contains(problem),
        "{what}: the error does not say {problem:?}: {stderr}"
    );
}

/// `cairn fsck` passes.
fn assert_fsck(env: &Env, dir: &Path, when: &str) {
    fsck_report_in(env, dir, when);
}

/// The refs of a repository as `cairn branch` and `cairn log` show them.
fn refs_state(env: &Env) -> (String, String) {
    (env.ok(&["branch"]), env.ok(&["log", "--json"]))
}

/// In the message of a command that ran out of space (the system's wording, or cairn's when it
/// refuses beforehand).
const NO_SPACE: &str = "space left on device";
const READ_ONLY: &str = "Read-only file system";

// ---- full disk --------------------------------------------------------------------------------

/// Free space cairn wants before it opens or writes the index (documented in the maintenance
/// guide): below it, sled could damage its files when a write fails.
const INDEX_MIN_FREE: u64 = 4 << 20;

/// A commit that does not fit fails with one line naming the problem, moves no ref, leaves no
/// file behind in the store, keeps the index sound, and succeeds once there is room. The free
/// space is swept from nothing to a little more than the commit needs, for a commit of one
/// large file (mostly pack) and one of 3000 small files (mostly index entries), so the disk
/// fills up at every stage: opening the index, writing the pack, syncing it, publishing.
#[test]
fn full_disk_commit_fails_cleanly_and_the_retry_succeeds() {
    let env = Env::new();
    let disk = Tmpfs::mount(&env.work, "96m");
    env.ok(&["init"]);
    env.write("small/a.txt", "first\n");
    let mut printed = vec![env.commit(&["--data", "small", "-m", "first"])];
    // Larger than INDEX_MIN_FREE, so that the pack itself can run out of space.
    const MODEL: u64 = 6 << 20;
    let (mut failed, mut fitted) = (0, 0);
    let mut sweep = Vec::new();
    for big in [true, false] {
        for free in [
            0u64,
            64 << 10,
            1 << 20,
            INDEX_MIN_FREE - (4 << 10),
            INDEX_MIN_FREE,
            INDEX_MIN_FREE + (64 << 10),
            INDEX_MIN_FREE + (512 << 10),
            INDEX_MIN_FREE + MODEL - (64 << 10),
            INDEX_MIN_FREE + MODEL + (64 << 10),
        ] {
            sweep.push((big, free));
        }
    }
    for (round, (big, free)) in sweep.into_iter().enumerate() {
        // New content every round, so every commit writes: 6 MB that do not compress, or
        // 3000 small files.
        let _ = std::fs::remove_dir_all(env.path("data"));
        if big {
            env.write("data/model.bin", noise(41 + round as u64, MODEL as usize));
        } else {
            for i in 0..3000 {
                env.write(&format!("data/rows/{i}.csv"), format!("{round},{i}\n"));
            }
        }
        let refs = refs_state(&env);
        let files = store_files(&env.work);
        let filler = fill_leaving(&env.work, free);
        let msg = format!("round {round}");
        let out = env.run(&["commit", "-q", "--data", "data", "-m", &msg]);
        let what = if big { "a large file" } else { "small files" };
        let when = format!("commit of {what} with {free} bytes free");
        std::fs::remove_file(&filler).unwrap();
        if out.status.success() {
            // It fitted: a good run.
            fitted += 1;
            printed.push(text(&out.stdout).trim().to_string());
            assert_fsck(&env, &env.work, &when);
            continue;
        }
        failed += 1;
        eprintln!("{when}: {}", text(&out.stderr).trim_end());
        assert_eq!(out.status.code(), Some(1), "{when}");
        assert_one_line_error(&text(&out.stderr), NO_SPACE, &when);
        assert!(
            out.stdout.is_empty(),
            "{when}: printed {}",
            text(&out.stdout)
        );
        // Nothing moved, the index is sound, and nothing is left behind but content the commit
        // had indexed before it failed (a large commit indexes in steps, to bound its memory):
        // unreachable, and removed by gc.
        assert_eq!(refs_state(&env), refs, "{when}: refs changed");
        assert_fsck(&env, &env.work, &when);
        if store_files(&env.work) != files {
            env.ok(&["gc", "-q", "--prune-now"]);
        }
        assert_eq!(
            store_files(&env.work),
            files,
            "{when}: files left in .cairn (after gc)"
        );
        assert_eq!(refs_state(&env), refs, "{when}: refs changed");
        assert_fsck(&env, &env.work, &when);
        // With room, the same command works and the run restores bit for bit.
        let want = snapshot_dir(&env.path("data"));
        let id = env.commit(&["--data", "data", "-m", &msg]);
        printed.push(id.clone());
        env.ok(&["checkout", &id, "-q", "--data", "-o", "out"]);
        assert_eq!(snapshot_dir(&env.path("out/data")), want, "{when}");
        std::fs::remove_dir_all(env.path("out")).unwrap();
    }
    eprintln!("full disk commit: {failed} failed for lack of space, {fitted} fitted");
    assert!(
        failed >= 8,
        "only {failed} commit(s) failed for lack of space"
    );
    assert!(fitted >= 1, "no commit fitted");
    for id in &printed {
        env.ok(&["show", id]);
    }
    assert_fsck(&env, &env.work, "at the end");
    drop(disk);
}

/// On a full disk, reading commands refuse to open the index (opening it writes) rather than
/// risk damaging it; once there is room they work and nothing was lost.
#[test]
fn full_disk_reading_commands_refuse_and_the_index_stays_sound() {
    let env = Env::new();
    let disk = Tmpfs::mount(&env.work, "16m");
    env.ok(&["init"]);
    env.write("data/a.txt", "hello\n");
    let id = env.commit(&["--data", "data"]);
    let log = env.ok(&["log"]);
    let filler = fill_leaving(&env.work, 0);
    for args in [vec!["log"], vec!["show", &id], vec!["fsck"]] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?} on a full disk");
        assert_one_line_error(&text(&out.stderr), NO_SPACE, &format!("{args:?}"));
    }
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(env.ok(&["log"]), log);
    assert_fsck(&env, &env.work, "after freeing space");
    drop(disk);
}

/// A checkout into a folder on a full disk fails with one line naming the problem and leaves no
/// temporary file there; once the disk has room, running it again (without --force: what it
/// already wrote is identical) restores every file bit for bit.
#[test]
fn full_disk_checkout_fails_cleanly_and_the_retry_succeeds() {
    let env = Env::init();
    env.write("data/a.bin", noise(51, 2 << 20));
    env.write("data/b.bin", noise(52, 2 << 20));
    env.write("data/c.txt", "small\n");
    let id = env.commit(&["--data", "data"]);
    let want = snapshot_dir(&env.path("data"));
    let target = env.tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let disk = Tmpfs::mount(&target, "3m");
    let t = target.to_str().unwrap();
    let before = env.ok(&["fsck"]);
    let out = env.run(&["checkout", &id, "--data", "-q", "-o", t]);
    assert_eq!(out.status.code(), Some(1), "a 4 MB checkout fitted in 3 MB");
    let err = text(&out.stderr);
    assert_one_line_error(&err, NO_SPACE, "checkout to a full disk");
    assert!(
        err.contains(&format!("{t}/data/")),
        "the error does not name the file: {err}"
    );
    assert_eq!(
        restore_temps(&target),
        Vec::<PathBuf>::new(),
        "temporary files left"
    );
    assert_eq!(env.ok(&["fsck"]), before);
    disk.remount("size=16m");
    env.ok(&["checkout", &id, "--data", "-q", "-o", t]);
    assert_eq!(snapshot_dir(&target.join("data")), want);
    assert_eq!(restore_temps(&target), Vec::<PathBuf>::new());
}

/// A fetch into a repository on a full disk fails with one line naming the problem, moves no
/// ref and leaves no file in the store; with room, the same fetch completes.
#[test]
fn full_disk_fetch_fails_cleanly_and_the_retry_succeeds() {
    let a = Env::init();
    a.write("model/w.bin", noise(61, 6 << 20));
    let run = a.commit(&["--artifact", "model"]);
    let remote = a.tmp.path().join("remote");
    let r = remote.to_str().unwrap();
    a.ok(&["remote", "add", "origin", r]);
    a.ok(&["push", "-q", "origin"]);

    let b = Env::new();
    let disk = Tmpfs::mount(&b.work, "24m");
    b.ok(&["init"]);
    b.ok(&["remote", "add", "origin", r]);
    // Room to open the index, not for the 6 MB pack besides: the pack does not fit, or it
    // fits but leaves too little to publish it.
    for free in [INDEX_MIN_FREE + (64 << 10), INDEX_MIN_FREE + (5 << 20)] {
        let when = format!("fetch with {free} bytes free");
        let files = store_files(&b.work);
        let filler = fill_leaving(&b.work, free);
        let out = b.run(&["fetch", "-q", "origin"]);
        std::fs::remove_file(&filler).unwrap();
        assert_eq!(out.status.code(), Some(1), "{when}: it fitted");
        eprintln!("{when}: {}", text(&out.stderr).trim_end());
        assert_one_line_error(&text(&out.stderr), NO_SPACE, &when);
        assert_eq!(store_files(&b.work), files, "{when}: files left in .cairn");
        assert_fsck(&b, &b.work, &when);
        assert!(
            !b.run(&["show", "origin/main"]).status.success(),
            "{when}: origin/main exists after a failed fetch"
        );
    }
    b.ok(&["fetch", "-q", "origin"]);
    assert_fsck(&b, &b.work, "after the fetch");
    b.ok(&["checkout", &run, "-q", "--artifacts", "-o", "out"]);
    assert_eq!(
        snapshot_dir(&b.path("out/model")),
        snapshot_dir(&a.path("model"))
    );
    drop(disk);
}

// ---- read-only --------------------------------------------------------------------------------

/// On a read-only file system a commit fails with one line that says so; reading commands work
/// or fail the same way (see docs/guide/maintenance.md); nothing panics.
#[test]
fn read_only_repository_fails_cleanly() {
    let env = Env::new();
    let disk = Tmpfs::mount(&env.work, "16m");
    env.ok(&["init"]);
    env.write("data/a.txt", "hello\n");
    let id = env.commit(&["--data", "data", "-m", "before"]);
    let log = env.ok(&["log"]);
    disk.remount("ro");
    let err = env.fails(&["commit", "-q", "--data", "data", "-m", "read-only"]);
    assert_one_line_error(&err, READ_ONLY, "commit to a read-only repository");
    assert!(err.contains("hint: remount"), "no hint: {err}");
    for args in [
        vec!["log"],
        vec!["show", &id],
        vec!["cat", &format!("{id}:data/data/a.txt")],
        vec!["fsck"],
    ] {
        let out = env.run(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} on a read-only repository"
        );
        assert_one_line_error(&text(&out.stderr), READ_ONLY, &format!("{args:?}"));
    }
    disk.remount("rw");
    assert_eq!(env.ok(&["log"]), log, "the log changed");
    assert_fsck(&env, &env.work, "after remounting read-write");
    env.commit(&["--data", "data", "-m", "after"]);
}

/// A checkout into a read-only folder fails with one line that says so.
#[test]
fn checkout_into_a_read_only_folder_fails_cleanly() {
    let env = Env::init();
    env.write("data/a.txt", "hello\n");
    let id = env.commit(&["--data", "data"]);
    let target = env.tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let disk = Tmpfs::mount(&target, "4m");
    disk.remount("ro");
    let out = env.run(&[
        "checkout",
        &id,
        "-q",
        "--data",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&text(&out.stderr), READ_ONLY, "checkout");
    assert_fsck(&env, &env.work, "after the failed checkout");
}

/// A folder remote on a read-only file system can still be cloned and fetched from (the way to
/// read runs from read-only media).
#[test]
fn clone_from_a_read_only_folder_remote_works() {
    let a = Env::init();
    a.write("model/w.bin", noise(71, 1 << 20));
    let run = a.commit(&["--artifact", "model"]);
    let remote = a.tmp.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let disk = Tmpfs::mount(&remote, "8m");
    let r = remote.to_str().unwrap();
    a.ok(&["remote", "add", "origin", r]);
    a.ok(&["push", "-q", "origin"]);
    disk.remount("ro");
    let b = Env::new();
    let dest = b.work.join("clone");
    b.ok(&["clone", r, dest.to_str().unwrap()]);
    let out = b
        .cmd_in(&dest)
        .args(["checkout", &run, "-q", "--artifacts", "-o", "out"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        snapshot_dir(&dest.join("out/model")),
        snapshot_dir(&a.path("model"))
    );
    let out = b.cmd_in(&dest).args(["fetch", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// ---- a damaged index --------------------------------------------------------------------------

/// The snapshot file sled writes while it opens, as a process killed in the middle of writing
/// it leaves it: the start of a real snapshot, under a newer sequence number.
fn half_written_snapshot(env: &Env) -> PathBuf {
    let index = env.path(".cairn/index");
    let snap = std::fs::read_dir(&index)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("snap.") && !name.ends_with(".generating")
        })
        .expect("sled wrote a snapshot");
    let bytes = std::fs::read(&snap).unwrap();
    let partial = index.join("snap.00000000FFFFFFFF.generating");
    std::fs::write(&partial, &bytes[..bytes.len() / 2]).unwrap();
    partial
}

/// A command killed while sled wrote its snapshot (which it does while opening, even for a
/// command that only reads) leaves a half-written `snap.*.generating` file, which sled 0.34
/// then takes for the newest snapshot and refuses to open at all. cairn removes such a file
/// before opening, and nothing is lost. (`crash::kill9_loop_reading_commands` makes them by
/// killing real commands.)
#[test]
fn snapshot_half_written_by_a_killed_process_is_set_aside() {
    let env = Env::init();
    env.write("data/a.txt", "hello\n");
    let id = env.commit(&["--data", "data"]);
    env.ok(&["tag", "v1", &id]);
    let partial = half_written_snapshot(&env);
    let log = env.ok(&["log"]);
    assert!(log.contains(&id[..12]), "{log}");
    assert!(
        !partial.exists(),
        "the half-written snapshot is still there"
    );
    assert_fsck(&env, &env.work, "after the half-written snapshot");
    env.ok(&["show", "v1"]);
    env.write("data/b.txt", "more\n");
    let next = env.commit(&["--data", "data"]);
    assert_eq!(
        env.ok(&["log", "--json", "-n", "1"]).matches(&next).count(),
        1
    );
}

/// A snapshot file is removed only when no process holds the index: one that is being
/// written by a live process stays, and the command waits for the index as usual.
#[test]
fn snapshot_being_written_by_a_live_process_is_left_alone() {
    use std::os::fd::AsRawFd;
    let env = Env::init();
    env.write("data/a.txt", "hello\n");
    env.commit(&["--data", "data"]);
    let partial = half_written_snapshot(&env);
    // Hold the lock sled takes, as a process with the index open does.
    let db = std::fs::File::open(env.path(".cairn/index/db")).unwrap();
    // SAFETY: flock on a file this test owns.
    let locked = unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(locked, 0, "could not take the index lock");
    let out = env
        .cmd()
        .env("CAIRN_LOCK_TIMEOUT", "1")
        .args(["log"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "log opened a locked index");
    assert!(
        partial.exists(),
        "a snapshot a live process writes was removed"
    );
    drop(db);
    env.ok(&["log"]);
    assert!(!partial.exists());
}

/// An index sled finds damaged (as a full disk used to leave it) is reported in one line that
/// says so, without sled's internals, with the way out; that way out works.
#[test]
fn damaged_index_is_reported_with_the_way_to_rebuild_it() {
    let env = Env::init();
    env.write("data/a.txt", "hello\n");
    let id = env.commit(&["--data", "data"]);
    let db = env.path(".cairn/index/db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..len.min(4096)].copy_from_slice(&noise(9, len.min(4096)));
    std::fs::write(&db, bytes).unwrap();
    let err = env.fails(&["log"]);
    assert_one_line_error(&err, "the repository index is damaged", "log");
    assert!(!err.contains("backtrace"), "{err}");
    assert!(
        err.contains("hint: run `cairn fsck --rebuild-index`"),
        "{err}"
    );
    env.ok(&["fsck", "--rebuild-index"]);
    assert_fsck(&env, &env.work, "after rebuilding");
    env.ok(&["show", &id]);
}
