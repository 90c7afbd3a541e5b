#!/bin/bash
# cargo-mutants on the small files whose mutants tests/enhancement_guards.rs was written to catch, each
# restricted to the test binaries that exercise it, so a run stays well under half an hour on
# two cores. One cargo at a time (-j 1), nice 19, a timeout per mutant, and cargo-mutants'
# default copy mode (never --in-place: the working tree is not touched).
#   scripts/mutants.sh            every file below
#   scripts/mutants.sh fallback   only the entry of that name (stats, fallback, bench-stats)
# Needs `cargo install cargo-mutants` (27.x). Each run's report goes to
# $MUTANTS_OUT/<name>/mutants.out (default /tmp/safer-ring-mutants): outcomes.json, caught.txt,
# missed.txt, timeout.txt, unviable.txt. Prints the caught/missed/timeout/unviable counts.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${MUTANTS_OUT:-/tmp/safer-ring-mutants}
filter=${1:-}
# A target dir of its own, never the working tree's: cargo keys a workspace member's build by
# its path relative to the workspace, so a mutant built in cargo-mutants' copy into a shared
# target dir looks up to date to the next `cargo test` in the working tree, which then runs the
# last mutant.
export CARGO_TARGET_DIR=${MUTANTS_TARGET_DIR:-$out/target}

# name | file | cargo-mutants options | cargo test arguments
runs=(
    "stats|safer-ring/src/enhanced/stats.rs|--features fault-injection|--test enhancement_guards"
    "fallback|safer-ring/src/enhanced/fallback.rs|--features fault-injection|--test enhancement_guards"
    # The whole file: 94 mutants, about 5 minutes (only the CLI crate rebuilds).
    "bench-stats|safer-ring-cli/src/bench/stats.rs||--bin safer-ring"
)

for run in "${runs[@]}"; do
    IFS='|' read -r name file opts test_args <<<"$run"
    [[ -z $filter || $name == "$filter" ]] || continue
    mkdir -p "$out/$name"
    echo "== $file (cargo test $test_args)"
    # shellcheck disable=SC2086 # the options are words
    nice -n 19 cargo mutants -f "$file" -j 1 --timeout 120 $opts \
        --output "$out/$name" -- $test_args || true # missed mutants make it exit non-zero
    dir="$out/$name/mutants.out"
    for outcome in caught missed timeout unviable; do
        n=0
        [[ -f $dir/$outcome.txt ]] && n=$(wc -l <"$dir/$outcome.txt")
        printf '%s: %s  ' "$outcome" "$n"
    done
    echo
done
