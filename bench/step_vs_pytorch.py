#!/usr/bin/python3
"""Benchmark one training step (forward + loss + backward): C++ vs. PyTorch on CPU.

Runs the C++ step benchmark as a subprocess, then times the same step in-process with the
plain-PyTorch reference model (tests/python/qwen3_torch_ref.py), with the same thread
count, and prints both side by side.

Usage:
    /usr/bin/python3 bench/step_vs_pytorch.py --bench-exe build/bin/qwen3-bench-step \
        --model configs/models/bench-mid.yaml --batch 4 --seq 512 --threads 2 \
        --iters 5 --warmup 1

The C++ exe gets ``--model M --batch B --seq T --threads N --iters K --warmup W`` and must
print, as its last stdout line, JSON: {"median_s": float, "min_s": float, "tokens": int}.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests", "python"))
from qwen3_torch_ref import Qwen3Ref, init_hf  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-exe", required=True, help="C++ step benchmark executable")
    ap.add_argument("--model", required=True, help="model YAML (HF config key names)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="seed for PyTorch init and tokens")
    return ap.parse_args()


def run_ours(args):
    """Run the C++ benchmark; return its parsed JSON result (last stdout line)."""
    cmd = [args.bench_exe, "--model", args.model, "--batch", str(args.batch),
           "--seq", str(args.seq), "--threads", str(args.threads),
           "--iters", str(args.iters), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print("running: %s" % " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("error: %s exited with code %d" % (args.bench_exe, proc.returncode))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise SystemExit("error: %s printed nothing on stdout" % args.bench_exe)
    try:
        result = json.loads(lines[-1])
        return {"median_s": float(result["median_s"]), "min_s": float(result["min_s"]),
                "tokens": int(result["tokens"])}
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit("error: cannot parse last stdout line %r as benchmark JSON (%s)"
                         % (lines[-1], exc))


def run_pytorch(args, config):
    """Time forward + loss + backward of the reference model; return median/min/tokens."""
    torch.set_num_threads(args.threads)
    model = Qwen3Ref(config)
    init_hf(model, float(config.get("initializer_range", 0.02)), args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, model.config["vocab_size"], (args.batch, args.seq),
                           generator=gen)
    labels = tokens.clone()  # aligned labels; the loss shifts them internally

    def step():
        model.zero_grad(set_to_none=True)
        _, loss = model(tokens, labels=labels)
        loss.backward()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times),
            "tokens": args.batch * args.seq}


def main():
    args = parse_args()
    if args.iters < 1:
        raise SystemExit("error: --iters must be >= 1")
    with open(args.model) as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict):
        raise SystemExit("error: %s does not hold a mapping" % args.model)

    ours = run_ours(args)
    print("timing PyTorch %s (threads=%d) ..." % (torch.__version__, args.threads), flush=True)
    ref = run_pytorch(args, config)

    print()
    print("model=%s batch=%d seq=%d threads=%d iters=%d warmup=%d"
          % (config.get("name", os.path.basename(args.model)), args.batch, args.seq,
             args.threads, args.iters, args.warmup))
    header = "%-16s  %10s  %10s  %12s" % ("implementation", "median s", "min s", "tokens/s")
    print(header)
    print("-" * len(header))
    for label, res in (("ours (C++)", ours), ("pytorch", ref)):
        rate = res["tokens"] / res["median_s"] if res["median_s"] > 0 else float("inf")
        print("%-16s  %10.4f  %10.4f  %12.1f" % (label, res["median_s"], res["min_s"], rate))
    if ours["tokens"] != ref["tokens"]:
        print("note: token counts differ (ours %d, pytorch %d)" % (ours["tokens"],
                                                                   ref["tokens"]))
    ratio = ref["median_s"] / ours["median_s"] if ours["median_s"] > 0 else float("inf")
    print("ratio (pytorch median / ours median): %.2fx  (>1 means ours is faster)" % ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
