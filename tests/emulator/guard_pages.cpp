#include "tests/emulator/guard_pages.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace qwen3::emulator {

namespace {

struct GuardPage {
  const char* begin;
  size_t bytes;
  std::string what;
};

std::vector<GuardPage>& guard_pages() {
  static std::vector<GuardPage> pages;
  return pages;
}

struct sigaction previous_segv, previous_bus;

void write_text(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t written = write(STDERR_FILENO, text, left);
    if (written <= 0) return;
    text += written;
    left -= static_cast<size_t>(written);
  }
}

void on_fault(int signal, siginfo_t* info, void*) {
  const char* address = static_cast<const char*>(info->si_addr);
  const char* what = "no guard page of the emulator";
  for (const GuardPage& page : guard_pages())
    if (address >= page.begin && address < page.begin + page.bytes) what = page.what.c_str();
  char running[512];
  describe_running_thread(running, sizeof running);
  char message[1024];
  std::snprintf(message, sizeof message, "\nemulator: %s at address %p (%s) in the %s\n",
                signal == SIGBUS ? "bus error" : "segmentation fault", info->si_addr, what,
                running);
  write_text(message);
  // Returning re-executes the faulting access, which now goes to the previous handler.
  sigaction(signal, signal == SIGBUS ? &previous_bus : &previous_segv, nullptr);
}

}  // namespace

void register_guard_page(const void* begin, size_t bytes, std::string what) {
  guard_pages().push_back({static_cast<const char*>(begin), bytes, std::move(what)});
}

void unregister_guard_page(const void* begin) {
  auto& pages = guard_pages();
  for (size_t i = 0; i < pages.size(); ++i) {
    if (pages[i].begin == begin) {
      pages[i] = std::move(pages.back());
      pages.pop_back();
      return;
    }
  }
}

void install_fault_handler() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  static std::vector<char> alternate_stack(size_t(256) << 10);
  stack_t stack{};
  stack.ss_sp = alternate_stack.data();
  stack.ss_size = alternate_stack.size();
  sigaltstack(&stack, nullptr);
  struct sigaction action {};
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_segv);
  sigaction(SIGBUS, &action, &previous_bus);
}

}  // namespace qwen3::emulator
