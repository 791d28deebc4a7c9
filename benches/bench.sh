#!/usr/bin/env bash
# Performance benchmark for cairn: every figure is measured next to a reference tool
# (cp, b3sum, git) in the same run, and reported as a ratio to it.
#
# Usage: benches/bench.sh            (from anywhere; takes several minutes)
#
# Environment:
#   CAIRN_BENCH_GEN   the shared benchmark workload generator (gen_workloads.py);
#                     default: ../shared/bench/gen_workloads.py relative to the repository root
#   CAIRN_BENCH_DIR   folder for the workloads, a Python venv (for numpy) and scratch repos;
#                     default: ${TMPDIR:-/tmp}/cairn-bench. Generated once, reused afterwards.
#   CAIRN_BENCH_REPS  repetitions per measurement (default 3; the median is reported)
#   CAIRN_BENCH_SCALE 1 (default): the size-scaling rows (a 4 GiB file, 100,000 small files);
#                     0: skip them; million: also 1,000,000 small files (minutes, ~5 GB of disk)
#
# All measurements run with a WARM page cache: nothing is dropped from the cache, for cairn and
# for the references alike. Dirty pages are written back (`sync`, untimed) before each timed
# command so that one measurement's writeback does not land in the next one's time.
#
# Output: a markdown table on stdout, also written to target/bench-results.md.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="${CAIRN_BENCH_GEN:-$ROOT/../shared/bench/gen_workloads.py}"
DIR="${CAIRN_BENCH_DIR:-${TMPDIR:-/tmp}/cairn-bench}"
REPS="${CAIRN_BENCH_REPS:-3}"
OUT="$ROOT/target/bench-results.md"
GIB=1073741824

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

