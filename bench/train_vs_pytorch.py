#!/usr/bin/python3
"""One optimizer step of Qwen3, ours against the PyTorch a user would pick instead, side by side.

Each point is one whole step, the same on both sides: forward over the batch, the next-token loss,
backward, clipping of the global gradient norm to 1.0, and an AdamW update (lr 3e-4, betas
0.9/0.95, weight decay 0.1), timed to the end of the device's work; the median of --iters steps
after --warmup steps.

  ours     build/bin/qwen3-bench-step: our trainer's step on the CUDA backend (bf16 storage, fp32
           master weights and moments, cuBLASLt and our kernels), or on the fp32 CPU backend.
  PyTorch  on a GPU: transformers' Qwen3ForCausalLM in bf16 with attn_implementation="sdpa",
           torch.compile and torch.optim.AdamW(fused=True); gradient checkpointing where ours
           recomputes. On a machine without a GPU the same comparison runs on a tiny config on
           the CPU, eager and fp32 (transformers' model where this torch can run it, else the
           plain-PyTorch reference tests/python/qwen3_torch_ref.py), so that CI keeps it working.

FLOPs per token are counted once, by qwen3-bench-step --dry-run (6N + 12·L·H·hd·S,
trainer/metrics.h), and used for both sides; MFU divides by the device's dense bf16 peak from the
datasheet table (core/cuda/device_peaks.cpp), looked up by the name the driver reports. A device
not in it gets achieved TFLOP/s only, and the report says its peak is unknown.

Usage:
    bench/train_vs_pytorch.py --bench-exe build/bin/qwen3-bench-step
        [--device auto|cuda|cpu] [--model M.yaml] [--points 4096x8,32768x1r]
        [--iters 5] [--warmup 2] [--no-compile] [--json OUT]

A point SEQxBATCH is BATCH sequences of SEQ tokens a step, in one micro-batch; a trailing r
recomputes the layers in the backward (as stage 3 does). Defaults: on a GPU, Qwen3-0.6B at
4096x8 and 32768x1r; on the CPU, configs/models/tiny.yaml at 64x4.
Exit status: 0 when every point ran on both sides, 1 otherwise (the table says what failed).
"""

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import torch  # noqa: E402
import yaml  # noqa: E402

# The optimizer both sides run (qwen3-bench-step's AdamWOptions defaults and its lr).
LR, BETAS, WEIGHT_DECAY, EPS, CLIP = 3e-4, (0.9, 0.95), 0.1, 1e-8, 1.0


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-exe", required=True, help="qwen3-bench-step")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    ap.add_argument("--model", help="model YAML (Hugging Face config keys)")
    ap.add_argument("--points", help="comma-separated SEQxBATCH[r] points")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    ap.add_argument("--no-compile", action="store_true", help="PyTorch eager on the GPU too")
    ap.add_argument("--timeout", type=int, default=900, help="seconds for each run of ours")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but this PyTorch (%s) sees no GPU" %
                         torch.__version__)
    gpu = args.device == "cuda"
    args.model = args.model or os.path.join(
        ROOT, "configs", "models", "qwen3-0.6b.yaml" if gpu else "tiny.yaml")
    args.points = parse_points(args.points or ("4096x8,32768x1r" if gpu else "64x4"))
    if args.iters < 1 or args.warmup < 0:
        raise SystemExit("error: --iters must be >= 1 and --warmup >= 0")
    return args


def parse_points(text):
    points = []
    for item in text.split(","):
        body = item.strip()
        recompute = body.endswith("r")
        try:
            seq, batch = (int(v) for v in body.rstrip("r").split("x"))
        except ValueError:
            raise SystemExit("error: --points: '%s' is not SEQxBATCH or SEQxBATCHr" % item)
        points.append({"seq": seq, "batch": batch, "recompute": recompute})
    return points


def point_name(p):
    return "%dx%d%s" % (p["seq"], p["batch"], " recompute" if p["recompute"] else "")


