#!/usr/bin/env bash
# Recovery time after SIGKILL with several million CDRs of table state (issue #8's figure).
#
#   bench/recovery-at-scale.sh [COUNT]     (default 5,000,000)
#
# Needs a broker (deploy/kafka/kafka-local start; BENCH_BROKER=host:port, default 127.0.0.1:9092)
# and `make install`. Starts a worker with a fresh app id, sends COUNT CDRs with
# `streamagg generate`, waits until all are processed, SIGKILLs the worker, restarts it on the
# same data folder and prints the seconds until /readyz answers 200. python -m bench does not
# run this (it takes ~10 minutes for 5 M on 2 cores); add its line to BENCHMARKS.md by hand.
set -euo pipefail
COUNT="${1:-5000000}"
BROKER="${BENCH_BROKER:-127.0.0.1:9092}"
PORT="${BENCH_PORT:-6090}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/bench/out/recovery-$$"
APP="recovery-$$"
mkdir -p "$WORK"
printf '{"tokens":[]}' > "$WORK/tokens.json"
export STREAMAGG_BROKER="kafka://$BROKER" STREAMAGG_APP_ID="$APP" STREAMAGG_TOPIC="$APP-cdrs" \
  STREAMAGG_WEB_PORT="$PORT" STREAMAGG_WEB_HOST=127.0.0.1 STREAMAGG_DATA_DIR="$WORK/data" \
  STREAMAGG_TOKENS_FILE="$WORK/tokens.json"
processed() { curl -s "localhost:$PORT/metrics" | awk '/^streamagg_cdrs_total\{/ {s+=$2} END {printf "%d", s}'; }
start_worker() { "$ROOT/.venv/bin/streamagg" worker >> "$WORK/worker.log" 2>&1 & echo $!; }
wait_ready() { until curl -sf "localhost:$PORT/readyz" > /dev/null; do sleep 0.2; done; }

pid=$(start_worker); wait_ready
"$ROOT/.venv/bin/streamagg" generate --rate 0 --count "$COUNT" --seed 5 --event-step 0.05 \
  --start "$(date -u -d '-3 days' +%Y-%m-%dT%H:%M:%S)" | tail -1
while [ "$(processed)" -lt "$COUNT" ]; do sleep 2; done
echo "state: $(du -sh "$WORK/data" | cut -f1) for $COUNT CDRs"
kill -9 "$pid"; killed=$(date +%s.%N)
pid=$(start_worker); wait_ready
echo "recovery after SIGKILL: $(echo "$(date +%s.%N) - $killed" | bc) s"
kill "$pid"
