#!/usr/bin/python3
"""HF model directories written by the C++ side, read by Hugging Face's own Python code.

For each model YAML and each of fp32 and bf16, runs qwen3-dump-hf-model, which saves a seeded
model (norm weights perturbed away from 1) as config.json + model.safetensors together with a
seeded batch and the project's logits, loss and per-token losses on it. Then:

  * transformers.AutoConfig reads config.json as a Qwen3Config whose fields equal the YAML's, with
    torch_dtype naming the dtype the weights were written in;
  * safetensors.torch.load_file reads model.safetensors: exactly the expected tensor names (no
    lm_head.weight when tied), all in that dtype, metadata {"format": "pt"};
  * qwen3_torch_ref.Qwen3Ref, built from that Qwen3Config and loaded strictly from those tensors,
    reproduces the project's logits, loss and per-token losses (relative 1e-5);
  * where the installed torch can run transformers' modelling code (torch >= 2),
    Qwen3ForCausalLM.from_pretrained(dir) reproduces them too; otherwise that part is reported as
    skipped, with the reason.

Usage (from ctest):
    python tests/python/test_hf_checkpoint.py --dump-exe PATH --models A.yaml [B.yaml ...]
        [--workdir DIR] [--tol 1e-5]

Exit codes: 0 pass, 1 failure, 77 skipped (torch, numpy, transformers or safetensors missing).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP_EXIT = 77
DEFAULT_TOL = 1e-5
TINY = 1e-30


def skip(what, exc):
    print("SKIP: %s not importable under %s (%s)" % (what, sys.executable, exc))
    sys.exit(SKIP_EXIT)


try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - depends on the environment
    skip("PyTorch/numpy", exc)
try:
    from transformers import AutoConfig, Qwen3Config
except ImportError as exc:  # pragma: no cover
    skip("transformers (with Qwen3Config)", exc)
try:
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError as exc:  # pragma: no cover
    skip("safetensors", exc)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen3_torch_ref import IGNORE_INDEX, Qwen3Ref  # noqa: E402

DTYPES = {"f32": ("float32", torch.float32), "bf16": ("bfloat16", torch.bfloat16)}
DUMP_FILES = ("config.json", "model.safetensors", "tokens.i32", "labels.i32", "token_losses.f32",
              "logits.f32", "result.json")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump-exe", required=True, help="path to qwen3-dump-hf-model")
    ap.add_argument("--models", nargs="+", required=True, help="model YAMLs")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=24)
    ap.add_argument("--workdir", default=None,
                    help="directory for the dumps (kept); default: a temporary directory")
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL,
                    help="max relative error of logits, loss and per-token losses (default %g)"
                    % DEFAULT_TOL)
    return ap.parse_args()


def read_model_yaml(path):
    """The flat `key: value  # comment` mapping of a model YAML, values typed as YAML would.

    Parsed by hand so that the expected config does not depend on the C++ reader (or PyYAML).
    """
    out = {}
    with open(path) as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            key, _, text = line.partition(":")
            text = text.strip()
            if text in ("true", "false"):
                value = text == "true"
            else:
                try:
                    value = int(text)
                except ValueError:
                    try:
                        value = float(text)
                    except ValueError:
                        value = text
            out[key.strip()] = value
    return out


def read_array(outdir, name, dtype, count):
    arr = np.fromfile(os.path.join(outdir, name), dtype=np.dtype(dtype).newbyteorder("<"))
    if arr.size != count:
        raise ValueError("%s: expected %d elements, found %d" % (name, count, arr.size))
    return arr


def relative_error(ours, ref):
    """max|ours - ref| / max(max|ref|, 1e-30) in float64; inf for NaN, inf or a shape mismatch."""
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if ours.shape != ref.shape or not (np.all(np.isfinite(ours)) and np.all(np.isfinite(ref))):
        return float("inf")
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(ours - ref))) / max(float(np.max(np.abs(ref))), TINY)


class Checks:
    """Collects named pass/fail results and prints each one as it comes."""

    def __init__(self, tol):
        self.tol = tol
        self.failures = []
        self.count = 0

    def true(self, label, ok, detail=""):
        self.count += 1
        print("  %-4s %s%s" % ("ok" if ok else "FAIL", label, (": " + detail) if detail else ""))
        if not ok:
            self.failures.append(label)

    def close(self, label, ours, ref):
        err = relative_error(ours, ref)
        self.true(label, err <= self.tol, "relative error %.3e (tol %g)" % (err, self.tol))


def per_token_losses(logits, labels):
    """[B, T - 1] cross-entropy of position t against labels[t + 1]; 0 where ignored."""
    vocab = logits.shape[-1]
    shifted = labels[:, 1:].long()
    losses = F.cross_entropy(logits[:, :-1, :].reshape(-1, vocab).float(), shifted.reshape(-1),
                             ignore_index=IGNORE_INDEX, reduction="none")
    return losses.reshape(shifted.shape)


def qwen3_for_causal_lm():
    """transformers' Qwen3ForCausalLM, or (None, why it cannot run here)."""
    try:
        from transformers import Qwen3ForCausalLM
        return Qwen3ForCausalLM, None
    except Exception as exc:  # noqa: BLE001 - any import failure means "cannot run here"
        return None, "%s: %s" % (type(exc).__name__, str(exc).strip().splitlines()[-1])


