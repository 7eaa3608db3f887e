#!/usr/bin/env bash
# qwen3-prep from text with Qwen3's tokenizer, as a user runs it: JSONL built from the machine's
# licence texts and C headers into shards that --check accepts; the same files for 1 and 2
# threads; a run SIGKILLed after two shards (QWEN3_TEST_PREP_KILL_AT_SHARD=3) that resumes, when
# started again, to exactly the files of the uninterrupted run; a directory of code filtered by
# extension; invalid UTF-8 named by file, line and byte; the progress bar on a terminal.
# Exit 77 (skip) without Qwen3's vocab.json and merges.txt.
set -uo pipefail
exe=$1 tokenizer=${QWEN3_TOKENIZER_DIR:-$2} dir=$3
if [[ ! -f $tokenizer/vocab.json || ! -f $tokenizer/merges.txt ]]; then
  echo "SKIP: Qwen3's vocab.json and merges.txt are not in $tokenizer (set QWEN3_TOKENIZER_DIR)"
  exit 77
fi
rm -rf "$dir" && mkdir -p "$dir"
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
same_files() {  # same_files DIR1 DIR2: the same file names with the same bytes
  [[ "$(ls "$1")" == "$(ls "$2")" ]] || return 1
  local f
  for f in "$1"/*; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
}

python3 - "$dir/docs.jsonl" <<'EOF'
import glob, json, sys
paths = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/include/*.h"))
total = 0
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        out.write(json.dumps({"path": path, "text": text}) + "\n")
        total += len(text)
        if total > 1_200_000:
            break
EOF
common=("$dir/docs.jsonl" --format jsonl --tokenizer "$tokenizer" --tokenizer-name Qwen/Qwen3-0.6B
        --val-fraction 0.05 --seed 7 --shard-tokens 40000 --no-progress)

"$exe" "${common[@]}" --output "$dir/one" --threads 1 >"$dir/one.log" 2>&1 || fail "1 thread: $(cat "$dir/one.log")"
"$exe" "${common[@]}" --output "$dir/two" --threads 2 >"$dir/two.log" 2>&1 || fail "2 threads: $(cat "$dir/two.log")"
shards=$(ls "$dir/one"/*.h5 | wc -l)
[[ $shards -ge 5 ]] || fail "expected several shards, got $shards"
same_files "$dir/one" "$dir/two" && echo "ok   1 and 2 threads write the same $shards shards" ||
  fail "1 and 2 threads wrote different files"
"$exe" --check "$dir/one/*.h5" --vocab-size 151669 >"$dir/check.log" 2>&1 &&
  echo "ok   --check: $(cat "$dir/check.log")" || fail "--check: $(cat "$dir/check.log")"

QWEN3_TEST_PREP_KILL_AT_SHARD=3 "$exe" "${common[@]}" --output "$dir/killed" >/dev/null 2>&1
status=$?
[[ $status -eq 137 ]] || fail "the killed run exited with $status, expected 137 (SIGKILL)"
[[ -f $dir/killed/prep-progress.json && ! -e $dir/killed/manifest.json ]] ||
  fail "the killed run left no progress record, or a manifest"
compgen -G "$dir/killed/*.h5" >/dev/null && fail "the killed run left files that look finished"
"$exe" "${common[@]}" --output "$dir/killed" >"$dir/resume.log" 2>&1 || fail "resume: $(cat "$dir/resume.log")"
grep -q "resumed: kept 2 shards" "$dir/resume.log" || fail "the rerun did not say it resumed: $(cat "$dir/resume.log")"
same_files "$dir/one" "$dir/killed" && echo "ok   killed after 2 shards and rerun: the same files" ||
  fail "the resumed run wrote other files than the uninterrupted one"

mkdir -p "$dir/crate/src"
printf 'fn main() {\n    println!("Hello world");\n}\n' >"$dir/crate/src/main.rs"
printf '[package]\nname = "demo"\n' >"$dir/crate/Cargo.toml"
printf 'not read\n' >"$dir/crate/README.md"
"$exe" "$dir/crate" --format text --extensions rs,.toml --tokenizer "$tokenizer" \
  --output "$dir/code" --no-progress >"$dir/code.log" 2>&1 || fail "code: $(cat "$dir/code.log")"
grep -q "train 1 shards, .* 2 documents" "$dir/code.log" && echo "ok   code directory: $(head -1 "$dir/code.log")" ||
  fail "a directory with .rs and .toml files: $(cat "$dir/code.log")"

printf 'fine\nnot \xff fine\n' >"$dir/bad.txt"
err=$("$exe" "$dir/bad.txt" --format text --tokenizer "$tokenizer" --output "$dir/bad" 2>&1 >/dev/null)
status=$?
[[ $status -eq 1 ]] && grep -q "bad.txt:2: byte 9 of the file (0xFF) is not valid UTF-8" <<<"$err" &&
  echo "ok   invalid UTF-8: $err" || fail "invalid UTF-8 (status $status): $err"
"$exe" "$dir/bad.txt" --format text --tokenizer "$tokenizer" --output "$dir/replaced" \
  --invalid-utf8 replace --no-progress >"$dir/replaced.log" 2>&1 &&
  grep -q "repaired 1 documents" "$dir/replaced.log" && echo "ok   --invalid-utf8 replace" ||
  fail "--invalid-utf8 replace: $(cat "$dir/replaced.log")"

# The progress bar, on a pseudo-terminal that script(1) provides.
if command -v script >/dev/null; then
  script -qec "'$exe' $(printf '%q ' "${common[@]}" | sed 's/--no-progress//') --output '$dir/bar'" \
    /dev/null >"$dir/bar.log" 2>&1
  grep -q "100.0%" "$dir/bar.log" && echo "ok   progress bar: $(tr '\r' '\n' <"$dir/bar.log" | grep '100.0%' | tail -1)" ||
    fail "no progress bar on a terminal: $(cat "$dir/bar.log")"
fi
exit $failures
