#!/usr/bin/env python3
"""The import graph of crates/ringtrace/src: which room (top-level folder or
root file) names which, from `crate::` paths in code (comments and doc
comments left out), and every circle, between rooms and between files.
Issue 20's check that imports run one way. Usage: scripts/room-imports.py"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crates', 'ringtrace', 'src')

# Public paths kept at the crate root by re-exports (lib.rs), to their module.
ALIAS = {
    'event': 'record/event', 'printk': 'record/printk', 'span': 'record/span',
    'clock': 'tracer/clock', 'context': 'tracer/context',
    'layer': 'frontends/layer', 'log_backend': 'frontends/log_backend',
    'output': 'read/line', 'text': 'fmt/text',
    'reader': 'read/pipe', 'view': 'read/view', 'snapshot': 'read/snapshot', 'dump': 'read/dump',
    'json': 'export/json', 'tracedat': 'export/tracedat',
}
PATH = re.compile(r'crate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)')


def files():
    for d, _, fs in os.walk(SRC):
        for f in fs:
            if f.endswith('.rs'):
                yield os.path.relpath(os.path.join(d, f), SRC)


def module_of(rel):
    m = rel[:-3]
    if m.endswith('/mod'):
        m = m[:-4]
    return m


def room_of(mod):
    return mod.split('/')[0]


def resolve(path, modules):
    """The module a `crate::a::b::C` path lands in (its longest module prefix)."""
    parts = path.split('::')
    if parts[0] in ALIAS:
        parts = ALIAS[parts[0]].split('/') + parts[1:]
    best = None
    for i in range(1, len(parts) + 1):
        cand = '/'.join(parts[:i])
        if cand in modules:
            best = cand
    return best


def code_lines(text):
    for line in text.split('\n'):
        s = line.strip()
        if s.startswith('//'):
            continue
        yield re.sub(r'"(\\.|[^"\\])*"', '""', line).split('//')[0]


def scc(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main():
    rels = sorted(files())
    modules = {module_of(r) for r in rels}
    file_edges, room_edges = {}, {}
    for rel in rels:
        me = module_of(rel)
        if me == 'lib':
            continue  # the facade re-exports every room
        text = open(os.path.join(SRC, rel), encoding='utf-8').read()
        # Unit tests may reach across rooms; they are not the room's imports.
        text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
        for line in code_lines(text):
            for m in PATH.finditer(line):
                target = resolve(m.group(1), modules)
                if target is None or target == me or target == 'lib':
                    continue
                file_edges.setdefault(me, set()).add(target)
                a, b = room_of(me), room_of(target)
                if a != b:
                    room_edges.setdefault(a, set()).add(b)
    print('room imports:')
    for a in sorted(room_edges):
        print(f'  {a:15} -> {", ".join(sorted(room_edges[a]))}')
    room_circles = scc(sorted(room_edges), room_edges)
    file_circles = scc(sorted(file_edges), file_edges)
    print('room circles:', room_circles or 'none')
    print('file circles:', file_circles or 'none')
    return 1 if room_circles or file_circles else 0


sys.exit(main())