def check_config(checks, outdir, expected, torch_dtype):
    config = AutoConfig.from_pretrained(outdir)
    checks.true("AutoConfig gives Qwen3Config", isinstance(config, Qwen3Config),
                type(config).__name__)
    for key, value in sorted(expected.items()):
        if key == "name":
            continue
        got = getattr(config, key, None)
        # True == 1 in Python: a boolean must be the same boolean, not an equal number.
        same = got is value if isinstance(got, bool) or isinstance(value, bool) else got == value
        checks.true("config.%s" % key, same, "%r (YAML %r)" % (got, value))
    checks.true("config.torch_dtype", config.torch_dtype == torch_dtype, str(config.torch_dtype))
    checks.true("config.architectures", config.architectures == ["Qwen3ForCausalLM"],
                str(config.architectures))
    checks.true("config has no RoPE scaling, sliding window or biases",
                config.rope_scaling is None and not config.use_sliding_window
                and not config.attention_bias)
    return config


def check_weights(checks, outdir, config, torch_dtype):
    path = os.path.join(outdir, "model.safetensors")
    state = load_file(path)
    with safe_open(path, framework="pt") as fh:
        metadata = fh.metadata()
    checks.true("metadata is {'format': 'pt'}", metadata == {"format": "pt"}, str(metadata))
    dtypes = sorted({str(t.dtype) for t in state.values()})
    checks.true("every tensor is %s" % torch_dtype, dtypes == [str(torch_dtype)], str(dtypes))
    reference = Qwen3Ref(config.to_dict())
    expected = set(dict(reference.named_parameters()))
    checks.true("tensor names are the model's (lm_head.weight only when untied)",
                set(state) == expected,
                "extra %s, missing %s" % (sorted(set(state) - expected),
                                          sorted(expected - set(state))))
    checks.true("lm_head.weight present iff untied",
                ("lm_head.weight" in state) == (not config.tie_word_embeddings))
    # strict: every parameter comes from the file and the file has nothing else.
    reference.load_state_dict({name: t.float() for name, t in state.items()}, strict=True)
    return reference


def compare_outputs(checks, who, logits, losses, ours):
    checks.close("%s logits" % who, ours["logits"], logits.detach().numpy())
    scored = ours["labels"][:, 1:] != IGNORE_INDEX
    ref_loss = float(losses.detach().sum()) / max(int(scored.sum()), 1)
    checks.close("%s loss (ours %.9g, theirs %.9g)" % (who, ours["loss"], ref_loss), ours["loss"],
                 ref_loss)
    checks.close("%s per-token losses" % who, ours["token_losses"][:, :-1],
                 losses.detach().numpy())


