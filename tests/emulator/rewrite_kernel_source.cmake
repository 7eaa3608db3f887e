# cmake -DINPUT=<kernel.cu> -DOUTPUT=<copy.cpp> -P rewrite_kernel_source.cmake
#
# Copies a CUDA source into a C++ source the host compiler builds against the emulator
# (device.h), rewriting the three constructs C++ cannot express:
#   kernel<<<grid, block, smem, stream>>>(args)  ->  kernel | launch_config(grid, block, smem,
#                                                                          stream)(args)
#   extern __shared__ T name[];                   ->  T* const name = dynamic_shared_memory<T>();
#   __shared__ T name[N];                         ->  a reference to the block's T[N], keyed by a
#                                                     static object unique to the declaration
# Nothing else changes, and no line moves: a #line directive names the original file, so compiler
# messages and __FILE__ point into it. Anything left unrewritten stops the build.
cmake_minimum_required(VERSION 3.24)
if(NOT INPUT OR NOT OUTPUT)
  message(FATAL_ERROR "rewrite_kernel_source.cmake: pass -DINPUT=<file.cu> -DOUTPUT=<file.cpp>")
endif()
file(READ "${INPUT}" source)

string(REGEX MATCHALL "<<<" opens "${source}")
string(REGEX MATCHALL ">>>" closes "${source}")
list(LENGTH opens open_count)
list(LENGTH closes close_count)
if(NOT open_count EQUAL close_count)
  message(FATAL_ERROR "${INPUT}: ${open_count} '<<<' but ${close_count} '>>>'")
endif()
string(REPLACE "<<<" "| ::qwen3::emulator::launch_config(" source "${source}")
string(REPLACE ">>>" ")" source "${source}")

set(type "([^;\n]*[^;\n \t])")
set(name "([A-Za-z_][A-Za-z_0-9]*)")
string(REGEX REPLACE "extern[ \t]+__shared__[ \t]+${type}[ \t]+${name}[ \t]*\\[[ \t]*\\][ \t]*;"
       "\\1* const \\2 = ::qwen3::emulator::dynamic_shared_memory<\\1>();" source "${source}")
set(key "qwen3_emulator_shared_key_\\2")
string(REGEX REPLACE "__shared__[ \t]+${type}[ \t]+${name}[ \t]*((\\[[^;\n]*\\])?)[ \t]*;"
       "static char ${key}; auto& \\2 = ::qwen3::emulator::static_shared_variable<\\1\\3>(&${key});"
       source "${source}")

foreach(construct IN ITEMS "<<<" ">>>" "__shared__")
  string(FIND "${source}" "${construct}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${INPUT}: a '${construct}' the emulator's rewrite does not handle")
  endif()
endforeach()

file(WRITE "${OUTPUT}" "#line 1 \"${INPUT}\"\n${source}")