def run_ours_json(args, extra, timeout):
    """Runs qwen3-bench-step with `extra` arguments; (its last-line JSON, None) or (None, error)."""
    cmd = [args.bench_exe, "--model", args.model] + extra
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s: %s" % (timeout, " ".join(cmd))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        return None, "exit %d: %s" % (proc.returncode, "\n".join(lines[-5:]))
    try:
        return json.loads(lines[-1]), None
    except ValueError:
        return None, "last line is not JSON: %r" % lines[-1]


def device_name(args):
    return torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"


def run_ours(args, p):
    extra = ["--backend", args.device, "--seq", str(p["seq"]), "--batch", str(p["batch"]),
             "--iters", str(args.iters), "--warmup", str(args.warmup)]
    if p["recompute"]:
        extra.append("--recompute")
    if args.threads:
        extra += ["--threads", str(args.threads)]
    print("ours: %s %s" % (args.bench_exe, " ".join(extra)), flush=True)
    result, error = run_ours_json(args, extra, args.timeout)
    if error:
        return {"error": error}
    return {"step_s": result["median_s"], "min_s": result["min_s"], "max_s": result["max_s"],
            "peak_memory_bytes": result["peak_memory_bytes"], "first_loss": result["losses"][0],
            "device": result["device"]}


def model_config(path):
    with open(path) as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict):
        raise SystemExit("error: %s does not hold a mapping" % path)
    config.pop("name", None)
    return config


def transformers_model(config, gpu):
    """transformers' Qwen3ForCausalLM with SDPA attention, or None where it cannot run here."""
    try:
        from transformers import Qwen3Config, Qwen3ForCausalLM
    except Exception as exc:  # noqa: BLE001 - any import failure means: not usable here
        if gpu:
            raise SystemExit("error: transformers' Qwen3ForCausalLM is needed on the GPU: %s" % exc)
        return None, "transformers not importable (%s)" % exc
    hf_config = Qwen3Config(**{k: v for k, v in config.items() if k != "model_type"})
    hf_config._attn_implementation = "sdpa"
    try:
        with torch.device("cuda" if gpu else "cpu"):
            model = Qwen3ForCausalLM(hf_config)
    except Exception as exc:  # noqa: BLE001 - old torch (Debian's 1.13) cannot build it
        if gpu:
            raise
        return None, "transformers' model does not run on torch %s (%s)" % (torch.__version__, exc)
    return model, "transformers %s Qwen3ForCausalLM (%s)" % (
        __import__("transformers").__version__, model.config._attn_implementation)


def reference_model(config):
    from qwen3_torch_ref import Qwen3Ref, init_hf
    model = Qwen3Ref(config)
    init_hf(model, float(config.get("initializer_range", 0.02)), 0)
    return model


