#!/bin/bash
# usage: run.sh NAME "ENV=V ..." loadtest-args...
# Starts a fresh release hubbub pinned to CPU 0 (WORKERS=1), runs the generator pinned to
# CPU 1 with --server-pid, saves JSON to /tmp/perf/NAME.json, kills the server by PID.
name=$1; envs=$2; shift 2
cd /tmp/hb-rel
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
env PORT=$port BIND=127.0.0.1 WORKERS=1 PIN_WORKERS=false LOG_LEVEL=warn $envs taskset -c 0 /tmp/hbt/release/hubbub > /tmp/perf/$name.server.log 2>&1 &
spid=$!
for i in $(seq 1 100); do curl -sf http://127.0.0.1:$port/health >/dev/null && break; sleep 0.1; done
/tmp/hbt/release/hubbub-loadtest "$@" --url ws://127.0.0.1:$port/ws --cpu 1 --server-pid $spid --json > /tmp/perf/$name.json 2> /tmp/perf/$name.err
rc=$?
kill $spid; wait $spid 2>/dev/null
echo "$name rc=$rc"
