#!/usr/bin/env python3
"""A tiny, dependency-free stand-in for a training script.

Reads params.json ({"lr": ..., "epochs": ...}), runs a fake training loop whose loss
decreases, and writes metrics.jsonl (one JSON object per step), model.bin (deterministic
bytes derived from the params) and outputs/summary.json.
"""
import hashlib
import json
import math
import os

with open("params.json") as f:
    params = json.load(f)
lr = float(params.get("lr", 0.01))
epochs = int(params.get("epochs", 5))

loss = acc = 0.0
with open("metrics.jsonl", "w") as out:
    for step in range(1, epochs + 1):
        loss = 2.0 * math.exp(-lr * 10 * step) + 0.05
        acc = 1.0 - loss / 2.5
        record = {"step": step, "loss": round(loss, 6), "acc": round(acc, 6)}
        out.write(json.dumps(record, separators=(",", ":")) + "\n")

# "Weights": 4 KiB of bytes that depend only on the params.
seed = json.dumps(params, sort_keys=True).encode()
weights = b"".join(hashlib.sha256(seed + i.to_bytes(4, "little")).digest() for i in range(128))
with open("model.bin", "wb") as f:
    f.write(weights)

os.makedirs("outputs", exist_ok=True)
with open("outputs/summary.json", "w") as f:
    summary = {"lr": lr, "epochs": epochs, "final_loss": round(loss, 6), "final_acc": round(acc, 6)}
    json.dump(summary, f, indent=2)
print(f"trained {epochs} epochs at lr={lr}: loss={loss:.4f} acc={acc:.4f}")
