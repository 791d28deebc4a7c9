#!/usr/bin/env python3
"""A dependency-free training loop that reports live metrics to cairn.

    cairn run -m "lr 0.05" --out model.txt -- python examples/train_live.py --lr 0.05

`cairn run` names a file in $CAIRN_METRICS; every line appended to it is one JSON
object such as {"step": 10, "loss": 0.41, "acc": 0.87}, and cairn folds those lines
into step series (follow them live with `cairn watch -f`). The three lines marked
"cairn" are all it takes; outside cairn they write to metrics.jsonl instead.

Params given to cairn (--param lr=0.1, or params files) reach the script as a JSON
file named by $CAIRN_PARAMS; they override the defaults of the options below.
"""
import argparse
import json
import math
import os
import random
import time

metrics = open(os.environ.get("CAIRN_METRICS", "metrics.jsonl"), "a")  # cairn 1/3

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--lr", type=float, default=0.05, help="learning rate")
parser.add_argument("--epochs", type=int, default=20, help="number of steps")
parser.add_argument("--sleep", type=float, default=0.0, help="seconds per step (to watch it live)")
parser.add_argument("--out", default="model.txt", help="where to write the 'model'")
if os.environ.get("CAIRN_PARAMS"):
    with open(os.environ["CAIRN_PARAMS"]) as f:
        parser.set_defaults(**{k: v for k, v in json.load(f).items() if k in ("lr", "epochs")})
args = parser.parse_args()

random.seed(0)
weight, target = 0.0, 3.0
for step in range(1, args.epochs + 1):
    # A noisy gradient step on (weight - target)^2: the loss falls, the accuracy rises.
    grad = 2 * (weight - target) + random.uniform(-0.1, 0.1)
    weight -= args.lr * grad
    loss = (weight - target) ** 2
    acc = math.exp(-loss)
    metrics.write(json.dumps({"step": step, "loss": loss, "acc": acc}) + "\n")  # cairn 2/3
    metrics.flush()  # cairn 3/3: each line is visible to `cairn watch` at once
    print(f"step {step:3d}  loss {loss:.4f}  acc {acc:.4f}")
    time.sleep(args.sleep)

with open(args.out, "w") as f:
    f.write(f"weight = {weight!r}\n")
print(f"wrote {args.out}")
