#pragma once
// Stand-in for the CUDA toolkit's header under the emulator. core/cuda/check.h includes it for its
// cuBLASLt check macro, which the kernels do not use; cuBLASLt itself is not emulated.
