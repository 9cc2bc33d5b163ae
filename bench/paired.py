"""Paired whole-process runs of two commands, in alternating order, after one warm-up run of each.

    paired.py RUNS ITEMS UNIT 'LABEL A' 'LABEL B' -- CMD A... -- CMD B...

Prints the median wall time, ITEMS / time as UNIT per second (none when ITEMS is 0) and the
median peak resident memory (/usr/bin/time) of each, and the ratio A / B (below 1: A is faster).
"""

import statistics
import subprocess
import sys
import time


def run(cmd):
    """Wall seconds and peak resident memory (MiB) of one run."""
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    return seconds, int(out.stderr.strip().splitlines()[-1]) / 1024


def main():
    runs, items, unit, label_a, label_b = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    rest = sys.argv[6:]
    cut = rest.index("--", 1)
    commands = {"a": rest[1:cut], "b": rest[cut + 1:]}
    run(commands["a"]), run(commands["b"])  # warm caches (page cache, a server's buffers)
    times = {"a": [], "b": []}
    memory = {"a": [], "b": []}
    ratios = []
    for i in range(runs):
        order = ["a", "b"] if i % 2 == 0 else ["b", "a"]
        got = {}
        for side in order:
            seconds, mib = run(commands[side])
            times[side].append(seconds)
            memory[side].append(mib)
            got[side] = seconds
        ratios.append(got["a"] / got["b"])
    med = statistics.median
    width = max(len(label_a), len(label_b), 8)
    rate = f" {unit + '/s':>12}" if items else ""
    print(f"{'':<{width}} {'median s':>9}{rate} {'peak MiB':>9}")
    for label, side in [(label_a, "a"), (label_b, "b")]:
        rate = f" {items / med(times[side]):>12,.0f}" if items else ""
        print(f"{label:<{width}} {med(times[side]):>9.3f}{rate} {med(memory[side]):>9.0f}")
    print(f"ratio {label_a} / {label_b}: median {med(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, "
          f"{runs} pairs); {1 / med(ratios):.1f}x faster, memory {med(memory['a']) / med(memory['b']):.2f}x")


if __name__ == "__main__":
    main()
