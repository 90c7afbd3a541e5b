#!/bin/bash
# Resident memory per idle keep-alive connection: http_hello (io_uring, epoll) vs the tokio
# server, CONNS (10 000) loopback connections each, one served request per connection.
#   scripts/idle-connections.sh [CONNS]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-10000}
target=${CARGO_TARGET_DIR:-target}/release/examples
nice -n 19 cargo build -q --release -p safer-ring --example http_hello --example http_hello_tokio \
    --example http_hello_idle
ulimit -Sn "$(ulimit -Hn)" # the servers need CONNS fds too

one() { # NAME PORT CMD...
    local name=$1 port=$2
    shift 2
    "$@" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.1
    done
    echo "$name $("$target/http_hello_idle" --addr "127.0.0.1:$port" --pid "$pid" --conns "$conns")"
    kill -INT "$pid" 2>/dev/null || true
    sleep 0.5
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Idle timeout well past the measurement, so http_hello keeps every connection.
one "http_hello io_uring" 18090 "$target/http_hello" --backend io_uring --idle-ms 600000
one "http_hello epoll   " 18091 "$target/http_hello" --backend epoll --idle-ms 600000
one "tokio              " 18092 "$target/http_hello_tokio"
