#!/usr/bin/env bash
# Installs every Debian package that pyprofd's build, tests, demo and benchmarks need.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make pkg-config
  libunwind-dev libdw-dev libelf-dev libboost-program-options-dev libspdlog-dev
  libprotobuf-dev protobuf-compiler zlib1g-dev libgtest-dev nlohmann-json3-dev libbenchmark-dev
  libcpp-httplib-dev
  # fuzz targets (make fuzz): clang and its libFuzzer / sanitizer runtimes
  clang libclang-rt-dev
  # targets and readers used by tests, demo and benchmarks
  python3 python3-yappi python3-uvloop gunicorn python3-uvicorn python3-fastapi
  apache2-utils graphviz golang-go valgrind librsvg2-bin util-linux procps austin prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
