#!/usr/bin/env bash
# Writes the non-snapshot seeds: /proc texts of a live python3, line tables of real code
# objects from each installed interpreter (fuzz_code's raw format: u8 minor-8, i32
# first_line, table), and a small ELF shared object with the symbols attach looks up.
set -uo pipefail
src=$(cd "$(dirname "$0")" && pwd)
c=$src/corpus
root=${PYENV_ROOT:-$HOME/.pyenv}
mkdir -p "$c/proc" "$c/line_tables" "$c/elf"
python3 -c 'import sys; sys.stdout.write(open("/proc/self/maps").read())' >"$c/proc/python3-maps"
python3 -c 'import sys; sys.stdout.write(open("/proc/self/stat").read())' >"$c/proc/python3-stat"
printf '1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0\n' >"$c/proc/paren-stat"
for py in $(ls -d "$root"/versions/3.*/bin/python3.* 2>/dev/null | grep -E 'python3\.[0-9]+$') /usr/bin/python3.11; do
  "$py" - "$c/line_tables" <<'PY'
import struct, sys, json, asyncio.tasks as t
minor = sys.version_info[1]
if not 8 <= minor <= 13:
    sys.exit(0)
def table(co):
    return co.co_linetable if minor >= 10 else co.co_lnotab
for name, co in [("json_dumps", json.dumps.__code__), ("task_gather", t.gather.__code__),
                 ("json_decode", json.decoder.JSONDecoder.raw_decode.__code__)]:
    with open("%s/3.%d-%s" % (sys.argv[1], minor, name), "wb") as f:
        f.write(struct.pack("<Bi", minor - 8, co.co_firstlineno) + table(co))
PY
done
printf 'int _PyRuntime[64] = {1};\nint PyCode_Type[16] = {2};\nconst char v[] = "3.9.18 (main, Jan 1 2024)";\n' |
  gcc -shared -fPIC -nostdlib -s -Wl,--build-id=none -o "$c/elf/tiny.so" -x c - 2>/dev/null ||
  echo "no gcc: elf seed not written"
printf 'int _PyRuntime[64] = {1};\nint PyCode_Type[16] = {2};\n' |
  gcc -shared -fPIC -nostdlib -Wl,--build-id=none -o "$c/elf/tiny-symtab.so" -x c -
# fuzz_http: "path\0key\0value..." as the daemon's endpoints are asked for.
mkdir -p "$c/http"
printf '/debug/pprof/profile\0seconds\0005\0format\0svg' >"$c/http/profile-svg"
printf '/debug/pprof/profile\0seconds\0002.5e0\0format\0collapsed\0seconds\0000' >"$c/http/profile-repeated"
printf '/debug/pprof/recent\0windows\0003\0format\0speedscope' >"$c/http/recent-3"
printf '/debug/pprof/recent\0windows\0002147483648' >"$c/http/recent-too-many"
printf '/metrics' >"$c/http/metrics"
printf '/../../etc/passwd\0format\0pprof' >"$c/http/traversal"
ls -l "$c/proc" "$c/line_tables" "$c/elf" "$c/http" | wc -l
