#!/usr/bin/env bash
# Resuming. The same three-stage run as test_train_curriculum.sh, four ways:
#   A  uninterrupted, 2 ranks: the reference;
#   B  2 ranks, stopped after step 13 (mid-stage) and after step 30 (in stage 2), resumed each
#      time: the loss and gradient-norm sequence and the final weights and optimizer shards are
#      bit-identical to A's;
#   C  stopped at 13 on 2 ranks, resumed on 3 ranks up to 30, finished on 1 rank: the optimizer
#      state is resharded each time, and the losses follow A's within rounding (1e-5 relative);
#   D  2 ranks, rank 0 killed (SIGKILL) in the middle of writing checkpoint 16: the job fails, the
#      checkpoint of step 8 is untouched and verifies, the rerun removes the half-written
#      directory, resumes from 8 and ends bit-identical to A;
# and then damaged checkpoints (E, F), a write killed between manifest and rename (G), a stage
# shortened on resume (H) and stops at a stage boundary (I).
BIN=$1 MPIEXEC=$2 SRC=$3 WORK=$4
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
make_data "$WORK/data" 5 600
for run in A B C D; do write_run "$WORK/$run.yaml" "$WORK/data" "$WORK/$run"; done
final=checkpoints/step-00000044
state_files="model.safetensors optimizer/shard-00000-of-00002.h5 optimizer/shard-00001-of-00002.h5"

mpi 2 "$WORK/A.log" "$WORK/A.yaml"
[[ $status -eq 0 ]] || { fail "A: exit status $status"; cat "$WORK/A.log"; finish; }
loss_sequence "$WORK/A/metrics.jsonl" >"$WORK/A.seq"

# B: exact resume on the same number of ranks.
mpi 2 "$WORK/B1.log" "$WORK/B.yaml" --stop-at-step 13
[[ $status -eq 0 ]] && grep -q "step 13 reached" "$WORK/B1.log" && pass "B: stopped after step 13, exit 0" || fail "B1: status $status"
mpi 2 "$WORK/B2.log" "$WORK/B.yaml" --stop-at-step 30
grep -q "resuming from .*step-00000013 (stage 'general', step 13/24" "$WORK/B2.log" && pass "B: resumed from step 13" || fail "B2 did not resume from 13"
mpi 2 "$WORK/B3.log" "$WORK/B.yaml"
[[ $status -eq 0 ]] && grep -q "resuming from .*step-00000030 (stage 'code', step 6/12" "$WORK/B3.log" &&
  pass "B: resumed from step 30 in stage 'code'" || { fail "B3: status $status"; cat "$WORK/B3.log"; }
loss_sequence "$WORK/B/metrics.jsonl" >"$WORK/B.seq"
if cmp -s "$WORK/A.seq" "$WORK/B.seq"; then
  pass "B: $(wc -l <"$WORK/B.seq") metric lines (losses, gradient norms, evals) bit-identical to A"
else
  fail "B: metrics differ from A:"; diff "$WORK/A.seq" "$WORK/B.seq" | head
fi
same_files "$WORK/A/$final" "$WORK/B/$final" $state_files &&
  pass "B: final weights and optimizer shards byte-identical to A" || fail "B: final checkpoint files differ from A"

