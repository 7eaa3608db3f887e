#!/usr/bin/env python3
"""The C++ tokenizer (dataloader/tokenizer) against Hugging Face's, built by transformers'
Qwen2TokenizerFast from the same vocab.json and merges.txt plus Qwen3's added tokens:
1. token ids, document for document, on a varied corpus (English, Rust, numbers, contractions in
   any case, CRLF and newline runs, trailing spaces, tabs, CJK, emoji, Arabic, combining marks that
   NFC composes, whitespace edge cases, special tokens inside text) and on files every Debian
   machine has (/usr/share/common-licenses, /usr/include); decode(encode(x)) == NFC(x);
2. the same through a tokenizer.json that transformers saved (alone, and with vocab.json and
   merges.txt, which must agree);
3. qwen3-prep end to end: JSONL and a directory of .rs files into shards, read back with h5py,
   every document exactly Hugging Face's ids followed by <|endoftext|>.
Exit 77 (ctest's skip) when transformers, h5py or Qwen3's tokenizer files are missing."""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import unicodedata

try:
    import h5py
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from qwen3_hf_tokenizer import QWEN3_ADDED_TOKENS, load_qwen3
except ImportError as e:
    print(f"SKIP: {e}; scripts/setup.sh with QWEN3_WITH_TEST_TOOLS=1 installs transformers (in "
          f"build/pyenv) and h5py", file=sys.stderr)
    sys.exit(77)

EOS = 151643

HANDWRITTEN = [
    "Hello world", " Hello world", "", " ", "\n", "a",
    "DON'T stop, I'M sure you'RE right; we'll see. She'd've said it's THEIR's. 'S 'll 'LL",
    "x'ſ \u212a \u017ft",  # long s and Kelvin sign under (?i:'s)
    "Numbers: 1234567890 3.14159 -42 1e-9 0x1F 1,000,000 ٣٤٥ ⅻ ²³",
    "line one\r\nline two\r\n\r\n\r\nthree\n\n\n\nfour\r\r\n",
    "trailing spaces   \nand tabs\t\t\tafter\t \n   leading\n" + " " * 100 + "x" + " " * 70,
    "\t\t\tindented with tabs\n\t\tless\n\tleast\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n"
    "    println!(\"{:?} {}\", v, v.len());\n}\n\nimpl<'a> Iterator for Foo<'a> {\n"
    "    type Item = &'a str;\n    fn next(&mut self) -> Option<Self::Item> { None }\n}\n",
    "日本語のテキストです。中文文本，包含标点。한국어 텍스트입니다.",
    "emoji 🎉👍🏽👨‍👩‍👧‍👦 flags 🇩🇪🇯🇵 and ☃ ✓",
    "combining: e\u0301 a\u0308 o\u0302\u0323 A\u030a n\u0303 \u1100\u1161\u11a8 Å (angstrom)",
    "Arabic: العربية لغة جميلة، وهي مكتوبة من اليمين إلى اليسار. Hebrew: שלום עולם",
    "Devanagari: हिन्दी भाषा; Thai: ภาษาไทย; Greek: Ελληνικά; Cyrillic: Русский язык",
    "spaces: a\u00a0b\u2009c\u3000d\u180ee\u0085f\u2028g\u200bh\ufeffi\x1cj\x0bk\x0cl",
    # U+180E is no space to Hugging Face (Unicode's White_Space) but is to PCRE2's \s.
    "word \u180eword, word  \u180e\u180e word \u0085x \u00a0y",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
    "<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello<|im_end|><|endoftext|>",
    "<|fim_prefix|>def f(x):<|fim_suffix|>    return x<|fim_middle|> <|endoftext|>x<|endoftext",
    "<tool_call>{\"name\": \"f\"}</tool_call><tool_response>ok</tool_response><|file_sep|>",
    "<|endoftext|>\u0338 special token then a combining mark",  # NFC does not reach across it
    "a" * 300 + " " + "ab" * 200 + " " + "=" * 150 + " " + "-" * 90 + "\n" * 80,
    "é" * 2000 + " " + "e\u0301" * 500 + " " + "'s" * 300 + "\t" * 300 + "\n" * 300 + "1" * 500,
    "URL https://example.com/path?q=1&r=two#frag e-mail someone@example.org",
    "mixed\u00a0case ÀÉÎÕÜ àéîõü ß ẞ ǅ ǆ ﬁ ﬂ ＡＢＣ ｶﾀｶﾅ",
]


