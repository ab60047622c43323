#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (default 100 lines), counted from
the `fn` line to its closing brace. Used for issue 20's rule that no function
in the tree is over 100 lines. Usage: scripts/long-fns.py [LIMIT] [PATH...]"""
import os
import re
import sys

FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"[^"]*"\s+)?fn\s+(\w+)')


def strip(line):
    # Drop string/char literals and line comments so braces inside them do not count.
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//')[0]


def long_fns(path, limit):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    out = []
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth = 0
        opened = False
        j = i
        while j < len(lines):
            s = strip(lines[j])
            if not opened and ';' in s and '{' not in s:
                break  # a declaration without a body
            for c in s:
                if c == '{':
                    depth += 1
                    opened = True
                elif c == '}':
                    depth -= 1
            if opened and depth <= 0:
                break
            j += 1
        n = j - i + 1
        if opened and n > limit:
            out.append((n, path, i + 1, m.group(7)))
        i += 1
    return out


def main():
    args = sys.argv[1:]
    limit = 100
    if args and args[0].isdigit():
        limit = int(args.pop(0))
    roots = args or ['crates']
    found = []
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if x != 'target']
            for f in files:
                if f.endswith('.rs'):
                    found += long_fns(os.path.join(d, f), limit)
    for n, p, line, name in sorted(found, reverse=True):
        print(f'{n:5} {p}:{line} {name}')
    print(f'{len(found)} functions over {limit} lines', file=sys.stderr)


main()
