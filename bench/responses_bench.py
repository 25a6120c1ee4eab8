"""Responses benchmark (issue 12): ``POST /v1/responses`` translated to chat, side by side with chat
completions, through one gateway on one pinned core, in one run.

Starts the canned nginx upstream (chat completions only: the Responses requests are translated to
chat and back, streams included) and one gateway (embedded defaults, chain [], access log on,
pinned alone to --server-cpus), checks one answer per row, then drives each row with wrk at c=1 and
c=64 and reads the gateway's CPU time (user+sys, process tree) over each cell:

  chat                POST /v1/chat/completions                 (the baseline)
  chat-stream         the same, stream (4 content chunks + usage)
  responses           POST /v1/responses, translated, store: false (Response object)
  responses-stream    the same, stream (created ... completed: 12 events)
  responses-stored    responses with store: true (one PostgreSQL write per request)
  responses-previous  responses with previous_response_id (one stored-history lookup per request)

Prints req/s, p50, p99, CPU µs per request, each Responses row's CPU against its chat row (goal:
within 1.3×), and the p50 that previous_response_id adds at c=1 (goal: ≤ 2 ms). The state lives in
an embedded PostgreSQL in the bench's temporary directory. Writes bench/results/responses-<timestamp>.json.

    python bench/responses_bench.py             # 11 rounds of 2 s per cell
    python bench/responses_bench.py --quick     # 5 rounds of 1 s
    python bench/responses_bench.py --repeat 21 # more rounds on a noisy machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = c.BENCH_DIR.parent
GOAL_CPU_RATIO = 1.3
GOAL_PREVIOUS_MS = 2.0
PROMPT = "Say hello"
ROWS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": "bench-chat", "messages": [{"role": "user", "content": PROMPT}]}),
    "chat-stream": ("/v1/chat/completions", {"model": "bench-stream", "stream": True,
                                             "messages": [{"role": "user", "content": PROMPT}]}),
    "responses": ("/v1/responses", {"model": "bench-chat", "input": PROMPT, "store": False}),
    "responses-stream": ("/v1/responses", {"model": "bench-stream", "input": PROMPT, "stream": True,
                                           "store": False}),
    "responses-stored": ("/v1/responses", {"model": "bench-chat", "input": PROMPT, "store": True}),
    # "responses-previous" is added once a stored response exists to point at (``run``)
}
BASELINE = {"responses": "chat", "responses-stream": "chat-stream"}


def start_gateway(workdir: Path, upstream: c.Upstream, args: argparse.Namespace) -> tuple[c.Child, str]:
    port = c.free_port()
    cfg = workdir / "gateway.yaml"
    cfg.write_text(c.gateway_yaml(upstream, port) + f"chain: []\npostgres:\n  embedded_dir: {workdir / 'pg'}\n")
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg), "--port", str(port)]
    old = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": str(REPO) + (os.pathsep + old if old else "")}  # this tree, not the editable install
    child = c.start_pinned("gateway", cmd, args.server_cpus, workdir / "gateway.log", env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    c.wait_http_ready(url + "/healthz", child, timeout=60, also_ok=(404, 503))
    return child, url


def check(url: str, row: str) -> str:
    """One request: the answer a client of that API expects, or why not."""
    path, body = ROWS[row]
    status, _, raw = c.post_json(url + path, body)
    if status != 200:
        return f"HTTP {status}: {raw[:200]!r}"
    text = raw.decode(errors="replace")
    if row.startswith("responses") and not row.endswith("stream"):
        return "ok" if json.loads(text).get("status") == "completed" else f"not completed: {text[:200]}"
    if row == "responses-stream":
        return "ok" if "event: response.completed" in text else f"no response.completed: {text[-200:]}"
    return "ok" if ("[DONE]" in text) == row.endswith("stream") else f"unexpected answer: {text[:200]}"


def measure(url: str, child: c.Child, workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--repeat`` rounds per connection count; each round runs every row once for a short slice, each
    Responses row right next to its chat row (which one goes first alternates round by round), so a pair
    shares the machine's noise and the ratio is taken within it."""
    out = []
    scripts = {row: c.write_wrk_script(workdir / f"{row}.lua", body) for row, (_, body) in ROWS.items()}
    for conns in (1, 64):
        for rnd in range(args.repeat):
            for row in _order(rnd):
                url_row = url + ROWS[row][0]
                c.run_wrk(url_row, scripts[row], conns, args.warmup, args.load_cpus)
                before = c.tree_cpu_seconds(child.pid)
                with c.progress(f"  {row:17} c={conns:<3} round {rnd + 1}"):
                    res = c.run_wrk(url_row, scripts[row], conns, args.duration, args.load_cpus)
                cpu = c.tree_cpu_seconds(child.pid) - before
                cpu_us = cpu * 1e6 / res.requests if res.requests else None
                out.append({"row": row, "connections": conns, "round": rnd, "cpu_us_per_request": cpu_us,
                            **res.to_json()})
    return out


