#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Keeps the rulebook, docs/semantics.md, and the citations of it consistent:
#
#  1. every "rule N", "rules N-M", "§N.M", "[ruleN]" / "[sN_M]" tag and every link to
#     semantics.md#anchor in include/, src/, test/, samples/, bench/, fuzz/, README.md and
#     docs/ names an entry that exists;
#  2. every numbered entry (rule 1-54, §3.N, §5.N) has a "**Names.**" line giving the kernel and
#     the Rust names, and every entry (also §2.N) has a "**Tests:**" line;
#  3. each test file a "**Tests:**" line lists exists and cites the entry (files named after
#     "See also" need only exist), each quoted test-case name is part of a TEST_CASE in the file
#     listed before it, and each file under test/ that cites an entry is listed under it;
#  4. no file of the repository (tracked, or untracked and not ignored) refers to a path
#     outside it.
#
# Usage: scripts/check-doc-refs.sh [repository root]   (default: this script's parent folder)
# Exit status 0 when everything holds; otherwise 1, with one line per problem.
set -euo pipefail
root=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
exec python3 - "$root" <<'PYTHON'
import os, re, subprocess, sys

root = sys.argv[1]
doc_rel = "docs/semantics.md"
problems = []

def read(rel):
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        return f.read()

def tracked_files():
    out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True, check=False)
    if out.returncode == 0 and out.stdout:
        return [p for p in out.stdout.decode().split("\0") if p]
    found = []  # not a git checkout (e.g. a source tarball): walk the tree instead
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in (".git", "build")]
        found += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return found

files = [f for f in tracked_files() if os.path.isfile(os.path.join(root, f))]
text_ext = (".hpp", ".cpp", ".h", ".md", ".cmake", ".txt", ".sh", ".py", ".json", ".in", ".yml",
            ".yaml", ".cfg", ".d", ".stp", ".gdb")
def is_text(f):
    return f.endswith(text_ext) or os.path.basename(f) in ("CMakeLists.txt", "run", "LICENSE")

doc = read(doc_rel)
anchors = set(re.findall(r'<a id="([^"]+)"></a>', doc))

# ---- citations -------------------------------------------------------------------------------
num = r"\d+[a-z]?"
rule_re = re.compile(r"\b[Rr]ules?\s+(" + num + r"(?:\s*(?:[-–]|,|\band\b|\bor\b|&)\s*" + num + r")*)")
tag_re = re.compile(r"\[rule(\d+)[a-z]?\]")
stag_re = re.compile(r"\[s(\d)_(\d+)\]")
sect_range_re = re.compile(r"§(\d)\.(\d+)\s*[-–]\s*§?(\d)\.(\d+)")
sect_re = re.compile(r"§(\d)(?:\.(\d+))?")
link_re = re.compile(r"semantics\.md#([A-Za-z0-9_-]+)")

def cited(text):
    """Yields (anchor, excerpt) for every rulebook citation in text."""
    for m in rule_re.finditer(text):
        parts = re.split(r"\s*(?:,|\band\b|\bor\b|&)\s*", m.group(1))
        for p in parts:
            r = re.match(r"(\d+)[a-z]?\s*[-–]\s*(\d+)", p)
            if r:
                lo, hi = int(r.group(1)), int(r.group(2))
                for n in range(lo, hi + 1):
                    yield f"rule-{n}", m.group(0)
            else:
                yield "rule-" + re.match(r"\d+", p).group(0), m.group(0)
    for m in tag_re.finditer(text):
        yield f"rule-{m.group(1)}", m.group(0)
    for m in stag_re.finditer(text):
        yield f"s{m.group(1)}-{m.group(2)}", m.group(0)
    for m in sect_range_re.finditer(text):
        if m.group(1) == m.group(3):
            for n in range(int(m.group(2)), int(m.group(4)) + 1):
                yield f"s{m.group(1)}-{n}", m.group(0)
    for m in sect_re.finditer(text):
        yield (f"s{m.group(1)}-{m.group(2)}" if m.group(2) else f"s{m.group(1)}"), m.group(0)
    for m in link_re.finditer(text):
        yield m.group(1), m.group(0)

scan_dirs = ("include/", "src/", "test/", "samples/", "bench/", "fuzz/", "docs/")
scanned = [f for f in files if is_text(f) and (f.startswith(scan_dirs) or f == "README.md")]
cites_by_file = {}
for f in scanned:
    text = read(f)
    got = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        for anchor, what in cited(line):
            got.add(anchor)
            if anchor not in anchors:
                problems.append(f"{f}:{lineno}: '{what}' cites #{anchor}, which {doc_rel} lacks")
    if f == doc_rel:
        for m in re.finditer(r"\]\(#([A-Za-z0-9_-]+)\)", text):
            if m.group(1) not in anchors:
                problems.append(f"{doc_rel}: link to #{m.group(1)}, which does not exist")
    cites_by_file[f] = got

