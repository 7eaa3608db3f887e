#!/usr/bin/env python3
"""Tokenizer throughput, one thread each: qwen3-bench-tokenizer (C++) against Hugging Face's
tokenizers library (Rust, through its Python bindings) on the same documents, in one run.

Usage (with build/pyenv, which scripts/setup.sh makes with QWEN3_WITH_TEST_TOOLS=1):
    build/pyenv/bin/python bench/tokenizer_vs_hf.py --bench-exe build/bin/qwen3-bench-tokenizer \
        --tokenizer ../shared/tokenizers/qwen3

Corpora, built from what a Debian machine has unless given:
  english  licence and copyright texts (/usr/share/common-licenses, /usr/share/doc/*/copyright)
  code     C and C++ headers (/usr/include), or --code-dir DIR with --extensions (.rs for Rust)
each capped at --megabytes. Hugging Face runs with TOKENIZERS_PARALLELISM=false and
RAYON_NUM_THREADS=1, timed both as encode_batch over all documents and as encode per document;
the C++ side encodes document by document with a fresh word cache each repeat. Both report the
median of --repeats runs; the token counts must agree. Prints MB/s and tokens/s per core and the
ratios C++ / HF."""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests", "python"))
from qwen3_hf_tokenizer import load_qwen3  # noqa: E402


def read_documents(paths, limit_bytes):
    """Documents from PATHS in order up to LIMIT_BYTES: UTF-8 text files, each text once (many
    packages ship the same copyright file; repeats would only measure the word caches)."""
    documents, seen, total = [], set(), 0
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if not text or text in seen:
            continue
        seen.add(text)
        documents.append(text)
        total += len(text.encode("utf-8"))
        if total >= limit_bytes:
            break
    return documents


def english_paths():
    return (sorted(glob.glob("/usr/share/common-licenses/*")) +
            sorted(glob.glob("/usr/share/doc/*/copyright")))


def code_paths(directory, extensions):
    paths = []
    for root, _, names in os.walk(directory):
        paths += [os.path.join(root, n) for n in names if n.endswith(tuple(extensions))]
    return sorted(paths)


def time_hf(tokenizer, documents, repeats):
    """Median seconds of encode_batch and of encode per document, and the token count."""
    batch_times, single_times, tokens = [], [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        encodings = tokenizer.encode_batch(documents, add_special_tokens=False)
        batch_times.append(time.perf_counter() - start)
        tokens = sum(len(e.ids) for e in encodings)
        start = time.perf_counter()
        for document in documents:
            tokenizer.encode(document, add_special_tokens=False)
        single_times.append(time.perf_counter() - start)
    return statistics.median(batch_times), statistics.median(single_times), tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-exe", required=True, help="qwen3-bench-tokenizer")
    ap.add_argument("--tokenizer", required=True, help="directory with vocab.json and merges.txt")
    ap.add_argument("--megabytes", type=float, default=4.0, help="size of each corpus")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--code-dir", default="/usr/include")
    ap.add_argument("--extensions", default=".h,.hpp,.hh", help="code files, comma-separated")
    args = ap.parse_args()

    limit = int(args.megabytes * 1e6)
    corpora = {
        "english": read_documents(english_paths(), limit),
        "code": read_documents(code_paths(args.code_dir, args.extensions.split(",")), limit),
    }
    hf = load_qwen3(args.tokenizer)._tokenizer  # the Rust tokenizer under transformers' wrapper
    with tempfile.TemporaryDirectory() as work:
        command = [args.bench_exe, "--tokenizer", args.tokenizer, "--repeats", str(args.repeats)]
        for name, documents in corpora.items():
            path = os.path.join(work, f"{name}.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(documents, f)
            command += ["--corpus", f"{name}={path}"]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"FAIL: {' '.join(command)}\n{run.stderr}")
        print(run.stdout.rstrip())
        ours = json.loads(run.stdout.strip().splitlines()[-1])["corpora"]

    print(f"\n{'corpus':<8} {'MB':>6} {'tokens':>9} | {'C++ MB/s':>9} {'tok/s':>9} | "
          f"{'HF batch MB/s':>13} {'tok/s':>9} | {'HF encode MB/s':>14} | {'C++/HF batch':>12} "
          f"{'C++/HF encode':>13}")
    for name, documents in corpora.items():
        batch_s, single_s, tokens = time_hf(hf, documents, args.repeats)
        mine = ours[name]
        if tokens != mine["tokens"]:
            sys.exit(f"FAIL: {name}: Hugging Face gives {tokens} tokens, C++ {mine['tokens']}")
        megabytes = mine["bytes"] / 1e6
        print(f"{name:<8} {megabytes:6.2f} {tokens:9d} | {mine['mb_per_s']:9.2f} "
              f"{mine['tokens_per_s']:9.0f} | {megabytes / batch_s:13.2f} {tokens / batch_s:9.0f} | "
              f"{megabytes / single_s:14.2f} | {batch_s / mine['seconds']:11.2f}x "
              f"{single_s / mine['seconds']:12.2f}x")


if __name__ == "__main__":
    main()
