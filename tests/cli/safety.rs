//! Tests of safety: corruption, hostile trees, concurrency, crashes, gc.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use cairn::object::{
    hash_object, ArtifactsRef, CodeState, DataRef, EntryKind, Kind, Run, Tree, TreeEntry,
};
use cairn::repo::Repo;
use cairn::store::Batch;
use cairn::ObjectId;

use crate::common::*;

// ---- helpers ------------------------------------------------------------------------------

/// Length of a pack record header (documented pack format).
const RECORD_HEADER: u64 = 52;
/// Length of a pack file header (documented pack format).
const PACK_HEADER: u64 = 16;

/// Fast pseudo-random bytes that never repeat (so nothing deduplicates or compresses).
fn xof(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"cairn safety test noise")
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The id a small file's content gets (stored as one blob).
fn blob_id(content: &[u8]) -> String {
    hash_object(Kind::Blob, content).to_hex()
}

/// One record of a pack file, parsed independently of the library.
#[derive(Debug, Clone)]
struct Record {
    offset: u64,
    codec: u8,
    stored_len: u64,
    id: String,
}

impl Record {
    fn data_start(&self) -> u64 {
        self.offset + RECORD_HEADER
    }

    fn end(&self) -> u64 {
        self.data_start() + self.stored_len
    }
}

/// Every pack file of the repository in `env`.
fn packs(env: &Env) -> Vec<PathBuf> {
    let dir = env.path(".cairn/packs");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("packs folder")
        .map(|e| e.expect("pack entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    out.sort();
    out
}

/// The records of one pack, in file order.
fn records(pack: &Path) -> Vec<Record> {
    let f = File::open(pack).expect("open pack");
    let len = f.metadata().expect("pack metadata").len();
    let mut magic = [0u8; 8];
    f.read_exact_at(&mut magic, 0).expect("pack header");
    assert_eq!(&magic, b"CAIRNPK\0", "{} is not a pack", pack.display());
    let mut out = Vec::new();
    let mut off = PACK_HEADER;
    while off + RECORD_HEADER <= len {
        let mut h = [0u8; RECORD_HEADER as usize];
        f.read_exact_at(&mut h, off).expect("record header");
        assert_eq!(&h[0..4], b"COBJ", "bad record magic at {off}");
        let stored_len = u64::from(u32::from_le_bytes([h[8], h[9], h[10], h[11]]));
        let id = ObjectId::from_slice(&h[20..52]).expect("id").to_hex();
        out.push(Record {
            offset: off,
            codec: h[5],
            stored_len,
            id,
        });
        off += RECORD_HEADER + stored_len;
    }
    assert_eq!(
        off,
        len,
        "{} does not end on a record boundary",
        pack.display()
    );
    out
}

/// The pack holding object `id` and its record.
fn find_record(env: &Env, id: &str) -> (PathBuf, Record) {
    for p in packs(env) {
        if let Some(r) = records(&p).into_iter().find(|r| r.id == id) {
            return (p, r);
        }
    }
    panic!("object {id} is in no pack");
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Asserts a failed command exited with 1 and did not panic.
fn assert_clean_failure(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: expected exit 1; stdout: {}; stderr: {stderr}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{what} panicked: {stderr}");
}

/// `cairn fsck --json`, whatever its exit code: the exit code and the report.
fn fsck_json(env: &Env) -> (Option<i32>, serde_json::Value) {
    let out = env.run(&["fsck", "--json"]);
    assert!(
        !text(&out.stderr).contains("panicked"),
        "fsck panicked: {}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck --json printed no JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// Asserts fsck finds no problem; returns the number of unreachable objects.
fn fsck_ok(env: &Env, when: &str) -> u64 {
    let (code, v) = fsck_json(env);
    assert_eq!(code, Some(0), "{when}: fsck failed: {v}");
    assert_eq!(
        v["problems"].as_array().map(Vec::len),
        Some(0),
        "{when}: {v}"
    );
    v["unreachable"].as_u64().expect("unreachable count")
}

/// Paths below `dir` whose names mark a temporary file of a restore.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains(".cairn-tmp-") {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_files(&p));
        }
    }
    out
}

/// A folder snapshot without restore temporaries.
fn without_temps(snap: BTreeMap<PathBuf, Item>) -> BTreeMap<PathBuf, Item> {
    snap.into_iter()
        .filter(|(p, _)| !p.to_string_lossy().contains(".cairn-tmp-"))
        .collect()
}

/// Spawns `cairn ARGS` with output discarded (for processes that will be killed).
fn spawn_quiet(env: &Env, args: &[&str]) -> Child {
    env.cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cairn")
}

/// A folder beside the repository with a target folder to restore into, a file next to the
/// target, and an `outside` folder a hostile run would like to write into.
struct Sentinel {
    root: PathBuf,
    target: PathBuf,
    outside: PathBuf,
}

impl Sentinel {
    fn new(env: &Env, name: &str) -> Sentinel {
        let root = env.tmp.path().join(name);
        let target = root.join("target");
        let outside = root.join("outside");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("keep.txt"), b"keep me").unwrap();
        std::fs::write(outside.join("victim.txt"), b"original victim").unwrap();
        std::fs::write(target.join("pre.txt"), b"was here before").unwrap();
        Sentinel {
            root,
            target,
            outside,
        }
    }

    fn target_arg(&self) -> String {
        self.target.to_string_lossy().into_owned()
    }

    fn snapshot(&self) -> BTreeMap<PathBuf, Item> {
        snapshot_dir(&self.root)
    }

    /// Everything except what is inside the target folder.
    fn snapshot_outside_target(&self) -> BTreeMap<PathBuf, Item> {
        self.snapshot()
            .into_iter()
            .filter(|(p, _)| !p.starts_with("target"))
            .collect()
    }
}

/// Objects to store, with their ids computed up front.
#[derive(Default)]
struct Objects(Vec<(Kind, Vec<u8>)>);

impl Objects {
    fn add(&mut self, kind: Kind, bytes: Vec<u8>) -> ObjectId {
        let id = hash_object(kind, &bytes);
        self.0.push((kind, bytes));
        id
    }

    fn blob(&mut self, bytes: &[u8]) -> ObjectId {
        self.add(Kind::Blob, bytes.to_vec())
    }

    /// Stores a tree as given, without the validation `Tree::from_entries` does.
    fn raw_tree(&mut self, entries: Vec<TreeEntry>) -> ObjectId {
        self.add(Kind::Tree, Tree { entries }.encode())
    }
}

fn entry(name: &str, kind: EntryKind, size: u64, id: ObjectId) -> TreeEntry {
    TreeEntry {
        name: name.to_string(),
        kind,
        size,
        id,
    }
}

/// A minimal run with no parts.
fn bare_run() -> Run {
    Run::decode(br#"{"format":1,"started_at":1000,"ended_at":2000,"message":"forged"}"#)
        .expect("minimal run")
}

/// A run whose artifacts are tree `tree` (restored at the target's root).
fn artifacts_run(tree: ObjectId) -> Run {
    let mut run = bare_run();
    run.artifacts = Some(ArtifactsRef {
        tree,
        size: 1,
        files: 1,
    });
    run
}

/// Publishes `objects` and `run` straight into the store through the library (bypassing every
/// check the commit command does); returns the run id. No ref points at it; it is named by id.
fn forge(env: &Env, objects: Objects, run: &Run) -> String {
    let repo = Repo::open(&env.work).expect("open repository");
    let store = repo.store();
    let session = store.session().expect("session");
    let mut writer = store.writer();
    for (kind, bytes) in objects.0 {
        writer.put(kind, bytes, Some(&session)).expect("put");
    }
    let id = writer
        .put(Kind::Run, run.encode(), Some(&session))
        .expect("put run");
    let mut batch = Batch::default();
    writer.publish(&session, &mut batch).expect("publish");
    batch.put_run(&id, run.started_at);
    session.apply(batch).expect("apply");
    session.flush().expect("flush");
    id.to_hex()
}

/// Checks out `run` into the sentinel's target; asserts refusal with exit 1 mentioning one of
/// `expect` and that nothing changed in or around the target.
fn assert_checkout_refused(env: &Env, s: &Sentinel, run: &str, expect: &[&str], case: &str) {
    let before = s.snapshot();
    let out = env.run(&["checkout", run, "-o", &s.target_arg()]);
    assert_clean_failure(&out, &format!("checkout of {case}"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && expect.iter().any(|e| first_line(&stderr).contains(e)),
        "{case}: unclear error (wanted {expect:?}): {stderr}"
    );
    assert_eq!(s.snapshot(), before, "{case}: checkout changed files");
}

// ---- 1. corruption --------------------------------------------------------------------------

#[test]
fn flipped_object_byte_is_reported_by_fsck_and_refused_by_cat_and_checkout() {
    let env = Env::init();
    let noise_bytes = xof(1, 100_000);
    let csv = "epoch,loss,accuracy\n1,0.5,0.75\n"
        .repeat(2000)
        .into_bytes();
    env.write("d/noise.bin", &noise_bytes);
    env.write("d/log.csv", &csv);
    let run = env.commit(&["--data", "d", "-m", "victim"]);
    fsck_ok(&env, "fresh");
    // Noise is stored raw, text compressed: damage in either codec's bytes.
    for (file, content) in [("noise.bin", &noise_bytes), ("log.csv", &csv)] {
        let id = blob_id(content);
        let (pack, rec) = find_record(&env, &id);
        let at = rec.data_start() + rec.stored_len / 2;
        flip(&pack, at);

        let out = env.run(&["fsck"]);
        assert_clean_failure(&out, &format!("fsck with {file} damaged"));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(&id), "fsck does not name {id}: {stdout}");

        let out = env.run(&["cat", &format!("{run}:data/d/{file}")]);
        assert_clean_failure(&out, &format!("cat of damaged {file}"));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && first_line(&stderr).contains("corrupt"),
            "cat {file}: {stderr}"
        );
        assert_ne!(out.stdout, *content, "cat printed the file despite damage");

        let dest = format!("out-{file}");
        let out = env.run(&["checkout", &run, "-o", &dest]);
        assert_clean_failure(&out, &format!("checkout with {file} damaged"));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && first_line(&stderr).contains("corrupt"),
            "checkout with {file} damaged: {stderr}"
        );
        assert!(
            std::fs::read(env.path(&dest).join("d").join(file)).is_err(),
            "checkout left a damaged {file} in place"
        );

        flip(&pack, at);
        fsck_ok(&env, &format!("after repairing {file}"));
    }
}

