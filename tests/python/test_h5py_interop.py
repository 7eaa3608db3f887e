#!/usr/bin/env python3
"""Shard interop with h5py, both ways (docs/data-format.md):
1. shards that h5py writes with the documented layout load, and the loader's windows, targets,
   positions and document ids equal ones computed here independently; a wrong dtype is refused;
2. shards that qwen3-prep writes read back in h5py with the documented layout, and hold exactly
   the input documents, split into train and validation.
Exit 77 (ctest's skip) when h5py is not installed."""
import argparse
import json
import os
import shutil
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e}; install Debian's python3-h5py and python3-numpy", file=sys.stderr)
    sys.exit(77)

VOCAB, EOS = 1000, 999


def random_docs(rng, count, min_len, max_len):
    docs = []
    for _ in range(count):
        n = int(rng.integers(min_len, max_len + 1))
        docs.append(np.append(rng.integers(0, EOS, n - 1), EOS).astype(np.uint32))
    return docs


def write_h5py_shard(path, docs, **dataset_options):
    tokens = np.concatenate(docs).astype(np.uint32)
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.uint64)
    with h5py.File(path, "w") as f:
        f.create_dataset("tokens", data=tokens, **dataset_options)
        f.create_dataset("doc_offsets", data=offsets)
        f.attrs["format"] = "qwen3-train-shard"
        f.attrs["format_version"] = 1
        f.attrs["vocab_size"] = VOCAB
        f.attrs["eos_id"] = EOS
        f.attrs["tokenizer"] = "h5py-test"


def expected_windows(shards, seq_len):
    """Windows as docs/data-format.md defines them, shard by shard, in order."""
    rows = []
    for docs in shards:
        tokens = np.concatenate(docs).astype(np.int64)
        doc_of = np.concatenate([np.full(len(d), i) for i, d in enumerate(docs)])
        pos_in_doc = np.concatenate([np.arange(len(d)) for d in docs])
        for w in range((len(tokens) - 1) // seq_len):
            a = w * seq_len
            doc = doc_of[a:a + seq_len]
            first = doc == doc[0]
            rows.append({
                "tokens": tokens[a:a + seq_len],
                "targets": tokens[a + 1:a + seq_len + 1],
                "positions": np.where(first, np.arange(seq_len), pos_in_doc[a:a + seq_len]),
                "doc_ids": doc - doc[0],
            })
    return rows


def dump(args, glob, seq_len, global_batch, rank=0, world=1, check=True):
    command = [args.dump_exe, "--eval", glob, "--seq-len", str(seq_len), "--global-batch",
               str(global_batch), "--rank", str(rank), "--world-size", str(world),
               "--vocab-size", str(VOCAB)]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command)}\n{result.stderr}")
    return result


def check_h5py_to_loader(args, work):
    rng = np.random.default_rng(1)
    shards = [random_docs(rng, 40, 1, 90) for _ in range(3)]
    # The documented layout chunked, contiguous (h5py's default) and compressed: all must load.
    write_h5py_shard(f"{work}/py-0.h5", shards[0], chunks=(256,))
    write_h5py_shard(f"{work}/py-1.h5", shards[1])
    write_h5py_shard(f"{work}/py-2.h5", shards[2], chunks=(512,), compression="gzip")
    seq_len, global_batch = 32, 6
    expected = expected_windows(shards, seq_len)
    got = json.loads(dump(args, f"{work}/py-*.h5", seq_len, global_batch).stdout)
    assert got["num_samples"] == len(expected), (got["num_samples"], len(expected))
    rows = []
    for batch in got["batches"]:
        for r in range(batch["real_rows"]):
            rows.append({k: np.array(batch[k][r * seq_len:(r + 1) * seq_len])
                         for k in ("tokens", "targets", "positions", "doc_ids")})
    assert len(rows) == len(expected)
    for i, (g, e) in enumerate(zip(rows, expected)):
        for key in e:
            if not np.array_equal(g[key], e[key]):
                sys.exit(f"FAIL: window {i} {key}: loader {g[key]} vs h5py {e[key]}")
    print(f"h5py -> loader: {len(rows)} windows from 3 h5py shards (chunked, contiguous, gzip) "
          "match")

    result = subprocess.run([args.prep_exe, "--check", f"{work}/py-*.h5"], capture_output=True,
                            text=True)
    total = sum(len(d) for docs in shards for d in docs)
    assert result.returncode == 0, result.stderr
    assert f"{total:,} tokens" in result.stdout, result.stdout

    # A dtype h5py users easily write by mistake: numpy's default int64.
    bad = f"{work}/bad-int64.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("tokens", data=np.concatenate(shards[0]).astype(np.int64))
        f.create_dataset("doc_offsets", data=np.array([0, sum(len(d) for d in shards[0])],
                                                      dtype=np.uint64))
        for key, value in [("format", "qwen3-train-shard"), ("format_version", 1),
                           ("vocab_size", VOCAB), ("eos_id", EOS), ("tokenizer", "h5py-test")]:
            f.attrs[key] = value
    result = dump(args, bad, seq_len, global_batch, check=False)
    assert result.returncode == 1, result.returncode
    assert bad in result.stderr and "dtype int64, expected uint32" in result.stderr, result.stderr
    print("h5py -> loader: an int64 token dataset is refused:", result.stderr.strip())


