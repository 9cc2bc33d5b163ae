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

req=bench/requirements-kafka.txt
venv="$HOME/.cache/mlops-bench-kafka-$(sha256sum "$req" | cut -c1-16)"
test -f "$venv/.complete" || {
  echo "creating the reference's environment $venv from $req"
  rm -rf "$venv" && python3 -m venv "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv --no-deps -r "$req" &&
    "$venv/bin/python" -m pip check && touch "$venv/.complete"
}

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
echo "== python: $("$venv/bin/python" -c 'import sys, pandas, confluent_kafka; print(f"Python {sys.version.split()[0]}, pandas {pandas.__version__}, confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}")')"
python3 - "$runs" "$mlops" "$config" "$venv/bin/python" "127.0.0.1:$port" "$dir" "$messages" <<'PY'
import statistics, subprocess, sys, time

runs, mlops, config, python, broker, tmp, messages = int(sys.argv[1]), *sys.argv[2:7], int(sys.argv[7])
toolkit = [mlops, "--quiet", "--log-dir", f"{tmp}/logs", "--json", "ingest", "--config", config]
python_side = [python, "bench/reference_kafka.py", "consume", broker, "bench"]

def run(cmd):
    """Wall seconds and peak resident memory (MiB) of one run."""
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return seconds, int(out.stderr.strip().splitlines()[-1]) / 1024

run(toolkit), run(python_side)  # warm up
times = {"toolkit": [], "python": []}
memory = {"toolkit": [], "python": []}
ratios = []
for i in range(runs):
    order = [("toolkit", toolkit), ("python", python_side)]
    if i % 2:
        order.reverse()
    got = {}
    for name, cmd in order:
        seconds, mib = run(cmd)
        times[name].append(seconds)
        memory[name].append(mib)
        got[name] = seconds
    ratios.append(got["toolkit"] / got["python"])
med = statistics.median
print(f"{'consumer':<34} {'median s':>9} {'msg/s':>10} {'peak MiB':>9}")
for label, name in [("mlops ingest (rskafka)", "toolkit"), ("confluent-kafka + json_normalize", "python")]:
    print(f"{label:<34} {med(times[name]):>9.3f} {messages / med(times[name]):>10,.0f} {med(memory[name]):>9.0f}")
print(f"ratio toolkit/python: median {med(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, {runs} pairs); "
      f"{1 / med(ratios):.1f}x faster, memory {med(memory['toolkit']) / med(memory['python']):.2f}x")
PY