#[test]
fn damaged_record_header_is_reported_by_fsck() {
    let env = Env::init();
    let noise_bytes = xof(2, 50_000);
    let txt = "a line of text that compresses well\n"
        .repeat(500)
        .into_bytes();
    env.write("d/noise.bin", &noise_bytes);
    env.write("d/text.txt", &txt);
    env.commit(&["--data", "d"]);
    fsck_ok(&env, "fresh");
    let fields: [(&str, u64); 8] = [
        ("record magic", 0),
        ("kind", 4),
        ("codec", 5),
        ("stored length", 8),
        ("stored length (high byte)", 11),
        ("raw length", 12),
        ("id (first byte)", 20),
        ("id (last byte)", 51),
    ];
    for content in [&noise_bytes, &txt] {
        let id = blob_id(content);
        let (pack, rec) = find_record(&env, &id);
        for (field, off) in fields {
            let at = rec.offset + off;
            flip(&pack, at);
            let out = env.run(&["fsck"]);
            let stdout = text(&out.stdout);
            flip(&pack, at);
            assert!(!text(&out.stderr).contains("panicked"));
            assert!(
                out.status.code() == Some(1) && stdout.contains(&id),
                "fsck with the {field} of record {id} (codec {}) damaged: exit {:?}, output: {stdout}",
                rec.codec,
                out.status.code()
            );
        }
    }
    fsck_ok(&env, "after repairs");
}

/// A run on `main` (data folder `a`) and one on branch `exp` (data folder `b`), each in a pack
/// of its own. Returns (main run, exp run).
fn two_runs(env: &Env) -> (String, String) {
    env.write("a/a.bin", xof(10, 60_000));
    env.write("a/a.txt", "intact\n");
    let a = env.commit(&["--data", "a", "-m", "intact"]);
    env.write("b/one.bin", xof(11, 200_000));
    env.write("b/two.bin", xof(12, 200_000));
    env.write("b/three.txt", "doomed\n".repeat(100));
    let b = env.commit(&["-b", "exp", "--data", "b", "-m", "doomed"]);
    (a, b)
}

/// Asserts the run on main still reads and restores bit for bit.
fn assert_main_intact(env: &Env, a: &str, dest: &str) {
    assert_eq!(log_ids(env, &[]), vec![a.to_string()]);
    env.ok(&["show", "HEAD"]);
    let cat = env
        .cmd()
        .args(["cat", "main:data/a/a.bin"])
        .output()
        .unwrap();
    assert!(cat.status.success(), "cat: {}", text(&cat.stderr));
    assert_eq!(cat.stdout, xof(10, 60_000));
    env.ok(&["checkout", "main", "-o", dest]);
    assert_eq!(
        snapshot_dir(&env.path(dest).join("a")),
        snapshot_dir(&env.path("a"))
    );
}

