#!/usr/bin/env python3
"""Hugging Face's Qwen3 and ours on the same device, both ways round (gpu-check step e).

1. ours -> transformers: `Qwen3ForCausalLM.from_pretrained(CHECKPOINT)` on a checkpoint
   qwen3-train wrote (trained on the CUDA backend by the caller) gives the logits of our forward
   (qwen3-dump-hf-model --checkpoint, on --backend) on a seeded batch. bf16 tolerance: our error
   against transformers in fp32 must be at most max(--tol, 2 x transformers-in-bf16's own error),
   the error being max|x - ref| / max|ref| over all logits. The mean losses are compared too.
2. transformers -> ours: a model transformers initialised (seeded, the checkpoint's config) and
   wrote with save_pretrained starts a one-step run of qwen3-train (`model:` names the
   directory). The shard holds exactly the windows of that one step, so its mean loss does not
   depend on the order the loader draws them in; it must equal transformers' fp32 loss on the same
   windows within --loss-tol (relative).

Where transformers' modelling code cannot run (Debian's torch 1.13 in CI), the independent
tests/python/qwen3_torch_ref.py stands in for it, loaded from the same files, and the report says
so; this keeps the script working without a GPU.

Usage: hf_on_gpu.py --bin BUILD/bin --checkpoint DIR --workdir W [--device cuda|cpu]
                    [--backend cuda|cpu] [--json FILE]
Exit codes: 0 pass, 1 a check failed, 77 skipped (a Python module is missing).
"""

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys

SKIP_EXIT = 77
try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig
except ImportError as exc:
    print("SKIP: %s under %s" % (exc, sys.executable))
    sys.exit(SKIP_EXIT)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from qwen3_torch_ref import IGNORE_INDEX, Qwen3Ref, init_hf  # noqa: E402

WORK_FOLDERS = ("ours_forward", "hf_initialised", "data", "run")  # what this script writes
EOS_ID = 1000  # the synthetic documents are numbers below 1000, so any vocab above 1000 fits


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="build/bin with qwen3-dump-hf-model, qwen3-train, "
                    "qwen3-prep")
    ap.add_argument("--checkpoint", required=True, help="an HF directory qwen3-train wrote")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--backend", choices=("cuda", "cpu"), default=None,
                    help="our backend (default: --device)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--windows", type=int, default=16, help="windows in the one-step run")
    ap.add_argument("--tol", type=float, default=2e-2, help="logit error floor (bf16)")
    ap.add_argument("--loss-tol", type=float, default=1e-2)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    args.backend = args.backend or args.device
    return args


class HfModel:
    """transformers' Qwen3ForCausalLM where it runs, else the independent reference."""

    def __init__(self):
        try:
            from transformers import Qwen3ForCausalLM
            self.cls, self.why = Qwen3ForCausalLM, None
        except Exception as exc:  # noqa: BLE001 - any import failure means "cannot run here"
            self.cls = None
            self.why = "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[-1][:160])
        self.name = ("transformers Qwen3ForCausalLM" if self.cls else
                     "tests/python/qwen3_torch_ref.py (transformers cannot run: %s)" % self.why)

    def load(self, directory, dtype, device):
        if self.cls is not None:
            try:
                model = self.cls.from_pretrained(directory, dtype=dtype)
            except TypeError:  # transformers 4.x names it torch_dtype
                model = self.cls.from_pretrained(directory, torch_dtype=dtype)
            return model.to(device).eval()
        model = Qwen3Ref(AutoConfig.from_pretrained(directory).to_dict())
        state = load_file(os.path.join(directory, "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        return model.to(dtype).to(device).eval()

    def logits(self, model, tokens):
        with torch.no_grad():
            out = model(tokens)
        return (out.logits if self.cls is not None else out[0]).float()

    def save_initialised(self, config_dir, out_dir, seed):
        """A seeded model of config_dir's config, written as transformers writes one."""
        config = AutoConfig.from_pretrained(config_dir)
        torch.manual_seed(seed)
        if self.cls is not None:
            self.cls(config).save_pretrained(out_dir)
            return
        model = init_hf(Qwen3Ref(config.to_dict()), config.initializer_range, seed)
        config.save_pretrained(out_dir)
        state = {k: v.contiguous() for k, v in model.state_dict().items()
                 if not (config.tie_word_embeddings and k == "lm_head.weight")}
        save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})


