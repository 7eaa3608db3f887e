#pragma once
// Stand-in for NCCL's header under the emulator. core/cuda/check.h includes it for its NCCL check
// macro, which the kernels do not use; NCCL itself is not emulated.