#[test]
fn truncated_pack_is_reported_without_panic() {
    let env = Env::init();
    let (a, b) = two_runs(&env);
    let (pack, run_rec) = find_record(&env, &b);
    let recs = records(&pack);
    let len = std::fs::metadata(&pack).unwrap().len();
    let cuts = [
        len - 10,
        run_rec.data_start() + run_rec.stored_len / 2,
        run_rec.offset + 7,
        len / 2,
        PACK_HEADER + 3,
    ];
    for (i, new_len) in cuts.into_iter().enumerate() {
        let f = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
        f.set_len(new_len).unwrap();
        drop(f);
        let out = env.run(&["fsck"]);
        assert_clean_failure(
            &out,
            &format!("fsck of a pack truncated to {new_len} bytes"),
        );
        let stdout = text(&out.stdout);
        let cut: Vec<&Record> = recs.iter().filter(|r| r.end() > new_len).collect();
        assert!(!cut.is_empty());
        for r in cut {
            assert!(
                stdout.contains(&r.id),
                "truncated to {new_len}: fsck does not name {}: {stdout}",
                r.id
            );
        }
        if run_rec.end() > new_len {
            let out = env.run(&["log", "exp"]);
            assert_clean_failure(&out, "log of the truncated run");
            let stderr = text(&out.stderr);
            assert!(first_line(&stderr).contains("corrupt"), "{stderr}");
        }
        let out = env.run(&["checkout", &b, "-o", "lost"]);
        if recs.last().is_some_and(|r| r.end() > new_len) {
            assert_clean_failure(&out, "checkout of the truncated run");
        }
        assert!(!text(&out.stderr).contains("panicked"));
        let _ = std::fs::remove_dir_all(env.path("lost"));
        assert_main_intact(&env, &a, &format!("intact{i}"));
    }
}

#[test]
fn deleted_pack_is_reported_as_unreadable() {
    let env = Env::init();
    let (a, b) = two_runs(&env);
    let (pack, _) = find_record(&env, &b);
    let recs = records(&pack);
    assert!(recs.len() >= 4, "{recs:?}");
    std::fs::remove_file(&pack).unwrap();
    let out = env.run(&["fsck"]);
    assert_clean_failure(&out, "fsck without a pack");
    let stdout = text(&out.stdout);
    for r in &recs {
        assert!(
            stdout.contains(&r.id),
            "fsck does not name {}: {stdout}",
            r.id
        );
    }
    let out = env.run(&["show", "exp"]);
    assert_clean_failure(&out, "show of a run whose pack is gone");
    let out = env.run(&["cat", "exp:data/b/three.txt"]);
    assert_clean_failure(&out, "cat of a file whose pack is gone");
    assert_main_intact(&env, &a, "intact");
}

