#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Every reference in README.md, CHANGELOG.md and docs/*.md resolves, and the docs speak of
the project and of upstream by commit.

Checked, outside fenced code blocks:
  - every relative markdown link [text](target) names an existing file or
    directory (the #anchor is ignored; http(s) and mailto links are not
    checked);
  - every backticked repository path: a span whose first word starts with a
    top-level folder (include/, examples/, tests/, bench/, scripts/, docs/,
    third_party/, .ci/) or a top-level file, or an include path
    (pagefrag/...), which is looked up under include/; {a,b} alternatives are
    expanded, spans with placeholders (<x>, NN, *) are skipped;
  - every backticked Bazel label //pkg[:name] names an existing package;
  - no wording about how the work was commissioned ("the seed", "the issue
    asks", ...): say "upstream commit 730ff06" or "pagefrag" instead.

Runs under Bazel (the repository is found through this file's real path, so
every file of the tree is visible; tagged `external` so it always reruns) or
directly: python3 tests/docs/doc_refs_test.py.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

ROOT = Path(os.path.realpath(__file__)).parent.parent.parent
TOP_DIRS = ("include", "examples", "tests", "bench", "scripts", "docs", "third_party", ".ci")
TOP_FILES = ("README.md", "CHANGELOG.md", "LICENSE", "WORKSPACE", "BUILD", "deps.bzl",
             "bazelw", ".bazelrc", ".clang-format")
FORBIDDEN = [
    (re.compile(r"\bthe seed\b|\bseed's\b", re.I), "'the seed'"),
    (re.compile(r"\bthe issue (asks|wants|says|requires)\b", re.I), "'the issue asks'"),
    (re.compile(r"\bissue \d+\b", re.I), "'issue N'"),
    (re.compile(r"\b(the|this) brief\b", re.I), "'the brief'"),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"`([^`\n]+)`")


def docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def expand(path: str) -> list[str]:
    """a/{b,c}.h -> [a/b.h, a/c.h] (any number of groups)."""
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def path_of_span(span: str) -> str | None:
    """The repository path a backticked span refers to, or None."""
    word = span.split()[0] if span.split() else ""
    word = word.rstrip(".,;:)")
    if re.search(r"[<>*$]|\bNN\b|\.\.\.", word):
        return None
    if word.startswith("./"):
        word = word[2:]
    if word in TOP_FILES:
        return word
    if "/" in word and word.split("/")[0] in TOP_DIRS:
        return word
    if word.startswith("pagefrag/") and ("." in word.split("/")[-1] or word.endswith("/")):
        return "include/" + word
    return None


def has_target(pkg: str, name: str) -> bool:
    """Whether package pkg has a file or a rule (by its quoted name) called name."""
    build = ROOT / pkg / "BUILD"
    return (ROOT / pkg / name).exists() or f'"{name}"' in build.read_text()


def is_target(path: str) -> bool:
    """bench/dpdk_baseline: a rule of its folder's package, not a file."""
    pkg, _, name = path.rpartition("/")
    return "." not in name and (ROOT / pkg / "BUILD").exists() and has_target(pkg, name)


def check_label(label: str) -> str | None:
    """pkg[:name] or pkg/... -> an error, or None when it resolves."""
    label = label.rstrip(".,;)")
    if re.search(r"[<>*$]", label):
        return None
    pkg, _, name = label.partition(":")
    if pkg.endswith("..."):
        pkg = pkg.removesuffix("...").rstrip("/")
        return None if (ROOT / pkg).is_dir() else f"no folder {pkg or '.'}"
    if not (ROOT / pkg / "BUILD").exists():
        return f"no package //{pkg} (no {pkg}/BUILD)"
    name = name or pkg.split("/")[-1]
    return None if has_target(pkg, name) else f"no target {name} in //{pkg}"


def check(doc: Path) -> list[str]:
    errors = []
    rel = doc.relative_to(ROOT)
    for n, line in prose_lines(doc.read_text()):
        where = f"{rel}:{n}"
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            target = target.split("#")[0]
            if not (doc.parent / target).exists():
                errors.append(f"{where}: link target {target} does not exist")
        for span in SPAN.findall(line):
            word = span.split()[0] if span.split() else ""
            if word.startswith(("//", "@pagefrag//")) or (
                    ":" in word and word.split("/")[0] in TOP_DIRS):
                error = check_label(word.removeprefix("@pagefrag").removeprefix("//"))
                if error:
                    errors.append(f"{where}: `{span}`: {error}")
                continue
            path = path_of_span(span)
            if path is None:
                continue
            for p in expand(path):
                if not (ROOT / p).exists() and not is_target(p):
                    errors.append(f"{where}: `{span}`: {p} does not exist")
        for pattern, name in FORBIDDEN:
            if pattern.search(line):
                errors.append(f"{where}: {name}: speak of pagefrag and of upstream by commit: "
                              f"{line.strip()}")
    return errors


def main() -> int:
    errors = [e for doc in docs() for e in check(doc)]
    for e in errors:
        print(e)
    print(f"doc_refs_test: {len(docs())} documents, {len(errors)} unresolved references or "
          f"wordings")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
