#!/bin/bash
# Server CPU time per request, safer-ring (io_uring, epoll) vs tokio (one thread each), in
# alternating rounds; prints median and range of µs CPU/request per server and the ratio to
# tokio per round. CPU time is steadier than requests/s on a shared 2-core VM, where the load
# generator on the other core is the bottleneck. Server pinned to CPU 0, load to CPU 1; CPU is
# the sum of the server's threads' on-CPU time (/proc/PID/task/*/schedstat) over the load run.
#   scripts/server-cpu-per-request.sh http [ROUNDS] [SECS]   # wrk -t1 -c64, Hello World
#   scripts/server-cpu-per-request.sh echo [ROUNDS] [SECS]   # 512 B echo, 50 connections
# Needs wrk for http; counts system calls per request with perf when it is installed.
# Builds the examples (release) first.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-http} rounds=${2:-5} secs=${3:-4}
(( rounds >= 5 )) || { echo "ROUNDS must be >= 5" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}/release/examples
case $mode in
    http) servers=(http_hello http_hello_tokio) ;;
    echo) servers=(echo_server echo_server_tokio echo_server_client) ;;
    *) echo "mode must be http or echo" >&2; exit 2 ;;
esac
nice -n 19 cargo build -q --release -p safer-ring $(printf -- '--example %s ' "${servers[@]}")

cpu_ns() { # on-CPU nanoseconds of every thread of $1
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'
}

run() { # NAME PORT CMD...: prints "NAME us_per_request"
    local name=$1 port=$2
    shift 2
    taskset -c 0 "$@" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.1
    done
    local before reqs after stat perf_pid="" sys=0
    stat=$(mktemp)
    if command -v perf >/dev/null; then
        perf stat -e raw_syscalls:sys_enter -x, -o "$stat" -p "$pid" 2>/dev/null &
        perf_pid=$!
    fi
    before=$(cpu_ns "$pid")
    if [[ $mode == http ]]; then
        reqs=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/requests in/{print $1}')
    else
        reqs=$(taskset -c 1 "$target/echo_server_client" --addr "127.0.0.1:$port" --secs "$secs" | awk '/^requests/{print $2}')
    fi
    after=$(cpu_ns "$pid")
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        sys=$(awk -F, '/sys_enter/{print $1 + 0}' "$stat")
    fi
    rm -f "$stat"
    kill -INT "$pid" 2>/dev/null || true
    sleep 0.3
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # io_uring tears a dead process's ring down asynchronously: its listener can stay bound for
    # a moment after the process is gone, and the next round would fail to bind the port.
    for _ in $(seq 100); do
        [[ -z $(ss -Hltn "sport = :$port") ]] && break
        sleep 0.05
    done
    echo "$name $(( (after - before) / reqs )) $(( ${sys:-0} * 1000 / reqs ))" # ns, syscalls/1000 per request
}

out=$(mktemp)
server=${servers[0]} tokio=${servers[1]}
for r in $(seq "$rounds"); do
    order=(uring epoll tokio)
    (( r % 2 == 0 )) && order=(tokio epoll uring)
    for v in "${order[@]}"; do
        case $v in
            uring) run "$r uring" 18080 "$target/$server" --backend io_uring ;;
            epoll) run "$r epoll" 18081 "$target/$server" --backend epoll ;;
            tokio) run "$r tokio" 18082 "$target/$tokio" ;;
        esac
    done | tee -a "$out" >&2
done
python3 - "$out" "$mode" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
sc = {}
for r, name, ns, sys_k in rows:
    by.setdefault(name, {})[int(r)] = int(ns) / 1000
    sc.setdefault(name, []).append(int(sys_k) / 1000)
print(f"\n{sys.argv[2]}: server CPU per request, {len(by['tokio'])} alternating rounds")
print(f"{'server':<8} {'us/req med':>10} {'range':>15} {'x tokio':>8} {'ratio range':>13} {'syscalls/req':>13}")
for name in ("uring", "epoll", "tokio"):
    v = by[name]
    ratios = [v[r] / by["tokio"][r] for r in v]
    print(f"{name:<8} {st.median(v.values()):>10.2f} {min(v.values()):>7.2f} - {max(v.values()):<5.2f}"
          f" {st.median(ratios):>8.2f} {min(ratios):>6.2f} - {max(ratios):<5.2f} {st.median(sc[name]):>13.2f}")
PY
rm -f "$out"