#[test]
fn damage_to_one_run_does_not_stop_reading_another() {
    let env = Env::init();
    let (a, _b) = two_runs(&env);
    let damaged = blob_id(&xof(11, 200_000));
    let (pack, rec) = find_record(&env, &damaged);
    flip(&pack, rec.end() - 1);
    let out = env.run(&["fsck"]);
    assert_clean_failure(&out, "fsck");
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&damaged), "{stdout}");
    for intact in [blob_id(&xof(10, 60_000)), a.clone()] {
        assert!(
            !stdout.contains(&intact),
            "fsck blames intact {intact}: {stdout}"
        );
    }
    assert_main_intact(&env, &a, "intact");
    // The damaged run's other files still read.
    let out = env
        .cmd()
        .args(["cat", "exp:data/b/two.bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, xof(12, 200_000));
    let out = env.run(&["cat", "exp:data/b/one.bin"]);
    assert_clean_failure(&out, "cat of the damaged file");
}

// ---- 2. hostile trees -----------------------------------------------------------------------

/// What the refusal of a tree with a hostile name may say.
const TREE_ERR: &[&str] = &["malformed tree", "name"];

#[test]
fn checkout_refuses_hostile_tree_names_before_writing_anything() {
    let env = Env::init();
    let s = Sentinel::new(&env, "sentinel");
    let long = "x".repeat(300);
    let names: Vec<&str> = vec![
        "..",
        ".",
        "a/../..",
        "../outside/victim.txt",
        "/etc/x",
        ".cairn",
        ".CAIRN",
        ".git",
        ".Git",
        "",
        "a\0b",
        "a\\b",
        &long,
    ];
    for name in names {
        // At the root of the target.
        let mut objs = Objects::default();
        let blob = objs.blob(b"pwned");
        let tree = objs.raw_tree(vec![entry(name, EntryKind::File, 5, blob)]);
        let run = forge(&env, objs, &artifacts_run(tree));
        assert_checkout_refused(&env, &s, &run, TREE_ERR, &format!("root entry {name:?}"));

        // Deeper, after a valid file and folder that would be written first.
        let mut objs = Objects::default();
        let ok = objs.blob(b"fine");
        let bad = objs.blob(b"pwned");
        let sub = objs.raw_tree(vec![entry(name, EntryKind::Executable, 5, bad)]);
        let mid = objs.raw_tree(vec![
            entry("a.txt", EntryKind::File, 4, ok),
            entry("sub", EntryKind::Tree, 5, sub),
        ]);
        let root = objs.raw_tree(vec![
            entry("first.txt", EntryKind::File, 4, ok),
            entry("mid", EntryKind::Tree, 9, mid),
        ]);
        let run = forge(&env, objs, &artifacts_run(root));
        assert_checkout_refused(&env, &s, &run, TREE_ERR, &format!("nested entry {name:?}"));

        // As the name of a sub-folder in a data snapshot.
        let mut objs = Objects::default();
        let bad = objs.blob(b"pwned");
        let sub = objs.raw_tree(vec![entry("f", EntryKind::File, 5, bad)]);
        let root = objs.raw_tree(vec![entry(name, EntryKind::Tree, 5, sub)]);
        let mut run = bare_run();
        run.data.insert(
            "d".into(),
            DataRef {
                kind: "tree".into(),
                id: root,
                size: 5,
                files: 1,
                path: None,
                executable: false,
            },
        );
        let run = forge(&env, objs, &run);
        assert_checkout_refused(&env, &s, &run, TREE_ERR, &format!("data folder {name:?}"));
    }
    // Control: the same shape with a harmless name is restored.
    let mut objs = Objects::default();
    let blob = objs.blob(b"fine");
    let tree = objs.raw_tree(vec![entry("fine.txt", EntryKind::File, 4, blob)]);
    let run = forge(&env, objs, &artifacts_run(tree));
    env.ok(&["checkout", &run, "-o", &s.target_arg()]);
    assert_eq!(std::fs::read(s.target.join("fine.txt")).unwrap(), b"fine");
}

#[test]
fn checkout_refuses_symlinks_that_leave_the_target() {
    let env = Env::init();
    let s = Sentinel::new(&env, "sentinel");
    let at_root: [&[u8]; 14] = [
        b"../../outside",
        b"../outside",
        b"../outside/victim.txt",
        b"..",
        b"./../outside",
        b"sub/../../outside",
        b"/etc/passwd",
        b"/",
        b".cairn/index",
        b".CAIRN/config",
        b"x/../.git/config",
        b".git",
        b"",
        b"a\0b",
    ];
    for target in at_root {
        let mut objs = Objects::default();
        let t = objs.blob(target);
        let ok = objs.blob(b"fine");
        let tree = objs.raw_tree(vec![
            entry("a.txt", EntryKind::File, 4, ok),
            entry("link", EntryKind::Symlink, target.len() as u64, t),
        ]);
        let run = forge(&env, objs, &artifacts_run(tree));
        let case = format!("link at the root to {:?}", text(target));
        assert_checkout_refused(&env, &s, &run, &["symbolic link"], &case);
    }
    // One folder down, one more `..` is still outside.
    for target in [&b"../../outside"[..], b"../../../x", b"../.cairn/packs"] {
        let mut objs = Objects::default();
        let t = objs.blob(target);
        let sub = objs.raw_tree(vec![entry(
            "link",
            EntryKind::Symlink,
            target.len() as u64,
            t,
        )]);
        let root = objs.raw_tree(vec![entry("sub", EntryKind::Tree, 0, sub)]);
        let run = forge(&env, objs, &artifacts_run(root));
        let case = format!("link in sub/ to {:?}", text(target));
        assert_checkout_refused(&env, &s, &run, &["symbolic link"], &case);
    }
    // Control: a link that stays inside is restored.
    let mut objs = Objects::default();
    let t = objs.blob(b"../a.txt");
    let ok = objs.blob(b"fine");
    let sub = objs.raw_tree(vec![entry("link", EntryKind::Symlink, 8, t)]);
    let root = objs.raw_tree(vec![
        entry("a.txt", EntryKind::File, 4, ok),
        entry("sub", EntryKind::Tree, 0, sub),
    ]);
    let run = forge(&env, objs, &artifacts_run(root));
    env.ok(&["checkout", &run, "-o", &s.target_arg()]);
    assert_eq!(
        std::fs::read_link(s.target.join("sub/link")).unwrap(),
        PathBuf::from("../a.txt")
    );
    assert_eq!(std::fs::read(s.target.join("sub/link")).unwrap(), b"fine");
}

#[test]
fn checkout_refuses_symlink_chains_that_leave_the_target() {
    // Each link alone stays inside lexically, but followed through the other it leaves.
    let cases: Vec<Vec<(&str, &[u8])>> = vec![
        vec![("l", &b"."[..]), ("m", &b"l/.."[..])],
        vec![("l", &b"."[..]), ("m", &b"l/../outside/victim.txt"[..])],
    ];
    for (i, links) in cases.into_iter().enumerate() {
        let env = Env::init();
        let s = Sentinel::new(&env, "sentinel");
        let mut objs = Objects::default();
        let mut entries = Vec::new();
        for (name, target) in &links {
            let t = objs.blob(target);
            entries.push(entry(name, EntryKind::Symlink, target.len() as u64, t));
        }
        let tree = objs.raw_tree(entries);
        let run = forge(&env, objs, &artifacts_run(tree));
        let outside_before = s.snapshot_outside_target();
        let out = env.run(&["checkout", &run, "-o", &s.target_arg()]);
        assert!(!text(&out.stderr).contains("panicked"));
        assert_eq!(s.snapshot_outside_target(), outside_before, "case {i}");
        if out.status.success() {
            let root = s.target.canonicalize().unwrap();
            for (name, target) in &links {
                let p = s.target.join(name);
                let resolved = p.canonicalize().unwrap_or_else(|_| p.clone());
                assert!(
                    resolved.starts_with(&root),
                    "case {i}: checkout restored link {name} -> {:?}, which resolves to {} \
                     outside the target folder {}",
                    text(target),
                    resolved.display(),
                    root.display()
                );
            }
        } else {
            assert_clean_failure(&out, "checkout of a link chain");
        }
    }
}

#[test]
fn checkout_of_committed_links_never_points_outside_the_target() {
    // The same escape through an ordinary commit: links recorded from a real folder.
    let env = Env::init();
    std::fs::create_dir_all(env.path("d")).unwrap();
    std::os::unix::fs::symlink(".", env.path("d/l")).unwrap();
    std::os::unix::fs::symlink("l/../..", env.path("d/m")).unwrap();
    // Commit refuses a link that leaves the snapshot, naming it; nothing is recorded.
    let err = env.fails(&["commit", "-q", "--data", "d"]);
    assert!(err.contains("d/m") && err.contains("outside"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // Without the escaping link the rest commits, and checkout stays inside the target.
    std::fs::remove_file(env.path("d/m")).unwrap();
    std::os::unix::fs::symlink("l/x", env.path("d/m")).unwrap();
    let run = env.commit(&["--data", "d"]);
    let s = Sentinel::new(&env, "sentinel");
    let out = env.run(&["checkout", &run, "-o", &s.target_arg()]);
    assert!(!text(&out.stderr).contains("panicked"));
    if out.status.success() {
        let root = s.target.canonicalize().unwrap();
        let resolved = s.target.join("d/m").canonicalize().unwrap();
        assert!(
            resolved.starts_with(&root),
            "checkout restored d/m -> l/../.., which resolves to {} outside the target {}",
            resolved.display(),
            root.display()
        );
    } else {
        assert_clean_failure(&out, "checkout of a link chain");
        assert!(!s.target.join("d/m").exists());
    }
}

#[test]
fn checkout_refuses_hostile_run_paths() {
    let env = Env::init();
    let s = Sentinel::new(&env, "sentinel");
    let config_before = std::fs::read(env.path(".cairn/config")).unwrap();
    let work_before = snapshot_dir(&env.work);
    let file_ref = |id: ObjectId, path: Option<&str>| DataRef {
        kind: "file".into(),
        id,
        size: 5,
        files: 1,
        path: path.map(str::to_string),
        executable: true,
    };
    // Data names and paths that would land in the repository's own folders or outside.
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("../../evil", None),
        ("..", None),
        (".cairn", None),
        ("x/../../../evil", None),
        ("d", Some(".cairn/config")),
        ("d", Some("./.cairn/index/db")),
        ("d", Some(".git/hooks/post-checkout")),
        ("d", Some("sub/.git/config")),
    ];
    for (name, path) in &cases {
        let mut objs = Objects::default();
        let blob = objs.blob(b"pwned");
        let mut run = bare_run();
        run.data.insert(name.to_string(), file_ref(blob, *path));
        let run = forge(&env, objs, &run);
        let case = format!("data {name:?} at {path:?}");
        // Into the repository root (no -o) and into a separate folder.
        let out = env.run(&["checkout", &run]);
        assert_clean_failure(&out, &case);
        assert_eq!(
            std::fs::read(env.path(".cairn/config")).unwrap(),
            config_before,
            "{case}"
        );
        assert!(!env.path(".git").exists(), "{case}: created .git");
        assert_eq!(snapshot_dir(&env.work), work_before, "{case}");
        let before = s.snapshot();
        let out = env.run(&["checkout", &run, "-o", &s.target_arg()]);
        assert_clean_failure(&out, &case);
        assert_eq!(s.snapshot(), before, "{case}");
    }
    // Recorded paths that climb or are absolute are made relative: they stay inside the target.
    for (i, path) in [
        "../../outside/victim.txt",
        "/etc/cairn-test",
        "a/../../../x",
    ]
    .into_iter()
    .enumerate()
    {
        let mut objs = Objects::default();
        let blob = objs.blob(b"pwned");
        let code_blob = objs.blob(b"code!");
        let code = objs.raw_tree(vec![entry("x.py", EntryKind::File, 5, code_blob)]);
        let mut run = bare_run();
        run.data.insert("d".into(), file_ref(blob, Some(path)));
        run.code = Some(CodeState {
            git: None,
            tree: code,
            size: 5,
            files: 1,
            path: path.to_string(),
        });
        let run = forge(&env, objs, &run);
        let dest = s.root.join(format!("inside{i}"));
        let outside_before: BTreeMap<_, _> = s
            .snapshot()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(format!("inside{i}")))
            .collect();
        let out = env.run(&["checkout", &run, "-o", &dest.to_string_lossy()]);
        assert!(!text(&out.stderr).contains("panicked"));
        let after: BTreeMap<_, _> = s
            .snapshot()
            .into_iter()
            .filter(|(p, _)| !p.starts_with(format!("inside{i}")))
            .collect();
        assert_eq!(
            after, outside_before,
            "path {path:?} wrote outside the target"
        );
        assert!(
            !Path::new("/etc/cairn-test").exists(),
            "path {path:?} wrote an absolute path"
        );
    }
}

#[test]
fn checkout_does_not_write_through_a_symlinked_folder_in_the_target() {
    let env = Env::init();
    env.write("sub/file", "payload\n");
    env.write("sub/deeper/more.txt", "more\n");
    let run = env.commit(&["--data", "sub"]);
    let s = Sentinel::new(&env, "sentinel");
    std::os::unix::fs::symlink("../outside", s.target.join("sub")).unwrap();
    let before = s.snapshot();
    let out = env.run(&["checkout", &run, "-o", &s.target_arg()]);
    assert_clean_failure(&out, "checkout through a symlinked folder");
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(s.snapshot(), before, "refused checkout changed files");

    let outside_before = snapshot_dir(&s.outside);
    env.ok(&["checkout", &run, "-o", &s.target_arg(), "--force"]);
    assert_eq!(
        snapshot_dir(&s.outside),
        outside_before,
        "--force wrote through the link"
    );
    let md = std::fs::symlink_metadata(s.target.join("sub")).unwrap();
    assert!(md.is_dir(), "the link was not replaced by a folder");
    assert_eq!(
        snapshot_dir(&s.target.join("sub")),
        snapshot_dir(&env.path("sub"))
    );
}

#[test]
fn forced_checkout_over_a_symlinked_folder_restores_every_file() {
    // The folder the link points to already holds identical files: they must still be
    // restored into the real folder that replaces the link.
    let env = Env::init();
    env.write("sub/file", "payload\n");
    env.write("sub/other.txt", "other\n");
    let run = env.commit(&["--data", "sub"]);
    let s = Sentinel::new(&env, "sentinel");
    std::fs::write(s.outside.join("file"), "payload\n").unwrap();
    std::os::unix::fs::symlink("../outside", s.target.join("sub")).unwrap();
    let outside_before = snapshot_dir(&s.outside);
    env.ok(&["checkout", &run, "-o", &s.target_arg(), "--force"]);
    assert_eq!(snapshot_dir(&s.outside), outside_before);
    assert!(std::fs::symlink_metadata(s.target.join("sub"))
        .unwrap()
        .is_dir());
    assert_eq!(
        snapshot_dir(&s.target.join("sub")),
        snapshot_dir(&env.path("sub")),
        "forced checkout over a symlinked folder left files out"
    );
}

#[test]
fn checkout_does_not_follow_a_symlink_at_its_temporary_name() {
    // Restoring happens in this process (through the library), so the temporary name, which
    // contains the process id, is known; a link planted there must not be written through.
    let env = Env::init();
    env.write("d/f.txt", "new content\n");
    let id = env.commit(&["--data", "d"]);
    let s = Sentinel::new(&env, "sentinel");
    std::fs::create_dir_all(s.target.join("d")).unwrap();
    let planted = s
        .target
        .join("d")
        .join(format!(".f.txt.cairn-tmp-{}", std::process::id()));
    std::os::unix::fs::symlink("../../outside/victim.txt", &planted).unwrap();
    let outside_before = snapshot_dir(&s.outside);
    let repo = Repo::open(&env.work).unwrap();
    let session = repo.store().session().unwrap();
    let run = session.read_run(&id.parse().unwrap()).unwrap();
    let parts = cairn::checkout::Parts {
        data: true,
        ..Default::default()
    };
    let result = cairn::checkout::checkout(
        session,
        &run,
        parts,
        &s.target,
        false,
        &cairn::progress::NoProgress,
    );
    assert_eq!(
        snapshot_dir(&s.outside),
        outside_before,
        "checkout wrote through a link at its temporary name (result: {:?})",
        result.as_ref().map(|_| ()).map_err(|e| e.to_string())
    );
    if result.is_ok() {
        let p = s.target.join("d/f.txt");
        assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
        assert_eq!(std::fs::read(&p).unwrap(), b"new content\n");
    }
}

// ---- 3. concurrency -------------------------------------------------------------------------

#[test]
fn eight_concurrent_commits_all_land() {
    let env = Env::init();
    env.write("base/x.txt", "base\n");
    let first = env.commit(&["--data", "base", "-m", "base"]);
    for i in 0..8u64 {
        env.write(
            &format!("d{i}/part.txt"),
            format!("shard {i}\n").repeat(200),
        );
        env.write(&format!("d{i}/w.bin"), xof(100 + i, 40_000));
    }
    let children: Vec<Child> = (0..8)
        .map(|i| {
            spawn(
                &env,
                &[
                    "commit",
                    "-q",
                    "-p",
                    &format!("shard={i}"),
                    "--data",
                    &format!("d{i}"),
                    "-m",
                    &format!("shard {i}"),
                ],
            )
        })
        .collect();
    let mut ids = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "commit {i} failed ({:?}): {}",
            out.status.code(),
            text(&out.stderr)
        );
        let id = text(&out.stdout).trim().to_string();
        assert_eq!(id.len(), 64, "commit {i} printed {id:?}");
        ids.push(id);
    }
    let log = log_ids(&env, &[]);
    assert_eq!(log.len(), 9, "{log:?}");
    assert_eq!(log.last(), Some(&first));
    for id in &ids {
        assert!(log.contains(id), "run {id} is not in the log: {log:?}");
    }
    for (i, id) in ids.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(&env.ok(&["show", id, "--json"])).unwrap();
        let shard = &v["run"]["params"]["shard"];
        assert_eq!(
            shard.to_string().trim_matches('"'),
            i.to_string(),
            "run {id}: {v}"
        );
        assert!(v["run"]["data"][format!("d{i}")].is_object(), "{v}");
    }
    assert_eq!(fsck_ok(&env, "after concurrent commits"), 0);
}

