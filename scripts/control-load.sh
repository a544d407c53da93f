#!/usr/bin/env bash
# The control plane under load, with the release build: the full sitting (564 clients,
# `dienhong-load`) on each backend, and the fan-out to CONNECTIONS followers on SQLite, each
# run with the clients speaking protocol 1 (one message per event) and then 2 (one message
# per commit), so before and after batching come from the same run. Each run gets a fresh
# server on a fresh database. Prints each run's report; keeps them and the logs in OUT.
#
#   scripts/control-load.sh
#
# Environment: BACKENDS ("sqlite postgres"), PROTOCOLS ("1 2"), CONNECTIONS (10000; 0 skips
# the fan-out), PG (postgres://postgres@127.0.0.1:5432), OUT (a new temporary directory),
# CARGO_TARGET_DIR ($HOME/.cache/dienhong-target), PREBUILT (a directory holding `dienhong`
# and `dienhong-load`: nothing is built, so two builds can be compared in the same hour),
# SERVER_CPU and LOAD_CPU (pin the server and the load tool to these CPUs, e.g. 0 and 1;
# unset: not pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dienhong-target}"
BACKENDS="${BACKENDS:-sqlite postgres}"
PROTOCOLS="${PROTOCOLS:-1 2}"
CONNECTIONS="${CONNECTIONS:-10000}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
OUT="${OUT:-$(mktemp -d /tmp/control-load.XXXXXX)}"
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

FROM="${PREBUILT:-$CARGO_TARGET_DIR/release}"
if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release) into $CARGO_TARGET_DIR" >&2
  cargo build --release -p dienhong --bin dienhong --bin dienhong-load >&2
fi
# Copies, so another build in the shared target directory cannot swap them mid-run.
BIN="$OUT/bin"
mkdir -p "$BIN"
for b in dienhong dienhong-load; do
  cp "$FROM/$b" "$BIN/$b"
done

SERVER_PIN=""
LOAD_PIN=""
[ -n "${SERVER_CPU:-}" ] && SERVER_PIN="taskset -c $SERVER_CPU"
[ -n "${LOAD_CPU:-}" ] && LOAD_PIN="taskset -c $LOAD_CPU"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

# A fresh database URL for `backend`, named after `run`.
fresh_database() {
  local backend="$1" run="$2"
  if [ "$backend" = sqlite ]; then
    echo "sqlite://$OUT/$run.sqlite"
  else
    local name="dh_load_${run//-/_}"
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $name" >&2
    psql -q "$PG/postgres" -c "CREATE DATABASE $name" >&2
    echo "$PG/$name"
  fi
}

start_server() {
  local db="$1" log="$OUT/$2.server.log"
  RUST_LOG="${SERVER_LOG:-info}" $SERVER_PIN "$BIN/dienhong" demo --listen 127.0.0.1:0 --database "$db" >/dev/null 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    ADDR="$(sed -n 's/\x1b\[[0-9;]*m//g; s/.*listening on \(http:\/\/\)\{0,1\}\([0-9.:]*\).*/\2/p' "$log" | head -n1)"
    [ -n "$ADDR" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited: $(tail -n5 "$log")" >&2; return 1; }
    sleep 0.1
  done
  echo "the server did not start: $(tail -n5 "$log")" >&2
  return 1
}

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1); load $(cut -d' ' -f1-3 /proc/loadavg)"
for backend in $BACKENDS; do
  for p in $PROTOCOLS; do
    run="sitting-$backend-v$p"
    echo "== the full sitting on $backend, protocol $p"
    start_server "$(fresh_database "$backend" "$run")" "$run"
    $LOAD_PIN "$BIN/dienhong-load" --url "http://$ADDR" --protocol "$p" 2>"$OUT/$run.err" | tee "$OUT/$run.out" || echo "(dienhong-load failed: $(tail -n3 "$OUT/$run.err"))"
    stop_server
  done
done
if [ "$CONNECTIONS" -gt 0 ]; then
  for p in $PROTOCOLS; do
    run="fanout-sqlite-v$p"
    echo "== fan-out to $CONNECTIONS connections on sqlite, protocol $p"
    start_server "$(fresh_database sqlite "$run")" "$run"
    $LOAD_PIN "$BIN/dienhong-load" --url "http://$ADDR" --protocol "$p" --connections "$CONNECTIONS" \
      --server-pid "$SERVER_PID" 2>"$OUT/$run.err" | tee "$OUT/$run.out" || echo "(dienhong-load failed: $(tail -n3 "$OUT/$run.err"))"
    stop_server
  done
fi
echo "== reports and logs in $OUT"