def read_split(out, manifest, split):
    docs, tokens = [], 0
    for entry in manifest["splits"][split]["shards"]:
        with h5py.File(f"{out}/{entry['file']}", "r") as f:
            assert f.attrs["format"] == "qwen3-train-shard"
            assert int(f.attrs["format_version"]) == 1
            assert int(f.attrs["vocab_size"]) == VOCAB and int(f.attrs["eos_id"]) == EOS
            assert f.attrs["tokenizer"] == "prep-test"
            t, offsets = f["tokens"], f["doc_offsets"]
            assert t.dtype == np.uint32 and t.ndim == 1 and t.chunks is not None, (t.dtype, t.chunks)
            assert offsets.dtype == np.uint64
            t, offsets = t[:], offsets[:]
            assert offsets[0] == 0 and offsets[-1] == len(t) and np.all(np.diff(offsets) > 0)
            assert entry["tokens"] == len(t) and entry["documents"] == len(offsets) - 1
            docs += [t[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            tokens += len(t)
    assert manifest["splits"][split]["tokens"] == tokens
    assert manifest["splits"][split]["documents"] == len(docs)
    return docs


def is_subsequence(part, whole):
    it = iter(range(len(whole)))
    for d in part:
        if not any(np.array_equal(d, whole[i]) for i in it):
            return False
    return True


def check_prep_to_h5py(args, work):
    rng = np.random.default_rng(2)
    docs = random_docs(rng, 300, 2, 120)  # 2: a document shown without its EOS is not blank
    # Half the documents lack their EOS: prep appends it. Blank lines are not documents.
    ids_path = f"{work}/input.txt"
    with open(ids_path, "w") as f:
        for i, d in enumerate(docs):
            shown = d if i % 2 else d[:-1]
            f.write(" ".join(map(str, shown)) + ("\n\n" if i % 7 == 0 else "\n"))
    out = f"{work}/prep-ids"
    command = [args.prep_exe, "--input", ids_path, "--output", out, "--vocab-size", str(VOCAB),
               "--eos-id", str(EOS), "--tokenizer", "prep-test", "--shard-tokens", "2000",
               "--val-fraction", "0.2", "--seed", "5"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    manifest = json.load(open(f"{out}/manifest.json"))
    assert manifest["format"] == "qwen3-train-shard" and manifest["format_version"] == 1
    train, val = read_split(out, manifest, "train"), read_split(out, manifest, "val")
    assert len(train) + len(val) == len(docs)
    assert 0.1 < len(val) / len(docs) < 0.3, len(val)
    assert is_subsequence(train, docs) and is_subsequence(val, docs)
    sizes = [s["tokens"] for s in manifest["splits"]["train"]["shards"]]
    assert all(1000 <= s <= 3000 for s in sizes), sizes
    print(f"prep -> h5py: {len(train)} train + {len(val)} val documents in "
          f"{len(sizes)} + {len(manifest['splits']['val']['shards'])} shards read back exactly")

    # A short first document must not make a sliver of a shard: shards hold at least half of
    # --shard-tokens unless the whole split is smaller.
    with open(f"{work}/short-first.txt", "w") as f:
        f.write("5\n" + " ".join(["7"] * 30) + "\n" + " ".join(["8"] * 30) + "\n")
    out = f"{work}/prep-short-first"
    result = subprocess.run([args.prep_exe, "--input", f"{work}/short-first.txt", "--output", out,
                             "--vocab-size", str(VOCAB), "--eos-id", str(EOS), "--tokenizer",
                             "prep-test", "--shard-tokens", "20"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    sizes = [s["tokens"] for s in json.load(open(f"{out}/manifest.json"))["splits"]["train"]["shards"]]
    assert sizes == [33, 31], sizes

    # Raw uint32: documents end at EOS; the last one lacks it and gets one.
    raw_path = f"{work}/input.u32"
    stream = np.concatenate(docs[:50])[:-1].astype("<u4")
    stream.tofile(raw_path)
    out = f"{work}/prep-u32"
    command = [args.prep_exe, "--input", raw_path, "--input-format", "u32", "--output", out,
               "--vocab-size", str(VOCAB), "--eos-id", str(EOS), "--tokenizer", "prep-test"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    manifest = json.load(open(f"{out}/manifest.json"))
    back = read_split(out, manifest, "train")
    assert len(back) == 50 and all(np.array_equal(a, b) for a, b in zip(back, docs[:50]))
    assert manifest["splits"]["val"]["shards"] == []
    print("prep -> h5py: 50 raw uint32 documents read back exactly")

    # Writing into a directory that already has shards is refused; nothing is overwritten.
    before = os.path.getmtime(f"{out}/train-00000.h5")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1 and "already exists" in result.stderr, result.stderr
    assert os.path.getmtime(f"{out}/train-00000.h5") == before


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dump-exe", required=True)
    parser.add_argument("--prep-exe", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    check_h5py_to_loader(args, args.workdir)
    check_prep_to_h5py(args, args.workdir)
    print("PASS")


if __name__ == "__main__":
    main()