def pytorch_anchor(args, config, p):
    """Builds the anchor model, optimizer and one step for point p; returns (step, description)."""
    gpu = args.device == "cuda"
    model, how = transformers_model(config, gpu)
    if model is None:
        model, how = reference_model(config), "tests/python/qwen3_torch_ref.py (%s)" % how
        forward = lambda ids: model(ids, labels=ids)[1]  # noqa: E731
    else:
        if gpu:
            model = model.to(torch.bfloat16)
        if p["recompute"]:
            model.gradient_checkpointing_enable()
        model.train()
        forward = lambda ids: model(input_ids=ids, labels=ids).loss  # noqa: E731
    if gpu and not args.no_compile:
        forward = torch.compile(forward)
        how += ", torch.compile"
    fused = {"fused": True} if gpu else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS,
                                  weight_decay=WEIGHT_DECAY, **fused)
    how += ", %s AdamW%s" % ("bf16" if gpu else "fp32", " (fused)" if gpu else "")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config["vocab_size"], (p["batch"], p["seq"]), generator=gen)
    ids = ids.to(args.device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = forward(ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        return loss

    return step, how


def run_pytorch(args, config, p):
    gpu = args.device == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        step, how = pytorch_anchor(args, config, p)
        print("PyTorch: %s" % how, flush=True)
        times, first_loss = [], None
        for i in range(args.warmup + args.iters):
            start = time.perf_counter()
            loss = step()
            if gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            first_loss = float(loss) if first_loss is None else first_loss
            if i >= args.warmup:
                times.append(seconds)
        peak = torch.cuda.max_memory_allocated() if gpu else None
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the other points go on
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        if "out of memory" in str(exc).lower():
            return {"error": "out of GPU memory: %s" % first_line}
        return {"error": "%s: %s" % (type(exc).__name__, first_line)}
    finally:
        gc.collect()
        if gpu:
            torch.cuda.empty_cache()  # hand the memory back before ours runs the next point
    return {"step_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "peak_memory_bytes": peak, "first_loss": first_loss, "anchor": how}


def add_rates(side, tokens, flops_per_token, peak_flops):
    if "error" in side:
        return
    side["tokens_per_s"] = tokens / side["step_s"]
    side["tflops"] = side["tokens_per_s"] * flops_per_token / 1e12
    side["mfu"] = side["tflops"] * 1e12 / peak_flops if peak_flops else None


def check_loss(name, side, vocab):
    """A fresh model's first loss is about ln(vocab): a step that computed garbage is not timed."""
    if "error" in side:
        return
    if not (abs(side["first_loss"] - math.log(vocab)) < 1.0):
        side["error"] = "first loss %.4f is not near ln(%d) = %.4f: the step is wrong" % (
            side["first_loss"], vocab, math.log(vocab))
        print("%s: %s" % (name, side["error"]), flush=True)


def measure(args, config, p, flops_per_token, peak_flops):
    tokens = p["seq"] * p["batch"]
    ours = run_ours(args, p)
    pytorch = run_pytorch(args, config, p)
    for name, side in (("ours", ours), ("PyTorch", pytorch)):
        check_loss(name, side, config["vocab_size"])
        add_rates(side, tokens, flops_per_token, peak_flops)
    ratio = None
    if "error" not in ours and "error" not in pytorch:
        ratio = ours["tokens_per_s"] / pytorch["tokens_per_s"]
    return {"point": point_name(p), **p, "tokens": tokens, "flops_per_token": flops_per_token,
            "ours": ours, "pytorch": pytorch, "speedup": ratio}


def gib(b):
    return "-" if b is None else "%.1f" % (b / 2 ** 30)


def print_table(results, device, peak_flops):
    print()
    print("device: %s; dense bf16 peak %s" % (
        device, "%.1f TFLOP/s" % (peak_flops / 1e12) if peak_flops else
        "unknown (not in core/cuda/device_peaks.cpp): MFU not shown"))
    header = "| point | side | step (ms) | tokens/s | TFLOP/s | MFU | peak memory (GiB) |"
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for label, side in (("ours", r["ours"]), ("PyTorch", r["pytorch"])):
            if "error" in side:
                print("| %s | %s | failed: %s | | | | |" % (r["point"], label,
                                                           side["error"].splitlines()[-1][:120]))
                continue
            mfu = "-" if side["mfu"] is None else "%.1f%%" % (100 * side["mfu"])
            print("| %s | %s | %.1f | %.0f | %.1f | %s | %s |" % (
                r["point"], label, 1e3 * side["step_s"], side["tokens_per_s"], side["tflops"],
                mfu, gib(side["peak_memory_bytes"])))
    for r in results:
        if r["speedup"] is not None:
            print("%s: ours / PyTorch tokens/s = %.2fx (>1: ours faster)" % (r["point"],
                                                                            r["speedup"]))


def main():
    args = parse_args()
    config = model_config(args.model)
    device = device_name(args)
    dry, error = run_ours_json(args, ["--dry-run", "--device-name", device, "--seq", "1"], 60)
    if error:
        raise SystemExit("error: qwen3-bench-step --dry-run: %s" % error)
    peak_flops = dry["peak_flops"] or 0.0
    results = []
    for p in args.points:
        per_token, error = run_ours_json(args, ["--dry-run", "--seq", str(p["seq"])], 60)
        if error:
            raise SystemExit("error: qwen3-bench-step --dry-run: %s" % error)
        results.append(measure(args, config, p, per_token["flops_per_token"], peak_flops))
    print_table(results, device, peak_flops)
    report = {"device": device, "peak_bf16_flops": peak_flops or None, "model": args.model,
              "torch": torch.__version__, "iters": args.iters, "warmup": args.warmup,
              "points": results}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    ok = all("error" not in r["ours"] and "error" not in r["pytorch"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