def run(cmd, log):
    with open(log, "w") as fh:
        status = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if status:
        sys.stdout.write(open(log).read()[-4000:])
        raise SystemExit("FAIL %s: status %d (log %s)" % (" ".join(cmd[:2]), status, log))


def relative_error(x, ref):
    x, ref = x.double(), ref.double()
    if not (torch.isfinite(x).all() and torch.isfinite(ref).all()):
        return float("inf")
    return float((x - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def mean_loss(logits, labels):
    """HF's causal-LM loss: position t scored on labels[t + 1], IGNORE_INDEX skipped."""
    vocab = logits.shape[-1]
    return float(F.cross_entropy(logits[:, :-1].reshape(-1, vocab).double(),
                                 labels[:, 1:].reshape(-1).long(), ignore_index=IGNORE_INDEX))


def ours_to_transformers(args, hf, figures):
    out = os.path.join(args.workdir, "ours_forward")
    run([os.path.join(args.bin, "qwen3-dump-hf-model"), "--checkpoint", args.checkpoint,
         "--out", out, "--backend", args.backend, "--batch", str(args.batch), "--seq",
         str(args.seq)], out + ".log")
    result = json.load(open(os.path.join(out, "result.json")))
    shape = (result["batch"], result["seq"])
    tokens = torch.from_numpy(np.fromfile(os.path.join(out, "tokens.i32"), "<i4").astype(np.int64))
    labels = torch.from_numpy(np.fromfile(os.path.join(out, "labels.i32"), "<i4").astype(np.int64))
    tokens, labels = tokens.reshape(shape), labels.reshape(shape)
    ours = torch.from_numpy(np.fromfile(os.path.join(out, "logits.f32"), "<f4")).reshape(
        shape + (-1,))

    device = torch.device(args.device)
    fp32 = hf.logits(hf.load(args.checkpoint, torch.float32, device), tokens.to(device)).cpu()
    bf16 = hf.logits(hf.load(args.checkpoint, torch.bfloat16, device), tokens.to(device)).cpu()
    ours_error, bf16_error = relative_error(ours, fp32), relative_error(bf16, fp32)
    bound = max(args.tol, 2 * bf16_error)
    hf_loss = mean_loss(fp32, labels)
    loss_rel = abs(result["loss"] - hf_loss) / abs(hf_loss)
    figures.update(logit_error_ours=ours_error, logit_error_hf_bf16=bf16_error,
                   logit_bound=bound, loss_ours=result["loss"], loss_hf_fp32=hf_loss)
    ok_logits = ours_error <= bound
    ok_loss = loss_rel <= args.loss_tol
    print("%s ours (%s) -> %s: logit error vs fp32 %.3e, bound %.3e (%s in bf16: %.3e)" %
          ("ok  " if ok_logits else "FAIL", args.backend, hf.name, ours_error, bound,
           "transformers" if hf.cls else "reference", bf16_error))
    print("%s loss: ours %.6f, theirs in fp32 %.6f (relative %.2e, tolerance %.0e)" %
          ("ok  " if ok_loss else "FAIL", result["loss"], hf_loss, loss_rel, args.loss_tol))
    return ok_logits and ok_loss


def write_shard(args, vocab):
    """One train shard of exactly `windows` windows of seq + 1 tokens (docs/data-format.md)."""
    data = os.path.join(args.workdir, "data")
    os.makedirs(data, exist_ok=True)
    rng = np.random.default_rng(5)
    needed = args.windows * args.seq + 1
    lines, count = [], 0
    while count < needed:  # documents of arithmetic progressions, as the CLI tests use
        n = int(rng.integers(20, 80))
        start, stride = int(rng.integers(0, 1000)), int(rng.integers(1, 5))
        lines.append(" ".join(str((start + k * stride) % 1000) for k in range(n)))
        count += n + 1  # each document ends with EOS
    with open(os.path.join(data, "docs.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    shards = os.path.join(data, "shards")
    run([os.path.join(args.bin, "qwen3-prep"), "--input", os.path.join(data, "docs.txt"),
         "--output", shards, "--vocab-size", str(vocab), "--eos-id", str(EOS_ID),
         "--tokenizer", "synthetic"], os.path.join(data, "prep.log"))
    paths = sorted(glob.glob(os.path.join(shards, "train-*.h5")))
    if len(paths) != 1:
        raise SystemExit("FAIL qwen3-prep wrote %d train shards, expected 1" % len(paths))
    with h5py.File(paths[0], "r") as f:
        tokens = np.asarray(f["tokens"][:], dtype=np.int64)
    windows = (len(tokens) - 1) // args.seq
    cut = np.stack([tokens[i * args.seq:i * args.seq + args.seq + 1] for i in range(windows)])
    return paths[0], torch.from_numpy(cut)


def transformers_to_ours(args, hf, figures):
    init_dir = os.path.join(args.workdir, "hf_initialised")
    os.makedirs(init_dir, exist_ok=True)
    hf.save_initialised(args.checkpoint, init_dir, seed=3)
    vocab = AutoConfig.from_pretrained(init_dir).vocab_size
    shard, windows = write_shard(args, vocab)
    device = torch.device(args.device)
    logits = hf.logits(hf.load(init_dir, torch.float32, device), windows[:, :-1].to(device))
    theirs = float(F.cross_entropy(logits.double().reshape(-1, vocab).cpu(),
                                   windows[:, 1:].reshape(-1)))

    run_dir = os.path.join(args.workdir, "run")
    run_yaml = os.path.join(args.workdir, "run.yaml")
    # One step over every window of the shard: batch_tokens = windows x seq.
    with open(run_yaml, "w") as fh:
        fh.write("""name: from-transformers
model: %s
output_dir: %s
seed: 1
log_interval: 1
stages:
  - name: one
    train_data:
      - {name: synthetic, path: "%s"}
    seq_len: %d
    steps: 1
    batch_tokens: %d
    micro_batch: 1
    optimizer: {lr: 1.0e-4, schedule: constant}
backend: %s
""" % (init_dir, run_dir, shard, args.seq, len(windows) * args.seq, args.backend))
    run([os.path.join(args.bin, "qwen3-train"), run_yaml], run_yaml + ".log")
    first = None
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        record = json.loads(line)
        if record.get("kind") == "train":
            first = record["loss"]
            break
    if first is None:
        raise SystemExit("FAIL %s/metrics.jsonl has no train record" % run_dir)
    rel = abs(first - theirs) / abs(theirs)
    ok = rel <= args.loss_tol and math.isfinite(first)
    figures.update(first_loss_ours=first, first_loss_hf_fp32=theirs, windows=len(windows))
    print("%s %s initialised -> our run (%s): first loss %.6f, theirs %.6f over the same %d "
          "windows (relative %.2e, tolerance %.0e)" % ("ok  " if ok else "FAIL", hf.name,
                                                      args.backend, first, theirs, len(windows),
                                                      rel, args.loss_tol))
    return ok


def main():
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("SKIP: torch %s sees no CUDA device" % torch.__version__)
        return SKIP_EXIT
    # A rerun starts clean: an old run folder would be resumed, old shards refused by qwen3-prep.
    for sub in WORK_FOLDERS:
        shutil.rmtree(os.path.join(args.workdir, sub), ignore_errors=True)
    os.makedirs(args.workdir, exist_ok=True)
    hf = HfModel()
    figures = {"reference": hf.name, "device": args.device, "backend": args.backend}
    ok = ours_to_transformers(args, hf, figures)
    ok = transformers_to_ours(args, hf, figures) and ok
    figures["pass"] = ok
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)
    print("all checks passed" if ok else "a check failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