# ---- entries ---------------------------------------------------------------------------------
positions = [(m.start(), m.group(1)) for m in re.finditer(r'<a id="([^"]+)"></a>', doc)]
entries = {}
for i, (pos, anchor) in enumerate(positions):
    end = positions[i + 1][0] if i + 1 < len(positions) else len(doc)
    entries[anchor] = doc[pos:end]
numbered = [f"rule-{n}" for n in range(1, 55)] + [f"s3-{n}" for n in range(1, 9)] + \
           [f"s5-{n}" for n in range(1, 17)]
for a in numbered + ["s2-1", "s2-2", "s2-3"]:
    if a not in entries:
        problems.append(f"{doc_rel}: no entry #{a}")

def paragraph(body, label):
    m = re.search(r"^\*\*" + re.escape(label) + r"\*\*(.*?)(?:\n\s*\n|\Z)", body, re.S | re.M)
    return m.group(1) if m else None

for a in numbered:
    body = entries.get(a, "")
    names = paragraph(body, "Names.")
    if names is None or "Kernel:" not in names or "Rust:" not in names:
        problems.append(f"{doc_rel}#{a}: no '**Names.** Kernel: ... Rust: ...' paragraph")

# Test cases: name (possibly split over adjacent string literals) and the text up to the next one.
tc_re = re.compile(r'^\s*(?:TEMPLATE_)?TEST_CASE(?:_SIG)?\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', re.M)
def test_cases(rel):
    text = read(rel)
    ms = list(tc_re.finditer(text))
    out = []
    for i, m in enumerate(ms):
        name = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
        end = ms[i + 1].start() if i + 1 < len(ms) else len(text)
        out.append((name, text[m.start():end]))
    return out

test_files = [f for f in scanned if f.startswith("test/") and f.endswith((".cpp", ".hpp", ".cmake"))]
listed = {}  # anchor -> set of test/ paths listed (primary or see also)
for a, body in entries.items():
    tests = paragraph(body, "Tests:")
    if tests is None:
        if a in numbered or a.startswith("s2-"):
            problems.append(f"{doc_rel}#{a}: no '**Tests:**' paragraph")
        continue
    split = re.split(r"[Ss]ee also", tests, maxsplit=1)
    listed[a] = set()
    for part_no, part in enumerate(split):
        for m in re.finditer(r'`([A-Za-z0-9_./-]+\.(?:cpp|hpp|cmake)|[A-Za-z0-9_-]+/)`'
                             r'(\s*\((?:[^()]|\([^()]*\))*\))?', part):
            rel = "test/" + m.group(1)
            listed[a].add(rel)
            if not os.path.exists(os.path.join(root, rel)):
                problems.append(f"{doc_rel}#{a}: lists {m.group(1)}, which does not exist")
                continue
            if part_no == 0:
                paths = [rel] if not rel.endswith("/") else \
                        [f for f in test_files if f.startswith(rel)]
                if not any(a in cites_by_file.get(p, ()) for p in paths):
                    problems.append(f"{doc_rel}#{a}: lists {m.group(1)} as a test, "
                                    f"but it does not cite #{a} (move it after 'See also')")
            if m.group(2) and rel.endswith(".cpp"):
                names = [n for n, _ in test_cases(rel)]
                for q in re.findall(r'"([^"]+)"', m.group(2)):
                    q = " ".join(q.split())
                    if not any(q in n for n in names):
                        problems.append(f"{doc_rel}#{a}: no TEST_CASE in {m.group(1)} "
                                        f"contains \"{q}\"")

# Every test file that cites an entry is listed under it.
for f in test_files:
    for a in sorted(cites_by_file.get(f, ())):
        if a in listed and f not in listed[a] and \
           not any(d.endswith("/") and f.startswith(d) for d in listed[a]):
            problems.append(f"{f}: cites #{a}, but {doc_rel}#{a} does not list it")

# ---- nothing points outside the repository ----------------------------------------------------
# The patterns are assembled so that this file does not match itself.
outside = re.compile("|".join([r"\.\./" + "shared", "/" + "work/", "spec/" + "semantics",
                               r"(?<![A-Za-z_])" + "se" + "ed/", "shared/" + "spec",
                               "house-" + "style"]))
for f in files:
    if not is_text(f):
        continue
    for lineno, line in enumerate(read(f).splitlines(), 1):
        m = outside.search(line)
        if m:
            problems.append(f"{f}:{lineno}: '{m.group(0)}' points outside the repository")
    for m in re.finditer(r"\]\((\.\./[^)#\s]*)", read(f)):
        target = os.path.normpath(os.path.join(root, os.path.dirname(f), m.group(1)))
        if not target.startswith(os.path.abspath(root) + os.sep):
            problems.append(f"{f}: link '{m.group(1)}' leaves the repository")

for p in problems:
    print(p)
n_cites = sum(len(v) for v in cites_by_file.values())
print(f"check-doc-refs: {len(scanned)} files scanned, {len(entries)} anchors, "
      f"{n_cites} distinct (file, entry) citations, {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PYTHON
