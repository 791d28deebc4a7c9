//! Writes the seed corpus of every fuzz target to `fuzz/corpus/<target>/`, using cairn's own
//! encoders so the seeds are valid inputs that reach deep into each decoder.
//!
//! Run from the `fuzz` folder: `cargo run --example seed_corpus`. It replaces the seed files
//! it names and leaves any other file alone. Re-run it when an encoding changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use cairn::object::{
    hash_object, ArtifactsRef, ChunkRef, ChunkedFile, CodeState, DataRef, EntryKind, GitInfo, Kind,
    MetricSummary, ModelEvent, Note, Run, Tree, TreeEntry, RUN_FORMAT,
};
use cairn::remote::packidx::{self, IdxEntry};
use cairn::store::codec::compress;
use cairn::store::pack::{PackWriter, PACK_HEADER_LEN};
use cairn::store::{Codec, CompressionPolicy, Location, RefValue, StatEntry, StatFolder};
use cairn::ObjectId;

fn id(n: u8) -> ObjectId {
    ObjectId::from_bytes([n; 32])
}

fn with_tag(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(content);
    out
}

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create corpus folder");
        fs::write(dir.join(name), bytes).expect("write seed");
    }
}

fn tree() -> Tree {
    let entry = |name: &str, kind, size, n| TreeEntry {
        name: name.into(),
        kind,
        size,
        id: id(n),
    };
    Tree::from_entries(vec![
        entry("train.py", EntryKind::File, 1200, 1),
        entry("run.sh", EntryKind::Executable, 80, 2),
        entry("latest", EntryKind::Symlink, 9, 3),
        entry("data", EntryKind::Tree, 4096, 4),
        entry("naïve ünïcode.txt", EntryKind::File, 3, 5),
    ])
    .expect("valid tree")
}

