# Shared by the launch scripts (sourced, not run): the MPI environment, and running a command so
# that the stop signals a scheduler or a user sends reach the ranks as a checkpoint request.
#
# qwen3-train treats SIGUSR1 and SIGTERM alike: every rank finishes its step, a checkpoint is
# written, the program exits 0, and the next start resumes from it. Sent to mpirun, SIGUSR1 is
# forwarded to every rank, but SIGTERM makes mpirun kill the ranks and exit 1. So the scripts run
# mpirun in the background and turn both signals into one SIGUSR1 to it.

# Open MPI refuses to run as root unless told that it is on purpose (containers, CI).
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# Where the programs are: $QWEN3_BIN, or build/bin of the repository at $QWEN3_HOME.
qwen3_bin_dir() {
  local dir=${QWEN3_BIN:-${QWEN3_HOME:?set QWEN3_HOME to the qwen3-train checkout}/build/bin}
  if [[ ! -x $dir/qwen3-train ]]; then
    echo "error: no qwen3-train in '$dir': build it (scripts/setup.sh) or set QWEN3_BIN" >&2
    return 1
  fi
  echo "$dir"
}

# Cores this process may run on. nproc alone would answer OMP_NUM_THREADS when that is set.
qwen3_core_count() {
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc
}

# -x NAME for every variable the ranks on other hosts need: mpirun passes its environment only to
# the ranks it starts on this host.
qwen3_exported_env() {
  local name
  for name in $(compgen -e); do
    case $name in
      NCCL_* | UCX_* | CUDA_* | OMP_NUM_THREADS | OMPI_ALLOW_RUN_AS_ROOT*) printf -- '-x %s ' "$name" ;;
    esac
  done
}

# qwen3_run_with_stop_forwarding COMMAND...: runs COMMAND (mpirun ...) in the background; SIGUSR1
# or SIGTERM to this shell becomes one SIGUSR1 to COMMAND. Returns COMMAND's exit status and sets
# QWEN3_STOP_REQUESTED=1 when a stop signal arrived.
QWEN3_STOP_REQUESTED=0
QWEN3_SIGNAL_ARRIVED=0
QWEN3_LAUNCHER_PID=
qwen3_forward_stop() {  # the trap: SIGNAL_NAME
  QWEN3_SIGNAL_ARRIVED=1
  if ((QWEN3_STOP_REQUESTED == 0)); then
    echo "launch: $1 received: asking every rank to checkpoint and stop" >&2
    kill -USR1 "$QWEN3_LAUNCHER_PID" 2>/dev/null || true
  fi
  QWEN3_STOP_REQUESTED=1
}
qwen3_run_with_stop_forwarding() {
  "$@" &
  QWEN3_LAUNCHER_PID=$!
  trap 'qwen3_forward_stop SIGUSR1' USR1
  trap 'qwen3_forward_stop SIGTERM' TERM
  local status=0 code waits=0
  while true; do
    QWEN3_SIGNAL_ARRIVED=0
    code=0
    wait "$QWEN3_LAUNCHER_PID" || code=$?
    # 127 after a first wait: nothing left to wait for, because the command had ended just before
    # the signal arrived; the first wait's status is the command's.
    ((code == 127 && waits > 0)) || status=$code
    waits=$((waits + 1))
    # A trapped signal ends `wait` early while the command runs on: wait again.
    ((QWEN3_SIGNAL_ARRIVED)) || break
  done
  trap - USR1 TERM
  return "$status"
}
