#!/usr/bin/env bash
# Counts the public items of the two library crates (ringtrace-ring,
# ringtrace) as rustdoc sees them, for issue 20's target (at most 120 across
# both crates).
#
# Method: `cargo doc --no-deps` with default features, then count the entries
# of each crate's `all.html` (rustdoc's list of every documented item: structs,
# enums, unions, traits, functions, macros, type aliases, constants, statics).
# Items under `#[doc(hidden)]` and private items are not listed; methods,
# fields and variants are counted with their type, not on their own; modules
# are counted separately (one line each) since all.html does not list them.
#
# Usage: scripts/public-items.sh [--no-build]   (run from the repository root;
# honours CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if [ "${1:-}" != "--no-build" ]; then
    # A fresh tree: rustdoc leaves the pages of items gone since the last run.
    rm -rf "$target/doc/ringtrace_ring" "$target/doc/ringtrace"
    cargo doc --no-deps -q -p ringtrace-ring -p ringtrace >&2
fi
total=0
for crate in ringtrace_ring ringtrace; do
    all="$target/doc/$crate/all.html"
    [ -f "$all" ] || { echo "no $all: build the docs first" >&2; exit 1; }
    # One <li><a href="KIND.NAME.html"> per item; kinds named by their prefix.
    items=$(grep -o '<li><a href="[^"]*\.html">' "$all" | sed 's/.*href="//; s/"> *$//')
    n=$(printf '%s\n' "$items" | grep -c . || true)
    kinds=$(printf '%s\n' "$items" | sed 's#.*/##; s/\..*//' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')
    mods=$(find "$target/doc/$crate" -name index.html | wc -l)
    echo "$crate: $n items (${kinds%, }); $mods modules"
    total=$((total + n))
done
echo "total: $total items"
