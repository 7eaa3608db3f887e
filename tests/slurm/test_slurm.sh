#!/usr/bin/env bash
# The Slurm scripts on a real Slurm: a controller and one compute node (this machine, 2 CPUs, no
# GPU) started here with their own configuration, ports and munge socket, then
#   1. launch/slurm/train.sbatch runs the CPU demo recipe (configs/demo.yaml, shortened) on 2 ranks;
#   2. the batch shell gets SIGUSR1, as --signal sends it before a time limit: the ranks write a
#      checkpoint and stop, the job requeues itself, and its second start resumes from that
#      checkpoint and finishes the run;
#   3. launch/slurm/eval.sbatch, submitted at once with --dependency=afterok on the training job,
#      waits through the requeue, then evaluates the final checkpoint.
# Needs root (the daemons) and slurm-wlm with munge (scripts/setup.sh installs them with the test
# tools); skips (77), saying why, without them.
#   test_slurm.sh BIN SRC WORK
BIN=$1 SRC=$2 WORK=$3
source "$SRC/tests/cli/train_test_lib.sh"  # pass, fail

for tool in slurmctld slurmd munged sbatch scontrol scancel sinfo mpirun; do
  command -v "$tool" >/dev/null ||
    { echo "skipped: '$tool' is not installed (slurm-wlm, munge; scripts/setup.sh with QWEN3_WITH_TEST_TOOLS=1)"; exit 77; }
done
[[ $(id -u) -eq 0 ]] || { echo "skipped: starting slurmctld and slurmd needs root"; exit 77; }

rm -rf "$WORK" && mkdir -p "$WORK"
cluster=$WORK/cluster
mkdir -p "$cluster"/{munge,state,spool,log}
chmod 700 "$cluster/munge"

stop_cluster() {
  scancel --quiet --full --signal=KILL --user=root 2>/dev/null
  for pid_file in "$cluster"/slurmd.pid "$cluster"/slurmctld.pid "$cluster"/munge/pid; do
    [[ -f $pid_file ]] && kill "$(cat "$pid_file")" 2>/dev/null
  done
}
trap stop_cluster EXIT

# Slurm holds a requeued job until the credentials of its previous start expire: two minutes by
# default, 10 s here (cred_expire below) so that the test does not wait.
# munge: its own key and socket, so a munged already running here is left alone.
dd if=/dev/urandom of="$cluster/munge/key" bs=1024 count=1 status=none
chmod 600 "$cluster/munge/key"
munged --force --key-file="$cluster/munge/key" --socket="$cluster/munge/socket" \
  --log-file="$cluster/munge/log" --pid-file="$cluster/munge/pid" \
  --seed-file="$cluster/munge/seed" || { echo "FAIL munged did not start"; exit 1; }

