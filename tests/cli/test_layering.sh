#!/usr/bin/env bash
# Layers point one way (docs/architecture.md): kernels -> ops -> model -> trainer -> launch.
# Fails naming the file and the include that points up.
set -uo pipefail
cd "$1"
failures=0
# forbid FOLDER PATTERN: no file under FOLDER may include a path matching PATTERN
forbid() {
  local hits
  hits=$(grep -rEn "#include \"($2)/" "$1" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' || true)
  if [[ -n "$hits" ]]; then
    echo "FAIL: $1 includes from a higher layer ($2):"; echo "$hits"; failures=$((failures + 1))
  fi
}
# only FOLDER PATTERN ALLOWED: FOLDER's includes matching PATTERN must all be the header ALLOWED
only() {
  local hits
  hits=$(grep -rEn "#include \"($2)/" "$1" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' |
    grep -v "#include \"$3\"" || true)
  if [[ -n "$hits" ]]; then
    echo "FAIL: $1 may take only $3 from $2:"; echo "$hits"; failures=$((failures + 1))
  fi
}
forbid core/util    "core/(tensor|kernels|cuda|ops|model)|trainer|parallel|dataloader|launch"
forbid core/tensor  "core/(kernels|cuda|ops|model)|trainer|parallel|dataloader|launch"
forbid core/kernels "core/(ops|model)|trainer|parallel|dataloader|launch"
forbid core/hdf5    "core/(tensor|kernels|cuda|ops|model)|trainer|parallel|dataloader|launch"
forbid core/cuda    "core/(kernels|ops|model)|trainer|parallel|dataloader|launch"
forbid core/ops     "core/model|trainer|parallel|dataloader|launch"
forbid core/model   "trainer|parallel|dataloader|launch"
forbid dataloader   "trainer|parallel|launch"
only dataloader     "core/model" "core/model/batch.h"
only core/model/batch.h "core" "core/util/error.h"
forbid dataloader/tokenizer "core/(tensor|kernels|cuda|ops|model)|trainer|parallel|launch"
forbid parallel    "trainer|dataloader|launch"
forbid trainer      "launch"
[[ $failures -eq 0 ]] && echo "layering: ok"
exit $failures
