#pragma once
// Inaccessible pages the emulator places after device buffers, below fiber stacks and after
// dynamic shared memory, and the fault handler that names the one a kernel ran into.
#include <cstddef>
#include <string>

namespace qwen3::emulator {

// `what` is printed when the page at [begin, begin + bytes) is hit ("the end of a 400-byte device
// buffer").
void register_guard_page(const void* begin, size_t bytes, std::string what);
void unregister_guard_page(const void* begin);

// Installs, once, a SIGSEGV and SIGBUS handler (on its own stack, since a fiber that overflowed
// its stack cannot run it) that prints the guard page hit, if any, and the emulated thread that was
// running, then hands the fault to the previous handler: the process still dies of it.
void install_fault_handler();

// Writes "kernel launched at FILE:LINE, block (x, y, z), thread (x, y, z)" or "host code" into
// `buffer`; provided by the scheduler. Called from the signal handler.
void describe_running_thread(char* buffer, size_t bytes);

}  // namespace qwen3::emulator
