"""Batch benchmark (issue 14): batch throughput, and the latency interactive chat requests see while a
batch runs, side by side with no batch, in one run.

Starts the simulator (no added latency) as the upstream and a PostgreSQL server (pgserver) on
--load-cpus, and one gateway (chain [], access log on, batches at their default concurrency) pinned
alone to --server-cpus, with its state on that PostgreSQL (so the database's CPU is not the gateway's).
Then, each cell once per round:

  interactive         wrk at c=--connections on POST /v1/chat/completions, no batch
  interactive+batch   the same while a --lines-line chat batch runs (created just before wrk starts)
  batch               a --lines-line chat batch alone: created → completed

Prints req/s, p50 and p99 of the interactive requests with and without a batch, the p99 the batch
adds, and the batch's lines/s (alone, and while interactive traffic shares the core). Writes
bench/results/batch-<timestamp>.json.

    python bench/batch_bench.py            # 10 s of wrk per cell, 5,000-line batches, 3 rounds
    python bench/batch_bench.py --quick    # 3 s cells, 2,000-line batches, 1 round
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = c.BENCH_DIR.parent
CHAT = {"model": "bench-chat", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}
FINAL = ("completed", "failed", "cancelled", "expired")


def start_postgres(workdir: Path) -> tuple[Any, str]:
    """pgserver in the bench's temporary directory, started by this (load-pinned) driver."""
    import pgserver

    get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
    server = get_server(str(workdir / "pg"), cleanup_mode="stop")
    return server, str(server.get_uri())


def start_sim(workdir: Path, cpus: str) -> tuple[c.Child, str]:
    port = c.free_port()
    cmd = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port), "--name", "bench"]
    child = c.start_pinned("simulator", cmd, cpus, workdir / "sim.log", env=_env(), cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    c.wait_http_ready(url + "/v1/models", child, timeout=30)
    return child, url


def start_gateway(workdir: Path, sim_url: str, dsn: str, args: argparse.Namespace) -> tuple[c.Child, str]:
    port = c.free_port()
    cfg = workdir / "gateway.yaml"
    cfg.write_text(f"""\
server: {{host: 127.0.0.1, port: {port}, access_log: true}}
backends: [{{name: sim, type: openai, base_url: "{sim_url}/v1"}}]
models: [{{name: bench-chat, deployments: [{{backend: sim}}]}}]
chain: []
postgres: {{dsn: "{dsn}"}}
batches: {{concurrency: {args.batch_concurrency}}}
""")
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg), "--port", str(port)]
    child = c.start_pinned("gateway", cmd, args.server_cpus, workdir / "gateway.log", env=_env(), cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    c.wait_http_ready(url + "/healthz", child, timeout=60, also_ok=(404, 503))
    return child, url


def _env() -> dict[str, str]:
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(REPO) + (os.pathsep + old if old else "")}  # this tree, not the editable install


def upload(url: str, lines: int) -> str:
    """A batch input file of ``lines`` chat requests (multipart by hand: the driver needs no client)."""
    content = b"".join(json.dumps({"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
                                   "body": CHAT}).encode() + b"\n" for n in range(lines))
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n"
            f"Content-Type: application/jsonl\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/v1/files", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return str(json.loads(resp.read())["id"])