#[test]
fn log_and_show_work_while_a_large_commit_runs() {
    let env = Env::init();
    env.write("small/a.txt", "a\n");
    let first = env.commit(&["--data", "small", "-m", "first"]);
    let mut expected = vec![first.clone()];
    // On a fast machine a commit can end before one log and show have run beside it: then
    // try again with a larger file.
    let mut overlapped = 0;
    for (round, size) in [100_000_000usize, 300_000_000].into_iter().enumerate() {
        env.write("big/model.bin", xof(5 + round as u64, size));
        let mut child = spawn(&env, &["commit", "-q", "--data", "big", "-m", "big"]);
        for _ in 0..2000 {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let log = env.run(&["log", "--json"]);
            assert!(log.status.success(), "log failed: {}", text(&log.stderr));
            assert!(text(&log.stdout).contains(&first));
            let show = env.run(&["show", "HEAD"]);
            assert!(show.status.success(), "show failed: {}", text(&show.stderr));
            if child.try_wait().unwrap().is_none() {
                overlapped += 1;
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "big commit: {}", text(&out.stderr));
        expected.insert(0, text(&out.stdout).trim().to_string());
        assert_eq!(log_ids(&env, &[]), expected);
        if overlapped > 0 {
            break;
        }
    }
    assert!(
        overlapped >= 1,
        "no log/show completed while the commit was running"
    );
    assert_eq!(fsck_ok(&env, "after the big commit"), 0);
}

/// A checkout gives the index up once it has planned what to write, so a long checkout keeps
/// no other command waiting: with the checkout paused in the middle of writing a file, `log`
/// gets the index at once (allowed no time at all to wait for it) and a commit lands.
#[test]
fn checkout_writes_without_holding_the_index() {
    let env = Env::init();
    env.write("big/model.bin", xof(3, 3 << 20));
    env.write("big/notes.txt", "n\n");
    let run = env.commit(&["--data", "big", "-m", "big"]);
    let out = env.path("out");
    let mut child = env
        .cmd()
        .env("FAILPOINTS", "restore.write=1*sleep(4000)")
        .args(["checkout", &run, "-o", "out"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Writing has begun once a temporary file exists in the target.
    let writing = wait_for_file(&out.join("big"), |n| n.contains("cairn-tmp"));
    assert!(writing, "the checkout never started writing");
    let log = env
        .cmd()
        .env("CAIRN_LOCK_TIMEOUT", "0")
        .args(["log", "-n", "1"])
        .output()
        .unwrap();
    env.write("small/a.txt", "a\n");
    let during = env
        .cmd()
        .env("CAIRN_LOCK_TIMEOUT", "0")
        .args(["commit", "-q", "--data", "small", "-m", "during"])
        .output()
        .unwrap();
    let still_running = child.try_wait().unwrap().is_none();
    assert!(
        log.status.success(),
        "log could not get the index during the checkout: {}",
        text(&log.stderr)
    );
    assert!(
        during.status.success(),
        "a commit could not get the index during the checkout: {}",
        text(&during.stderr)
    );
    assert!(
        still_running,
        "the checkout ended before log and commit ran"
    );
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "checkout: {}", text(&done.stderr));
    assert_eq!(
        snapshot_dir(&out.join("big")),
        snapshot_dir(&env.path("big"))
    );
    assert_eq!(fsck_ok(&env, "after the checkout"), 0);
}

/// Reading a run keeps each pack its content comes from open, and a store of many runs can
/// need more of them at once than the usual soft limit on open files. cairn raises its soft
/// limit to the hard one: with the soft limit at 64, a run whose files lie in 100 packs is
/// checked out, checked by fsck and shown in a diff.
#[test]
fn content_in_more_packs_than_the_soft_open_file_limit() {
    use std::os::unix::process::CommandExt;
    let env = Env::init();
    for i in 0..100 {
        env.write(&format!("d/f{i:03}.txt"), format!("file {i}\n"));
        env.commit(&["--data", &format!("d/f{i:03}.txt"), "-m", &format!("f{i}")]);
    }
    let all = env.commit(&["--data", "d", "-m", "all"]);
    let packs = std::fs::read_dir(env.path(".cairn/packs")).unwrap().count();
    assert!(packs > 100, "only {packs} packs");
    let limited = |args: &[&str]| {
        let mut c = env.cmd();
        c.args(args);
        // SAFETY: only setrlimit runs between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let mut lim: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                lim.rlim_cur = 64;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                Ok(())
            });
        }
        c.output().unwrap()
    };
    for args in [
        vec!["checkout", all.as_str(), "-o", "out"],
        vec!["fsck"],
        vec!["diff", "HEAD~100", "HEAD"],
    ] {
        let out = limited(&args);
        assert!(
            out.status.success(),
            "{args:?} with a soft limit of 64 open files: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        snapshot_dir(&env.path("out/d")),
        snapshot_dir(&env.path("d"))
    );
}

