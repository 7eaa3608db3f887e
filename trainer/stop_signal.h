#pragma once
// Graceful stops. Slurm sends SIGUSR1 (with --signal=USR1@seconds) or SIGTERM before a job's time
// limit or preemption; the run then writes a checkpoint and exits 0, so that a requeued job
// resumes where it stopped. The handlers only record the signal; the trainer polls it between
// steps and agrees with the other ranks before acting, so every rank stops at the same step.
namespace qwen3 {

// Installs handlers for SIGTERM and SIGUSR1 (SA_RESTART, so blocking reads are not interrupted).
void install_stop_signal_handlers();
// Puts back the default actions (the signals end the process), for runs that ask for that.
void restore_default_stop_signals();
// The last stop signal received, or 0.
int stop_signal_received();
// Forgets a received signal (tests).
void clear_stop_signal();
// "SIGTERM", "SIGUSR1", ...
const char* signal_name(int signal_number);

}  // namespace qwen3
