#!/usr/bin/env bash
# The Kafka source against a Python consumer: MESSAGES seeded JSON messages (nested objects, five
# fields) in one topic of a tansu broker started here (in-memory storage, a free port, stopped at
# the end), read whole into a frame by `mlops ingest --config` (rskafka, flattened as the JSON
# source flattens) and by confluent-kafka (librdkafka) into pandas.json_normalize. Paired runs in
# alternating order; prints the median wall time, messages per second and peak memory of each and
# the ratio (toolkit / Python: below 1 is faster).
#
# Usage: bench/kafka.sh [RUNS]        (MESSAGES=1000000 by default; `make release` and `make tansu` first)
# Needs: python3 for the reference's environment (bench/requirements-kafka.txt, made here once),
# /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
messages="${MESSAGES:-1000000}"
mlops="${MLOPS:-${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}/release/mlops}"
[ -x "$mlops" ] || { echo "no toolkit at $mlops: make release"; exit 1; }
tansu="${MLOPS_TANSU:-$HOME/.cache/mlops-tools/bin/tansu}"
[ -x "$tansu" ] || { echo "no broker at $tansu: make tansu"; exit 1; }

source bench/lib.sh
venv=$(bench_venv bench/requirements-kafka.txt kafka)

dir="$(mktemp -d /tmp/mlops-kafka-bench.XXXXXX)"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tansu" broker --storage-engine memory://tansu/ --cluster-id bench \
  --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" >"$dir/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$tansu" topic create bench --partitions 1 --broker "tcp://127.0.0.1:$port" >/dev/null
echo "producing $messages messages"
"$venv/bin/python" bench/reference_kafka.py produce "127.0.0.1:$port" bench "$messages"
config="$dir/bench.yaml"
cat >"$config" <<YAML
sources:
  events:
    kafka: {brokers: ["127.0.0.1:$port"], topic: bench}
YAML

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== broker: $("$tansu" --version) (memory storage), $messages JSON messages, 1 partition"
echo "== python: $("$venv/bin/python" -c 'import sys, pandas, confluent_kafka; print(f"Python {sys.version.split()[0]}, pandas {pandas.__version__}, confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}")')"
python3 bench/paired.py "$runs" "$messages" msg "mlops ingest (rskafka)" "confluent-kafka + json_normalize" \
  -- "$mlops" --quiet --log-dir "$dir/logs" --json ingest --config "$config" \
  -- "$venv/bin/python" bench/reference_kafka.py consume "127.0.0.1:$port" bench
