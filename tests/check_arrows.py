#!/usr/bin/env python3
"""Fails when a source file breaks the house plan.

1. Includes may only follow the allowed arrows:
   tools -> profiler, exporters, model; profiler -> symbolizer, model; exporters -> model.
2. No code outside the version tables and the line-table decoder compares a CPython
   minor version: differences between versions are data (profiler/layouts.cc,
   profiler/asyncio_layout.cc, what _Py_DebugOffsets fills at attach).

Usage: check_arrows.py SOURCE_DIR      checks the tree
       check_arrows.py --self-test     shows that both rules catch a violation
"""
import os
import re
import sys
import tempfile

ALLOWED = {
    "model": set(),
    "symbolizer": set(),
    "profiler": {"symbolizer", "model"},
    "exporters": {"model"},
    "tools": {"profiler", "exporters", "model"},
}
# Where a minor version may be compared: the tables, the code that picks a table at
# attach, and the line-table decoder (one format per version range).
VERSION_FILES = {
    "profiler/layouts.cc", "profiler/asyncio_layout.cc", "profiler/version_table.cc",
    "profiler/debug_offsets.cc", "symbolizer/line_table.cc", "symbolizer/elf_image.cc",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"')
MINOR_CMP = re.compile(r'\bminor\w*\s*(?:[<>]=?|[!=]=)|(?:[<>]=?|[!=]=)\s*\w*(?:\.|->)minor\b')


def sources(root):
    for folder in ALLOWED:
        base = os.path.join(root, folder)
        for dirpath, _, files in os.walk(base):
            for name in sorted(files):
                if name.endswith((".h", ".cc", ".c")):
                    path = os.path.join(dirpath, name)
                    yield folder, os.path.relpath(path, root).replace(os.sep, "/"), path


def check(root):
    problems = []
    for folder, rel, path in sources(root):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        for n, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if m and m.group(1) != folder and m.group(1) in ALLOWED and m.group(1) not in ALLOWED[folder]:
                problems.append(f"{rel}:{n}: {folder}/ may not include {m.group(1)}/ ({line.strip()})")
            code = line.split("//", 1)[0]
            if rel not in VERSION_FILES and MINOR_CMP.search(code):
                problems.append(f"{rel}:{n}: compares a CPython minor version outside the tables ({line.strip()})")
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        for folder in ALLOWED:
            os.makedirs(os.path.join(d, folder))
        with open(os.path.join(d, "exporters", "bad.h"), "w") as f:
            f.write('#include "profiler/layout.h"\n')
        with open(os.path.join(d, "profiler", "walker.cc"), "w") as f:
            f.write("if (l_.minor >= 11) walk();\n")
        with open(os.path.join(d, "tools", "good.cc"), "w") as f:
            f.write('#include "profiler/attach.h"\n#include "model/profile.h"\n')
        found = check(d)
    ok = len(found) == 2 and "exporters/bad.h" in found[0] + found[1] and any("walker.cc" in p for p in found)
    print("self-test:", "ok" if ok else "FAILED", *found, sep="\n  ")
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s) in the house plan" if problems else "arrows hold; no version compared outside the tables")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