#[test]
fn command_waits_while_another_process_holds_the_index() {
    let env = Env::init();
    env.write("d/a.txt", "a\n");
    let id = env.commit(&["--data", "d"]);
    let repo = Repo::open(&env.work).unwrap();
    let session = repo.store().session().unwrap();
    let mut child = spawn(&env, &["log"]);
    std::thread::sleep(Duration::from_millis(1500));
    let early = child.try_wait().unwrap();
    drop(session);
    let out = child.wait_with_output().unwrap();
    assert!(
        early.is_none(),
        "log ended ({early:?}) while the index was held: {}",
        text(&out.stderr)
    );
    assert!(
        out.status.success(),
        "log failed after the index was released: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(&id[..12]),
        "{}",
        text(&out.stdout)
    );
}

// ---- 4. gc ----------------------------------------------------------------------------------

#[test]
fn gc_removes_only_what_no_ref_reaches() {
    let env = Env::init();
    let shared = xof(30, 300_000);
    env.write("a/a.txt", "kept by a tag\n");
    env.write("b/x.bin", xof(31, 2_000_000));
    env.write("b/y.bin", &shared);
    env.write("c/c.txt", "second run on exp\n");
    env.write("dd/y.bin", &shared);
    env.write("dd/z.txt", "main tip\n");
    // Let the inputs age, so commits record them in the stat cache.
    std::thread::sleep(Duration::from_millis(2200));
    let a = env.commit(&["--data", "a", "-m", "A"]);
    env.ok(&["tag", "v1", &a]);
    let b = env.commit(&["-b", "exp", "--data", "b", "-m", "B"]);
    let c = env.commit(&["-b", "exp", "--data", "c", "-m", "C"]);
    let d = env.commit(&["--data", "dd", "-m", "D"]);
    assert_eq!(fsck_ok(&env, "before"), 0);
    env.ok(&["branch", "-d", "exp"]);
    let unreachable = fsck_ok(&env, "after deleting exp");
    assert!(unreachable >= 6, "{unreachable} unreachable");
    let b_file = format!("{b}:data/b/x.bin");

    let out = env.ok(&["gc", "--dry-run"]);
    assert!(out.contains("would remove"), "{out}");
    assert_eq!(fsck_ok(&env, "after gc --dry-run"), unreachable);
    let cat = env.cmd().args(["cat", &b_file]).output().unwrap();
    assert!(cat.status.success(), "{}", text(&cat.stderr));
    assert_eq!(cat.stdout, xof(31, 2_000_000));

    let out = env.ok(&["gc"]);
    assert!(out.starts_with("removed 0 object(s)"), "default gc: {out}");
    assert_eq!(fsck_ok(&env, "after gc with grace"), unreachable);
    env.ok(&["show", &c]);

    let out = env.ok(&["gc", "--prune-now"]);
    assert!(!out.starts_with("removed 0 "), "{out}");
    assert_eq!(fsck_ok(&env, "after gc --prune-now"), 0);
    assert_clean_failure(&env.run(&["cat", &b_file]), "cat of a collected run");
    assert_clean_failure(&env.run(&["show", &c]), "show of a collected run");

    // What refs reach is intact, bit for bit.
    assert_eq!(log_ids(&env, &[]), vec![d.clone(), a.clone()]);
    env.ok(&["checkout", "main", "-o", "out-d"]);
    assert_eq!(
        snapshot_dir(&env.path("out-d/dd")),
        snapshot_dir(&env.path("dd"))
    );
    env.ok(&["checkout", "v1", "-o", "out-a"]);
    assert_eq!(
        snapshot_dir(&env.path("out-a/a")),
        snapshot_dir(&env.path("a"))
    );
    // The stat cache does not vouch for removed content: committing the same folder again works.
    let again = env.commit(&["-b", "exp2", "--data", "b", "-m", "B again"]);
    env.ok(&["checkout", &again, "-o", "out-b"]);
    assert_eq!(
        snapshot_dir(&env.path("out-b/b")),
        snapshot_dir(&env.path("b"))
    );
    assert_eq!(fsck_ok(&env, "at the end"), 0);
}

