#!/usr/bin/env python3
"""qwen3-plot-metrics on a synthetic metrics.jsonl of two stages with evaluations on two sources
and a torn last line: a PNG of the requested size in pixels, both stages drawn in their own
colour, the torn line skipped with a warning naming it; clear errors for a missing file and for a
file without training lines. Exit 77 (ctest's skip) when matplotlib is not installed."""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys

try:
    import matplotlib.image
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}; install Debian's python3-matplotlib", file=sys.stderr)
    sys.exit(77)

failures = 0


def check(condition, message):
    global failures
    if condition:
        print(f"ok   {message}")
    else:
        print(f"FAIL {message}")
        failures += 1


def synthetic_lines():
    """Two stages (60 and 40 steps of 4,096 tokens), evaluations every 20 steps on two sources."""
    lines, tokens = [], 0
    for stage, name, steps, lr in ((1, "general", 60, 3e-4), (2, "long-context", 40, 1e-4)):
        for stage_step in range(1, steps + 1):
            tokens += 4096
            step = len([line for line in lines if '"train"' in line]) + 1
            loss = 2.0 + 3.0 * math.exp(-step / 30.0) + 0.1 * math.sin(step)
            lines.append(json.dumps({
                "kind": "train", "stage": stage, "stage_name": name, "step": step,
                "stage_step": stage_step, "loss": loss, "lr": lr * min(1.0, stage_step / 10),
                "grad_norm": 0.8, "tokens": tokens, "step_tokens": 4096, "tokens_per_s": 1234.5,
                "skipped": False}))
            if stage_step % 20 == 0:
                for source, offset in (("val", 0.1), ("code", 0.4)):
                    lines.append(json.dumps({
                        "kind": "eval", "stage": stage, "stage_name": name, "step": step,
                        "tokens": tokens, "source": source, "loss": loss + offset,
                        "perplexity": math.exp(loss + offset)}))
    return lines


def run(script, *args):
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=120)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def has_colour(image, hex_colour, tolerance=0.02):
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5)])
    return bool((np.abs(image[:, :, :3] - rgb).max(axis=2) < tolerance).any())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    run_dir = os.path.join(args.workdir, "run")
    os.makedirs(run_dir)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    lines = synthetic_lines()
    with open(metrics, "w") as f:
        f.write("\n".join(lines) + "\n")
        f.write('{"kind":"train","stage":2,"stage_name":"long-co')  # killed mid-write
    torn_line = len(lines) + 1

    out = os.path.join(args.workdir, "plot.png")
    r = run(args.script, metrics, "-o", out, "--width", "900", "--height", "600")
    check(r.returncode == 0, f"plot exits 0 (got {r.returncode}: {r.stderr.strip()})")
    check(os.path.isfile(out), "the PNG is written")
    if os.path.isfile(out):
        check(png_size(out) == (900, 600), f"PNG signature and size 900x600 (got {png_size(out)})")
        image = matplotlib.image.imread(out)
        # tab10's first two colours: stage 1 and stage 2's smoothed curves and LR.
        check(has_colour(image, "#1f77b4"), "stage 1 is drawn in its colour")
        check(has_colour(image, "#ff7f0e"), "stage 2 is drawn in its colour")
    check(f"metrics.jsonl:{torn_line}: not valid JSON, skipped" in r.stderr,
          f"the torn last line {torn_line} is skipped with a warning: {r.stderr.strip()}")
    check("100 training steps, 10 evaluations" in r.stdout, f"counts reported: {r.stdout.strip()}")

    # A run directory: metrics.png beside metrics.jsonl, at the default size.
    r = run(args.script, run_dir)
    default_out = os.path.join(run_dir, "metrics.png")
    check(r.returncode == 0 and png_size(default_out) == (1200, 800),
          f"a run directory plots to metrics.png at 1200x800 ({r.returncode}, "
          f"{png_size(default_out) if os.path.exists(default_out) else 'no file'})")

    missing = os.path.join(args.workdir, "absent", "metrics.jsonl")
    r = run(args.script, missing)
    check(r.returncode == 1 and f"'{missing}' does not exist" in r.stderr,
          f"a missing file is an error naming it ({r.returncode}: {r.stderr.strip()})")

    only_eval = os.path.join(args.workdir, "only_eval.jsonl")
    with open(only_eval, "w") as f:
        f.write("\n".join(line for line in lines if '"eval"' in line) + "\n")
    r = run(args.script, only_eval, "-o", os.path.join(args.workdir, "none.png"))
    check(r.returncode == 1 and "has no training lines" in r.stderr,
          f"a file without training lines is an error ({r.returncode}: {r.stderr.strip()})")
    check(not os.path.exists(os.path.join(args.workdir, "none.png")), "and writes no image")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
