#pragma once
// Stand-in for the CUDA toolkit's header under the emulator (its include directory comes first on
// the emulated kernels' include path): the device side and the host runtime.
#include "tests/emulator/device.h"
