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
  chromium
)

# The speedscope web app (npm registry), for the test that opens our speedscope files in it.
install_speedscope() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/pyprofd/speedscope"
  [ -f "$dir/node_modules/speedscope/dist/release/index.html" ] && return 0
  if ! command -v npm >/dev/null; then
    echo "install-deps: npm missing: the speedscope app is not installed (its test will skip)"
    return 0
  fi
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent speedscope@1.25.0 ||
    echo "install-deps: the speedscope app could not be installed (its test will skip)"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  install_speedscope
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_speedscope
