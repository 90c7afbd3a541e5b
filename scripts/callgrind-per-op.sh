#!/bin/bash
# User-space instructions per operation, from callgrind: each variant's profiling mode
# (`<bench> profile <variant> <n>`) runs under callgrind with n = 1 and n = 3, and the difference
# of the two totals over the difference of the ops they did (both printed by the bench) is the
# cost per op with set-up, first-round growth and teardown cancelled out.
#   scripts/callgrind-per-op.sh nop "io_uring hand-batched 32" "raw io-uring, batch 32"
#   scripts/callgrind-per-op.sh file_reads "io_uring 32 tasks read_at"
#   scripts/callgrind-per-op.sh peers:nop "tokio-uring 32 spawned tasks" "safer-ring join_all 32"
#   scripts/callgrind-per-op.sh peers:file_reads "tokio-uring 32 tasks read_at"
# The first argument is a safer-ring bench (safer-ring/benches/<name>.rs) or peers:<name>
# (peers/benches/<name>.rs). Prints "<variant>: N instructions per op". Needs valgrind; builds
# the bench (release, at nice 19) first.
set -euo pipefail
cd "$(dirname "$0")/.."
(( $# >= 2 )) || { sed -n 2,12p "$0" >&2; exit 2; }
target=$1
shift

exe() { # cargo args...: the path of the one executable the build produced
    nice -n 19 cargo "$@" --message-format=json |
        grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4
}
case $target in
    peers:*) bin=$(exe bench -q --manifest-path peers/Cargo.toml --bench "${target#peers:}" --no-run) ;;
    *) bin=$(exe bench -q -p safer-ring --bench "$target" --no-run) ;;
esac
[[ -x $bin ]] || { echo "no executable for $target" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # VARIANT N: prints "instructions ops"
    local log=$tmp/log
    nice -n 19 valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
        "$bin" profile "$1" "$2" >/dev/null 2>"$log" || {
        head -n 20 "$log" >&2 # valgrind's own complaint comes first (a crash dumps every thread)
        return 1
    }
    local ir ops
    ir=$(awk '/Collected :/{print $NF}' "$log")
    ops=$(grep -F "$1: " "$log" | awk '{print $(NF-1)}' | tail -1)
    echo "$ir $ops"
}
for variant in "$@"; do
    one=$(run "$variant" 1)
    three=$(run "$variant" 3)
    read -r ir1 ops1 <<<"$one"
    read -r ir3 ops3 <<<"$three"
    awk -v v="$variant" -v d="$((ir3 - ir1))" -v n="$((ops3 - ops1))" \
        'BEGIN { printf "%s: %.0f instructions per op\n", v, d / n }'
done
