#!/usr/bin/env bash
# Gateway overhead: the fake upstream alone, then the gateway (real engine,
# built-in detectors) in front of it, in the same run, at 64 connections,
# with a 2 KB OpenAI Chat Completions request; then memory over a soak.
#
# Three measurements:
#   1. saturated throughput (wrk, closed loop, 64 connections);
#   2. latency at a fixed rate both paths sustain (RATE requests/s, open
#      loop over 64 connections, counted from when each request was due):
#      the gateway's added p50 and p99. At saturation a closed loop's
#      latency is just connections / throughput, so it says nothing about
#      the time the gateway adds to a request;
#   3. the gateway's resident memory every 10 s under saturated load.
# The upstream and the gateway run as separate processes, so the memory
# read is the gateway's alone.
#
#   bench/gateway.sh            # 30 s per load run, 10 minute soak
#   SHORT=1 bench/gateway.sh    # 10 s per load run, 60 s soak
#
# Needs wrk (apt-get install wrk). Prints a table and keeps the raw output
# in bench/results/. Every address is 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_SECS=${RUN_SECS:-30}
SOAK_SECS=${SOAK_SECS:-600}
if [ -n "${SHORT:-}" ]; then RUN_SECS=10; SOAK_SECS=60; fi
CONNS=${CONNS:-64}
RATE=${RATE:-1000}
UP_PORT=${UP_PORT:-18081}
GW_PORT=${GW_PORT:-18080}
OUT=bench/results
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p childsafe-gateway --example bench_server
SERVER="$CARGO_TARGET_DIR/release/examples/bench_server"

"$SERVER" upstream "$UP_PORT" &
UP_PID=$!
"$SERVER" gateway "$UP_PORT" "$GW_PORT" &
PID=$!
trap 'kill $PID $UP_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.1; done

# A benign 2 KB prompt (about 2,000 bytes of ordinary text).
PROMPT=$(python3 -c 'print(("Please summarise the history of the printing press and its effect on literacy in Europe. " * 23)[:2000])')
BODY=$(python3 -c 'import json,sys; print(json.dumps({"model":"bench","messages":[{"role":"user","content":sys.argv[1]}]}))' "$PROMPT")
BODY_FILE=$(mktemp)
printf '%s' "$BODY" > "$BODY_FILE"
LUA=$(mktemp)
cat > "$LUA" <<LUAEOF
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [[$BODY]]
LUAEOF

run() { # name url
  wrk -t2 -c"$CONNS" -d"${RUN_SECS}s" --latency -s "$LUA" "$2" > "$OUT/gateway-$STAMP-$1.txt"
}
at_rate() { # name url
  "$SERVER" load "$2" "$BODY_FILE" "$CONNS" "$RATE" "$RUN_SECS" | tee "$OUT/gateway-$STAMP-$1.json" >/dev/null
}
# Warm both paths at the fixed rate, then measure latency at that rate,
# then saturated throughput. Latency comes first: for some seconds after a
# saturated run the machine is still recovering (a rate run right after one
# showed a p99 three times its steady value), which is not the gateway's.
"$SERVER" load "http://127.0.0.1:$UP_PORT/v1/chat/completions" "$BODY_FILE" "$CONNS" "$RATE" 3 >/dev/null
"$SERVER" load "http://127.0.0.1:$GW_PORT/v1/chat/completions" "$BODY_FILE" "$CONNS" "$RATE" 3 >/dev/null
at_rate direct-rate "http://127.0.0.1:$UP_PORT/v1/chat/completions"
at_rate gateway-rate "http://127.0.0.1:$GW_PORT/v1/chat/completions"
run direct "http://127.0.0.1:$UP_PORT/v1/chat/completions"
run gateway "http://127.0.0.1:$GW_PORT/v1/chat/completions"

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
errors() { awk '/Non-2xx|Socket errors/ {print}' "$1"; }
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
D="$OUT/gateway-$STAMP-direct.txt"; G="$OUT/gateway-$STAMP-gateway.txt"
DR="$OUT/gateway-$STAMP-direct-rate.json"; GR="$OUT/gateway-$STAMP-gateway-rate.json"
printf '\nsaturated, %s connections (wrk)\n' "$CONNS"
printf '%-22s %12s\n' "upstream alone" "$(rps "$D") req/s"
printf '%-22s %12s\n' "through the gateway" "$(rps "$G") req/s"
errors "$D"; errors "$G"
printf '\nat %s req/s over %s connections (latency from when each request was due)\n' "$RATE" "$CONNS"
printf '%-22s %10s %10s %10s %10s\n' "" "p50 ms" "p99 ms" "req/s" "errors"
for f in "$DR" "$GR"; do
  name="upstream alone"; [ "$f" = "$GR" ] && name="through the gateway"
  printf '%-22s %10.3f %10.3f %10.0f %10s\n' "$name" "$(json "$f" p50_ms)" "$(json "$f" p99_ms)" "$(json "$f" achieved_rps)" "$(json "$f" errors)"
done
awk -v a="$(json "$DR" p50_ms)" -v b="$(json "$GR" p50_ms)" -v c="$(json "$DR" p99_ms)" -v d="$(json "$GR" p99_ms)" \
  'BEGIN {printf "%-22s %10.3f %10.3f\n", "added by the gateway", b-a, d-c}'

# Soak: the gateway under load; resident memory every 10 s.
echo
echo "soak: ${SOAK_SECS}s at $CONNS connections through the gateway; RSS every 10 s (KiB)"
wrk -t2 -c"$CONNS" -d"${SOAK_SECS}s" -s "$LUA" "http://127.0.0.1:$GW_PORT/v1/chat/completions" > "$OUT/gateway-$STAMP-soak.txt" &
WRK=$!
SAMPLES=()
while kill -0 $WRK 2>/dev/null; do
  SAMPLES+=("$(awk '/VmRSS/ {print $2}' /proc/$PID/status)")
  sleep 10
done
echo "${SAMPLES[*]}" | tee "$OUT/gateway-$STAMP-rss.txt"
echo "${SAMPLES[*]}" | tr ' ' '\n' | awk 'NF {n++; v[n]=$1; if ($1>max) max=$1} END {
  if (n < 2) exit; half=int(n/2); a=0; b=0;
  for (i=1;i<=half;i++) a+=v[i]; for (i=n-half+1;i<=n;i++) b+=v[i];
  printf "rss first half avg %d KiB, second half avg %d KiB, max %d KiB, growth %.1f%%\n", a/half, b/half, max, (b-a)*100/a }'
rps "$OUT/gateway-$STAMP-soak.txt" | sed 's/^/soak requests\/s: /'
rm -f "$LUA" "$BODY_FILE"
