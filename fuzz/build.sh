#!/usr/bin/env bash
# Configures and builds the fuzz targets with clang (-DPYPROFD_FUZZ=ON) in BUILD_DIR.
# Exit 77 (skipped, by name) when clang or libFuzzer is missing.
set -euo pipefail
build=${1:-build-fuzz}
command -v clang++ >/dev/null || { echo "SKIPPED: fuzz: clang++ not installed (tools/install-deps.sh)"; exit 77; }
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cc"
clang++ -fsanitize=fuzzer "$probe/p.cc" -o "$probe/p" 2>/dev/null ||
  { echo "SKIPPED: fuzz: clang has no libFuzzer (libclang-rt-dev)"; exit 77; }
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$(dirname "$0")/.." -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYPROFD_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang >/dev/null
cmake --build "$build" -j2 --target fuzz_all
