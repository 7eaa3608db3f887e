#!/usr/bin/python3
"""Causal GQA attention, ours against PyTorch's scaled_dot_product_attention, side by side.

Qwen3-0.6B's attention (16 query and 8 KV heads of 128, bf16, causal) at each --seqs length,
forward and backward, in one run on one GPU:

  ours     build/bin/qwen3-bench-kernels --ops attention: the CUDA backend's own tensor-core
           kernels ([flash]) and, where the backend has cuDNN's fused attention for the shape,
           that too ([cudnn 9.x]).
  PyTorch  torch.nn.functional.scaled_dot_product_attention under each SDPA backend this
           PyTorch has on the GPU (flash: FlashAttention-2's kernels; cudnn), K and V expanded to
           the query heads beforehand (outside the timing) so every backend takes the shape.

TFLOP/s count the causal half of the scores: forward 4·B·Hq·S²·hd/2, backward 2.5 times that.
Times are medians over --iters runs after a warm-up, taken with CUDA events (PyTorch) and by
qwen3-bench-kernels (its own average). The last rows are speed ratios from this one run: PyTorch's
time over ours, above 1 where ours is faster.

Usage:
    bench/attention_vs_sdpa.py --bench-exe build/bin/qwen3-bench-kernels
        [--seqs 4096,32768] [--tokens 32768] [--iters 10] [--json OUT]

Exit status: 0 when every row ran, 1 otherwise (the table says what failed), 77 without a GPU.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import torch

Q_HEADS, KV_HEADS, HEAD_DIM = 16, 8, 128


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-exe", required=True, help="qwen3-bench-kernels")
    ap.add_argument("--seqs", default="4096,32768", help="comma-separated sequence lengths")
    ap.add_argument("--tokens", type=int, default=32768,
                    help="tokens per run: batch = tokens / seq (at least 1)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    try:
        args.seqs = [int(s) for s in args.seqs.split(",")]
    except ValueError:
        raise SystemExit("error: --seqs: '%s' is not a comma-separated list of integers" % args.seqs)
    if args.iters < 1 or args.tokens < 1 or min(args.seqs) < 1:
        raise SystemExit("error: --iters, --tokens and every --seqs value must be positive")
    return args


def forward_flops(batch, seq):
    return 4.0 * batch * Q_HEADS * seq * seq * HEAD_DIM / 2


def ours(args, seq, batch):
    """{kernels: (forward seconds, backward seconds)} from qwen3-bench-kernels, or None and why."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "kernels.json")
        cmd = [args.bench_exe, "--ops", "attention", "--tokens", str(batch * seq), "--seq",
               str(seq), "--iters", str(args.iters), "--json", out]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            return None, ((proc.stdout + proc.stderr).strip().splitlines() or ["no output"])[-1]
        seconds = {r["op"]: r["seconds"] for r in json.load(open(out))["rows"]}
        found = {}
        for op, value in seconds.items():
            if op.startswith("attention_forward ["):
                kernels = op[len("attention_forward ["):-1]
                found[kernels] = (value, seconds["attention_backward [%s]" % kernels])
        return found, None


def median_seconds(run, iters):
    run()  # warm-up: kernel selection, workspace
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def pytorch(backend, seq, batch, iters):
    """(forward seconds, backward seconds) of SDPA under `backend`, or None and why."""
    from torch.nn.attention import sdpa_kernel
    dtype = torch.bfloat16
    device = "cuda"
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (batch, Q_HEADS, seq, HEAD_DIM)
    q = torch.randn(shape, device=device, dtype=dtype, generator=gen).requires_grad_()
    k = torch.randn(shape, device=device, dtype=dtype, generator=gen).requires_grad_()
    v = torch.randn(shape, device=device, dtype=dtype, generator=gen).requires_grad_()
    grad = torch.randn(shape, device=device, dtype=dtype, generator=gen)
    f = torch.nn.functional.scaled_dot_product_attention
    try:
        with sdpa_kernel(backend):
            fwd = median_seconds(lambda: f(q, k, v, is_causal=True), iters)

            def step():
                f(q, k, v, is_causal=True).backward(grad)

            both = median_seconds(step, iters)
    except RuntimeError as exc:
        return None, str(exc).splitlines()[0][:200]
    return (fwd, max(both - fwd, 0.0)), None


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        print("attention_vs_sdpa: nothing to measure: PyTorch (%s) sees no GPU" % torch.__version__)
        return 77
    from torch.nn.attention import SDPBackend
    backends = [("flash", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends.append(("cudnn", SDPBackend.CUDNN_ATTENTION))
    figures, failed = [], False
    print("| seq × batch | kernels | forward TFLOP/s | backward TFLOP/s |")
    print("|---|---|---:|---:|")
    for seq in args.seqs:
        batch = max(1, args.tokens // seq)
        flops = forward_flops(batch, seq)
        row = {"seq": seq, "batch": batch, "forward_flops": flops, "ours": {}, "pytorch": {}}
        mine, why = ours(args, seq, batch)
        failed = failed or mine is None
        for kernels, (fwd, bwd) in (mine or {}).items():
            print("| %d × %d | ours [%s] | %.1f | %.1f |" % (
                seq, batch, kernels, flops / fwd / 1e12, 2.5 * flops / bwd / 1e12))
            row["ours"][kernels] = {"forward_seconds": fwd, "backward_seconds": bwd}
        if mine is None:
            print("| %d × %d | ours | not run: %s | |" % (seq, batch, why))
        for name, backend in backends:
            theirs, error = pytorch(backend, seq, batch, args.iters)
            if theirs is None:
                print("| %d × %d | PyTorch %s | not run: %s | |" % (seq, batch, name, error))
                continue
            print("| %d × %d | PyTorch %s | %.1f | %.1f |" % (
                seq, batch, name, flops / theirs[0] / 1e12,
                2.5 * flops / theirs[1] / 1e12 if theirs[1] > 0 else 0.0))
            row["pytorch"][name] = {"forward_seconds": theirs[0], "backward_seconds": theirs[1]}
        # Speed ratios, measured in this run: above 1 is ours faster.
        for kernels, (fwd, bwd) in (mine or {}).items():
            for name, t in row["pytorch"].items():
                print("| %d × %d | ours [%s] ÷ PyTorch %s | %.2f× | %.2f× |" % (
                    seq, batch, kernels, name, t["forward_seconds"] / fwd,
                    t["backward_seconds"] / bwd if bwd > 0 else 0.0))
        figures.append(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(0), "rows": figures}, fh, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
