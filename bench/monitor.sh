#!/usr/bin/env bash
# Step 22's data drift: `mlops monitor drift` (release build) against Python on the same Parquet
# files, made once by bench/generate_drift.py (fixed seed; 20 numeric and 10 text columns, 8 of
# them shifted in the current files) in bench/out/drift:
#   (a) 327,000 reference rows against 3,270,000 current rows: the toolkit with its automatic
#       methods, with --method ks and with --method psi, each against bench/reference_drift_scipy.py,
#       the pandas + scipy loop a Python user writes (KS and PSI per numeric column, chi-squared
#       per text column; --method ks or psi alone for the matching toolkit run);
#   (b) 327,000 against 327,000 rows: the toolkit's automatic methods against Evidently's
#       DataDriftPreset (bench/reference_drift_evidently.py), which picks the same methods.
# Each pair runs once as a warm-up, then RUNS times back to back in alternating order; every run
# is a whole process (start-up, imports and reading the files included), timed from outside, its
# peak memory from GNU time. Prints per pair the median wall times, the toolkit/python ratio of
# the medians and the median of the pair-by-pair ratios (with their range), peak memory, the
# drifted columns of each side, and, where both sides used the same method on a column, how far
# their scores and decisions agree. Raw outputs and results.json in bench/out/drift.
# Usage: bench/monitor.sh [RUNS]   (default 5)
#   env: REF_ROWS (327000), CUR_ROWS (3270000), MLOPS (a binary instead of the release build),
#   PYTHON (the interpreter with numpy, pandas, pyarrow and scipy; default: the tests' environment
#   of `make test-venv`), EVIDENTLY=0 skips pair (b).
# Needs: a release build with `monitor drift` (make release), GNU time (/usr/bin/time); python3
#   (3.11) to create Evidently's environment: bench/requirements-evidently.txt (evidently with
#   pandas < 3, pinned) installed once into ~/.cache/mlops-bench-evidently-<hash of that file>.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs="${1:-5}"
ref_rows="${REF_ROWS:-327000}"
cur_rows="${CUR_ROWS:-3270000}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/mlops-target}"
mlops="${MLOPS:-$target/release/mlops}"
out=bench/out/drift

[ -x "$mlops" ] || { echo "build the release binary first: make release"; exit 1; }
"$mlops" monitor drift --help >/dev/null 2>&1 ||
  { echo "$mlops has no \`monitor drift\` subcommand: build the current source (make release)"; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt install time"; exit 1; }
if [ -n "${PYTHON:-}" ]; then
  python="$PYTHON"
else
  make --no-print-directory -s test-deps
  python="$(make --no-print-directory -s test-venv)/bin/python"
fi
"$python" -c 'import numpy, pandas, pyarrow, scipy' 2>/dev/null ||
  { echo "$python lacks numpy, pandas, pyarrow or scipy"; exit 1; }

# Evidently needs pandas < 3, so it gets an environment of its own, named after the pins' hash (a
# changed file builds a new one; `.complete` marks a finished install), as `make test-deps` does.
evidently_python=
if [ "${EVIDENTLY:-1}" != 0 ]; then
  req=bench/requirements-evidently.txt
  venv=$(bench_venv "$req" evidently)
  evidently_python="$venv/bin/python"
fi

# The data, made once for the sizes asked.
rows() { "$python" -c 'import sys, pyarrow.parquet as p; print(p.read_metadata(sys.argv[1]).num_rows)' "$1" 2>/dev/null || echo 0; }
if [ "$(rows "$out/reference.parquet")" != "$ref_rows" ] || [ "$(rows "$out/current.parquet")" != "$cur_rows" ] ||
  [ "$(rows "$out/current_small.parquet")" != "$ref_rows" ]; then
  "$python" bench/generate_drift.py "$out" "$ref_rows" "$cur_rows"
fi
ref="$out/reference.parquet" cur="$out/current.parquet" small="$out/current_small.parquet"
drift() { echo "$mlops --quiet --log-dir $out/logs monitor drift --reference $1 --current $2 $3 --json"; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== toolkit: $mlops"
echo "== python: $("$python" -c 'import sys, pandas, scipy; print(f"Python {sys.version.split()[0]}, pandas {pandas.__version__}, scipy {scipy.__version__}")')"
[ -n "$evidently_python" ] &&
  echo "== evidently: $("$evidently_python" -c 'import evidently, pandas; print(f"evidently {evidently.__version__}, pandas {pandas.__version__}")')"
echo "== $ref_rows reference rows ($(du -h "$ref" | cut -f1)), $cur_rows current rows ($(du -h "$cur" | cut -f1)), 30 columns; one warm-up, then $runs paired runs each"

# name, toolkit command, python command (tab-separated)
pairs="$out/pairs.tsv"
{
  printf 'auto, %s vs %s rows: scipy loop (KS + PSI, chi-squared)\t%s\t%s\n' "$ref_rows" "$cur_rows" \
    "$(drift "$ref" "$cur" "")" "$python bench/reference_drift_scipy.py $ref $cur"
  printf -- '--method ks, %s vs %s rows: scipy loop (KS, chi-squared)\t%s\t%s\n' "$ref_rows" "$cur_rows" \
    "$(drift "$ref" "$cur" "--method ks")" "$python bench/reference_drift_scipy.py $ref $cur --method ks"
  printf -- '--method psi, %s vs %s rows: scipy loop (PSI, chi-squared)\t%s\t%s\n' "$ref_rows" "$cur_rows" \
    "$(drift "$ref" "$cur" "--method psi")" "$python bench/reference_drift_scipy.py $ref $cur --method psi"
  if [ -n "$evidently_python" ]; then
    printf 'auto, %s vs %s rows: Evidently DataDriftPreset\t%s\t%s\n' "$ref_rows" "$ref_rows" \
      "$(drift "$ref" "$small" "")" "$evidently_python bench/reference_drift_evidently.py $ref $small"
  fi
} > "$pairs"

"$python" - "$pairs" "$runs" "$out" <<'PY'
import json, os, statistics, subprocess, sys, time

pairs_file, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pairs = [line.rstrip("\n").split("\t") for line in open(pairs_file) if line.strip()]


def timed(command, stdout):
    """Wall seconds and peak memory (MiB) of one run; its output kept in STDOUT."""
    rss = f"{out}/last.rss"
    started = time.perf_counter()
    with open(stdout, "w") as f:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss, "bash", "-c", command], stdout=f,
                              stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {command}\n{done.stderr[-2000:]}")
    return took, int(open(rss).read().split()[-1]) / 1024


def summary(path):
    """The JSON summary a side printed: the whole output, or its last line."""
    text = open(path).read()
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text.strip().splitlines()[-1])