# Ports from the process id, so that two checkouts testing at once do not collide.
port=$((20000 + $$ % 20000 * 2))
node=$(hostname -s)
export SLURM_CONF=$cluster/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=qwen3test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$cluster/munge/socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$cluster/state
SlurmdSpoolDir=$cluster/spool
SlurmctldPidFile=$cluster/slurmctld.pid
SlurmdPidFile=$cluster/slurmd.pid
SlurmctldLogFile=$cluster/log/slurmctld.log
SlurmdLogFile=$cluster/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
NodeName=$node NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -c || { echo "FAIL slurmctld did not start"; exit 1; }
slurmd || { echo "FAIL slurmd did not start"; cat "$cluster/log/slurmd.log"; exit 1; }
for _ in $(seq 60); do
  [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && break
  sleep 0.5
done
[[ $(sinfo -h -o %T) == idle ]] || { echo "FAIL the node never became idle"; tail "$cluster"/log/*.log; exit 1; }
pass "slurmctld and slurmd up: node $node idle with 2 CPUs"

# The demo's data, as scripts/demo.sh makes it, in the submission directory the run file expects.
cd "$WORK" || exit 1
ln -s "$SRC/configs" configs
prep() {  # prep NAME INPUTS...
  local name=$1
  shift
  "$BIN/qwen3-prep" --input-format bytes "$@" --output "runs/demo/data/$name" --vocab-size 320 \
    --eos-id 256 --tokenizer bytes --val-fraction 0.05 --shard-tokens 4194304 --seed 1 >/dev/null ||
    { echo "FAIL qwen3-prep $name"; exit 1; }
}
prep text /usr/share/common-licenses /usr/share/doc/*/copyright
prep code /usr/include/*.h

job_field() {  # job_field JOB FIELD: FIELD=value from scontrol show job
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds; gives up when it returns 2
  local limit=$(($1 * 4)) status
  shift
  for _ in $(seq "$limit"); do
    status=0
    "$@" || status=$?
    ((status == 0)) && return 0
    ((status == 2)) && return 1
    sleep 0.25
  done
  return 1
}
train_steps() {
  local count
  count=$(grep -c '"kind":"train"' runs/demo/out/metrics.jsonl 2>/dev/null) || true
  echo "${count:-0}"
}

# Shortened so the test takes about a minute: 40 + 16 + 6 steps, a checkpoint every 10 in stage 1.
shorten=(--set stages.0.steps=40 --set stages.0.eval_interval=20 --set stages.0.checkpoint_interval=10
  --set stages.0.optimizer.warmup_steps=4 --set stages.1.steps=16 --set stages.1.optimizer.decay_steps=8
  --set stages.2.steps=6 --set stages.2.optimizer.decay_steps=3)
# The scripts' GPU defaults replaced by what this node has: 2 ranks of 1 CPU, no GPU. The time
# limit stays well above the 15 minutes' warning of --signal, which would otherwise come at once.
cpu_node=(--nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 --time=60)
export QWEN3_HOME=$SRC QWEN3_BIN=$BIN QWEN3_EVAL_JSON=$WORK/eval.json
train=$(sbatch --parsable "${cpu_node[@]}" --output="$WORK/train-%j.out" \
  "$SRC/launch/slurm/train.sbatch" configs/demo.yaml "${shorten[@]}")
[[ $train =~ ^[0-9]+$ ]] || { echo "FAIL sbatch train.sbatch: '$train'"; exit 1; }
evaluation=$(sbatch --parsable "${cpu_node[@]}" --dependency="afterok:$train" \
  --output="$WORK/eval-%j.out" "$SRC/launch/slurm/eval.sbatch" --backend cpu \
  --checkpoint runs/demo/out/checkpoints/latest --data "text=runs/demo/data/text/val-*.h5" \
  --data "code=runs/demo/data/code/val-*.h5" --seq-len 256 --max-samples 8 --bucket-tokens 0)
[[ $evaluation =~ ^[0-9]+$ ]] || { echo "FAIL sbatch eval.sbatch: '$evaluation'"; exit 1; }
pass "submitted training job $train and evaluation job $evaluation (afterok:$train)"
out=$WORK/train-$train.out

# What --signal=B:USR1@... does before the time limit, sent by hand once 15 steps are logged.
running_past_step_15() {
  [[ $(job_field "$train" JobState) =~ PENDING|RUNNING ]] || return 2
  (($(train_steps) >= 15))
}
wait_for 120 running_past_step_15 || { fail "training never reached step 15"; cat "$out"; exit 1; }
scancel --batch --signal=USR1 "$train"
wait_for 120 bash -c "[[ \$(scontrol show job $train | grep -o 'Restarts=[0-9]*') == Restarts=1 ]]" ||
  { fail "the job was not requeued after SIGUSR1"; cat "$out"; exit 1; }
stop_step=$(sed -nE 's/.*checkpoint .*step-0*([0-9]+) written.*/\1/p' "$out" | tail -1)
grep -q "SIGUSR1 received: asking every rank to checkpoint and stop" "$out" &&
  grep -q "requeueing job $train" "$out" && [[ -n $stop_step ]] &&
  pass "SIGUSR1 to the batch shell: checkpoint of step $stop_step written, job requeued" ||
  { fail "no checkpoint-and-requeue after SIGUSR1"; cat "$out"; }

wait_for 300 bash -c "[[ \$(scontrol show job $train | grep -o 'JobState=[A-Z_]*') =~ COMPLETED|FAILED|CANCELLED|TIMEOUT ]]"
state=$(job_field "$train" JobState) exit_code=$(job_field "$train" ExitCode)
[[ $state == COMPLETED && $exit_code == 0:0 ]] && pass "training job $train completed (exit $exit_code)" ||
  { fail "training job $train: state $state, exit $exit_code"; cat "$out"; }
grep -q "start 2 on" "$out" && grep -qE "resuming from .*step-0*$stop_step" "$out" &&
  pass "its second start resumed from the checkpoint of step $stop_step" ||
  { fail "the second start did not resume from step $stop_step"; cat "$out"; }
steps=$(train_steps)
[[ $steps -eq 62 ]] && pass "every step trained once: 62 train records (40 + 16 + 6)" ||
  fail "metrics.jsonl has $steps train records, expected 62"
[[ -f runs/demo/out/checkpoints/step-00000062/model.safetensors ]] &&
  pass "the final checkpoint, step 62, is written" || fail "no final checkpoint step-00000062"

wait_for 180 bash -c "[[ \$(scontrol show job $evaluation | grep -o 'JobState=[A-Z_]*') =~ COMPLETED|FAILED|CANCELLED|TIMEOUT ]]"
state=$(job_field "$evaluation" JobState)
eval_out=$WORK/eval-$evaluation.out
[[ $state == COMPLETED ]] && pass "evaluation job $evaluation completed" ||
  { fail "evaluation job $evaluation: state $state"; cat "$eval_out" 2>/dev/null; }
eval_start=$(job_field "$evaluation" StartTime) train_end=$(job_field "$train" EndTime)
[[ ! $eval_start < $train_end ]] && pass "it started ($eval_start) after training ended ($train_end)" ||
  fail "evaluation started at $eval_start, before training ended at $train_end"
# The same evaluation without Slurm, of the final step's checkpoint by name: the job must have
# read that checkpoint (through checkpoints/latest), so the losses agree exactly.
OMP_NUM_THREADS=1 "$BIN/qwen3-eval" --backend cpu --checkpoint runs/demo/out/checkpoints/step-00000062 \
  --data "text=runs/demo/data/text/val-*.h5" --data "code=runs/demo/data/code/val-*.h5" \
  --seq-len 256 --max-samples 8 --bucket-tokens 0 | tail -n 1 >"$WORK/direct.json"
if /usr/bin/python3 - "$WORK/eval.json" "$WORK/direct.json" <<'PY'; then
import json, math, sys
job, direct = (json.load(open(path)) for path in sys.argv[1:3])
assert job["checkpoint"] == "runs/demo/out/checkpoints/latest", job["checkpoint"]
for name in ("text", "code"):
    loss = job["sources"][name]["loss"]
    assert math.isfinite(loss) and 0 < loss < 5.77, (name, loss)  # ln 320: an untrained model
    assert loss == direct["sources"][name]["loss"], (name, loss, direct["sources"][name]["loss"])
print(f"eval: text {job['sources']['text']['loss']:.4f}, code {job['sources']['code']['loss']:.4f} nats")
PY
  pass "the evaluation job read the final checkpoint: its losses equal a direct evaluation of step 62"
else
  fail "evaluation report: $(cat "$WORK/eval.json" 2>/dev/null)"
  cat "$eval_out" 2>/dev/null
fi

if ((failures)); then
  echo "$failures check(s) failed"
  echo "--- slurmctld log"; tail -20 "$cluster/log/slurmctld.log"
  exit 1
fi
echo "all checks passed"
