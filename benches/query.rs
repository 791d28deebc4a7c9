//! Query and diff benchmark: `cargo bench --bench query`.
//!
//! 1. Builds a repository of N runs (default 10,000; `CAIRN_BENCH_RUNS`) through the library,
//!    then times a three-condition query with an ORDER BY over the query index
//!    (`summary::load_all` + filter + sort) against reading every run object and doing the same
//!    filtering on them.
//! 2. Builds two data folders of F files (default 100,000; `CAIRN_BENCH_FILES`) that differ in
//!    three files (one modified, one added, one removed), commits each as `--data`, and times
//!    `diff::diff_runs` of the two runs against reading the root tree alone, and against
//!    `diff -rq` of the two folders.
//!
//! Every figure is the median of 5 timed repetitions after one untimed warm-up, page cache
//! warm. Progress goes to stderr; a markdown table goes to stdout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn::capture::metrics::{Metrics, Point, Series};
use cairn::commit::{commit, CommitRequest};
use cairn::diff::{diff_runs, DiffOptions};
use cairn::progress::NoProgress;
use cairn::query::{parse_filter, parse_order, sort, RunSummary};
use cairn::repo::Repo;

const REPS: usize = 5;
const QUERY: &str = "params.optimizer = 'adam' and metrics.acc > 0.9 and params.lr < 0.01";
const ORDER: &str = "metrics.acc DESC, params.lr";

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Median wall time of `REPS` runs of `f` (after one warm-up); `f` returns a check value that
/// must be the same every time.
fn median<T: PartialEq + std::fmt::Debug>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let first = f();
    let mut times = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let t = Instant::now();
        let v = f();
        times.push(t.elapsed());
        assert_eq!(v, first, "result changed between repetitions");
    }
    times.sort();
    (times[REPS / 2], first)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `a / b`, with how many times faster or slower that is.
fn ratio(a: Duration, b: Duration) -> String {
    let r = a.as_secs_f64() / b.as_secs_f64();
    if r < 1.0 {
        format!("{r:.3} ({:.1}× faster)", 1.0 / r)
    } else {
        format!("{r:.1}")
    }
}

/// A deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn scalar(value: f64) -> Series {
    Series {
        points: vec![Point { step: 0, value }],
        scalar: true,
        final_value: None,
    }
}

fn build_runs(repo: &Repo, n: usize) -> Duration {
    let start = Instant::now();
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let base = 1_780_000_000_000i64;
    for i in 0..n {
        let mut series = BTreeMap::new();
        series.insert("acc".to_string(), scalar(0.5 + 0.5 * rng.unit()));
        series.insert("loss".to_string(), scalar(2.0 * rng.unit()));
        series.insert("epoch_time".to_string(), scalar(30.0 + 10.0 * rng.unit()));
        let req = CommitRequest {
            cwd: repo.root().to_path_buf(),
            message: format!("sweep {i}"),
            params: vec![
                format!(
                    "lr={}",
                    rng.pick(&["0.1", "0.03", "0.01", "0.003", "0.001", "0.0003"])
                ),
                format!("optimizer={}", rng.pick(&["adam", "sgd", "rmsprop"])),
                format!("batch={}", rng.pick(&["32", "64", "128", "256"])),
                format!("model.depth={}", rng.pick(&["18", "34", "50"])),
                format!("seed={i}"),
            ],
            metrics: Some(Metrics { series }),
            tags: vec![format!("team={}", rng.pick(&["vision", "nlp", "speech"]))],
            started_at: Some(base + i as i64 * 1000),
            ..Default::default()
        };
        commit(repo, &req, &NoProgress).expect("commit");
        if (i + 1) % 500 == 0 || i + 1 == n {
            let el = start.elapsed().as_secs_f64();
            eprintln!(
                "bench: {}/{n} runs committed ({el:.0} s, {:.1} ms/run)",
                i + 1,
                el * 1000.0 / (i + 1) as f64
            );
        }
    }
    start.elapsed()
}

