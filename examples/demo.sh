#!/usr/bin/env bash
# End-to-end demo of cairn: record two training runs of a toy model, inspect them, restore the
# first one and check that its model comes back bit for bit.
#
# Needs only Rust (cargo), git and python3. Runs in a fresh temporary folder and leaves the
# repository's working tree untouched (apart from cargo's target/ folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step() { printf '\n==> %s\n' "$*"; }

step "Building cairn (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
cairn() { "$ROOT/target/release/cairn" "$@"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
proj="$tmp/project"
mkdir -p "$proj/data"
cd "$proj"

step "Creating a toy project in $proj"
cp "$ROOT/examples/train.py" .
printf '{"lr": 0.01, "epochs": 8}\n' > params.json
printf 'x,y\n0,0.1\n1,0.9\n2,2.1\n3,2.9\n' > data/train.csv
printf 'x,y\n4,4.2\n5,4.8\n' > data/val.csv
printf 'metrics.jsonl\nmodel.bin\noutputs/\n' > .gitignore
git -c init.defaultBranch=main init -q
git add train.py params.json .gitignore
git -c user.name="Demo User" -c user.email="demo@example.com" commit -q -m "toy training script"

step "cairn init"
cairn init

step "Run 1: train with lr=0.01, then record it"
python3 train.py
cp model.bin "$tmp/model-run1.bin"
cairn commit -m baseline --code . --data data --params params.json \
    --metrics metrics.jsonl --artifact model.bin --artifact outputs

step "Run 2: raise the learning rate, train again, record it"
python3 -c 'import json; p = json.load(open("params.json")); p["lr"] = 0.05; json.dump(p, open("params.json", "w"))'
python3 train.py
cairn commit -m "higher lr" --code . --data data --params params.json \
    --metrics metrics.jsonl --artifact model.bin --artifact outputs

step "cairn log"
cairn log

step "cairn show HEAD"
cairn show HEAD

step "cairn ls HEAD"
cairn ls HEAD

step "cairn diff HEAD~1 HEAD (what changed between the two runs)"
cairn diff HEAD~1 HEAD

step "cairn model: register run 2's model and put it in production"
cairn model register toy HEAD --path artifacts/model.bin -m "higher lr"
cairn model stage toy v1 production
cairn model ls

step "Push to a folder remote and clone it elsewhere"
cairn remote add origin "$tmp/remote"
cairn push --all
cairn clone "$tmp/remote" "$tmp/clone"
cairn -C "$tmp/clone" log

step "cairn checkout HEAD~1 -o restored"
cairn checkout HEAD~1 -o "$tmp/restored"
find "$tmp/restored" -type f | sed "s|^$tmp/||" | sort

step "Checking that the restored model is the first run's model, bit for bit"
cmp "$tmp/model-run1.bin" "$tmp/restored/model.bin"
if cmp -s model.bin "$tmp/restored/model.bin"; then
    echo "error: the second run's model should differ from the first" >&2
    exit 1
fi
echo "restored/model.bin is identical to run 1's model.bin"

step "cairn fsck"
cairn fsck

step "Demo finished: every step succeeded"