def verdict(ratio):
    return f"toolkit is {1 / ratio:.1f}x faster" if ratio <= 1 else f"toolkit is {ratio:.1f}x slower"


results = []
for i, (name, toolkit, python) in enumerate(pairs):
    print(f"\n{name}", flush=True)
    stdout = {"toolkit": f"{out}/pair{i}.toolkit.out", "python": f"{out}/pair{i}.python.out"}
    commands = {"toolkit": toolkit, "python": python}
    for side in ("toolkit", "python"):  # warm-up: the page cache, .pyc files; its output is the one compared
        timed(commands[side], stdout[side])
    wall = {"toolkit": [], "python": []}
    rss = {"toolkit": [], "python": []}
    for r in range(runs):
        order = ("toolkit", "python") if r % 2 == 0 else ("python", "toolkit")
        for side in order:
            t, m = timed(commands[side], f"{out}/pair{i}.{side}.run.out")
            wall[side].append(t)
            rss[side].append(m)
    ratios = [t / p for t, p in zip(wall["toolkit"], wall["python"])]
    t, p, q = statistics.median(wall["toolkit"]), statistics.median(wall["python"]), statistics.median(ratios)
    print(f"  median wall time: toolkit {t:.3f} s, python {p:.3f} s; toolkit/python {t / p:.3f} -> {verdict(t / p)}")
    print(f"  paired runs:      median of {runs} toolkit/python ratios {q:.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"
          f" -> {verdict(q)}")
    print(f"  peak memory:      toolkit {statistics.median(rss['toolkit']):.0f} MiB, python"
          f" {statistics.median(rss['python']):.0f} MiB (medians of the runs' max RSS)")
    result = {"pair": name, "toolkit_command": toolkit, "python_command": python, "wall_seconds": wall,
              "peak_mib": rss, "median_seconds": {"toolkit": t, "python": p}, "ratio_of_medians": t / p,
              "paired_ratios": ratios, "median_paired_ratio": q}
    try:
        tk, py = summary(stdout["toolkit"]), summary(stdout["python"])
    except (ValueError, IndexError) as e:
        print(f"  (no JSON summary to compare: {e})")
        results.append(result)
        continue
    for side, s in (("toolkit", tk), ("python", py)):
        cols = sorted({c["column"] for c in s["columns"] if c["drifted"]})
        print(f"  drifted columns:  {side} {len(cols)} of {len({c['column'] for c in s['columns']})}: {', '.join(cols)}")
    mine = {(c["column"], c["method"]): c for c in tk["columns"]}
    same = [(mine[(c["column"], c["method"])], c) for c in py["columns"] if (c["column"], c["method"]) in mine]
    if same:
        diff = max(abs(a["score"] - b["score"]) for a, b in same)
        agree = sum(a["drifted"] == b["drifted"] for a, b in same)
        methods = ", ".join(sorted({a["method"] for a, _ in same}))
        print(f"  same method:      {len(same)} columns ({methods}): max |score difference| {diff:.2e},"
              f" decisions agree on {agree}/{len(same)}")
        result["same_method"] = {"columns": len(same), "max_score_difference": diff, "decisions_agree": agree}
    results.append(result)
json.dump(results, open(f"{out}/results.json", "w"), indent=1)
PY
