#!/usr/bin/env bash
# Builds every fuzz target and runs each one for SECONDS (default 20) on a scratch copy of its
# seed corpus, so the committed corpus is never modified. Fails if any target crashes, panics,
# times out (one input running over 10 s) or runs out of memory (2 GiB).
#
#   fuzz/run.sh          # 20 s per target
#   fuzz/run.sh 10       # CI: 10 s per target
#   fuzz/run.sh 3600     # a long run: an hour per target
#
# Environment: FUZZ_TARGETS="a b" runs only those targets; FUZZ_SANITIZER=address builds with
# AddressSanitizer (nightly only; the default is none, which also works on stable);
# FUZZ_KEEP_CORPUS=1 keeps the scratch corpora (the path is printed) to merge new inputs.
# Crashing inputs are written to fuzz/artifacts/<target>/.
set -euo pipefail
secs="${1:-20}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# cargo-fuzz needs unstable compiler flags. Use a nightly toolchain when rustup has one;
# otherwise let the stable compiler accept them (RUSTC_BOOTSTRAP=1), which works with no
# sanitizer.
cargo=(cargo)
if [ -z "${RUSTUP_TOOLCHAIN:-}" ] && cargo +nightly --version >/dev/null 2>&1; then
  cargo=(cargo +nightly)
elif ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi
sanitizer="${FUZZ_SANITIZER:-none}"
if [ "$sanitizer" != none ] && [ -n "${RUSTC_BOOTSTRAP:-}" ]; then
  echo "FUZZ_SANITIZER=$sanitizer needs a nightly toolchain" >&2
  exit 2
fi
flags=(--sanitizer "$sanitizer" --debug-assertions)
echo "toolchain: $("${cargo[@]}" --version)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}; sanitizer: $sanitizer"

targets=(${FUZZ_TARGETS:-$("${cargo[@]}" fuzz list)})
build_start=$SECONDS
if [ -n "${FUZZ_TARGETS:-}" ]; then
  for t in "${targets[@]}"; do
    "${cargo[@]}" fuzz build "${flags[@]}" "$t"
  done
else
  "${cargo[@]}" fuzz build "${flags[@]}"
fi
echo "build: $((SECONDS - build_start)) s"

host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="${CARGO_TARGET_DIR:-target}/$host/release"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/cairn-fuzz.XXXXXX")"
if [ -z "${FUZZ_KEEP_CORPUS:-}" ]; then
  trap 'rm -rf "$scratch"' EXIT
fi

failed=()
printf '%-16s %8s %12s %10s %8s  %s\n' target seconds executions exec/s corpus result
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "artifacts/$t"
  if [ -d "corpus/$t" ]; then
    cp -R "corpus/$t/." "$scratch/$t/"
  fi
  log="$scratch/$t.log"
  start=$SECONDS
  if "$bin_dir/$t" "$scratch/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    failed+=("$t")
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  files="$(find "$scratch/$t" -type f | wc -l)"
  printf '%-16s %8s %12s %10s %8s  %s\n' "$t" "$((SECONDS - start))" "${execs:-?}" "${rate:-?}" \
    "$files" "$result"
  if [ "$result" != ok ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" | head -n 20 >&2 || true
  fi
done
if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
  echo "scratch corpora kept in $scratch"
fi
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "all ${#targets[@]} targets ran ${secs} s each without a crash"