def machine_documents(limit_bytes):
    """Licence texts and C headers, read as UTF-8 with replacement, up to LIMIT_BYTES."""
    paths = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/include/*.h"))
    documents, total = [], 0
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        documents.append(text)
        total += len(text)
        if total > limit_bytes:
            break
    return documents


def nfc_between_added_tokens(text):
    """NFC of each stretch between added tokens: what the tokenizer normalises."""
    out, i = [], 0
    while i < len(text):
        hits = [(text.find(t, i), -len(t), t) for t in QWEN3_ADDED_TOKENS if text.find(t, i) >= 0]
        if not hits:
            break
        start, _, token = min(hits)
        out += [unicodedata.normalize("NFC", text[i:start]), token]
        i = start + len(token)
    out.append(unicodedata.normalize("NFC", text[i:]))
    return "".join(out)


def dump_tokens(args, flags, texts_path):
    command = [args.dump_exe] + flags + ["--texts", texts_path]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command)}\n{run.stderr}")
    return json.loads(run.stdout)


def compare_ids(name, documents, ours, reference):
    failures = 0
    for i, (doc, got, want) in enumerate(zip(documents, ours["results"], reference)):
        if got["ids"] != want:
            first = next((k for k, (a, b) in enumerate(zip(got["ids"], want)) if a != b),
                         min(len(got["ids"]), len(want)))
            print(f"FAIL {name}: document {i} ({doc[:40]!r}...): ids differ from Hugging Face at "
                  f"{first}: {got['ids'][first:first + 8]} vs {want[first:first + 8]}")
            failures += 1
        if got["decoded"] != nfc_between_added_tokens(doc):
            print(f"FAIL {name}: document {i} ({doc[:40]!r}...) does not decode to its NFC form")
            failures += 1
    return failures


def read_shard_documents(out, split):
    manifest = json.load(open(f"{out}/manifest.json"))
    documents = []
    for shard in manifest["splits"][split]["shards"]:
        with h5py.File(f"{out}/{shard['file']}", "r") as f:
            tokens, offsets = f["tokens"][:], f["doc_offsets"][:]
            assert f.attrs["eos_id"] == EOS and f.attrs["vocab_size"] == 151669
            documents += [tokens[offsets[d]:offsets[d + 1]].tolist()
                          for d in range(len(offsets) - 1)]
    return documents


def check_prep(args, name, prep_args, expected):
    """qwen3-prep with PREP_ARGS: train and val together hold EXPECTED, each split in input order."""
    out = os.path.join(args.workdir, name)
    command = [args.prep_exe] + prep_args + ["--output", out, "--tokenizer", args.tokenizer_dir,
                                             "--tokenizer-name", "Qwen/Qwen3-0.6B",
                                             "--val-fraction", "0.2", "--shard-tokens", "20000",
                                             "--threads", "2"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"FAIL prep {name}: {' '.join(command)}\n{run.stderr}")
        return 1
    train, val = read_shard_documents(out, "train"), read_shard_documents(out, "val")
    expected = [ids + [EOS] if not ids or ids[-1] != EOS else ids for ids in expected if ids]

    def in_order(part):
        it = iter(expected)
        return all(any(doc == e for e in it) for doc in part)

    if sorted(train + val) != sorted(expected) or not in_order(train) or not in_order(val):
        print(f"FAIL prep {name}: the shards do not hold Hugging Face's ids for the documents "
              f"({len(train)} + {len(val)} documents, expected {len(expected)})")
        return 1
    print(f"ok   prep {name}: {len(train)} + {len(val)} documents in shards read back with h5py "
          f"equal Hugging Face's ids + EOS")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump-exe", required=True)
    ap.add_argument("--prep-exe", required=True)
    ap.add_argument("--tokenizer-dir", required=True, help="Qwen3's vocab.json and merges.txt")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--machine-bytes", type=int, default=1_500_000)
    args = ap.parse_args()
    args.tokenizer_dir = os.environ.get("QWEN3_TOKENIZER_DIR") or args.tokenizer_dir
    if not all(os.path.isfile(os.path.join(args.tokenizer_dir, f))
               for f in ("vocab.json", "merges.txt")):
        print(f"SKIP: Qwen3's vocab.json and merges.txt are not in {args.tokenizer_dir} (set "
              f"QWEN3_TOKENIZER_DIR)", file=sys.stderr)
        sys.exit(77)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)

    hf = load_qwen3(args.tokenizer_dir)
    documents = HANDWRITTEN + machine_documents(args.machine_bytes)
    reference = [e.ids for e in hf._tokenizer.encode_batch(documents, add_special_tokens=False)]
    texts_path = os.path.join(args.workdir, "texts.json")
    with open(texts_path, "w", encoding="utf-8") as f:
        json.dump(documents, f)

    failures = 0
    ours = dump_tokens(args, ["--tokenizer", args.tokenizer_dir], texts_path)
    if ours["vocab_size"] != len(hf):
        print(f"FAIL: vocabulary size {ours['vocab_size']}, Hugging Face's {len(hf)}")
        failures += 1
    failures += compare_ids("vocab.json+merges.txt", documents, ours, reference)
    total = sum(len(ids) for ids in reference)
    print(f"ok   {len(documents)} documents, {total} tokens: ids equal Hugging Face's, and decode "
          f"gives the NFC text" if failures == 0 else f"{failures} failures")

    hf.save_pretrained(os.path.join(args.workdir, "hf"))
    saved = os.path.join(args.workdir, "hf", "tokenizer.json")
    for name, flags in [("tokenizer.json", ["--tokenizer-json", saved]),
                        ("vocab.json, merges.txt and tokenizer.json",
                         ["--vocab", os.path.join(args.tokenizer_dir, "vocab.json"),
                          "--merges", os.path.join(args.tokenizer_dir, "merges.txt"),
                          "--tokenizer-json", saved])]:
        via_json = dump_tokens(args, flags, texts_path)
        bad = compare_ids(name, documents, via_json, reference)
        if via_json["fingerprint"] != ours["fingerprint"]:
            print(f"FAIL {name}: fingerprint {via_json['fingerprint']}, vocab.json+merges.txt "
                  f"give {ours['fingerprint']}")
            bad += 1
        if bad == 0:
            print(f"ok   {name}: the same ids (tokenizer.json as transformers saves it)")
        failures += bad

    jsonl = os.path.join(args.workdir, "docs.jsonl")
    with open(jsonl, "w", encoding="utf-8") as f:
        for doc in documents:
            f.write(json.dumps({"content": doc, "n": 1}) + "\n")
    failures += check_prep(args, "jsonl", ["--format", "jsonl", "--jsonl-field", "content", jsonl],
                           reference)
    code_dir = os.path.join(args.workdir, "crate")
    code = {f"src/m{i:02d}.rs": doc for i, doc in enumerate(HANDWRITTEN)}
    code["notes.txt"] = "not read: the wrong extension"
    for path, text in code.items():
        os.makedirs(os.path.dirname(os.path.join(code_dir, path)), exist_ok=True)
        with open(os.path.join(code_dir, path), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    expected = [hf._tokenizer.encode(code[p], add_special_tokens=False).ids
                for p in sorted(p for p in code if p.endswith(".rs"))]
    failures += check_prep(args, "rust-dir", ["--format", "text", "--extensions", ".rs", code_dir],
                           expected)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
