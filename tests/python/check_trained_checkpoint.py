#!/usr/bin/python3
"""A checkpoint written by qwen3-train, read the way Hugging Face users read it.

Loads DIR/config.json with transformers.AutoConfig and DIR/model.safetensors with the safetensors
package, builds tests/python/qwen3_torch_ref.py's independent PyTorch Qwen3 from them, and
computes the mean next-token loss over the first N evaluation windows of the shards, read with
h5py and cut as docs/data-format.md defines (window i of a shard: tokens [i*T, i*T + T + 1)).
That loss must equal the one qwen3-eval reported for the same windows (its JSON last line).
Where transformers' own Qwen3ForCausalLM can run (torch >= 2), it is checked the same way.

With --copy-with-head OUT it also writes OUT, the same model with lm_head.weight stored
explicitly (as some exports of tied models have it), for the caller to load back.

Usage: check_trained_checkpoint.py --checkpoint DIR --shards GLOB --seq-len T --windows N
           --eval-json FILE [--tol 1e-5] [--copy-with-head OUT]
Exit codes: 0 pass, 1 mismatch, 77 skipped (a module is missing).
"""

import argparse
import glob
import json
import math
import os
import sys

SKIP_EXIT = 77

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig
except ImportError as exc:  # the test tools are optional on a bare machine
    print("SKIP: %s under %s" % (exc, sys.executable))
    sys.exit(SKIP_EXIT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qwen3_torch_ref import Qwen3Ref  # noqa: E402


def windows(pattern, seq_len, count):
    """The first `count` windows of seq_len + 1 tokens, shard by shard in sorted order."""
    out = []
    for path in sorted(glob.glob(pattern)):
        with h5py.File(path, "r") as f:
            tokens = np.asarray(f["tokens"][:], dtype=np.int64)
        for i in range((len(tokens) - 1) // seq_len):
            out.append(tokens[i * seq_len:i * seq_len + seq_len + 1])
            if len(out) == count:
                return np.stack(out)
    raise SystemExit("only %d windows of %d tokens in %s" % (len(out), seq_len, pattern))


def mean_loss(logits, targets):
    losses = F.cross_entropy(logits.double().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                             reduction="sum")
    return float(losses) / targets.numel()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--shards", required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--windows", type=int, required=True)
    p.add_argument("--eval-json", required=True)
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--copy-with-head")
    args = p.parse_args()

    ours = json.loads(open(args.eval_json).read().strip().splitlines()[-1])
    config = AutoConfig.from_pretrained(args.checkpoint)
    print("AutoConfig: %s, %d layers, rope_theta %g" %
          (type(config).__name__, config.num_hidden_layers, config.rope_theta))
    state = load_file(os.path.join(args.checkpoint, "model.safetensors"))
    model = Qwen3Ref(config.to_dict())
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval()

    data = torch.from_numpy(windows(args.shards, args.seq_len, args.windows))
    inputs, targets = data[:, :-1], data[:, 1:]
    with torch.no_grad():
        logits, _ = model(inputs)
    theirs = mean_loss(logits, targets)
    failures = 0
    tokens = targets.numel()
    rel = abs(ours["loss"] - theirs) / abs(theirs)
    ok = rel <= args.tol and ours["tokens"] == tokens
    print("%s qwen3-eval loss %.9f over %d tokens; PyTorch on the safetensors %.9f over %d "
          "(relative %.2e, tolerance %.0e)" % ("ok  " if ok else "FAIL", ours["loss"],
                                               ours["tokens"], theirs, tokens, rel, args.tol))
    failures += not ok
    ppl_ok = abs(ours["perplexity"] - math.exp(theirs)) <= args.tol * math.exp(theirs) * 2
    print("%s perplexity %.6f vs exp(loss) %.6f" % ("ok  " if ppl_ok else "FAIL",
                                                     ours["perplexity"], math.exp(theirs)))
    failures += not ppl_ok

    try:
        from transformers import Qwen3ForCausalLM
        hf = Qwen3ForCausalLM.from_pretrained(args.checkpoint, torch_dtype=torch.float32)
    except Exception as exc:  # torch too old for transformers' modelling code
        print("skipped: Qwen3ForCausalLM.from_pretrained (%s: %s)" %
              (type(exc).__name__, str(exc).splitlines()[0][:160]))
    else:
        with torch.no_grad():
            hf_loss = mean_loss(hf(inputs).logits, targets)
        rel = abs(ours["loss"] - hf_loss) / abs(hf_loss)
        ok = rel <= args.tol
        print("%s transformers Qwen3ForCausalLM loss %.9f (relative %.2e)" %
              ("ok  " if ok else "FAIL", hf_loss, rel))
        failures += not ok
    if args.copy_with_head:
        os.makedirs(args.copy_with_head, exist_ok=True)
        with open(os.path.join(args.checkpoint, "config.json")) as src, \
                open(os.path.join(args.copy_with_head, "config.json"), "w") as dst:
            dst.write(src.read())
        with_head = dict(state)
        with_head["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
        save_file(with_head, os.path.join(args.copy_with_head, "model.safetensors"),
                  metadata={"format": "pt"})
        print("wrote %s with lm_head.weight" % args.copy_with_head)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
