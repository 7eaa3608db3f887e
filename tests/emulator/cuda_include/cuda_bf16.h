#pragma once
// Stand-in for the CUDA toolkit's header under the emulator: __nv_bfloat16 and its conversions.
#include "tests/emulator/bf16.h"