def run_case(args, checks, model_yaml, dtype_flag, outdir, seed):
    torch_dtype_name, torch_dtype = DTYPES[dtype_flag]
    os.makedirs(outdir, exist_ok=True)
    for name in DUMP_FILES:  # never compare a stale file from an earlier run
        if os.path.exists(os.path.join(outdir, name)):
            os.remove(os.path.join(outdir, name))
    cmd = [args.dump_exe, "--model", model_yaml, "--out", outdir, "--dtype", dtype_flag,
           "--seed", str(seed), "--batch", str(args.batch), "--seq", str(args.seq),
           "--perturb-norms"]
    print("running: %s" % " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    print(proc.stdout.rstrip())
    checks.true("qwen3-dump-hf-model exits 0", proc.returncode == 0, "code %d" % proc.returncode)
    if proc.returncode != 0:
        return

    config = check_config(checks, outdir, read_model_yaml(model_yaml), torch_dtype)
    reference = check_weights(checks, outdir, config, torch_dtype)
    with open(os.path.join(outdir, "result.json")) as fh:
        result = json.load(fh)
    checks.true("result.json dtype", result["dtype"] == torch_dtype_name, result["dtype"])
    batch, seq, vocab = int(result["batch"]), int(result["seq"]), config.vocab_size
    n = batch * seq
    ours = {
        "tokens": read_array(outdir, "tokens.i32", np.int32, n).reshape(batch, seq),
        "labels": read_array(outdir, "labels.i32", np.int32, n).reshape(batch, seq),
        "token_losses": read_array(outdir, "token_losses.f32", np.float32, n).reshape(batch, seq),
        "logits": read_array(outdir, "logits.f32", np.float32, n * vocab),
        "loss": float(result["loss"]),
    }
    checks.true("the last position of each row is unscored",
                bool(np.all(ours["token_losses"][:, -1] == 0)))
    tokens = torch.from_numpy(ours["tokens"].astype(np.int64))
    labels = torch.from_numpy(ours["labels"].astype(np.int64))
    with torch.no_grad():
        logits, _ = reference(tokens, labels=labels)
        compare_outputs(checks, "torch reference", logits, per_token_losses(logits, labels), ours)

    model_class, why_not = qwen3_for_causal_lm()
    if model_class is None:
        print("  skipped: Qwen3ForCausalLM cannot be imported with torch %s here (%s); the "
              "config and safetensors checks above stand" % (torch.__version__, why_not))
        return
    hf = model_class.from_pretrained(outdir, torch_dtype=torch.float32,
                                     attn_implementation="eager")
    hf.eval()
    with torch.no_grad():
        out = hf(input_ids=tokens)
    compare_outputs(checks, "Qwen3ForCausalLM", out.logits, per_token_losses(out.logits, labels),
                    ours)


def check_bf16_rounding(checks, f32_dir, bf16_dir):
    """The bf16 file holds torch's own rounding (to nearest even) of the same seeded fp32 model."""
    f32 = load_file(os.path.join(f32_dir, "model.safetensors"))
    bf16 = load_file(os.path.join(bf16_dir, "model.safetensors"))
    mismatched = sorted(name for name in f32 if name not in bf16 or not torch.equal(
        f32[name].to(torch.bfloat16).view(torch.int16), bf16[name].view(torch.int16)))
    checks.true("bf16 tensors equal torch's rounding of the fp32 ones", not mismatched,
                ", ".join(mismatched))


def main():
    args = parse_args()
    torch.set_num_threads(2)
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(
        prefix="qwen3-hf-")
    checks = Checks(args.tol)
    try:
        for index, model_yaml in enumerate(args.models):
            stem = os.path.splitext(os.path.basename(model_yaml))[0]
            dirs = {flag: os.path.join(workdir, "%s-%s" % (stem, flag)) for flag in DTYPES}
            # Both dtypes from one seed: the same model, so the bf16 file can be checked against
            # the fp32 one.
            cases = [(flag, run_case, (args, checks, model_yaml, flag, dirs[flag], 31 + index))
                     for flag in ("f32", "bf16")]
            cases.append(("bf16 rounding", check_bf16_rounding, (checks, dirs["f32"],
                                                                 dirs["bf16"])))
            for label, function, arguments in cases:
                print("\n== %s, %s" % (stem, label))
                try:
                    function(*arguments)
                except Exception as exc:  # noqa: BLE001 - report, then go on to the other cases
                    checks.true("%s %s completes" % (stem, label), False,
                                "%s: %s" % (type(exc).__name__, exc))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    if checks.failures:
        print("FAIL: %d of %d checks failed: %s" % (len(checks.failures), checks.count,
                                                    "; ".join(checks.failures)))
        return 1
    print("PASS: %d checks" % checks.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
