#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Checks that README code blocks marked as copies of a file are that file, verbatim.

Usage: check-snippets.py [REPO_ROOT]

A marker line `<!-- snippet: PATH -->` (PATH relative to the repository root) must be followed,
after blank lines only, by a fenced code block whose content equals the file at PATH, without
the file's leading SPDX line. Such files are built and run by a test, so the README cannot show
code that does not compile or does something else. Exits 1 listing every mismatch.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
problems = []
count = 0
for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
    lines = doc.read_text().split("\n")
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- snippet: (\S+) -->", line.strip())
        if not m:
            continue
        where = f"{doc.relative_to(root)}:{i + 1}"
        path = root / m.group(1)
        if not path.is_file():
            problems.append(f"{where}: {m.group(1)} does not exist")
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not lines[j].startswith("```"):
            problems.append(f"{where}: no fenced code block follows the marker")
            continue
        end = j + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        block = "\n".join(lines[j + 1:end]) + "\n"
        text = path.read_text()
        text = re.sub(r"\A(//|#) SPDX-License-Identifier: [^\n]*\n", "", text)
        count += 1
        if block != text:
            problems.append(f"{where}: the code block differs from {m.group(1)}")
for p in problems:
    print(f"check-snippets: {p}")
print(f"check-snippets: {count} snippet(s) checked, {len(problems)} problem(s)")
sys.exit(1 if problems or count == 0 else 0)
