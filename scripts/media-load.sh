#!/usr/bin/env bash
# Media under load with independent clients: the SFU against a bare str0m forwarding loop,
# same machine, same hour. Builds release, then for each receiver count starts a fresh
# server (`dienhong demo` on a new SQLite database, pinned to SERVER_CPU) and runs the str0m
# load generator (`dienhong-media-load`, pinned to GEN_CPU) against it; then the same
# against `bare-forward` (pinned the same way) and, if asked (TARGETS with "webrtc"),
# against `bare-forward-webrtc`, the bare loop on webrtc-rs's async layer (one tokio thread,
# a UDP socket per peer). Prints one summary table; every run's JSON line and logs are kept
# in OUT.
#
#   scripts/media-load.sh [COUNT ...]        default: 32 64 128 200 400 600
#
# Against the SFU, a deputy (FLOOR, DB450; empty: nobody) is given the floor first and
# publishes beside the chamber, as in most of a sitting: the receivers get the speaker, and
# the report says whether both publishers stayed up.
#
# Environment: TARGETS ("sfu bare"; any of sfu, bare, webrtc), FLOOR, SERVER_CPU (0; "0,1" for
# two cores), IO_THREADS (the SFU's media I/O threads, 1), GEN_CPU (1), WINDOW (10 s), WARMUP
# (5 s), CONNECT_TIMEOUT (30 s), OUT (a new temporary directory), GEN_ARGS (more generator
# flags, e.g. "--video-packets 6"), CARGO_TARGET_DIR ($HOME/.cache/dienhong-target),
# PREBUILT (a directory holding the four binaries, e.g. an earlier run's OUT/bin: nothing is
# built, so two builds can be compared in the same hour).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dienhong-target}"
COUNTS=("$@")
[ ${#COUNTS[@]} -eq 0 ] && COUNTS=(32 64 128 200 400 600)
TARGETS="${TARGETS:-sfu bare}"
SERVER_CPU="${SERVER_CPU:-0}"
GEN_CPU="${GEN_CPU:-1}"
IO_THREADS="${IO_THREADS:-1}"
WINDOW="${WINDOW:-10}"
WARMUP="${WARMUP:-5}"
CONNECT_TIMEOUT="${CONNECT_TIMEOUT:-30}"
OUT="${OUT:-$(mktemp -d /tmp/media-load.XXXXXX)}"
GEN_ARGS="${GEN_ARGS:-}"
FLOOR="${FLOOR-DB450}"
mkdir -p "$OUT"

FROM="${PREBUILT:-$CARGO_TARGET_DIR/release}"
if [ -z "${PREBUILT:-}" ]; then
  echo "== building (release) into $CARGO_TARGET_DIR" >&2
  cargo build --release -p dienhong -p dienhong-media-load --bin dienhong --bin dienhong-media-load --bin bare-forward \
    --bin bare-forward-webrtc >&2
fi
# Copies, so another build in the shared target directory cannot swap them mid-sweep.
BIN="$OUT/bin"
mkdir -p "$BIN"
for b in dienhong dienhong-media-load bare-forward bare-forward-webrtc; do
  cp "$FROM/$b" "$BIN/$b"
done

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

# Waits for "listening on ADDR" in a log; prints ADDR.
wait_listening() {
  local log="$1"
  for _ in $(seq 300); do
    local addr
    addr="$(sed -n 's/\x1b\[[0-9;]*m//g; s/.*listening on \(http:\/\/\)\{0,1\}\([0-9.:]*\).*/\2/p' "$log" | head -n1)"
    if [ -n "$addr" ]; then echo "$addr"; return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited: $(tail -n5 "$log")" >&2; return 1; }
    sleep 0.1
  done
  echo "the server did not start: $(tail -n5 "$log")" >&2
  return 1
}

start_server() {
  local target="$1" n="$2" log="$OUT/$1-$2.server.log"
  if [ "$target" = sfu ]; then
    local dir
    dir="$(mktemp -d "$OUT/db.XXXXXX")"
    DIENHONG__MEDIA__MAX_LEGS_PER_ACTOR=1000 DIENHONG__MEDIA__IO_THREADS="$IO_THREADS" RUST_LOG="${SERVER_LOG:-info}" \
      taskset -c "$SERVER_CPU" "$BIN/dienhong" demo --listen 127.0.0.1:0 \
      --database "sqlite://$dir/db.sqlite" >/dev/null 2>"$log" &
  elif [ "$target" = webrtc ]; then
    taskset -c "$SERVER_CPU" "$BIN/bare-forward-webrtc" --listen 127.0.0.1:0 >/dev/null 2>"$log" &
  else
    taskset -c "$SERVER_CPU" "$BIN/bare-forward" --listen 127.0.0.1:0 >/dev/null 2>"$log" &
  fi
  SERVER_PID=$!
  ADDR="$(wait_listening "$log")"
}

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
echo "== SFU: $IO_THREADS I/O thread(s) on CPU $SERVER_CPU; generator on CPU $GEN_CPU" >&2
echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for target in $TARGETS; do
  for n in "${COUNTS[@]}"; do
    echo "== $target, $n receivers" >&2
    start_server "$target" "$n"
    # The SFU's own view of its load, every 2 s while the generator runs (per thread).
    HEALTH_PID=""
    if [ "$target" = sfu ]; then
      ( while sleep 2; do
          curl -s "http://$ADDR/healthz/media" 2>/dev/null && echo
        done ) >"$OUT/$target-$n.health.jsonl" &
      HEALTH_PID=$!
    fi
    FLOOR_ARGS=""
    [ "$target" = sfu ] && [ -n "$FLOOR" ] && FLOOR_ARGS="--floor $FLOOR"
    # shellcheck disable=SC2086
    "$BIN/dienhong-media-load" --url "http://$ADDR" --receivers "$n" --cpu "$GEN_CPU" \
      --server-pid "$SERVER_PID" --label "$target" --warmup "$WARMUP" --seconds "$WINDOW" \
      --connect-timeout "$CONNECT_TIMEOUT" $FLOOR_ARGS $GEN_ARGS >"$OUT/$target-$n.out" 2>"$OUT/$target-$n.err" || true
    [ -n "$HEALTH_PID" ] && kill "$HEALTH_PID" 2>/dev/null || true
    cat "$OUT/$target-$n.out" >&2
    grep '^{' "$OUT/$target-$n.out" | tail -n1 >>"$RESULTS" || echo "{\"label\":\"$target\",\"asked\":$n,\"error\":\"no report\"}" >>"$RESULTS"
    if [ "$target" = sfu ]; then
      echo "   server log: $(grep -c 'WARN' "$OUT/$target-$n.server.log" || true) WARN lines, $(grep -ci 'disconnected' "$OUT/$target-$n.server.log" || true) 'disconnected'" >&2
    fi
    stop_server
    sleep 1
  done
done

echo
echo "Results in $OUT (results.jsonl, *.out, *.server.log)"
jq -r -s '
  def r(x; d): if x == null then "-" else ((x * pow(10; d) | round) / pow(10; d) | tostring) end;
  (["target","asked","conn","refused","failed","setup p50/p99 ms","rx pkt/s","loss a/v %","lat a p50/p99 ms","lat v p50/p99 ms","srv CPU %","srv µs/pkt","UDP drops gen/else","gen CPU %","other cores","publisher","floor holder"] | @tsv),
  (.[] | if .error then [.label, (.asked|tostring), "error: \(.error)"] | @tsv else
   [ .label, (.asked|tostring), (.connected|tostring), (.refused|tostring), ((.failed + .never_connected)|tostring),
     "\(r(.setup_ms.p50;0))/\(r(.setup_ms.p99;0))", r(.received_pps;0),
     "\(r(.loss_pct.audio;2))/\(r(.loss_pct.video;2))",
     "\(r(.latency_ms.audio.p50;1))/\(r(.latency_ms.audio.p99;1))",
     "\(r(.latency_ms.video.p50;1))/\(r(.latency_ms.video.p99;1))",
     r(.server.cpu_pct;0), r(.server.us_per_packet;2),
     "\(.udp.at_generator)/\(.udp.elsewhere)",
     (r(.generator.cpu_pct;0) + (if .generator.saturated then " SAT" else "" end)),
     r(.others_cores;2),
     (if .publisher.connected_at_end then "ok" else "LOST at \(r(.publisher.lost_at_s;1)) s" end) + " DELETE \(.publisher.whip_delete_status)",
     (if .floor == null then "-" elif .floor.connected_at_end then "ok" else "LOST at \(r(.floor.lost_at_s;1)) s" end)
       + (if .floor == null then "" else " DELETE \(.floor.whip_delete_status), \(r(.from_floor_pct;1)) % of rx" end)
   ] | @tsv end)' "$RESULTS" | column -t -s $'\t'