/// Writes `files` small files under `dir` in folders of 1,000.
fn write_tree(dir: &Path, files: usize) {
    for i in 0..files {
        let sub = dir.join(format!("shard{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&sub).expect("mkdir");
        }
        std::fs::write(
            sub.join(format!("sample{i:06}.txt")),
            format!("sample {i}\n"),
        )
        .expect("write");
    }
}

fn main() {
    let n = env_usize("CAIRN_BENCH_RUNS", 10_000);
    let files = env_usize("CAIRN_BENCH_FILES", 100_000).max(1000);
    let tmp = tempfile::Builder::new()
        .prefix("cairn-query-bench-")
        .tempdir()
        .expect("tempdir");

    // ---- 1. query over N runs -----------------------------------------------------------
    let repo = Repo::init(&tmp.path().join("runs")).expect("init");
    eprintln!("bench: committing {n} runs through the library");
    let build = build_runs(&repo, n);

    let session = repo.store().session().expect("session");
    let filter = parse_filter(QUERY).expect("query");
    let order = parse_order(ORDER).expect("order");
    // What `cairn find` does: the library's search over the query index.
    let search = cairn::search::Search {
        filter: Some(QUERY.into()),
        order: Some(ORDER.into()),
        ..Default::default()
    };
    let query = || {
        let all = cairn::summary::load_all(&session).expect("load_all");
        let ids =
            cairn::search::select(&session, &cairn::search::Selection::All, &all).expect("select");
        let found = cairn::search::search(&ids, &all, &search).expect("search");
        (found.total, found.runs.first().map(|r| r.id.clone()))
    };
    eprintln!("bench: timing the indexed query");
    let (t_query, (matches, best)) = median(query);
    let read_all = || {
        let ids = session.all_runs().expect("all_runs");
        let mut rows: Vec<RunSummary> = ids
            .iter()
            .map(|id| RunSummary::of(id, &session.read_run(id).expect("read_run")))
            .filter(|s| filter.matches(s))
            .collect();
        sort(&mut rows, &order);
        (rows.len(), rows.first().map(|r| r.id.clone()))
    };
    eprintln!("bench: timing reading every run object");
    let (t_read, (matches_ref, best_ref)) = median(read_all);
    assert_eq!(
        (matches, &best),
        (matches_ref, &best_ref),
        "the index and the run objects disagree"
    );
    let runs_total = session.all_runs().expect("all_runs").len();
    assert_eq!(runs_total, n);
    drop(session);

    // ---- 2. diff of two large data trees --------------------------------------------------
    let data = tmp.path().join("data");
    let (da, db) = (data.join("a"), data.join("b"));
    eprintln!("bench: writing two folders of {files} files");
    let t = Instant::now();
    write_tree(&da, files);
    write_tree(&db, files);
    // Three differences: one modified, one removed, one added.
    std::fs::write(db.join("shard000/sample000007.txt"), "changed\n").expect("modify");
    let mid = files / 2;
    std::fs::remove_file(db.join(format!("shard{:03}/sample{mid:06}.txt", mid / 1000)))
        .expect("remove");
    std::fs::write(db.join("shard000/extra.txt"), "new\n").expect("add");
    eprintln!(
        "bench: folders written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let repo2 = Repo::init(&tmp.path().join("trees")).expect("init");
    let commit_data = |dir: &Path, msg: &str| {
        let t = Instant::now();
        let req = CommitRequest {
            cwd: repo2.root().to_path_buf(),
            message: msg.to_string(),
            data: vec![(Some("ds".to_string()), dir.to_path_buf())],
            ..Default::default()
        };
        let out = commit(&repo2, &req, &NoProgress).expect("commit data");
        eprintln!(
            "bench: committed {msg} ({files} files) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        out.id
    };
    let ia = commit_data(&da, "tree a");
    let ib = commit_data(&db, "tree b");

    let session = repo2.store().session().expect("session");
    let ra = session.read_run(&ia).expect("run a");
    let rb = session.read_run(&ib).expect("run b");
    let opts = DiffOptions::default();
    eprintln!("bench: timing the tree diff");
    let (t_diff, changed) = median(|| {
        let d = diff_runs(&session, ia, &ra, ib, &rb, &opts).expect("diff");
        d.data
            .iter()
            .flat_map(|x| x.files.iter().map(|f| f.file.path.clone()))
            .collect::<Vec<_>>()
    });
    assert_eq!(changed.len(), 3, "expected 3 changed files: {changed:?}");
    let root = rb.data["ds"].id;
    let (t_root, entries) = median(|| session.read_tree(&root).expect("tree").entries.len());
    // What the diff cannot avoid reading: both roots and, on each side, the folders that hold
    // a change.
    let shards: std::collections::BTreeSet<&str> = changed
        .iter()
        .filter_map(|p| p.split_once('/').map(|(dir, _)| dir))
        .collect();
    let needed: Vec<cairn::ObjectId> = [ra.data["ds"].id, root]
        .into_iter()
        .flat_map(|r| {
            let tree = session.read_tree(&r).expect("tree");
            let mut ids = vec![r];
            ids.extend(
                tree.entries
                    .iter()
                    .filter(|e| shards.contains(e.name.as_str()))
                    .map(|e| e.id),
            );
            ids
        })
        .collect();
    let (t_needed, needed_entries) = median(|| {
        needed
            .iter()
            .map(|id| session.read_tree(id).expect("tree").entries.len())
            .sum::<usize>()
    });
    drop(session);
    eprintln!("bench: timing diff -rq");
    let (t_diffrq, lines) = median(|| {
        let out = Command::new("diff")
            .arg("-rq")
            .arg(&da)
            .arg(&db)
            .output()
            .expect("run diff -rq");
        assert_eq!(
            out.status.code(),
            Some(1),
            "diff -rq: folders should differ"
        );
        String::from_utf8_lossy(&out.stdout).lines().count()
    });
    assert_eq!(lines, 3, "diff -rq should report 3 differences");

    // ---- report ---------------------------------------------------------------------------
    println!("# cairn query and diff benchmark\n");
    println!(
        "- {n} runs (committed through the library in {:.0} s, {:.1} ms/run); query `{QUERY}` \
         ORDER BY `{ORDER}`: {matches} matches",
        build.as_secs_f64(),
        build.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "- data trees: {files} files in folders of 1,000 ({entries} root entries), 3 differences"
    );
    println!(
        "- median of {REPS} after one warm-up; warm page cache; release build; {} cores\n",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
    );
    println!("| measurement | time | reference | reference time | ratio time / reference |");
    println!("|---|---|---|---|---|");
    println!(
        "| query: `summary::load_all` + 3-condition filter + order by | {} | read every run object + same filter and sort | {} | {} |",
        ms(t_query),
        ms(t_read),
        ratio(t_query, t_read)
    );
    println!(
        "| `diff::diff_runs` of two {files}-file data snapshots, 3 files differ | {} | `read_tree` of the root only | {} | {} |",
        ms(t_diff),
        ms(t_root),
        ratio(t_diff, t_root)
    );
    println!(
        "| same diff | {} | `read_tree` of the {} trees on changed paths ({needed_entries} entries) | {} | {} |",
        ms(t_diff),
        needed.len(),
        ms(t_needed),
        ratio(t_diff, t_needed)
    );
    println!(
        "| same diff | {} | `diff -rq` of the two folders | {} | {} |",
        ms(t_diff),
        ms(t_diffrq),
        ratio(t_diff, t_diffrq)
    );
}