def create(url: str, file_id: str) -> str:
    status, _, raw = c.post_json(url + "/v1/batches", {"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                       "completion_window": "24h"})
    if status != 200:
        raise c.BenchError(f"batch create: HTTP {status}: {raw[:200]!r}")
    return str(json.loads(raw)["id"])


def batch(url: str, batch_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/v1/batches/{batch_id}", timeout=10) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def done(url: str, batch_id: str) -> int:
    counts = batch(url, batch_id)["request_counts"]
    return int(counts["completed"]) + int(counts["failed"])


class Watch:
    """Polls a batch until it is final: when it was created, when it ended."""

    def __init__(self, url: str, batch_id: str) -> None:
        self.url, self.batch_id = url, batch_id
        self.created = time.monotonic()
        self.ended: float | None = None
        self.final: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            doc = batch(self.url, self.batch_id)
            if doc["status"] in FINAL:
                self.ended, self.final = time.monotonic(), doc
                return
            time.sleep(0.1)

    def wait(self, timeout_s: float) -> dict[str, Any]:
        self._thread.join(timeout_s)
        if not self.final:
            raise c.BenchError(f"batch {self.batch_id} not final after {timeout_s:.0f}s")
        if self.final["status"] != "completed" or self.final["request_counts"]["failed"]:
            raise c.BenchError(f"batch {self.batch_id} ended {self.final['status']}: {self.final['request_counts']}")
        return self.final

    def lines_per_s(self) -> float:
        assert self.ended is not None
        return float(self.final["request_counts"]["total"]) / (self.ended - self.created)


def interactive(url: str, script: Path, args: argparse.Namespace) -> c.WrkResult:
    return c.run_wrk(url + "/v1/chat/completions", script, args.connections, args.duration, args.load_cpus)


def one_round(url: str, script: Path, args: argparse.Namespace) -> dict[str, Any]:
    with c.progress("  interactive alone"):
        alone = interactive(url, script, args)
    with c.progress("  interactive while a batch runs"):
        watch = Watch(url, create(url, upload(url, args.lines)))
        before, started = done(url, watch.batch_id), time.monotonic()
        shared = interactive(url, script, args)
        during = (done(url, watch.batch_id) - before) / (time.monotonic() - started)
        busy = not watch.final  # still running when the cell ended
        watch.wait(600)
    with c.progress("  batch alone"):
        solo = Watch(url, create(url, upload(url, args.lines)))
        solo.wait(600)
    return {"interactive": alone.to_json(), "interactive_batch": shared.to_json(),
            "batch_ran_throughout": busy, "batch_lines_per_s_shared": during,
            "batch_lines_per_s": solo.lines_per_s()}


def report(rounds: list[dict[str, Any]], args: argparse.Namespace) -> None:
    def med(path: tuple[str, ...]) -> float:
        values = []
        for r in rounds:
            value: Any = r
            for key in path:
                value = value[key]
            values.append(float(value))
        return statistics.median(values)

    rows = [
        ["interactive, no batch", c.fmt_num(med(("interactive", "rps"))), c.fmt_num(med(("interactive", "p50_ms")), 3),
         c.fmt_num(med(("interactive", "p99_ms")), 3), "", ""],
        ["interactive while a batch runs", c.fmt_num(med(("interactive_batch", "rps"))),
         c.fmt_num(med(("interactive_batch", "p50_ms")), 3), c.fmt_num(med(("interactive_batch", "p99_ms")), 3),
         c.fmt_num(med(("batch_lines_per_s_shared",)), 1), ""],
        ["batch alone", "", "", "", "", c.fmt_num(med(("batch_lines_per_s",)), 1)],
    ]
    print()
    print(c.markdown_table(["one gateway core", "chat req/s", "p50 ms", "p99 ms", "batch lines/s (shared)",
                            "batch lines/s (alone)"], rows, right=(1, 2, 3, 4, 5)))
    print(f"wrk c={args.connections}, {args.duration:g} s per cell; {args.lines}-line chat batches; "
          f"batches.concurrency {args.batch_concurrency}; medians over {len(rounds)} round(s)")
    if not all(r["batch_ran_throughout"] for r in rounds):
        print("note: a batch finished before its wrk cell ended (raise --lines for a batch that spans the cell)")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    with c.progress("start postgres, simulator, gateway"):
        server, dsn = start_postgres(workdir)
        sim, sim_url = start_sim(workdir, args.load_cpus)
        child, url = start_gateway(workdir, sim_url, dsn, args)
    try:
        status, _, raw = c.post_json(url + "/v1/chat/completions", CHAT)
        if status != 200:
            raise c.BenchError(f"chat: HTTP {status}: {raw[:200]!r}")
        script = c.write_wrk_script(workdir / "chat.lua", CHAT)
        with c.progress("warm-up"):
            c.run_wrk(url + "/v1/chat/completions", script, args.connections, args.warmup, args.load_cpus)
            Watch(url, create(url, upload(url, 200))).wait(120)
        rounds = []
        for n in range(args.repeat):
            print(f"round {n + 1}")
            rounds.append(one_round(url, script, args))
        return rounds
    finally:
        c.stop(child)
        c.stop(sim)
        server.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per interactive cell")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    p.add_argument("--lines", type=int, default=5000, help="lines per batch")
    p.add_argument("--connections", type=int, default=4, help="wrk connections (interactive clients)")
    p.add_argument("--batch-concurrency", type=int, default=8, help="batches.concurrency of the gateway")
    p.add_argument("--repeat", type=int, default=3, help="rounds")
    p.add_argument("--quick", action="store_true", help="3 s cells, 2,000-line batches, 1 round")
    p.add_argument("--server-cpus", default="1", help="cpus for the gateway under test")
    p.add_argument("--load-cpus", default="0", help="cpus for wrk, the simulator, PostgreSQL and this driver")
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.lines, args.repeat = 3.0, 1.0, 2000, 1
    c.pin_self(args.load_cpus)
    try:
        rounds = run(args)
    except c.BenchError as exc:
        c.eprint(f"error: {exc}")
        return 2
    finally:
        c.stop_all()
    report(rounds, args)
    path = c.write_results("batch", {"args": vars(args), "rounds": rounds, "revision": c.git_revision(REPO)})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
