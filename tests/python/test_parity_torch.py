#!/usr/bin/python3
"""Parity test: C++ Qwen3 forward/backward vs. a plain-PyTorch fp32 reference.

Runs the C++ dump tool, which writes one step's inputs, parameters, logits, loss and
gradients into a directory, then recomputes the same step with ``qwen3_torch_ref.Qwen3Ref``
and torch autograd and compares logits, the loss and every parameter gradient.

Usage (from ctest):
    /usr/bin/python3 tests/python/test_parity_torch.py --dump-exe PATH --model CONFIG.yaml \
        [--batch 2 --seq 16 --seed 7] [--doc-ids] [--workdir DIR]

Error metric per tensor: max|ours - torch| / max(max|torch|, 1e-30); the loss uses the
relative error |ours - torch| / max(|torch|, 1e-30). Everything must be <= --tol (1e-4).

Exit codes: 0 pass, 1 failure, 77 skipped (torch/numpy not importable).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP_EXIT = 77
DEFAULT_TOL = 1e-4
TINY = 1e-30

try:
    import numpy as np
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    print("SKIP: PyTorch/numpy not importable under %s (%s)" % (sys.executable, exc))
    sys.exit(SKIP_EXIT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen3_torch_ref import IGNORE_INDEX, Qwen3Ref, load_flat, read_layout  # noqa: E402

# Files the dump tool writes; removed from a reused --workdir before each run so stale
# outputs from an earlier run can never be compared by mistake.
DUMP_FILES = (
    "config.json", "layout.tsv", "params.f32", "tokens.i32", "labels.i32",
    "positions.i32", "doc_ids.i32", "logits.f32", "grads.f32", "result.json",
)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump-exe", required=True, help="path to the C++ parity dump tool")
    ap.add_argument("--model", required=True, help="model config YAML passed to the tool")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--doc-ids", action="store_true",
                    help="ask for packed documents (per-document causal attention)")
    ap.add_argument("--workdir", default=None,
                    help="directory for the dump (kept); default: a temporary directory")
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL,
                    help="max allowed normalised error (default %g)" % DEFAULT_TOL)
    return ap.parse_args()


def run_dump(args, outdir):
    """Run the C++ dump tool into outdir; return True on success."""
    cmd = [args.dump_exe, "--model", args.model, "--batch", str(args.batch),
           "--seq", str(args.seq), "--seed", str(args.seed), "--out", outdir]
    if args.doc_ids:
        cmd.append("--doc-ids")
    print("running: %s" % " ".join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
    except OSError as exc:
        print("FAIL: could not start dump tool: %s" % exc)
        return False
    if proc.returncode != 0:
        print(proc.stdout)
        print("FAIL: dump tool exited with code %d" % proc.returncode)
        return False
    return True


def read_array(outdir, name, dtype, count=None):
    """Read a raw little-endian array file; check its element count when given."""
    path = os.path.join(outdir, name)
    arr = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))
    if count is not None and arr.size != count:
        raise ValueError("%s: expected %d elements, found %d" % (name, count, arr.size))
    return arr


def normalised_error(ours, ref):
    """max|ours - ref| / max(max|ref|, 1e-30), computed in float64; NaN/inf -> inf."""
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if ours.shape != ref.shape:
        return float("inf"), float("nan")
    if ref.size == 0:
        return 0.0, 0.0
    ref_max = float(np.max(np.abs(ref)))
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(ref))):
        return float("inf"), ref_max
    err = float(np.max(np.abs(ours - ref))) / max(ref_max, TINY)
    return err, ref_max


class Report:
    """Collects comparison rows and prints them as a table."""

    def __init__(self, tol):
        self.tol = tol
        self.rows = []

    def add(self, name, shape, err, ref_max):
        ok = err <= self.tol  # False for NaN/inf
        self.rows.append((name, shape, ref_max, err, ok))
        return ok

    def failures(self):
        return [r for r in self.rows if not r[4]]

    def print_table(self):
        name_w = max([len("tensor")] + [len(r[0]) for r in self.rows])
        shape_strs = ["x".join(str(d) for d in r[1]) if r[1] else "scalar" for r in self.rows]
        shape_w = max([len("shape")] + [len(s) for s in shape_strs])
        header = "%-*s  %-*s  %12s  %12s  %s" % (name_w, "tensor", shape_w, "shape",
                                                  "max|ref|", "norm.err", "status")
        print(header)
        print("-" * len(header))
        for (name, _, ref_max, err, ok), shape in zip(self.rows, shape_strs):
            print("%-*s  %-*s  %12.5e  %12.5e  %s" % (name_w, name, shape_w, shape,
                                                      ref_max, err, "ok" if ok else "FAIL"))


def compare(args, outdir):
    """Load the dump, run the torch reference, compare; return True when everything passes."""
    with open(os.path.join(outdir, "config.json")) as fh:
        config = json.load(fh)
    with open(os.path.join(outdir, "result.json")) as fh:
        result = json.load(fh)
    layout = read_layout(os.path.join(outdir, "layout.tsv"))

    batch, seq = int(result["batch"]), int(result["seq"])
    ignore_index = int(result.get("ignore_index", IGNORE_INDEX))
    problems = []
    if (batch, seq) != (args.batch, args.seq):
        problems.append("result.json batch/seq %dx%d != requested %dx%d"
                        % (batch, seq, args.batch, args.seq))
    if ignore_index != IGNORE_INDEX:
        problems.append("result.json ignore_index %d != %d" % (ignore_index, IGNORE_INDEX))

    model = Qwen3Ref(config)
    vocab = model.config["vocab_size"]
    n_tok = batch * seq

    params = read_array(outdir, "params.f32", np.float32)
    grads = read_array(outdir, "grads.f32", np.float32, params.size)
    tokens = read_array(outdir, "tokens.i32", np.int32, n_tok).reshape(batch, seq)
    labels = read_array(outdir, "labels.i32", np.int32, n_tok).reshape(batch, seq)
    positions = read_array(outdir, "positions.i32", np.int32, n_tok).reshape(batch, seq)
    doc_ids = None
    if args.doc_ids:
        doc_ids = read_array(outdir, "doc_ids.i32", np.int32, n_tok).reshape(batch, seq)
    logits_ours = read_array(outdir, "logits.f32", np.float32, n_tok * vocab)

    # Sanity checks on the inputs themselves.
    if tokens.min() < 0 or tokens.max() >= vocab:
        problems.append("tokens out of range [0, %d)" % vocab)
    valid = labels[labels != IGNORE_INDEX]
    if valid.size and (valid.min() < 0 or valid.max() >= vocab):
        problems.append("labels out of range [0, %d) (other than %d)" % (vocab, IGNORE_INDEX))
    # Only a warning: "tokens" is expected to be the scored-token count, but the loss
    # comparison below is what decides pass/fail.
    scored = int((labels[:, 1:] != IGNORE_INDEX).sum())
    if int(result["tokens"]) != scored:
        print("WARNING: result.json tokens=%d but the shifted labels give %d scored tokens"
              % (int(result["tokens"]), scored))

    load_flat(model, params, layout)
    model.zero_grad(set_to_none=True)

    def to_long(a):
        return torch.from_numpy(a.astype(np.int64))

    logits, loss = model(to_long(tokens), labels=to_long(labels), positions=to_long(positions),
                         doc_ids=None if doc_ids is None else to_long(doc_ids))
    loss.backward()

    report = Report(args.tol)
    err, ref_max = normalised_error(logits_ours, logits.detach().numpy())
    report.add("logits", (batch, seq, vocab), err, ref_max)

    loss_ref = float(loss.item())
    loss_ours = float(result["loss"])
    if np.isfinite(loss_ours) and np.isfinite(loss_ref):
        loss_err = abs(loss_ours - loss_ref) / max(abs(loss_ref), TINY)
    else:
        loss_err = float("inf")
    report.add("loss", (), loss_err, abs(loss_ref))

    named = dict(model.named_parameters())
    for name, offset, shape in layout:
        count = int(np.prod(shape)) if shape else 1
        ours = grads[offset:offset + count]
        grad = named[name].grad
        ref = np.zeros(count) if grad is None else grad.detach().numpy().reshape(-1)
        err, ref_max = normalised_error(ours, ref)
        report.add("grad " + name, shape, err, ref_max)

    print("config: %s" % json.dumps(model.config, sort_keys=True))
    print("batch=%d seq=%d seed=%d doc_ids=%s scored_tokens=%d  loss ours=%.9g torch=%.9g"
          % (batch, seq, args.seed, "yes" if args.doc_ids else "no", scored, loss_ours,
             loss_ref))
    print()
    report.print_table()
    print()
    for msg in problems:
        print("FAIL: %s" % msg)
    failures = report.failures()
    worst = max((r[3] for r in report.rows), default=0.0)
    if failures or problems:
        print("FAIL: %d of %d comparisons above tol %g, %d input problem(s); worst %.3e"
              % (len(failures), len(report.rows), args.tol, len(problems), worst))
        return False
    print("PASS: %d comparisons (logits, loss, %d gradients) within tol %g; worst %.3e"
          % (len(report.rows), len(layout), args.tol, worst))
    return True


def main():
    args = parse_args()
    torch.set_num_threads(2)
    if args.workdir:
        outdir = os.path.abspath(args.workdir)
        os.makedirs(outdir, exist_ok=True)
        for name in DUMP_FILES:
            path = os.path.join(outdir, name)
            if os.path.exists(path):
                os.remove(path)
        cleanup = False
    else:
        outdir = tempfile.mkdtemp(prefix="qwen3-parity-")
        cleanup = True
    try:
        ok = run_dump(args, outdir)
        if ok:
            try:
                ok = compare(args, outdir)
            except (OSError, ValueError, KeyError) as exc:
                print("FAIL: could not compare dump in %s: %s" % (outdir, exc))
                ok = False
    finally:
        if cleanup:
            shutil.rmtree(outdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
