#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""docs/porting.md's code blocks are the example program, so they cannot rot.

Every ```cpp block of docs/porting.md that follows a marker line
`<!-- porting_example.cc: NAME -->` must equal, dedented, the lines of
examples/porting/porting_example.cc between `// [porting:NAME]` and
`// [porting:end]`; every region of the file must be quoted exactly once.
The file itself is compiled (the Bazel target this test runs, and the three
consumer builds of docs/building.md). Under Bazel the test also runs the
compiled program (given as argv[1]) and checks its summary line.

  python3 tests/docs/porting_doc_test.py            # check
  python3 tests/docs/porting_doc_test.py --update   # rewrite the doc's blocks from the file
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(os.path.realpath(__file__)).parent.parent.parent
DOC = ROOT / "docs" / "porting.md"
SOURCE = ROOT / "examples" / "porting" / "porting_example.cc"
MARKER = re.compile(r"^<!-- porting_example\.cc: ([a-z_-]+) -->$")
SUMMARY = re.compile(r"^porting_example: .* packets verified, .*leaks: 0 pages, 0 blocks, "
                     r"0 mappings$")


def regions(source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for n, line in enumerate(source.splitlines(), 1):
        start = re.fullmatch(r"\s*// \[porting:([a-z_-]+)\]", line)
        if start and start.group(1) != "end":
            if name is not None:
                sys.exit(f"{SOURCE}:{n}: region {start.group(1)} inside region {name}")
            name, lines = start.group(1), []
        elif re.fullmatch(r"\s*// \[porting:end\]", line):
            if name is None:
                sys.exit(f"{SOURCE}:{n}: [porting:end] outside a region")
            if name in out:
                sys.exit(f"{SOURCE}:{n}: region {name} defined twice")
            out[name] = textwrap.dedent("\n".join(lines)).strip("\n")
            name = None
        elif name is not None:
            lines.append(line)
    if name is not None:
        sys.exit(f"{SOURCE}: region {name} has no [porting:end]")
    return out


def blocks(doc: list[str]) -> list[tuple[str, int, int]]:
    """(name, first line index of the body, index of the closing fence)."""
    out = []
    for i, line in enumerate(doc):
        m = MARKER.match(line.strip())
        if not m:
            continue
        j = i + 1
        while j < len(doc) and not doc[j].strip():
            j += 1
        if j >= len(doc) or doc[j].strip() != "```cpp":
            sys.exit(f"{DOC}:{i + 1}: marker {m.group(1)} is not followed by a ```cpp block")
        end = j + 1
        while end < len(doc) and doc[end].strip() != "```":
            end += 1
        out.append((m.group(1), j + 1, end))
    return out


def main(argv: list[str]) -> int:
    update = "--update" in argv
    program = next((a for a in argv if not a.startswith("--")), None)
    want = regions(SOURCE.read_text())
    doc = DOC.read_text().splitlines()
    found = blocks(doc)
    errors = []
    names = [name for name, _, _ in found]
    for name in sorted(set(want) - set(names)):
        errors.append(f"region {name} of {SOURCE.name} is not quoted in {DOC.name}")
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{DOC.name} quotes region {name} more than once")
    for name, body, end in reversed(found):
        if name not in want:
            errors.append(f"{DOC.name}:{body}: block {name} is no region of {SOURCE.name}")
            continue
        got = "\n".join(doc[body:end]).strip("\n")
        if got == want[name]:
            continue
        if update:
            doc[body:end] = want[name].splitlines()
        else:
            errors.append(f"{DOC.name}:{body}: block {name} differs from {SOURCE.name}'s region "
                          f"(run python3 tests/docs/porting_doc_test.py --update)")
    if update:
        DOC.write_text("\n".join(doc) + "\n")
        errors = [e for e in errors if "differs" not in e]
    if program is not None:
        run = subprocess.run([program], capture_output=True, text=True, check=False)
        if run.returncode != 0 or not SUMMARY.match(run.stdout.strip()):
            errors.append(f"{program} exited {run.returncode}: {run.stdout}{run.stderr}")
    for e in errors:
        print(e)
    print(f"porting_doc_test: {len(found)} blocks, {len(want)} regions"
          f"{', program ran' if program else ''}; {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