#[test]
fn gc_racing_commits_never_removes_what_a_new_run_needs() {
    let env = Env::init();
    // Shared content: every commit below reuses it, so a gc that removed it from under a
    // commit would leave that commit's run broken.
    env.write("shared/base.bin", xof(40, 3_000_000));
    env.commit(&["-b", "scratch", "--data", "shared", "-m", "to be dropped"]);
    env.ok(&["branch", "-d", "scratch"]);
    let mut landed = Vec::new();
    let mut refused = 0;
    let mut overlapped = 0;
    for round in 0..4u64 {
        env.write("new/part.bin", xof(50 + round, 60_000_000));
        let branch = format!("race{round}");
        let mut committer = env
            .cmd()
            .args([
                "commit", "-q", "--data", "shared", "--data", "new", "-b", &branch, "-m",
            ])
            .arg(format!("round {round}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cairn");
        // gc with no grace period, over and over while the commit runs.
        let mut gcs = 0;
        let out = loop {
            let gc = env.run(&["gc", "--prune-now", "-q"]);
            assert!(gc.status.success(), "gc: {}", text(&gc.stderr));
            gcs += 1;
            if gcs > 400 {
                break None;
            }
            if committer.try_wait().unwrap().is_none() {
                overlapped += 1;
                continue;
            }
            break Some(());
        };
        assert!(out.is_some(), "the commit did not end");
        let done = committer.wait_with_output().unwrap();
        let err = text(&done.stderr);
        assert!(!err.contains("panicked"), "{err}");
        if done.status.success() {
            let id = text(&done.stdout).trim().to_string();
            // The run that landed is whole.
            assert_eq!(fsck_ok(&env, "after a gc race"), 0);
            let out = env
                .cmd()
                .args(["cat", &format!("{id}:data/shared/base.bin")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert_eq!(out.stdout, xof(40, 3_000_000));
            // Unreachable again, so the next round races for it too.
            env.ok(&["branch", "-d", &branch]);
            landed.push(id);
        } else {
            // The only acceptable failure: content it relied on was collected, said clearly.
            assert!(err.contains("concurrent gc"), "round {round}: {err}");
            refused += 1;
        }
        fsck_ok(&env, "after a gc race round");
    }
    eprintln!(
        "gc race: {overlapped} gc runs finished while a commit ran; {} commits landed, {refused} refused",
        landed.len()
    );
    assert!(overlapped >= 1, "no gc ran while a commit was running");
    // A refused commit succeeds when run again; gc then leaves exactly what refs reach.
    let last = env.commit(&["--data", "shared", "-m", "after the race"]);
    env.ok(&["gc", "--prune-now"]);
    assert_eq!(fsck_ok(&env, "at the end"), 0);
    let out = env
        .cmd()
        .args(["cat", &format!("{last}:data/shared/base.bin")])
        .output()
        .unwrap();
    assert_eq!(out.stdout, xof(40, 3_000_000));
}

// ---- 5. kill -9 -----------------------------------------------------------------------------

#[test]
fn sigkill_during_commit_leaves_a_sound_store() {
    let env = Env::init();
    env.write("big/model.bin", xof(17, 100_000_000));
    env.write("big/config.json", "{\"lr\": 0.1}\n");
    let input = snapshot_dir(&env.path("big"));
    let model = env.path("big/model.bin");
    let base = 1_600_000_000i64;
    let mut last = None;
    for i in 0..10u64 {
        // A new modification time each round, so the stat cache never vouches for the file and
        // every commit reads and stores it again.
        filetime::set_file_mtime(
            &model,
            filetime::FileTime::from_unix_time(base + i as i64, 0),
        )
        .unwrap();
        let mut child = spawn_quiet(&env, &["commit", "-q", "--data", "big", "-m", "crash"]);
        std::thread::sleep(Duration::from_millis(i * 33));
        let _ = child.kill();
        let _ = child.wait();

        let out = env.run(&["fsck"]);
        assert!(
            out.status.success(),
            "round {i}: fsck after SIGKILL: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let id = env.commit(&["--data", "big", "-m", "crash"]);
        let dest = format!("out{i}");
        env.ok(&["checkout", &id, "--data", "-o", &dest]);
        assert_eq!(
            snapshot_dir(&env.path(&dest).join("big")),
            input,
            "round {i}"
        );
        std::fs::remove_dir_all(env.path(&dest)).unwrap();
        last = Some(id);
    }
    assert_eq!(log_ids(&env, &["-n", "1"]), vec![last.unwrap()]);
    fsck_ok(&env, "at the end");
}

#[test]
fn sigkill_during_checkout_then_forced_rerun_restores_identical_files() {
    let env = Env::init();
    env.write("big/model.bin", xof(23, 100_000_000));
    env.write("big/small.txt", "small\n");
    env.write("big/nested/more.bin", xof(24, 1_000_000));
    let id = env.commit(&["--data", "big"]);
    let input = snapshot_dir(&env.path("big"));
    for (i, delay) in [0u64, 40, 90, 150, 220, 300].into_iter().enumerate() {
        let dest = format!("co{i}");
        let mut child = spawn_quiet(&env, &["checkout", &id, "-q", "-o", &dest]);
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let out = env.run(&["fsck"]);
        assert!(
            out.status.success(),
            "round {i}: fsck after a killed checkout: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        env.ok(&["checkout", &id, "-o", &dest, "--force"]);
        assert_eq!(
            without_temps(snapshot_dir(&env.path(&dest).join("big"))),
            input,
            "round {i}"
        );
        std::fs::remove_dir_all(env.path(&dest)).unwrap();
    }
}

#[test]
fn forced_checkout_after_a_killed_one_leaves_no_partial_temp_file() {
    let env = Env::init();
    env.write("big/model.bin", xof(29, 48_000_000));
    let id = env.commit(&["--data", "big"]);
    let input = snapshot_dir(&env.path("big"));
    let dest = env.path("co");
    // Kill the checkout while a temporary file is being written in the target (polling for
    // one); when none ever shows up there, kill it part-way instead.
    for attempt in 0..4u64 {
        let _ = std::fs::remove_dir_all(&dest);
        let mut child = spawn_quiet(&env, &["checkout", &id, "-q", "-o", "co"]);
        let mut seen = false;
        for _ in 0..20_000 {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if !temp_files(&dest).is_empty() {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if !seen && attempt == 3 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        if seen || (attempt == 3 && !status.success()) {
            break;
        }
    }
    fsck_ok(&env, "after a killed checkout");
    env.ok(&["checkout", &id, "-o", "co", "--force"]);
    assert_eq!(
        temp_files(&dest),
        Vec::<PathBuf>::new(),
        "a forced checkout left the killed one's partial temporary file behind"
    );
    assert_eq!(snapshot_dir(&dest.join("big")), input);
}

// ---- 6. format versioning -------------------------------------------------------------------

#[test]
fn newer_repository_format_is_refused_by_every_command() {
    let env = Env::init();
    env.write("d/f.txt", "f\n");
    env.commit(&["--data", "d"]);
    let cfg = env.path(".cairn/config");
    let old = std::fs::read_to_string(&cfg).unwrap();
    let new = old.replace("format = 1", "format = 99");
    assert_ne!(old, new, "no format line in {old}");
    std::fs::write(&cfg, new).unwrap();
    let commands: [&[&str]; 12] = [
        &["log"],
        &["show", "HEAD"],
        &["ls", "HEAD"],
        &["cat", "HEAD:data/d/f.txt"],
        &["checkout", "HEAD", "-o", "out"],
        &["commit", "-m", "x", "--data", "d"],
        &["branch"],
        &["branch", "exp"],
        &["tag", "v1"],
        &["switch", "main"],
        &["fsck"],
        &["gc", "--prune-now"],
    ];
    for args in commands {
        let err = env.fails(args);
        assert!(
            err.contains("newer") && err.contains("upgrade"),
            "cairn {args:?}: {err}"
        );
    }
    assert!(!env.path("out").exists());
    assert_eq!(
        packs(&env).len(),
        1,
        "a command wrote to a newer repository"
    );
}

#[test]
fn damaged_index_is_rebuilt_from_the_packs() {
    let env = Env::init();
    env.write("data/a.csv", "x,y\n1,2\n");
    env.write("model.bin", noise(5, 600_000));
    let first = env.commit(&["-m", "one", "--data", "data", "--artifact", "model.bin"]);
    env.write("model.bin", noise(6, 600_000));
    let second = env.commit(&["-m", "two", "--data", "data", "--artifact", "model.bin"]);
    env.ok(&["switch", "-c", "exp"]);
    let third = env.commit(&["-m", "three", "--param", "lr=0.1"]);
    env.ok(&["note", &second, "-m", "kept"]);
    env.ok(&[
        "model",
        "register",
        "m",
        &second,
        "--path",
        "artifacts/model.bin",
    ]);
    env.ok(&["tag", "v1", &first]);
    env.ok(&["tag", "gone", &first]);
    env.ok(&["tag", "moved", &first]);
    env.ok(&["tag", "-d", "gone"]);
    env.ok(&["tag", "-f", "moved", &third]);
    let tags_before = env.ok(&["tag"]);
    // Damage sled's files beyond reading: overwrite every file of the index with garbage.
    for e in std::fs::read_dir(env.path(".cairn/index"))
        .unwrap()
        .flatten()
    {
        if e.file_type().unwrap().is_file() {
            std::fs::write(e.path(), noise(1, 4096)).unwrap();
        }
    }
    let out = env.run(&["log"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "log should fail on a damaged index"
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let report = env.ok(&["fsck", "--rebuild-index"]);
    assert!(report.contains("rebuilt the index"), "{report}");
    fsck_ok(&env, "after the rebuild");
    // Tags come back from the tag journal: deleted ones stay deleted, moved ones moved.
    assert_eq!(env.ok(&["tag"]), tags_before);
    assert!(tags_before.contains("moved") && !tags_before.contains("gone"));
    // Branches, notes and the model come back; each branch at its newest run.
    assert_eq!(
        log_ids(&env, &["main"]),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(log_ids(&env, &["exp"])[0], third);
    assert!(env.ok(&["note", &second]).contains("kept"));
    assert!(env.ok(&["model", "ls"]).contains("latest v1"));
    let restored = env.tmp.path().join("restored");
    env.ok(&[
        "checkout",
        &second,
        "--artifacts",
        "-o",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(restored.join("model.bin")).unwrap(),
        noise(6, 600_000)
    );
    // The damaged index is kept aside, not deleted.
    let kept = std::fs::read_dir(env.path(".cairn"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.damaged-")
        });
    assert!(kept);
}
