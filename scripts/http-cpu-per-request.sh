#!/bin/bash
# CPU time per request of a hello-world server under wrk: steadier than requests/s on a
# shared VM. Server pinned to CPU 0, wrk to CPU 1.
#   scripts/http-cpu-per-request.sh NAME PORT SERVER [ARGS...]
# e.g. scripts/http-cpu-per-request.sh uring 8080 target/release/examples/http_hello --backend io_uring
#      scripts/http-cpu-per-request.sh tokio 8081 target/release/examples/http_hello_tokio
# Needs perf and wrk.
set -euo pipefail
name=$1 port=$2
shift 2
stat=$(mktemp)
taskset -c 0 perf stat -e raw_syscalls:sys_enter,task-clock -x, -o "$stat" \
    "$@" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
sleep 0.7
reqs=$(taskset -c 1 wrk -t1 -c64 -d4s "http://127.0.0.1:$port/" | awk '/requests in/{print $1}')
pkill -INT -f -- "--addr 127.0.0.1:$port"
sleep 0.5
syscalls=$(awk -F, '/sys_enter/{print $1}' "$stat")
ms=$(awk -F, '/task-clock/{print $1}' "$stat")
rm -f "$stat"
awk -v n="$name" -v r="$reqs" -v s="$syscalls" -v m="$ms" \
    'BEGIN { printf "%s: %d requests, %.2f us CPU/request, %.2f syscalls/request\n", n, r, m * 1000 / r, s / r }'