fn run() -> Run {
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "loss".to_string(),
        MetricSummary {
            last: Some(0.125),
            min: Some(0.1),
            max: Some(2.5),
            count: 100,
            last_step: 99,
            series: Some(id(9)),
            final_value: None,
        },
    );
    metrics.insert(
        "acc".to_string(),
        MetricSummary {
            last: None,
            min: None,
            max: None,
            count: 1,
            last_step: 0,
            series: None,
            final_value: None,
        },
    );
    let mut data = BTreeMap::new();
    data.insert(
        "train".to_string(),
        DataRef {
            kind: "tree".into(),
            id: id(10),
            size: 1 << 20,
            files: 12,
            path: Some("data/train".into()),
            executable: false,
        },
    );
    let params = serde_json::json!({
        "lr": 0.01, "epochs": 10, "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
        "seed": -1, "flag": true, "nothing": null
    });
    let serde_json::Value::Object(params) = params else {
        unreachable!()
    };
    Run {
        format: RUN_FORMAT,
        parents: vec![id(7)],
        branch: Some("main".into()),
        message: "Baseline\n\nlonger text".into(),
        author: "A. User <a@example.com>".into(),
        started_at: 1_780_000_000_000,
        ended_at: 1_780_000_060_000,
        host: "trainer-1".into(),
        command: Some(vec!["python".into(), "train.py".into()]),
        cwd: Some(".".into()),
        status: "completed".into(),
        exit_code: Some(0),
        code: Some(CodeState {
            git: Some(GitInfo {
                commit: Some("a".repeat(40)),
                branch: Some("main".into()),
                remote_url: None,
                dirty: true,
                diff: Some(id(11)),
            }),
            tree: id(12),
            size: 5000,
            files: 3,
            path: ".".into(),
        }),
        params,
        metrics,
        data,
        artifacts: Some(ArtifactsRef {
            tree: id(13),
            size: 100,
            files: 1,
        }),
        tags: [("team".to_string(), "vision".to_string())].into(),
        env: [("CUDA_VISIBLE_DEVICES".to_string(), "0".to_string())].into(),
        stale: Vec::new(),
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let c = Corpus { root };

    // Objects.
    let t = tree();
    c.put("object_tree", "empty", Tree::default().encode());
    c.put("object_tree", "five-entries", t.encode());
    c.put("object_tree", "names", b"Na.txt\nb\n.git\nsub/dir\n");
    let chunked = ChunkedFile {
        chunks: vec![
            ChunkRef {
                id: id(1),
                size: 1 << 20,
            },
            ChunkRef {
                id: id(2),
                size: 65_536,
            },
            ChunkRef {
                id: id(3),
                size: 17,
            },
        ],
    };
    c.put("object_chunked", "empty", ChunkedFile::default().encode());
    c.put("object_chunked", "three-chunks", chunked.encode());
    let r = run();
    let minimal = br#"{"format":1,"started_at":0,"ended_at":5}"#;
    let note = Note {
        format: 1,
        run: id(20),
        text: "lr too high".into(),
        author: "A. User <a@example.com>".into(),
        time: 1_780_000_000_000,
        previous: Some(id(21)),
    };
    let register = ModelEvent {
        format: 1,
        model: "resnet".into(),
        action: "register".into(),
        version: Some(1),
        run: Some(id(22)),
        path: Some("artifacts/model.pt".into()),
        content: Some(id(23)),
        stage: None,
        from_version: None,
        message: "first".into(),
        author: "A. User".into(),
        time: 1_780_000_000_000,
        previous: None,
    };
    let stage = ModelEvent {
        action: "stage".into(),
        stage: Some("production".into()),
        from_version: Some(1),
        version: Some(2),
        run: None,
        path: None,
        content: None,
        previous: Some(id(24)),
        ..register.clone()
    };
    c.put("object_json", "run-full", with_tag(0, &r.encode()));
    c.put("object_json", "run-minimal", with_tag(0, minimal));
    c.put("object_json", "note", with_tag(1, &note.encode()));
    c.put(
        "object_json",
        "model-register",
        with_tag(2, &register.encode()),
    );
    c.put("object_json", "model-stage", with_tag(2, &stage.encode()));

    // A pack of real records, written by the pack writer.
    let dir = std::env::temp_dir().join(format!("cairn-seed-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("scratch folder");
    let mut w = PackWriter::create(&dir).expect("pack writer");
    let text = b"step,loss\n0,2.5\n1,1.25\n2,0.625\n".repeat(8);
    let objects: Vec<(Kind, Vec<u8>)> = vec![
        (Kind::Blob, b"hello".to_vec()),
        (Kind::Blob, text.clone()),
        (Kind::Tree, t.encode()),
        (Kind::Chunked, chunked.encode()),
        (Kind::Run, r.encode()),
        (Kind::Note, note.encode()),
        (Kind::Model, register.encode()),
    ];
    let mut idx = Vec::new();
    let mut locs = Vec::new();
    for (kind, raw) in &objects {
        let oid = hash_object(*kind, raw);
        let (codec, packed) = compress(raw, CompressionPolicy::default());
        let stored = packed.as_deref().unwrap_or(raw);
        let loc = w
            .append(&oid, *kind, codec, raw.len() as u64, stored)
            .expect("append");
        idx.push(IdxEntry {
            id: oid,
            offset: loc.offset,
            stored_len: loc.stored_len,
            raw_len: loc.raw_len,
            kind: *kind,
            codec,
        });
        locs.push(loc);
    }
    w.sync().expect("sync pack");
    let pack = fs::read(w.path()).expect("read pack");
    drop(w);
    fs::remove_dir_all(&dir).ok();
    c.put("pack_file", "seven-records", &pack);
    c.put(
        "pack_file",
        "header-only",
        &pack[..PACK_HEADER_LEN as usize],
    );
    let first_two = locs[2].offset as usize;
    c.put("pack_file", "two-records", &pack[..first_two]);

    // Compression.
    let cap = |n: usize| (n as u64).to_le_bytes().to_vec();
    let (codec, packed) = compress(&text, CompressionPolicy::default());
    assert_eq!(codec, Codec::Zstd);
    let frame = packed.expect("text compresses");
    c.put(
        "zstd_decode",
        "frame",
        [cap(text.len()), frame.clone()].concat(),
    );
    c.put(
        "zstd_decode",
        "frame-cap-short",
        [cap(text.len() - 1), frame].concat(),
    );
    c.put("zstd_decode", "plain", [cap(5), b"hello".to_vec()].concat());

    // Remote pack index.
    c.put("pack_index", "seven-entries", packidx::encode(idx.clone()));
    c.put(
        "pack_index",
        "one-entry",
        packidx::encode(idx[..1].to_vec()),
    );
    c.put("pack_index", "empty", packidx::encode(Vec::new()));

    // Index database values.
    let loc = Location {
        time: 1_780_000_000,
        ..locs[2]
    };
    c.put(
        "db_values",
        "ref-id",
        with_tag(0, &RefValue::Id(id(5)).encode()),
    );
    c.put(
        "db_values",
        "ref-symbolic",
        with_tag(0, &RefValue::Symbolic("refs/heads/main".into()).encode()),
    );
    let stat = StatEntry {
        size: 1200,
        mtime_ns: 1_780_000_000_123_456_789,
        ctime_ns: 1_780_000_000_123_456_789,
        ino: 424_242,
        id: id(6),
    };
    let folder = StatFolder::from_files(vec![
        (b"model.bin".to_vec(), stat),
        (b"a.csv".to_vec(), StatEntry { size: 7, ..stat }),
    ]);
    c.put("db_values", "stat", with_tag(1, &folder.encode()));
    c.put("db_values", "location", with_tag(2, &loc.encode()));

    // Names and paths.
    for (i, name) in [
        "main",
        "exp/lr-0.01",
        "v1.0",
        "sweep_3",
        "a..b",
        "x.lock",
        "production",
    ]
    .iter()
    .enumerate()
    {
        c.put("ref_name", &format!("name-{i}"), name);
    }
    for (i, (rel, target)) in [
        ("a/b/link", "../c"),
        ("a/b/link", "../../../c"),
        ("a/link", "l/../x"),
        ("x", "/etc/passwd"),
        ("data/latest", "./runs/.CAIRN/x"),
        ("a/../b", "c"),
    ]
    .iter()
    .enumerate()
    {
        let mut seed = vec![rel.len() as u8];
        seed.extend_from_slice(rel.as_bytes());
        seed.extend_from_slice(target.as_bytes());
        c.put("path_validate", &format!("link-{i}"), seed);
    }

    // RUN arguments.
    let hex = id(0xab).to_hex();
    for (i, spec) in [
        "main",
        "HEAD~2",
        "a~1~2^",
        "@^",
        "model:resnet",
        "model:resnet@v3",
        "model:resnet@production",
        hex.as_str(),
        "abcd12",
    ]
    .iter()
    .enumerate()
    {
        c.put("revision", &format!("spec-{i}"), spec);
    }

    // Queries and orders.
    for (i, q) in [
        "metrics.acc > 0.9 and params.optimizer = 'adam' and tags.team = 'vision'",
        "metrics.`eval.loss` < 0.5 AND metrics.eval.loss >= 1e-3",
        "params.model IN ('resnet', 'vit') and params.name ILIKE '%sweep%'",
        "params.optimizer NOT IN (\"sgd\") AND params.lr != -0.5",
        "attributes.status != 'failed' and attributes.start_time >= '2026-11-01'",
        "attributes.end_time < '2026-11-01T10:00:00Z' and attributes.run_name LIKE 'a_c'",
        "metrics.acc DESC, params.lr ASC, attributes.start_time",
    ]
    .iter()
    .enumerate()
    {
        c.put("query", &format!("query-{i}"), q);
    }

    // Params files and assignments.
    c.put(
        "params",
        "yaml",
        with_tag(
            0,
            b"lr: 0.01\nepochs: 10\nbase: &b {depth: 50}\nmodel:\n  <<: *b\n  name: resnet\n\
              betas: [0.9, 0.999]\nnan: .nan\n1: one\n",
        ),
    );
    c.put(
        "params",
        "json",
        with_tag(
            1,
            br#"{"lr": 0.01, "optimizer": {"name": "adam", "eps": 1e-8}, "tags": ["a", "b"]}"#,
        ),
    );
    c.put(
        "params",
        "toml",
        with_tag(
            2,
            b"lr = 0.01\n[optimizer]\nname = \"adam\"\nwhen = 2026-11-01T10:00:00Z\ninf = inf\n",
        ),
    );
    c.put("params", "assignment", with_tag(1, b"optimizer.lr=0.01"));
    c.put("params", "assignment-quoted", with_tag(0, b"name='a b'"));

    // Metrics files.
    c.put(
        "metrics",
        "json-map",
        with_tag(0, br#"{"acc": 0.93, "val": {"loss": 0.2}}"#),
    );
    c.put(
        "metrics",
        "json-records",
        with_tag(
            0,
            br#"[{"step": 0, "loss": 2.5}, {"step": 1, "loss": 1.25, "time": 3}]"#,
        ),
    );
    c.put("metrics", "json-bad-name", with_tag(0, br#"{"a\nb": "x"}"#));
    c.put(
        "metrics",
        "yaml",
        with_tag(1, b"acc: 0.93\nval:\n  loss: .nan\n"),
    );
    c.put(
        "metrics",
        "csv",
        with_tag(
            2,
            b"step,loss,acc,time\n0,2.5,0.1,0\n1,1.25,,1\n2,nan,0.5,2\n",
        ),
    );
    c.put(
        "metrics",
        "tsv",
        with_tag(3, b"\tstep\tloss\n0\t0\t2.5\n1\t1\t1.25\n"),
    );
    c.put(
        "metrics",
        "jsonl",
        with_tag(4, b"{\"step\": 0, \"loss\": 2.5}\n\n{\"loss\": 1.25, \"wall_time\": 1.5}\n{\"step\": 3.0, \"m\": {\"a\": 1}}\n"),
    );
}
