#!/usr/bin/env bash
# Two builds of the toolkit against each other on the benchmarks' workloads, run back to back in
# alternating order so the host's drift falls on both: steps 1-6 on the generated table of
# bench/run.sh, model fits on the generated problem of bench/models.sh, and serving under load as
# bench/serve.sh measures it. Prints per workload the median of OLD/NEW ratios (above 1: NEW is
# faster) with their range. Use it before and after a change that should not move speed.
#
# Usage: bench/pair.sh OLD_MLOPS NEW_MLOPS [PAIRS]
#   e.g. git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release --bin mlops)
#        cp "$CARGO_TARGET_DIR/release/mlops" /tmp/mlops-old; make release
#        bench/pair.sh /tmp/mlops-old "$CARGO_TARGET_DIR/release/mlops"
# Needs: python3 with numpy and pandas for the generators (`make test-deps` gives one), wrk, and a
# champion in models/registry (make train).
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1" new="$2" pairs="${3:-7}"
rows="${ROWS:-1000000}"
model_rows="${MODEL_ROWS:-250000}"
out=bench/out/pair
python="${PYTHON:-python3}"
for b in "$old" "$new"; do [ -x "$b" ] || { echo "no binary at $b"; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk is missing: apt install wrk"; exit 1; }
mkdir -p "$out"

# The generated inputs, as bench/run.sh and bench/models.sh make them.
if [ ! -f bench/out/mixed.csv ] || [ "$(($(wc -l < bench/out/mixed.csv) - 1))" != "$rows" ]; then
  "$python" bench/generate.py "$rows" bench/out/mixed.csv
fi
if [ ! -f bench/out/models.csv ] || [ "$(($(wc -l < bench/out/models.csv) - 1))" != "$model_rows" ]; then
  "$python" bench/generate_models.py "$model_rows" bench/out/models.csv
  rm -rf bench/out/processed/models
fi
"$new" --quiet --log-dir "$out/logs" features --config bench/models-training.yaml -o "$out/generated" >/dev/null

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== old $old"
echo "== new $new"

"$python" - "$old" "$new" "$pairs" "$out" <<'PY'
import json, os, re, signal, socket, statistics, subprocess, sys, time

old, new, pairs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def wall(cmd):
    started = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started

def prepare(b):
    return wall(f"rm -rf bench/out/processed bench/out/interim && {b} --quiet --log-dir {out}/logs prepare --config bench/config.yaml")

def fit(spec):
    def run(b):
        return wall(f"{b} --quiet --log-dir {out}/logs --json fit {out}/generated --target label "
                    f"--task classification --model '{spec}'")
    return run

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def serve(b):
    # Requests per second under 32 connections for 10 s; the ratio is inverted below so that
    # above 1 still means NEW is faster.
    port = free_port()
    server = subprocess.Popen([b, "--quiet", "--log-dir", f"{out}/logs", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/invocations"
        body = "docs/examples/invocations.json"
        subprocess.run(["wrk", "-t2", "-c2", "-d2s", "-s", "bench/post_json.lua", url, "--", body],
                       check=True, capture_output=True)
        report = subprocess.run(["wrk", "-t2", "-c32", "-d10s", "-s", "bench/post_json.lua", url, "--", body],
                                check=True, capture_output=True, text=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))
        return 1.0 / rps
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

workloads = [
    ("steps 1-6, bench/run.sh's table (wall s)", prepare),
    ("fit gradient_boosting_classifier, bench/models.sh's problem (wall s)",
     fit("{gradient_boosting_classifier: {max_iter: 100, max_depth: 6, max_leaf_nodes: 31}}")),
    ("fit random_forest_classifier, 100 trees, depth 12 (wall s)",
     fit("{random_forest_classifier: {n_estimators: 100, max_depth: 12, random_state: 0}}")),
    ("fit logistic_regression (wall s)", fit("{logistic_regression: {c: 1.0, max_iter: 100}}")),
    ("serve /invocations, 32 connections (s per 1/throughput)", serve),
]
results = {}
for name, run in workloads:
    run(new)  # warm-up: caches and page cache
    ratios, olds, news = [], [], []
    for i in range(pairs):
        order = [("old", old), ("new", new)] if i % 2 == 0 else [("new", new), ("old", old)]
        took = {label: run(b) for label, b in order}
        olds.append(took["old"]); news.append(took["new"])
        ratios.append(took["old"] / took["new"])
    results[name] = {"old_median": statistics.median(olds), "new_median": statistics.median(news),
                     "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
    r = results[name]
    print(f"{name}: old {r['old_median']:.4g}, new {r['new_median']:.4g}; "
          f"old/new median of {pairs} pairs {r['ratio_median']:.3f} (range {r['ratio_min']:.3f}-{r['ratio_max']:.3f})",
          flush=True)
json.dump(results, open(f"{out}/pairs.json", "w"), indent=1)
PY