def _order(rnd: int) -> list[str]:
    """Each Responses row next to its baseline, the pair's order flipped every other round; then the rest."""
    pairs = [(base, row) if rnd % 2 == 0 else (row, base) for row, base in BASELINE.items()]
    paired = [row for pair in pairs for row in pair]
    return paired + [row for row in ROWS if row not in paired]


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (row, c): the median of each measure over the rounds, and the median of the per-round CPU ratios
    against the chat row (each ratio taken within one round)."""
    by_round = {(r["row"], r["connections"], r["round"]): r for r in rows}
    out = []
    for row in ROWS:
        for conns in (1, 64):
            cells = [r for r in rows if r["row"] == row and r["connections"] == conns]
            if not cells:
                continue
            ratios = []
            for cell in cells:
                base = by_round.get((BASELINE.get(row, ""), conns, cell["round"]))
                if base and base["cpu_us_per_request"] and cell["cpu_us_per_request"]:
                    ratios.append(cell["cpu_us_per_request"] / base["cpu_us_per_request"])
            out.append({"row": row, "connections": conns, "rounds": len(cells),
                        **{k: _median([x[k] for x in cells if x[k] is not None])
                           for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")},
                        "errors": sum(x["errors"] for x in cells), "cpu_ratio": _median(ratios)})
    return out


def report(summary: list[dict[str, Any]]) -> bool:
    by = {(r["row"], r["connections"]): r for r in summary}
    ok = True
    table = []
    for r in summary:
        ratio = r["cpu_ratio"]
        if ratio is not None:
            ok = ok and ratio <= GOAL_CPU_RATIO
        table.append([r["row"], r["connections"], c.fmt_num(r["rps"]), c.fmt_num(r["p50_ms"], 3),
                      c.fmt_num(r["p99_ms"], 3), c.fmt_num(r["cpu_us_per_request"], 1),
                      f"{ratio:.2f}×" if ratio is not None else "", r["errors"]])
    print()
    print(c.markdown_table(["row", "c", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "CPU vs chat", "errors"],
                           table, right=(1, 2, 3, 4, 5, 6, 7)))
    print("medians over the rounds; CPU vs chat: the median of the per-round ratios")
    print(f"\nResponses CPU per request within {GOAL_CPU_RATIO}× of chat's: {'PASS' if ok else 'FAIL'}")
    previous, plain = by.get(("responses-previous", 1)), by.get(("responses", 1))
    if previous and plain and previous["p50_ms"] is not None and plain["p50_ms"] is not None:
        added = previous["p50_ms"] - plain["p50_ms"]
        fits = added <= GOAL_PREVIOUS_MS
        print(f"previous_response_id adds {added:.3f} ms p50 at c=1 (goal ≤ {GOAL_PREVIOUS_MS} ms): "
              f"{'PASS' if fits else 'FAIL'}")
        ok = ok and fits
    return ok


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="responses-bench-"))
    upstream = c.start_nginx(workdir, args.load_cpus)
    with c.progress("start gateway"):
        child, url = start_gateway(workdir, upstream, args)
    try:
        status, _, raw = c.post_json(url + "/v1/responses", {"model": "bench-chat", "input": PROMPT})
        if status != 200:
            raise c.BenchError(f"could not store a first response: HTTP {status}: {raw[:200]!r}")
        ROWS["responses-previous"] = ("/v1/responses", {"model": "bench-chat", "input": PROMPT, "store": False,
                                                        "previous_response_id": json.loads(raw)["id"]})
        for row in ROWS:
            verdict = check(url, row)
            if verdict != "ok":
                raise c.BenchError(f"{row}: {verdict}")
        return measure(url, child, workdir, args)
    finally:
        c.stop(child)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=2.0, help="seconds per cell (one row, one round)")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds of warm-up before each cell")
    p.add_argument("--quick", action="store_true", help="1 s per cell, 0.3 s warm-up, 5 rounds")
    p.add_argument("--repeat", type=int, default=11, help="rounds of every row")
    p.add_argument("--server-cpus", default="1", help="cpus for the gateway under test")
    p.add_argument("--load-cpus", default="0", help="cpus for wrk, nginx and this driver")
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.repeat = 1.0, 0.3, 5
    c.pin_self(args.load_cpus)
    try:
        rows = run(args)
    except c.BenchError as exc:
        c.eprint(f"error: {exc}")
        return 2
    finally:
        c.stop_all()
    summary = summarize(rows)
    ok = report(summary)
    path = c.write_results("responses", {"goal_cpu_ratio": GOAL_CPU_RATIO, "rows": rows, "summary": summary,
                                         "revision": c.git_revision(REPO)})
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