case "$DIR" in
"$ROOT" | "$ROOT"/*) die "CAIRN_BENCH_DIR must be outside the repository" ;;
esac

# ---------------------------------------------------------------------------------------------
# Build.
log "building (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
CAIRN="$ROOT/target/release/cairn"
[ -x "$CAIRN" ] || die "no binary at target/release/cairn"

# ---------------------------------------------------------------------------------------------
# Workloads.
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
# The stat cache trusts only files older than 2 s; fresh workloads must age a little.
newest=$(find "$W3" -type f -printf '%C@\n' | sort -n | tail -1)
age=$(python3 -c "import time; print(time.time() - $newest)")
if python3 -c "import sys; sys.exit(0 if $age < 3 else 1)"; then
    sleep 3
fi
[ "$(stat -c %s "$W1")" -eq "$GIB" ] || die "w1.bin is not 1 GiB"

HAVE_B3SUM=0
command -v b3sum >/dev/null 2>&1 && HAVE_B3SUM=1

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
S="$DIR/scratch"
rm -rf "$S"
mkdir -p "$S"
trap 'rm -rf "$S"' EXIT

# ---------------------------------------------------------------------------------------------
# Helpers.

# Runs a command with output discarded, and sets T to its wall time in seconds and RSS_KB to
# its peak resident memory in KiB (GNU time's %M: the largest RSS of the process and, for a shell,
# of its largest child).
T=0
RSS_KB=0
timeit() {
    local s e
    # `cairn` is a shell function; GNU time runs programs.
    if [ "$1" = cairn ]; then
        shift
        set -- "$CAIRN" -q "$@"
    fi
    s=$(date +%s%N)
    /usr/bin/time -o "$S/rss" -f %M "$@" >/dev/null
    e=$(date +%s%N)
    T=$(python3 -c "print(f'{($e - $s) / 1e9:.3f}')")
    RSS_KB=$(tail -n 1 "$S/rss")
}

# Samples, as "key value" lines; `rec KEY` records T under KEY and RSS_KB under rss_KEY.
SAMPLES="$S/samples"
: >"$SAMPLES"
rec() {
    echo "$1 ${2:-$T}" >>"$SAMPLES"
    [ $# -eq 1 ] && echo "rss_$1 $RSS_KB" >>"$SAMPLES"
    return 0
}

cairn() { "$CAIRN" -q "$@"; }
GIT=(git -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false
    -c gc.auto=0 -c core.hooksPath=/dev/null -c init.defaultBranch=main)

packs_bytes() { find "$1/.cairn/packs" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f\n", s}'; }
store_bytes() { du -sb "$1/.cairn" | cut -f1; }

# Hard-links (or, across filesystems, copies) a workload file to the artifact path, so that
# w1 and w2 are committed under the same name.
place() {
    rm -f "$2"
    ln "$1" "$2" 2>/dev/null || cp --reflink=never "$1" "$2"
}

cd "$S"

# ---------------------------------------------------------------------------------------------
# 1, 2, 5, 6b: the 1 GiB checkpoint.
for i in $(seq "$REPS"); do
    log "checkpoint round $i/$REPS"
    R="$S/r1"
    rm -rf "$R" "$S/model.bin" "$S/cp.bin" "$S/co" "$S/co-cp.bin"
    mkdir -p "$R"
    place "$W1" "$S/model.bin"
    cairn -C "$R" init

    # 1. commit of w1 vs cp.
    sync
    timeit cairn -C "$R" commit -m w1 --artifact "$S/model.bin"
    rec commit_w1
    run1=$("$CAIRN" -C "$R" log -n 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
    sync
    timeit cp --reflink=never "$W1" "$S/cp.bin"
    rec cp_w1
    sync
    rm -f "$S/cp.bin"
    timeit bash -c 'cp --reflink=never "$1" "$2" && sync "$2"' _ "$W1" "$S/cp.bin"
    rec cpsync_w1
    rm -f "$S/cp.bin"
    if [ "$HAVE_B3SUM" = 1 ]; then
        timeit b3sum "$W1"
        rec b3sum_w1
    fi
    timeit cat "$W1"
    rec cat_w1

    # 6b. fsck of the w1 store vs b3sum / cp.
    sync
    timeit cairn -C "$R" fsck
    rec fsck_w1

    # 5. checkout of the w1 run vs cp.
    sync
    timeit cairn -C "$R" checkout "$run1" -o "$S/co"
    rec checkout_w1
    cmp -s "$W1" "$S/co/model.bin" || die "checkout of w1 differs from w1.bin"
    sync
    timeit cp --reflink=never "$W1" "$S/co-cp.bin"
    rec cp2_w1
    rm -rf "$S/co" "$S/co-cp.bin"

    # 2. second version: w2 under the same name.
    before_p=$(packs_bytes "$R")
    before_s=$(store_bytes "$R")
    place "$W2" "$S/model.bin"
    sync
    timeit cairn -C "$R" commit -m w2 --artifact "$S/model.bin"
    rec commit_w2
    after_p=$(packs_bytes "$R")
    after_s=$(store_bytes "$R")
    rec w2_packs_added "$((after_p - before_p))"
    rec w2_store_added "$((after_s - before_s))"
    rm -rf "$R" "$S/model.bin"
done

# ---------------------------------------------------------------------------------------------
# 1e: the same commit with the repository and the file in memory (tmpfs), next to `cp` there:
# what cairn itself costs, without the disk's write speed in the way. Skipped without a tmpfs
# at CAIRN_BENCH_MEMDIR (default /dev/shm) with 3 GiB free.
MEM="${CAIRN_BENCH_MEMDIR:-/dev/shm}"
HAVE_MEM=0
if [ -d "$MEM" ] && [ -w "$MEM" ] && [ "$(stat -f -c %T "$MEM")" = tmpfs ] &&
    [ "$(df -B1 --output=avail "$MEM" | tail -1)" -gt $((3 * GIB)) ]; then
    HAVE_MEM=1
    M="$(mktemp -d "$MEM/cairn-bench.XXXXXX")"
    trap 'rm -rf "$S" "$M"' EXIT
    cp --reflink=never "$W1" "$M/model.bin"
    for i in $(seq "$REPS"); do
        log "in-memory checkpoint round $i/$REPS"
        rm -rf "$M/r" "$M/cp.bin"
        mkdir -p "$M/r"
        cairn -C "$M/r" init
        timeit cairn -C "$M/r" commit -m w1 --artifact "$M/model.bin"
        rec commit_w1_mem
        timeit cp --reflink=never "$M/model.bin" "$M/cp.bin"
        rec cp_w1_mem
    done
    rm -rf "$M"
fi

# ---------------------------------------------------------------------------------------------
# 3, 4: 20,000 small files.
log "copying w3 for git"
cp -a "$W3" "$S/gitw3"
for i in $(seq "$REPS"); do
    log "small-files round $i/$REPS"
    R="$S/r3"
    rm -rf "$R" "$S/gitw3/.git"
    mkdir -p "$R"
    cairn -C "$R" init

    # 3. first commit of w3 vs git init + add + commit.
    sync
    timeit cairn -C "$R" commit -m w3 --data "$W3"
    rec commit_w3
    sync
    timeit bash -c 'cd "$1" && shift && "$@" init -q && "$@" add -A && "$@" commit -q -m w3' \
        _ "$S/gitw3" "${GIT[@]}"
    rec git_commit_w3

    # 4. re-commit of unchanged w3 (third commit, stat cache warm) vs git status.
    cairn -C "$R" commit -m w3-again --data "$W3" >/dev/null
    sync
    timeit cairn -C "$R" commit -m w3-third --data "$W3"
    rec recommit_w3
    sync
    timeit bash -c 'cd "$1" && shift && "$@" status' _ "$S/gitw3" "${GIT[@]}"
    rec git_status_w3
    rm -rf "$R"
done
rm -rf "$S/gitw3"

# ---------------------------------------------------------------------------------------------
# 6a. `cairn log` while a commit of w1 is running.
for i in $(seq "$REPS"); do
    log "log-during-commit round $i/$REPS"
    R="$S/r6"
    rm -rf "$R" "$S/model.bin"
    mkdir -p "$R"
    place "$W1" "$S/model.bin"
    cairn -C "$R" init
    cairn -C "$R" commit -m first -p lr=0.1 >/dev/null
    sync
    "$CAIRN" -q -C "$R" commit -m w1 --artifact "$S/model.bin" >/dev/null &
    bg=$!
    sleep 0.3
    timeit cairn -C "$R" log
    rec log_during_commit
    if kill -0 "$bg" 2>/dev/null; then rec log_overlapped 1; else rec log_overlapped 0; fi
    wait "$bg"
    timeit cairn -C "$R" log
    rec log_idle
    rm -rf "$R" "$S/model.bin"
done

# ---------------------------------------------------------------------------------------------
# 7, 8, 9: size scaling. A commit's memory must not depend on the size of a file (7 beside 1)
# and must grow with the number of files at most at git's rate (8, 9: `git add -A` of the same
# files is the reference, in time and in memory).
SCALE="${CAIRN_BENCH_SCALE:-1}"
# Many small files in 200 folders (2-6 KiB of random bytes each), generated once.
gen_files() {
    [ -f "$1/.complete" ] && return 0
    log "generating $2 small files in $1"
    rm -rf "$1"
    python3 - "$1" "$2" <<'GEN'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
per = n // 200
for d in range(200):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(per):
        with open(f"{root}/d{d:03}/f{f:05}.bin", "wb") as fh:
            fh.write(rng.randbytes(rng.randint(2048, 6144)))
open(f"{root}/.complete", "w").close()
GEN
}
many_files() {
    local key=$1 files=$2
    for i in $(seq "$REPS"); do
        log "$key round $i/$REPS"
        R="$S/r-$key"
        rm -rf "$R" "$files/.git"
        mkdir -p "$R"
        cairn -C "$R" init
        sync
        timeit cairn -C "$R" commit -m many --data "$files"
        rec "commit_$key"
        sync
        timeit bash -c 'cd "$1" && shift && "$@" init -q && "$@" add -A' _ "$files" "${GIT[@]}"
        rec "gitadd_$key"
        rm -rf "$R" "$files/.git"
    done
}
if [ "$SCALE" != 0 ]; then
    W4G="$DIR/w4g.bin"
    if [ ! -f "$DIR/.w4g-complete" ]; then
        log "generating a 4 GiB file of random bytes"
        head -c $((4 * GIB)) /dev/urandom >"$W4G"
        touch "$DIR/.w4g-complete"
    fi
    for i in $(seq "$REPS"); do
        log "4 GiB round $i/$REPS"
        R="$S/r7"
        rm -rf "$R" "$S/big.bin"
        mkdir -p "$R"
        place "$W4G" "$S/big.bin"
        cairn -C "$R" init
        sync
        timeit cairn -C "$R" commit -m big --artifact "$S/big.bin"
        rec commit_4g
        sync
        timeit cp --reflink=never "$W4G" "$S/cp.bin"
        rec cp_4g
        rm -rf "$R" "$S/big.bin" "$S/cp.bin"
    done
    gen_files "$DIR/files100k" 100000
    many_files 100k "$DIR/files100k"
    if [ "$SCALE" = million ]; then
        gen_files "$DIR/files1m" 1000000
        many_files 1m "$DIR/files1m"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Report.
log "writing the report"
mkdir -p "$ROOT/target"
LOAD_START="$LOAD_START" HAVE_MEM="$HAVE_MEM" python3 - "$SAMPLES" "$HAVE_B3SUM" "$REPS" "$ROOT" >"$OUT" <<'PY'
import collections, datetime, os, platform, statistics, subprocess, sys

samples_path, have_b3, reps, root = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
S = collections.defaultdict(list)
for line in open(samples_path):
    k, v = line.split()
    S[k].append(float(v))
med = lambda k: statistics.median(S[k])
GIB = 1 << 30

def paired(a, b):
    """Median of the per-round ratios a/b (each pair measured back to back)."""
    return statistics.median(x / y for x, y in zip(S[a], S[b]))

def fmt(x):
    return f"{x:.3f}"

def status(value, op, target):
    ok = value <= target if op == "<=" else value < target
    return "met" if ok else "**MISSED**"

def rss(k):
    """Median peak RSS of key k in MiB, or a dash when not measured."""
    v = S.get("rss_" + k)
    return f"{statistics.median(v) / 1024:.0f}" if v else "–"

rows = []
def row(n, what, cairn_k, ref_name, ref_k, target=None, op="<="):
    if cairn_k not in S or ref_k not in S:
        return
    r = paired(cairn_k, ref_k)
    tgt = f"{op.replace('<=', '≤')} {target}" if target is not None else "–"
    st = status(r, op, target) if target is not None else "info"
    rows.append(f"| {n} | {what} | {ref_name} | **{r:.2f}** | {tgt} | {st} | "
                f"{fmt(med(cairn_k))} | {fmt(med(ref_k))} | {rss(cairn_k)} | {rss(ref_k)} |")

added = med("w2_packs_added")
added_store = med("w2_store_added")
overl = int(sum(S["log_overlapped"]))

row("1", "commit w1.bin (1 GiB) as artifact, fresh repo", "commit_w1", "`cp` w1.bin", "cp_w1", 2.0)
row("1b", "same commit", "commit_w1", "`cp` + `sync` of the copy", "cpsync_w1")
if have_b3:
    row("1c", "same commit", "commit_w1", "`b3sum` w1.bin", "b3sum_w1")
row("1d", "same commit", "commit_w1", "`cat` w1.bin (page-cache read)", "cat_w1")
if os.environ.get("HAVE_MEM") == "1":
    row("1e", "same commit, repository and file on tmpfs (no disk)", "commit_w1_mem",
        "`cp` w1.bin on that tmpfs", "cp_w1_mem")
pct = 100 * added / GIB
rows.append(f"| 2 | commit w2.bin (2% changed) after w1, same name | bytes added to packs / 1 GiB | "
            f"**{pct:.2f}%** | < 10% | {status(pct, '<', 10)} | {fmt(med('commit_w2'))} | – | "
            f"{rss('commit_w2')} | – |")
row("3", "commit w3/ (20,000 files) as --data, fresh repo", "commit_w3",
    "`git init && git add -A && git commit`", "git_commit_w3", 1.0)
row("4", "re-commit unchanged w3/ (3rd commit, stat cache warm)", "recommit_w3",
    "`git status`", "git_status_w3", 2.0)
row("5", "checkout w1 run -o fresh folder", "checkout_w1", "`cp` w1.bin", "cp2_w1")
rows.append(f"| 6a | `cairn log` while a w1 commit runs (started 0.3 s earlier) | `cairn log` idle | "
            f"**{paired('log_during_commit', 'log_idle'):.1f}** | – | info | "
            f"{fmt(med('log_during_commit'))} | {fmt(med('log_idle'))} | "
            f"{rss('log_during_commit')} | {rss('log_idle')} |")
row("6b", "fsck of the w1 store", "fsck_w1", "`cp` w1.bin", "cp_w1")
if have_b3:
    row("6c", "fsck of the w1 store", "fsck_w1", "`b3sum` w1.bin", "b3sum_w1")
row("7", "commit a 4 GiB file of random bytes as artifact, fresh repo", "commit_4g",
    "`cp` of the file", "cp_4g")
row("8", "commit 100,000 small files (200 folders) as --data, fresh repo", "commit_100k",
    "`git init && git add -A`", "gitadd_100k")
row("9", "commit 1,000,000 small files (200 folders) as --data, fresh repo", "commit_1m",
    "`git init && git add -A`", "gitadd_1m")

def git_rev():
    try:
        return subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
load = " ".join(f"{x:.2f}" for x in os.getloadavg())

print(f"# cairn benchmark results\n")
print(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
print(f"- cairn: commit {git_rev()} (release build)")
print(f"- machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
      f"load average (1/5/15 min) at start {os.environ.get('LOAD_START', '?')}, at end {load}")
print(f"- warm page cache for cairn and references alike (nothing dropped); `sync` (untimed) "
      f"before each timed command")
print(f"- {reps} rounds; ratio = median of the per-round ratios (each pair measured back to back);"
      f" seconds = medians, machine-dependent\n")
print("| # | measurement | reference | ratio cairn/ref | target | status | cairn s | ref s | cairn MiB | ref MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(r)
print()
print(f"Second version: {added / 2**20:.1f} MiB added to packs "
      f"({100 * added / GIB:.2f}% of 1 GiB); whole `.cairn` grew by "
      f"{added_store / 2**20:.1f} MiB ({100 * added_store / GIB:.2f}%).")
print(f"`cairn log` overlapped the running commit in {overl} of {reps} rounds.\n")
print("MiB: peak resident memory (median; GNU time's %M).\n")
print("Samples (seconds; bytes for *_added; KiB of peak RSS for rss_*):\n")
print("| key | samples |")
print("|---|---|")
for k in sorted(S):
    print(f"| {k} | {' '.join(f'{v:.10g}' for v in S[k])} |")
PY
cat "$OUT"
