#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""The structure check (house style: "every function declared in the header of the file that
defines it"; no include cycle; include/wq/detail/ a bottom layer; no detail code in public
headers).

Usage:  check-structure.py [ROOT] [--verbose] [--strict] [--allowlist FILE]
        ROOT defaults to the current directory (the repository root).

Exit status 1 if
  - a non-inline function defined in a src/*.cpp is declared only in headers whose stem differs
    from the .cpp's stem, unless FILE lists it ("<src file> <qualified name>", one per line);
  - FILE lists a mismatch that no longer exists (the list may only shrink: remove the line);
  - the include graph over include/ and src/ has a cycle;
  - a header in include/wq/detail/ includes a header outside it other than wq/config.hpp (the
    configuration root every header includes first, which includes nothing of wq): detail/ is
    the bottom layer, under the public headers; engine interfaces that need the public types
    live in include/wq/impl/.
  - a public header (include/wq/*.hpp) declares or defines anything in namespace detail (that
    goes in detail/, or in the impl/X.hpp that holds public header X.hpp's template bodies),
    except config.hpp's declaration of the WQ_ASSERT hook;
Functions defined with no header declaration are printed as warnings; --strict makes them
fail too.

How it works (a heuristic parser, no compiler):
  1. Every file is stripped of comments, string and character literals and preprocessor lines
     (keeping line numbers), then scanned with a brace-matching state machine that knows four
     kinds of `{`: namespace (descended into), class/struct/union/enum body (recorded by name,
     not descended into for functions), function body, and initializer (skipped).
  2. A namespace-scope statement ending in `{` whose head has a top-level `(...)` and no
     top-level `=` is a function definition; ending in `;` it is a declaration. The function's
     name is the identifier (or `operator...`, or `A::b`) right before the first top-level `(`.
  3. Definitions in .cpp files are kept unless they are in an anonymous namespace, `static`,
     `inline`, `constexpr`, or templates. `Class::member` definitions are matched with the header
     that defines `Class`; free functions with every header that declares `ns::name`.
  4. `#include <wq/...>` and `#include "..."` edges form the include graph; cycles are the
     strongly connected components with more than one file (Tarjan).

Limits (known, accepted for a draft):
  - Overloads are matched by qualified name only, not by signature.
  - Macros that expand to declarations or definitions are invisible (preprocessor lines are
    blanked); so are functions declared through a typedef of a function type.
  - Member functions declared inside a class are not parsed; an out-of-class definition
    `A::f` is attributed to the header that defines class `A` (the last one if several do).
    Nested classes (`A::B::f`) are attributed to the outermost class found.
  - Functions declared inside a class body as `friend` are not seen as declarations.
  - `namespace a::b {` is supported; `inline namespace`, `extern "C" {` are treated as plain
    namespaces. Raw string literals are not understood.
  - Template definitions and inline functions in headers are ignored by design (they are
    "defined where declared").
  - A declaration in the .cpp itself (forward declaration) does not count as a header
    declaration.
"""
import os
import re
import sys
from collections import defaultdict

ROOT = '.'
args = [a for a in sys.argv[1:]]
VERBOSE = '--verbose' in args
STRICT = '--strict' in args
ALLOWLIST = None
if '--allowlist' in args:
    k = args.index('--allowlist')
    ALLOWLIST = args[k + 1]
    del args[k:k + 2]
pos = [a for a in args if not a.startswith('--')]
if pos:
    ROOT = pos[0]

SRC_EXT = ('.cpp', '.ipp')
HDR_EXT = ('.hpp', '.h', '.ipp')


def rel(p):
    return os.path.relpath(p, ROOT)


def list_files():
    out = []
    for top in ('include', 'src'):
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            for f in fs:
                if f.endswith(('.hpp', '.h', '.cpp', '.ipp')):
                    out.append(os.path.normpath(os.path.join(d, f)))
    return sorted(out)


def strip(text):
    """Blanks comments, string/char literals and preprocessor lines; keeps newlines."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start:
            j = i
            while j < n and text[j] in ' \t':
                j += 1
            if j < n and text[j] == '#':
                # preprocessor line, with continuations
                while j < n:
                    if text[j] == '\n' and text[j - 1] != '\\':
                        break
                    if text[j] == '\n':
                        out.append('\n')
                    j += 1
                i = j
                at_line_start = False
                continue
        at_line_start = False
        if text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
            continue
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(''.join(ch if ch == '\n' else ' ' for ch in text[i:j]))
            i = j
            continue
        if c == '"' or (c == "'" and not (i > 0 and (text[i - 1].isalnum()))):
            # string or char literal (a ' after an alnum is a digit separator)
            q = c
            j = i + 1
            while j < n and text[j] != q:
                if text[j] == '\\':
                    j += 1
                j += 1
            out.append(q + ' ' * 0 + q)
            i = j + 1
            continue
        if c == '\n':
            at_line_start = True
        out.append(c)
        i += 1
    return ''.join(out)


INCLUDE_RE = re.compile(r'^[ \t]*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def includes(path, text):
    res = []
    for m in INCLUDE_RE.finditer(text):
        kind, name = m.group(1), m.group(2)
        line = text.count('\n', 0, m.start()) + 1
        cand = None
        if kind == '"':
            c = os.path.normpath(os.path.join(os.path.dirname(path), name))
            if os.path.exists(c):
                cand = c
        if cand is None and name.startswith('wq/'):
            c = os.path.normpath(os.path.join(ROOT, 'include', name))
            if os.path.exists(c):
                cand = c
        if cand is not None:
            res.append((cand, line))
    return res


def top_level(s, ch_set):
    """Yields (index, char) of characters in ch_set at depth 0 of () [] <> {}."""
    depth = 0
    angle = 0
    for i, c in enumerate(s):
        if c in '([{':
            if depth == 0 and angle == 0 and c in ch_set:
                yield i, c
            depth += 1
            continue
        elif c in ')]}':
            depth -= 1
        elif c == '<' and depth == 0:
            # template brackets after an identifier (heuristic); not <<
            if i + 1 < len(s) and s[i + 1] == '<' or (i > 0 and s[i - 1] == '<'):
                pass
            elif re.search(r'[\w>:]\s*$', s[:i]) and not re.search(r'operator\s*$', s[:i]):
                angle += 1
                continue
        elif c == '>' and depth == 0 and angle > 0 and not (i > 0 and s[i - 1] == '-'):
            angle -= 1
            continue
        if depth == 0 and angle == 0 and c in ch_set:
            yield i, c


ATTR_RE = re.compile(r'\[\[.*?\]\]', re.S)
NAME_BEFORE_PAREN = re.compile(
    r'((?:[A-Za-z_]\w*\s*::\s*)*(?:~?[A-Za-z_]\w*|operator\s*(?:\(\)|[^\s\w(]+|\w+)))\s*$')
CLASS_HEAD = re.compile(r'\b(class|struct|union|enum(?:\s+class|\s+struct)?)\s+(?:alignas\s*\([^)]*\)\s*)?([A-Za-z_]\w*)')
SKIP_WORDS = ('using', 'typedef', 'static_assert', 'friend', 'return', 'template class',
              'extern template', 'template struct')


def func_name(head):
    """The (possibly qualified) function name of a statement head, or None."""
    h = ATTR_RE.sub(' ', head)
    h = re.sub(r'\balignas\s*\([^)]*\)', ' ', h)
    h = re.sub(r'\bdecltype\s*\((?:[^()]|\([^()]*\))*\)', ' T ', h)
    h = re.sub(r'\bnoexcept\s*\((?:[^()]|\([^()]*\))*\)', ' noexcept ', h)
    h = re.sub(r'\brequires\b.*$', '', h, flags=re.S) if h.lstrip().startswith('template') else h
    hs = h.strip()
    if not hs:
        return None
    for w in SKIP_WORDS:
        if hs.startswith(w + ' ') or hs.startswith(w + '\n') or hs.startswith(w + '<') or hs == w:
            return None
    first_paren = None
    for i, c in top_level(h, '(='):
        if c == '=':
            # `= default`/`= delete` after the parameter list is fine; before it: a variable
            if first_paren is None and not re.search(r'operator\s*$', h[:i]):
                return None
            continue
        if first_paren is None:
            first_paren = i
    if first_paren is None:
        return None
    m = NAME_BEFORE_PAREN.search(h[:first_paren])
    if not m:
        return None
    name = re.sub(r'\s+', '', m.group(1))
    if name in ('if', 'for', 'while', 'switch', 'sizeof', 'alignof', 'decltype', 'static_assert',
                'return', 'catch', 'noexcept', 'requires'):
        return None
    before = h[:m.start()]
    # `T x(args);` with nothing before the name but a type would also match; accept.
    if re.search(r'\b(class|struct|union|enum|concept)\b', before) and '(' not in before:
        if not re.search(r'template\s*<', before):
            return None
    return name


def strip_template_header(hs):
    """Removes leading `template <...>` parameter lists (balanced angle brackets)."""
    while True:
        m = re.match(r'\s*(\[\[.*?\]\]\s*)*template\s*<', hs)
        if not m:
            return hs
        depth, k = 1, m.end()
        while k < len(hs) and depth:
            if hs[k] == '<':
                depth += 1
            elif hs[k] == '>':
                depth -= 1
            k += 1
        hs = hs[k:]


def is_template(head):
    return re.match(r'\s*(\[\[.*?\]\]\s*)*template\s*<', head, re.S) is not None


def qual(d):
    return (d['ns'] + '::' + d['name']) if d['ns'] else d['name']


def stem(p):
    return os.path.splitext(os.path.basename(p))[0]


def main():
    files = list_files()
    data = {}
    graph = {}
    for f in files:
        data[f] = _scan(f)
        raw = open(f, encoding='utf-8', errors='replace').read()
        graph[f] = includes(f, raw)
    headers = [f for f in files if f.endswith(HDR_EXT)]
    sources = [f for f in files if f.endswith(SRC_EXT)]

    # declarations index: qualified name -> [(header, line)]
    decl_index = defaultdict(list)
    for h in headers:
        for d in data[h]['decls']:
            if d['anon']:
                continue
            q = (d['ns'] + '::' + d['name']) if d['ns'] else d['name']
            decl_index[q].append((h, d['line']))
    # class index: qualified class name -> [(header, line)]
    class_index = defaultdict(list)
    for h in headers:
        for c in data[h]['classes']:
            q = (c['ns'] + '::' + c['name']) if c['ns'] else c['name']
            class_index[q].append((h, c['line']))
            class_index[c['name']].append((h, c['line']))

    failures = 0
    warnings = 0
    print('== 1. definitions in .cpp files and where they are declared ==')
    mismatches = defaultdict(list)
    undeclared = defaultdict(list)
    total = 0
    for s in sources:
        for d in data[s]['defs']:
            if d['anon'] or d['static'] or d['inline'] or d['template']:
                continue
            if d['name'] == 'main':
                continue
            total += 1
            name = d['name']
            ns = d['ns']
            where = []
            kind = 'free'
            if '::' in name and not name.startswith('operator'):
                cls = name.split('::')[0]
                kind = 'member'
                cands = class_index.get((ns + '::' + cls) if ns else cls) or class_index.get(cls) or []
                # also a namespace-qualified free function `detail::f`
                if not cands:
                    q = (ns + '::' + name) if ns else name
                    cands = decl_index.get(q, [])
                    kind = 'free'
                where = cands
            else:
                q = (ns + '::' + name) if ns else name
                where = decl_index.get(q, [])
            where = sorted(set(where))
            if not where:
                undeclared[s].append((d, kind))
                continue
            if not any(stem(h) == stem(s) for h, _ in where):
                mismatches[s].append((d, kind, where))
            elif VERBOSE:
                print('  ok  %s:%d %s::%s  <- %s' % (rel(s), d['line'], ns, name,
                                                     ', '.join('%s:%d' % (rel(h), l) for h, l in where)))
    allowed = set()
    if ALLOWLIST:
        for line in open(ALLOWLIST, encoding='utf-8'):
            line = line.split('#', 1)[0].strip()
            if line:
                allowed.add(tuple(line.split()))
    nmis = sum(len(v) for v in mismatches.values())
    print('checked %d non-inline namespace-scope definitions in %d source files' % (total, len(sources)))
    print('stem mismatches: %d (%d of them on the allowlist, which may only shrink)' % (
        nmis, sum(1 for s in mismatches for d, _, _ in mismatches[s]
                  if (rel(s), qual(d)) in allowed)))
    seen = set()
    for s in sorted(mismatches):
        print('  %s (%d):' % (rel(s), len(mismatches[s])))
        for d, kind, where in mismatches[s]:
            key = (rel(s), qual(d))
            seen.add(key)
            listed = key in allowed
            print('    %s%s:%d  %s  declared in %s' % (
                '(allowlisted) ' if listed else 'NEW: ', rel(s), d['line'], qual(d),
                ', '.join('%s:%d' % (rel(h), l) for h, l in where)))
            if not listed:
                failures += 1
    for key in sorted(allowed - seen):
        print('  STALE allowlist entry (fixed: remove it from %s): %s %s' % (
            rel(ALLOWLIST), key[0], key[1]))
        failures += 1
    nund = sum(len(v) for v in undeclared.values())
    print('defined with external linkage but declared in no header (warning): %d' % nund)
    for s in sorted(undeclared):
        for d, kind in undeclared[s]:
            print('    %s:%d  %s%s' % (rel(s), d['line'], (d['ns'] + '::') if d['ns'] else '', d['name']))
    if STRICT:
        failures += nund
    else:
        warnings += nund

    print()
    print('== 2. detail code in public headers (include/wq/*.hpp) ==')
    pub = [h for h in headers if os.path.dirname(h) == os.path.normpath(os.path.join(ROOT, 'include/wq'))]
    nd = 0
    for h in pub:
        items = []
        for d in data[h]['defs']:
            if d['ns'].endswith('detail') or '::detail' in d['ns'] or d['ns'].startswith('detail'):
                items.append(('fn', d['name'], d['line']))
        for c in data[h]['classes']:
            if 'detail' in c['ns'].split('::'):
                items.append(('type', c['name'], c['line']))
        for d in data[h]['decls']:
            if 'detail' in d['ns'].split('::'):
                items.append(('decl', d['name'], d['line']))
        if rel(h) == 'include/wq/config.hpp' and [i[1] for i in items] == ['assertion_failed']:
            # The hook the WQ_ASSERT macro expands to: it must be declared where the macro is.
            print('  (allowed) %s: the WQ_ASSERT hook assertion_failed' % rel(h))
            continue
        if items:
            nd += 1
            items.sort(key=lambda x: x[2])
            print('  %s: %d detail entities: %s' % (rel(h), len(items), ', '.join(
                '%s %s@%d' % (k, nme, ln) for k, nme, ln in items)))
    print('public headers with detail code: %d' % nd)
    failures += nd

    print()
    print('== 3. include/wq/detail/ including public headers ==')
    det_dir = os.path.normpath(os.path.join(ROOT, 'include/wq/detail'))
    nbad = 0
    for h in headers:
        if os.path.dirname(h) != det_dir:
            continue
        for tgt, line in graph[h]:
            if os.path.dirname(tgt) != det_dir:
                allowed = os.path.basename(tgt) == 'config.hpp'
                if not allowed:
                    nbad += 1
                print('  %s%s:%d includes %s' % ('' if not allowed else '(allowed) ',
                                                 rel(h), line, rel(tgt)))
    print('detail -> public includes (config.hpp excepted): %d' % nbad)
    failures += nbad

    print()
    print('== 4. include cycles over include/ and src/ ==')
    sccs = tarjan({f: [t for t, _ in graph[f]] for f in files})
    cycles = [c for c in sccs if len(c) > 1]
    ncyc = 0
    for c in cycles:
        names = sorted(rel(x) for x in c)
        tag = ''
        ncyc += 1
        print('  cycle of %d: %s%s' % (len(c), ' -> '.join(names), tag))
        # show the edges inside the cycle
        cs = set(c)
        for x in sorted(c):
            for t, line in graph[x]:
                if t in cs:
                    print('      %s:%d -> %s' % (rel(x), line, rel(t)))
    print('include cycles: %d' % ncyc)
    failures += ncyc

    print()
    print('== 5. engine layers (the table in src/engine/README.md) ==')
    nlay = check_engine_layers(files, graph)
    print('engine layer violations: %d' % nlay)
    failures += nlay

    print()
    print('result: %s (%d failure(s), %d warning(s))' % ('FAIL' if failures else 'OK', failures, warnings))
    return 1 if failures else 0


def check_engine_layers(files, graph):
    """Each src/engine/X.{hpp,cpp} may include engine headers of lower layers only (and a .cpp
    its own header). The layers are the rows `| n | `a`, `b` | ... |` of src/engine/README.md."""
    readme = os.path.join(ROOT, 'src', 'engine', 'README.md')
    if not os.path.exists(readme):
        return 0
    layer = {}
    for line in open(readme, encoding='utf-8'):
        m = re.match(r'\|\s*(\d+)\s*\|([^|]*)\|', line)
        if m:
            for name in re.findall(r'`([a-z_]+)`', m.group(2)):
                layer[name] = int(m.group(1))
    engine_dir = os.path.normpath(os.path.join(ROOT, 'src', 'engine'))
    # The entry points' header counts as the facade's (layer of `engine`).
    entry = os.path.normpath(os.path.join(ROOT, 'include', 'wq', 'detail', 'engine.hpp'))
    bad = 0
    for f in sorted(files):
        if os.path.dirname(f) != engine_dir:
            continue
        me = stem(f)
        if me not in layer:
            print('  %s: not in the layer table of src/engine/README.md' % rel(f))
            bad += 1
            continue
        for t, line in graph[f]:
            if os.path.dirname(t) != engine_dir and t != entry:
                continue
            other = stem(t)
            if other == me:
                continue
            if other not in layer:
                continue  # reported for its own file
            if layer[other] >= layer[me]:
                print('  %s:%d includes %s (layer %d, not below %d)' %
                      (rel(f), line, rel(t), layer[other], layer[me]))
                bad += 1
    return bad


def tarjan(g):
    index = {}
    low = {}
    onstack = set()
    stack = []
    out = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        onstack.add(v)
        for w in g.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in onstack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                onstack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in g:
        if v not in index:
            strong(v)
    return out


def _scan(path):
    raw = open(path, encoding='utf-8', errors='replace').read()
    text = strip(raw)
    res = {'decls': [], 'defs': [], 'classes': []}
    n = len(text)
    i = 0
    stack = []
    pops = []  # for each tracked namespace brace: how many stack entries it pushed
    stmt_start = 0
    lines = [0]
    for k, ch in enumerate(text):
        if ch == '\n':
            lines.append(k + 1)
    import bisect

    def line_of(k):
        return bisect.bisect_right(lines, k)

    def skip_braces(k):
        depth = 0
        while k < n:
            ch = text[k]
            if ch == '{':
                depth += 1
            elif ch == '}':
                depth -= 1
                if depth == 0:
                    return k + 1
            k += 1
        return n

    def ns_str():
        return '::'.join(x for x in stack if x)

    def head_line(head_start, head):
        return line_of(head_start + len(head) - len(head.lstrip()))

    while i < n:
        c = text[i]
        if c == '}':
            if pops:
                for _ in range(pops.pop()):
                    stack.pop()
            i += 1
            stmt_start = i
            continue
        if c == ';':
            head = text[stmt_start:i]
            name = func_name(head)
            if name and not is_template(head):
                res['decls'].append({'ns': ns_str(), 'name': name,
                                     'line': head_line(stmt_start, head), 'anon': '' in stack,
                                     'head': ' '.join(head.split())[:120]})
            i += 1
            stmt_start = i
            continue
        if c == '{':
            head = text[stmt_start:i]
            hs = ' '.join(head.split())
            m = re.match(r'(?:inline\s+)?namespace\s*([\w:]*)\s*$', hs)
            if m:
                parts = m.group(1).split('::') if m.group(1) else ['']
                stack.extend(parts)
                pops.append(len(parts))
                i += 1
                stmt_start = i
                continue
            if re.match(r'extern\s*""\s*$', hs):
                stack.append('extern_c')
                pops.append(1)
                i += 1
                stmt_start = i
                continue
            end = skip_braces(i)
            # class head: `... class|struct|union|enum Name [final] [: bases]` with no `(` before
            hs_nt = strip_template_header(hs)
            cm = CLASS_HEAD.search(hs_nt)
            if cm is not None:
                hs = hs_nt
                pre = hs[:cm.start()]
                post = hs[cm.end():]
                if '(' not in pre.replace('template', '') or re.match(r'\s*template\s*<', pre):
                    if re.match(r'\s*(final\b)?\s*(:|$)', post) or re.match(r'\s*<', post):
                        res['classes'].append({'ns': ns_str(), 'name': cm.group(2),
                                               'line': line_of(i), 'template': is_template(head)})
                        i = end
                        k = i
                        while k < n and text[k] in ' \t\n':
                            k += 1
                        if k < n and text[k] == ';':
                            i = k + 1
                            stmt_start = i
                        # else: `struct x {...} y;` continues to its `;` (head then has no `(`)
                        continue
            name = func_name(head) if '(' in head else None
            if name is not None:
                pre = head.split('(')[0]
                res['defs'].append({
                    'ns': ns_str(), 'name': name, 'line': head_line(stmt_start, head),
                    'anon': '' in stack, 'template': is_template(head),
                    'static': re.search(r'(^|\s)static\s', ATTR_RE.sub(' ', pre)) is not None,
                    'inline': re.search(r'\b(inline|constexpr|consteval)\b', pre) is not None,
                    'head': hs[:120]})
                i = end
                k = i
                while k < n and text[k] in ' \t\n':
                    k += 1
                if k < n and text[k] == ';':
                    k += 1
                i = k
                stmt_start = i
                continue
            i = end  # an initializer: keep accumulating the statement
            continue
        i += 1
    return res


if __name__ == '__main__':
    sys.exit(main())
