"""Sandbox latency, this tree against a baseline revision, side by side in one run.

Runs ``bench/sandbox_bench.py`` from each tree (its own packages first on the path, the same venv),
alternating which goes first each round, and prints the median p50 per driver and mode with the
difference. Call latencies are what the sandboxes cost; CPU per call follows them closely here.

    python bench/sandbox_ab.py --baseline 4f7ae00 [--drivers bwrap,docker,wasm] [--runs 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import core_bench

Row = tuple[str, str]


def run_bench(tree: Path, drivers: str, runs: int) -> dict[Row, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, str(tree / "bench" / "sandbox_bench.py"), "--drivers", drivers,
                           "--runs", str(runs)], cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"sandbox_bench failed in {tree}:\n{done.stderr[-2000:]}")
    found: dict[Row, float] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] in ("cold", "warm") and parts[0] != "driver":
            found[(parts[0], parts[1])] = float(parts[3])
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", required=True, help="a git revision to compare with, e.g. HEAD~1")
    p.add_argument("--drivers", default="bwrap,docker,wasm")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    here = core_bench.REPO
    samples: dict[str, dict[Row, list[float]]] = {"this": {}, "base": {}}
    with core_bench.baseline_tree(args.baseline) as base:
        trees = {"this": here, "base": base.path}
        for round_ in range(args.rounds):
            for name in (("this", "base") if round_ % 2 == 0 else ("base", "this")):
                print(f"round {round_ + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
                for row, p50 in run_bench(trees[name], args.drivers, args.runs).items():
                    samples[name].setdefault(row, []).append(p50)
    print(f"| driver | mode | p50 ms this | p50 ms {args.baseline} | Δ |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in sorted(set(samples["this"]) | set(samples["base"])):
        a = statistics.median(samples["this"].get(row, [float("nan")]))
        b = statistics.median(samples["base"].get(row, [float("nan")]))
        print(f"| {row[0]} | {row[1]} | {a:.1f} | {b:.1f} | {100 * (a - b) / b:+.1f} % |")


if __name__ == "__main__":
    main()