# C: resume on other numbers of ranks.
mpi 2 "$WORK/C1.log" "$WORK/C.yaml" --stop-at-step 13
mpi 3 "$WORK/C2.log" "$WORK/C.yaml" --stop-at-step 30
grep -q "written by 2 ranks, now 3: optimizer state resharded" "$WORK/C2.log" && pass "C: 2 -> 3 ranks" || { fail "C2: no reshard"; cat "$WORK/C2.log"; }
ls "$WORK/C/checkpoints/step-00000030/optimizer" | grep -q "shard-00002-of-00003" || fail "C: step 30 was not written by 3 ranks"
mpi 1 "$WORK/C3.log" "$WORK/C.yaml"
[[ $status -eq 0 ]] && grep -q "written by 3 ranks, now 1" "$WORK/C3.log" && pass "C: 3 -> 1 rank, finished" || { fail "C3: status $status"; cat "$WORK/C3.log"; }
loss_sequence "$WORK/C/metrics.jsonl" >"$WORK/C.seq"
worst=$(paste -d' ' "$WORK/A.seq" "$WORK/C.seq" | awk '
  $1 == "train" { d = ($3 - $7) / $3; if (d < 0) d = -d; if (d > w) w = d; n++ }
  END { if (n != 44) print "lines " n; else printf "%.2e\n", w }')
awk -v w="$worst" 'BEGIN {exit !(w + 0 == w && w < 1e-5)}' &&
  pass "C: 44 losses within $worst relative of A's" || fail "C: losses differ from A by $worst"

# D: a kill during a checkpoint write.
QWEN3_TEST_KILL_DURING_CHECKPOINT=16 mpi 2 "$WORK/D1.log" "$WORK/D.yaml"
[[ $status -ne 0 ]] && pass "D: killed during checkpoint 16 (status $status)" || fail "D: the kill did not happen"
[[ -d $WORK/D/checkpoints/.tmp-step-00000016 && ! -e $WORK/D/checkpoints/step-00000016 ]] &&
  pass "D: checkpoint 16 was left half-written in its temporary directory" || fail "D: unexpected directories: $(ls -a "$WORK/D/checkpoints")"
[[ $(readlink "$WORK/D/checkpoints/latest") == step-00000008 ]] && pass "D: latest still -> step-00000008" || fail "D: latest -> $(readlink "$WORK/D/checkpoints/latest")"
mpi 2 "$WORK/D2.log" "$WORK/D.yaml"
grep -q "interrupted write; removed" "$WORK/D2.log" && grep -q "resuming from .*step-00000008" "$WORK/D2.log" &&
  pass "D: rerun removed the partial write and resumed from step 8" || { fail "D2 did not resume from 8"; cat "$WORK/D2.log"; }
same_files "$WORK/A/$final" "$WORK/D/$final" $state_files &&
  pass "D: final weights and optimizer shards byte-identical to A" || fail "D: final checkpoint differs from A"

# A corrupted newest checkpoint is skipped for the one before it, with the reason.
cp -r "$WORK/D" "$WORK/E"
sed -i "s|$WORK/D|$WORK/E|" "$WORK/D.yaml"
printf 'X' | dd of="$WORK/E/$final/model.safetensors" bs=1 seek=5000 conv=notrunc 2>/dev/null
mpi 2 "$WORK/E.log" "$WORK/D.yaml"
grep -q "skipping checkpoint: .*step-00000044': 'model.safetensors' has CRC-32" "$WORK/E.log" &&
  grep -q "resuming from .*step-00000036" "$WORK/E.log" && [[ -d $WORK/E/checkpoints/rejected-step-00000044 ]] &&
  pass "E: a corrupted checkpoint is named, moved aside and skipped for the previous one" || { fail "E: corruption not handled"; cat "$WORK/E.log"; }

# F: a corrupted newest checkpoint is moved aside and does not count for retention: resuming from
# the one before and writing more never deletes the good ones (keep_last 2).
write_run "$WORK/F.yaml" "$WORK/data" "$WORK/F"
mpi 2 "$WORK/F1.log" "$WORK/F.yaml" --stop-at-step 20
printf 'X' | dd of="$WORK/F/checkpoints/step-00000020/optimizer/shard-00001-of-00002.h5" bs=1 seek=3000 conv=notrunc 2>/dev/null
mpi 2 "$WORK/F2.log" "$WORK/F.yaml" --stop-at-step 22
kept=$(cd "$WORK/F/checkpoints" && ls -d step-* rejected-* | tr '\n' ' ')
[[ $status -eq 0 && $kept == "rejected-step-00000020 step-00000016 step-00000022 " ]] &&
  grep -q "resuming from .*step-00000016" "$WORK/F2.log" &&
  pass "F: resumed from 16 past a corrupted 20; kept: $kept" || { fail "F: status $status, kept: $kept"; cat "$WORK/F2.log"; }

# G: a write that finished its manifest but not its rename (a crash between the two) is promoted.
mv "$WORK/F/checkpoints/step-00000022" "$WORK/F/checkpoints/.tmp-step-00000022"
mpi 2 "$WORK/G.log" "$WORK/F.yaml" --stop-at-step 23
grep -q "tmp-step-00000022: complete but not renamed; promoted" "$WORK/G.log" &&
  grep -q "resuming from .*step-00000022" "$WORK/G.log" &&
  pass "G: a complete but unrenamed checkpoint is promoted and resumed from" || { fail "G"; cat "$WORK/G.log"; }

# H: the stage shortened on resume to where the checkpoint is: the stage is closed there (its
# evaluation, a stage-end checkpoint), and the next stage carries its optimizer state from it.
mpi 2 "$WORK/H.log" "$WORK/F.yaml" --set stages.0.steps=23
[[ $status -eq 0 ]] && grep -q "stage_complete: true" "$WORK/F/checkpoints/step-00000023/trainer_state.yaml" &&
  grep -q "stage 2/3 'code'.*optimizer state: .*step-00000023" "$WORK/H.log" &&
  pass "H: a stage shortened to its checkpoint is closed there and carried from" || { fail "H: status $status"; cat "$WORK/H.log"; }

# I: stops at a stage boundary. Stopped after step 24, the last of stage 'general' (before its
# evaluation); the rerun closes the stage and stops again before stage 'code' starts, leaving the
# stage-end checkpoint as it is; the last rerun finishes bit-identical to A.
write_run "$WORK/I.yaml" "$WORK/data" "$WORK/I"
mpi 2 "$WORK/I1.log" "$WORK/I.yaml" --stop-at-step 24
mpi 2 "$WORK/I2.log" "$WORK/I.yaml" --stop-at-step 24
state=$WORK/I/checkpoints/step-00000024/trainer_state.yaml
grep -q "stage 'general' done" "$WORK/I2.log" && grep -q "stage_complete: true" "$state" &&
  grep -q "stage_name: general" "$state" && pass "I: the stage-end checkpoint survives a stop at the boundary" ||
  { fail "I: stage-end checkpoint"; cat "$WORK/I2.log" "$state"; }
mpi 2 "$WORK/I3.log" "$WORK/I.yaml"
same_files "$WORK/A/$final" "$WORK/I/$final" $state_files &&
  pass "I: final weights and optimizer shards byte-identical to A" || { fail "I: final checkpoint differs from A"; cat "$WORK/I3.log"; }
finish
