#pragma once
// Stand-in for the CUDA toolkit's header under the emulator: the host runtime calls.
#include "tests/emulator/runtime.h"
