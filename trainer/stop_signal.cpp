#include "trainer/stop_signal.h"

#include <signal.h>

#include <cstring>

#include "core/util/error.h"

namespace qwen3 {

namespace {

volatile sig_atomic_t received_signal = 0;

extern "C" void record_stop_signal(int signal_number) {
  received_signal = signal_number;
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = record_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGTERM, SIGUSR1})
    QWEN3_CHECK(sigaction(signal_number, &action, nullptr) == 0, "sigaction({}) failed: {}",
                signal_name(signal_number), std::strerror(errno));
}

void restore_default_stop_signals() {
  for (int signal_number : {SIGTERM, SIGUSR1})
    QWEN3_CHECK(signal(signal_number, SIG_DFL) != SIG_ERR, "signal({}, SIG_DFL) failed: {}",
                signal_name(signal_number), std::strerror(errno));
}

int stop_signal_received() {
  return received_signal;
}

void clear_stop_signal() {
  received_signal = 0;
}

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGTERM:
      return "SIGTERM";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGINT:
      return "SIGINT";
    default:
      return "a signal";
  }
}

}  // namespace qwen3
