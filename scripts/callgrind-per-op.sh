#!/usr/bin/env bash
# User-space instructions per operation under callgrind: the difference of a 3-round and a
# 1-round run of one bench variant, divided by two rounds' operations (64 Ki each), so setup
# and teardown cancel out. Deterministic to a few instructions.
#   scripts/callgrind-per-op.sh nop "io_uring hand-batched 32" ["io_uring 32 spawned tasks" ...]
set -euo pipefail
bench=$1; shift
cd "$(dirname "$0")/.."
cargo bench -p safer-ring --bench "$bench" --no-run 2>&1 | tail -1 >&2
bin=$(ls -t target/release/deps/"$bench"-* | grep -v '\.d$' | head -1)
ops=$((64 * 1024))
count() {
    local out; out=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" profile "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
    rm -f "$out"
}
for v in "$@"; do
    one=$(count "$v" 1); three=$(count "$v" 3)
    echo "$v: $(( (three - one) / (2 * ops) )) instructions per op"
done
