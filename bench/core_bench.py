"""Core speed benchmark (issue 2): the gateway's own overhead against a C-speed upstream.

One run starts nginx with canned OpenAI answers as the upstream, then measures with wrk, one server
at a time, each pinned alone to its own core (wrk, nginx and this driver share the load core):

  direct   nginx itself (the floor)
  thin     bench/thin_proxy.py, the thinnest Starlette + aiohttp proxy (the ceiling for Python)
  gateway  `python -m gateway.cli serve --config FILE --port N` (= `llmops serve`)
  litellm  LiteLLM proxy 1.106.12 (only with --litellm; installed once into bench/.venv-litellm)
  gateway+auth        the gateway with the authn → authz (Rego) → limits chain, in-process state
  gateway+auth+redis  the same chain with limits and budgets in a real Redis (with --chain)

for non-stream and stream (4 chunks) chat at c=1 and c=64, plus a c=1 time-to-first-byte probe for
streams, then prints req/s, p50, p99, the server's CPU time per request (user+sys from /proc over the
cell), RSS, ratios and PASS/FAIL against the issue's goals, and writes
bench/results/core-<timestamp>.json.

With --baseline REV the gateway rows are also measured from a temporary `git worktree` of REV
(rows `gateway@base`, ...), interleaved cell by cell with the working tree's, and compared.

    python bench/core_bench.py              # 10 s per cell
    python bench/core_bench.py --quick      # 3 s per cell
    python bench/core_bench.py --litellm    # add the LiteLLM rows and ratios
    python bench/core_bench.py --chain      # add the gateway with the auth + policy + limits chain
    python bench/core_bench.py --chain --baseline HEAD~1 --repeat 3   # A/B against the previous commit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REPO = c.BENCH_DIR.parent
LITELLM_VERSION = "1.106.12"
LITELLM_VENV = c.BENCH_DIR / ".venv-litellm"
LITELLM_KEY = "sk-bench-master-key"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODES = ("chat", "stream")
CHAT_PATH = "/v1/chat/completions"

GOAL_RPS = 4000.0
GOAL_X_LITELLM = 40.0
GOAL_ADDED_P50_MS = 0.3
GOAL_ADDED_TTFB_MS = 0.5
GOAL_CHAIN_RPS = 3500.0
CHAIN_KEY = "sk-bench-chain-0123456789abcdef"
GATEWAY_ROWS = ("gateway", "gateway+auth", "gateway+auth+redis")
BASE_TAG = "base"
WITHIN_PCT = 5.0


def request_body(mode: str) -> dict[str, Any]:
    if mode == "stream":
        return {"model": "bench-stream", "messages": MESSAGES, "stream": True}
    return {"model": "bench-chat", "messages": MESSAGES}


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One server under test: where to send each mode, and the process to watch (if any)."""

    name: str
    urls: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    child: c.Child | None = None
    rss_idle_kib: int = 0
    rss_max_kib: int = 0
    checks: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    cpu_pid: int | None = None  # whose process tree's CPU time is measured (default: the child)

    @property
    def server_pid(self) -> int | None:
        return self.cpu_pid or (self.child.pid if self.child else None)

    def alive(self) -> bool:
        return self.error is None and (self.child is None or self.child.alive())


@dataclass(frozen=True)
class Tree:
    """A source tree the gateway rows start from: the working tree, or the --baseline worktree."""

    tag: str  # "" for the working tree, BASE_TAG for the baseline
    path: Path
    rev: str

    @property
    def suffix(self) -> str:
        """What the tree adds to a row name: "" or "@base"."""
        return f"@{self.tag}" if self.tag else ""

    @property
    def file_suffix(self) -> str:
        return f"-{self.tag}" if self.tag else ""

    def env(self) -> dict[str, str]:
        """PYTHONPATH first on this tree, so its packages win over the editable install's."""
        old = os.environ.get("PYTHONPATH")
        return {"PYTHONPATH": str(self.path) + (os.pathsep + old if old else "")}


@dataclass
class Ctx:
    args: argparse.Namespace
    workdir: Path
    upstream: c.Upstream
    trees: dict[str, Tree]
    ttfb: dict[str, dict[str, Any]] = field(default_factory=dict)
    pair_runs: int = 0  # A/B runs so far: odd ones run the baseline first

    @property
    def baseline(self) -> bool:
        return BASE_TAG in self.trees


def direct_target(ctx: Ctx) -> Target:
    up = ctx.upstream
    return Target("direct", {"chat": up.chat_base_url + "/chat/completions",
                             "stream": up.sse_base_url + "/chat/completions"}, cpu_pid=up.child.pid)


def proxy_urls(port: int) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}{CHAT_PATH}"
    return {"chat": url, "stream": url}


def start_thin(ctx: Ctx) -> Target:
    port = c.free_port()
    up = ctx.upstream
    cmd = [sys.executable, str(c.BENCH_DIR / "thin_proxy.py"), "--port", str(port),
           "--route", f"bench-chat={up.chat_base_url}", "--route", f"bench-stream={up.sse_base_url}"]
    child = c.start_pinned("thin", cmd, ctx.args.server_cpus, ctx.workdir / "thin.log")
    c.wait_http_ready(f"http://127.0.0.1:{port}/healthz", child, timeout=30)
    return Target("thin", proxy_urls(port), child=child)


def gateway_config(upstream: c.Upstream, port: int) -> str:
    return c.gateway_yaml(upstream, port)


def chain_config(redis_url: str | None) -> str:
    """The issue-3 default chain: a static key, Rego policy, rate limits (high enough not to trip)."""
    lines = f"""\
chain: [authn, authz, limits]
auth:
  static_keys:
    - {{key: "{CHAIN_KEY}", key_id: bench, tenant: bench}}
limits:
  key: {{rpm: 1000000000, tpm: 1000000000000}}
  prices: {{"*": {{input_per_1m: 0.15, output_per_1m: 0.6}}}}
"""
    if redis_url:
        lines += f"redis: {{url: \"{redis_url}\"}}\n"
    return lines


def gateway_command(args: argparse.Namespace) -> list[str]:
    if args.gateway_cmd:
        return shlex.split(args.gateway_cmd)
    return [sys.executable, "-m", "gateway.cli", "serve"]


@functools.cache
def check_tree_imports(tree: Tree) -> str:
    """Import `gateway.cli` the way the server will (same interpreter, cwd and PYTHONPATH) and make sure
    it comes from `tree`, not from the editable install's /work tree; returns the module's file."""
    code = "import gateway.cli; print(gateway.cli.__file__)"
    env = {**os.environ, **tree.env()}
    done = subprocess.run([sys.executable, "-c", code], cwd=tree.path, env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise c.BenchError(f"`import gateway.cli` fails in {tree.path}:\n{tail}")
    found = Path(done.stdout.strip()).resolve()
    if not found.is_relative_to(tree.path.resolve()):
        raise c.BenchError(f"gateway.cli imports from {found}, not from {tree.path}")
    return str(found)


def start_gateway_process(ctx: Ctx, tree: Tree, stem: str, extra_config: str = "",
                          also_ok: tuple[int, ...] = ()) -> tuple[c.Child, int]:
    """Start the gateway of `tree` on a free port with the bench config (+ `extra_config`); wait for it."""
    if not ctx.args.gateway_cmd:
        check_tree_imports(tree)
    port = c.free_port()
    cfg = ctx.workdir / f"{stem}{tree.file_suffix}.yaml"
    cfg.write_text(gateway_config(ctx.upstream, port) + extra_config)
    cmd = [*gateway_command(ctx.args), "--config", str(cfg), "--port", str(port)]
    child = c.start_pinned(cfg.stem, cmd, ctx.args.server_cpus, ctx.workdir / f"{cfg.stem}.log",
                           env=tree.env(), cwd=tree.path)
    c.wait_http_ready(f"http://127.0.0.1:{port}/healthz", child, timeout=60, also_ok=also_ok)
    return child, port


def start_chain_gateway(ctx: Ctx, tree: Tree, redis: bool) -> Target:
    redis_url = None
    if redis:
        redis_url = c.start_redis(ctx.workdir, ctx.args.load_cpus, name=f"redis{tree.file_suffix}")
    stem = "gateway-chain-redis" if redis else "gateway-chain"
    child, port = start_gateway_process(ctx, tree, stem, chain_config(redis_url))
    name = ("gateway+auth+redis" if redis else "gateway+auth") + tree.suffix
    return Target(name, proxy_urls(port), headers={"Authorization": f"Bearer {CHAIN_KEY}"}, child=child)


def start_gateway(ctx: Ctx, tree: Tree) -> Target:
    # 404: no /healthz route, but the server answers HTTP, so it is up.
    child, port = start_gateway_process(ctx, tree, "gateway", also_ok=(404,))
    return Target("gateway" + tree.suffix, proxy_urls(port), child=child)


def ensure_litellm() -> Path:
    """Create bench/.venv-litellm with litellm[proxy]==LITELLM_VERSION once; return its `litellm`."""
    exe = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    if exe.exists() and marker.exists():
        return exe
    log = LITELLM_VENV / "install.log"
    with c.progress(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV.relative_to(REPO)} "
                    "(once; log in install.log)"):
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        # Keep the venv out of git without touching the repository's .gitignore.
        (LITELLM_VENV / ".gitignore").write_text("*\n")
        pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        with open(log, "wb") as out:
            done = subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], stdout=out,
                                  stderr=subprocess.STDOUT)
        if done.returncode != 0 or not exe.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise c.BenchError(f"pip install of LiteLLM failed:\n{tail}")
        marker.touch()
    return exe


def litellm_config(upstream: c.Upstream) -> str:
    def entry(name: str, base: str) -> str:
        return (f"  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
                f"      api_base: {base}\n      api_key: dummy\n")

    return ("model_list:\n" + entry("bench-chat", upstream.chat_base_url)
            + entry("bench-stream", upstream.sse_base_url)
            + f"general_settings:\n  master_key: {LITELLM_KEY}\n")


def start_litellm(ctx: Ctx) -> Target:
    exe = ensure_litellm()
    port = c.free_port()
    cfg = ctx.workdir / "litellm.yaml"
    cfg.write_text(litellm_config(ctx.upstream))
    cmd = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    child = c.start_pinned("litellm", cmd, ctx.args.server_cpus, ctx.workdir / "litellm.log", env=env,
                           cwd=ctx.workdir)
    c.wait_http_ready(f"http://127.0.0.1:{port}/health/liveliness", child, timeout=180)
    auth = {"Authorization": f"Bearer {LITELLM_KEY}"}
    return Target("litellm", proxy_urls(port), headers=auth, child=child)


STARTERS: dict[str, Callable[[Ctx], Target]] = {
    "direct": direct_target, "thin": start_thin, "litellm": start_litellm,
}
GATEWAY_STARTERS: dict[str, Callable[[Ctx, Tree], Target]] = {
    "gateway": start_gateway,
    "gateway+auth": lambda ctx, tree: start_chain_gateway(ctx, tree, redis=False),
    "gateway+auth+redis": lambda ctx, tree: start_chain_gateway(ctx, tree, redis=True),
}


def start_target(ctx: Ctx, name: str) -> Target:
    """Start the target a row name names: `gateway@base` is the gateway of the baseline tree."""
    row, _, tag = name.partition("@")
    if row in GATEWAY_STARTERS:
        return GATEWAY_STARTERS[row](ctx, ctx.trees[tag])
    return STARTERS[row](ctx)


# --------------------------------------------------------------------------- correctness probe


def check_answer(target: Target, mode: str) -> str:
    """One request per mode before the load: is the answer what a client expects? Returns 'ok' or why not."""
    status, ctype, body = c.post_json(target.urls[mode], request_body(mode), target.headers)
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if mode == "chat":
        try:
            data = json.loads(body)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return f"not a chat.completion: {body[:200]!r}"
        return "ok" if content else "empty content"
    if "text/event-stream" not in ctype:
        return f"content-type {ctype!r}"
    lines = body.decode(errors="replace").splitlines()
    events = [line[5:].strip() for line in lines if line.startswith("data:")]
    if not events or events[-1] != "[DONE]":
        return "no final data: [DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    contents = [ch["choices"][0]["delta"].get("content") for ch in chunks if ch.get("choices")]
    if sum(1 for x in contents if x) != 4:
        return f"{sum(1 for x in contents if x)} content chunks, want 4"
    return "ok" if any(ch.get("usage") for ch in chunks) else "ok (no usage chunk)"


# --------------------------------------------------------------------------- time to first byte


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, float, bool]:
    """Read one HTTP/1.1 response; returns (status, perf_counter at first body byte, keep-alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    keep_alive = headers.get("connection", "").lower() != "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        first = 0.0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            first = first or time.perf_counter()
            size = int(size_line.split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return status, first, keep_alive
    length = int(headers.get("content-length", "0"))
    if length == 0:
        return status, time.perf_counter(), keep_alive
    await reader.readexactly(1)
    first = time.perf_counter()
    await reader.readexactly(length - 1)
    return status, first, keep_alive


async def _ttfb(url: str, headers: dict[str, str], body: bytes, n: int,
                warmup: int) -> tuple[list[float], int]:
    """Sequential requests over one keep-alive connection: ms from request write to first body byte."""
    host_port, path = url.removeprefix("http://").split("/", 1)
    host, port = host_port.split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = (f"POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
           f"Accept: text/event-stream\r\n{head}Content-Length: {len(body)}\r\n\r\n").encode() + body
    samples: list[float] = []
    errors = 0
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for i in range(warmup + n):
            t0 = time.perf_counter()
            writer.write(raw)
            status, first, keep_alive = await _read_response(reader)
            if status != 200:
                errors += 1
            elif i >= warmup:
                samples.append((first - t0) * 1000.0)
            if not keep_alive:
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
    finally:
        writer.close()
    return samples, errors


def measure_ttfb(target: Target, n: int) -> dict[str, Any]:
    body = json.dumps(request_body("stream")).encode()
    samples, errors = asyncio.run(_ttfb(target.urls["stream"], target.headers, body, n, warmup=min(50, n)))
    if not samples:
        return {"n": 0, "errors": errors, "p50_ms": None, "p99_ms": None}
    samples.sort()
    return {"n": len(samples), "errors": errors, "p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))]}


# --------------------------------------------------------------------------- load cells


@dataclass
class Run:
    """One measured wrk run of a cell and the server's CPU seconds (user+sys, process tree) over it."""

    wrk: c.WrkResult
    cpu_s: float | None

    @property
    def cpu_us(self) -> float | None:
        """Server CPU time per completed request, µs."""
        if self.cpu_s is None or not self.wrk.requests:
            return None
        return self.cpu_s * 1e6 / self.wrk.requests

    def to_json(self) -> dict[str, Any]:
        r = self.wrk
        return {"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "requests": r.requests,
                "errors": r.errors, "cpu_s": self.cpu_s, "cpu_us_per_request": self.cpu_us}


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclass
class Cell:
    target: str
    mode: str
    conc: int
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    @property
    def result(self) -> c.WrkResult | None:
        """The runs as one (medians of rates and percentiles, sums of counts), None before any run."""
        return c.merge_wrk([run.wrk for run in self.runs]) if self.runs else None

    @property
    def cpu_us(self) -> float | None:
        """Median over the runs of the server's CPU µs per request."""
        return median_or_none([run.cpu_us for run in self.runs])

    @property
    def flagged(self) -> bool:
        return self.error is not None or any(run.wrk.errors > 0 for run in self.runs)

    def to_json(self) -> dict[str, Any]:
        res = self.result
        out = {"target": self.target, "mode": self.mode, "concurrency": self.conc, "error": self.error,
               **(res.to_json() if res else {}), "cpu_us_per_request": self.cpu_us}
        if len(self.runs) > 1:
            out["runs"] = [run.to_json() for run in self.runs]
        return out


class Counter:
    """The `[k/total]` prefix of the progress lines."""

    def __init__(self, total: int) -> None:
        self.done = 0
        self.total = total

    def next(self) -> str:
        self.done += 1
        return f"[{self.done}/{self.total}]"

    def skip(self, n: int) -> None:
        self.done += n


def run_cell(ctx: Ctx, target: Target, mode: str, conc: int) -> Run:
    """Warm up, then one measured wrk run with the server's CPU time read before and after it."""
    args = ctx.args
    script = c.write_wrk_script(ctx.workdir / f"{target.name}-{mode}.lua", request_body(mode), target.headers)
    url = target.urls[mode]
    if args.warmup > 0:
        c.run_wrk(url, script, conc, args.warmup, args.load_cpus, timeout_s=args.wrk_timeout)
    pid = target.server_pid
    before = c.tree_cpu_seconds(pid) if pid else None
    res = c.run_wrk(url, script, conc, args.duration, args.load_cpus, timeout_s=args.wrk_timeout)
    cpu = c.tree_cpu_seconds(pid) - before if pid and before is not None else None
    return Run(res, cpu)


def describe(run: Run) -> str:
    res = run.wrk
    text = f"{c.fmt_num(res.rps)} req/s, p50 {c.fmt_num(res.p50_ms, 3)} ms, p99 {c.fmt_num(res.p99_ms, 3)} ms"
    if run.cpu_us is not None:
        text += f", CPU {c.fmt_num(run.cpu_us, 1)} µs/req"
    return text + (f", {res.errors} ERRORS" if res.errors else "")


TARGET_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError)


def launch(ctx: Ctx, name: str) -> Target:
    """Start one target and check one answer per mode; a target that fails carries `error`."""
    try:
        with c.progress(f"starting {name}"):
            target = start_target(ctx, name)
    except c.BenchError as e:
        print(f"  {name} skipped: {e}", flush=True)
        return Target(name, {}, error=str(e))
    if target.child:
        target.rss_idle_kib = c.group_rss_kib(target.child.pid)
    try:
        for mode in MODES:
            target.checks[mode] = check_answer(target, mode)
            if target.checks[mode] != "ok":
                kind = "note" if target.checks[mode].startswith("ok") else "WARNING"
                print(f"  {kind}: {name} {mode} answer: {target.checks[mode]}", flush=True)
    except TARGET_ERRORS as e:
        target.error = f"{type(e).__name__}: {e}"
        print(f"  {name} error: {target.error}", flush=True)
    return target


def measure(ctx: Ctx, target: Target, cell: Cell, counter: Counter) -> None:
    """One run of one cell (with the RSS sampler on); marks the cell and the target on failure."""
    if cell.error or not target.alive():
        counter.skip(1)
        cell.error = cell.error or ("did not start" if not target.urls else f"skipped ({target.error})")
        return
    rep = f" run {len(cell.runs) + 1}/{ctx.args.repeat}" if ctx.args.repeat > 1 else ""
    print(f"{counter.next()} {target.name} {cell.mode} c={cell.conc}{rep} ...", end="", flush=True)
    sampler = c.RssSampler(target.child) if target.child else None
    try:
        with sampler or contextlib.nullcontext():
            run = run_cell(ctx, target, cell.mode, cell.conc)
        cell.runs.append(run)
        print(" " + describe(run), flush=True)
    except (c.BenchError, OSError) as e:
        cell.error = str(e).splitlines()[0]
        print(f" FAILED: {cell.error}", flush=True)
    if sampler:
        target.rss_max_kib = max(target.rss_max_kib, sampler.max_kib)
    if target.child and not target.child.alive():
        target.error = "server died"
        print(f"  {target.name} died:\n{target.child.log_tail()}", flush=True)


def probe_ttfb(ctx: Ctx, target: Target) -> None:
    if ctx.args.ttfb_requests <= 0 or not target.alive():
        return
    try:
        with c.progress(f"  {target.name} stream TTFB, c=1, {ctx.args.ttfb_requests} requests"):
            ctx.ttfb[target.name] = measure_ttfb(target, ctx.args.ttfb_requests)
    except TARGET_ERRORS as e:
        target.error = f"{type(e).__name__}: {e}"
        print(f"  {target.name} error: {target.error}", flush=True)


def cells_of(cells: list[Cell], name: str) -> list[Cell]:
    return [cell for cell in cells if cell.target == name]


def bench_target(ctx: Ctx, name: str, cells: list[Cell], counter: Counter) -> Target:
    """Start one target, probe it, run its cells (each --repeat times) and its TTFB probe, stop it."""
    target = launch(ctx, name)
    try:
        for cell in cells_of(cells, name):
            for _ in range(ctx.args.repeat):
                measure(ctx, target, cell, counter)
        probe_ttfb(ctx, target)
    finally:
        if target.child:
            c.stop(target.child)
    return target


def bench_pair(ctx: Ctx, name: str, cells: list[Cell], counter: Counter) -> list[Target]:
    """A gateway row from the working tree (A) and from the baseline (B), both up at once, measured
    cell by cell: each run of a cell is an A/B pair, the order flipping from one pair to the next so
    that drift (other work, thermal, page cache) falls on both sides alike."""
    pair = [launch(ctx, name), launch(ctx, f"{name}@{BASE_TAG}")]
    try:
        for a, b in zip(cells_of(cells, pair[0].name), cells_of(cells, pair[1].name), strict=True):
            for _ in range(ctx.args.repeat):
                order = [(pair[0], a), (pair[1], b)]
                for target, cell in order[::-1] if ctx.pair_runs % 2 else order:
                    measure(ctx, target, cell, counter)
                ctx.pair_runs += 1
        for target in pair:
            probe_ttfb(ctx, target)
    finally:
        for target in pair:
            if target.child:
                c.stop(target.child)
    return pair


# --------------------------------------------------------------------------- report


def find(cells: list[Cell], target: str, mode: str, conc: int) -> c.WrkResult | None:
    for cell in cells:
        if (cell.target, cell.mode, cell.conc) == (target, mode, conc) and cell.result and not cell.error:
            return cell.result
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def results_table(cells: list[Cell]) -> str:
    rows = []
    for cell in cells:
        r = cell.result
        if r is None:
            rows.append([cell.target, cell.mode, cell.conc, "", "", "", "", "", cell.error or "not run"])
            continue
        errs = str(r.errors) + (" FLAGGED" if r.errors else "") + (f" ({cell.error})" if cell.error else "")
        rows.append([cell.target, cell.mode, cell.conc, c.fmt_num(r.rps), c.fmt_num(cell.cpu_us, 1),
                     c.fmt_num(r.p50_ms, 3), c.fmt_num(r.p99_ms, 3), r.requests, errs])
    headers = ["target", "mode", "c", "req/s", "CPU µs/req", "p50 ms", "p99 ms", "requests", "errors"]
    return c.markdown_table(headers, rows, right=(2, 3, 4, 5, 6, 7))


def pct(new: float | None, old: float | None) -> float | None:
    return (new - old) / old * 100.0 if new is not None and old else None


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def find_cell(cells: list[Cell], target: str, mode: str, conc: int) -> Cell | None:
    return next((cell for cell in cells if (cell.target, cell.mode, cell.conc) == (target, mode, conc)), None)


def verdict(rps_delta: float | None, cpu_delta: float | None, clean: bool) -> str:
    """Within WITHIN_PCT: req/s no more than 5 % lower and CPU per request no more than 5 % higher."""
    if rps_delta is None and cpu_delta is None:
        return "n/a"
    if not clean:
        return "n/a (cell had errors)"
    slower = [what for what, bad in (("req/s", rps_delta is not None and rps_delta < -WITHIN_PCT),
                                     ("CPU", cpu_delta is not None and cpu_delta > WITHIN_PCT)) if bad]
    return f"no ({', '.join(slower)})" if slower else "yes"


def comparison(cells: list[Cell]) -> list[dict[str, Any]]:
    """Each gateway cell of the working tree against the same cell of the baseline."""
    out = []
    for cur in cells:
        base = find_cell(cells, f"{cur.target}@{BASE_TAG}", cur.mode, cur.conc)
        if cur.target not in GATEWAY_ROWS or base is None:
            continue
        rps, rps_base = (x.result.rps if x.result and not x.error else None for x in (cur, base))
        cpu, cpu_base = (x.cpu_us if not x.error else None for x in (cur, base))
        rps_delta, cpu_delta = pct(rps, rps_base), pct(cpu, cpu_base)
        out.append({"target": cur.target, "mode": cur.mode, "concurrency": cur.conc, "rps": rps,
                    "rps_base": rps_base, "rps_delta_pct": rps_delta, "cpu_us": cpu, "cpu_us_base": cpu_base,
                    "cpu_delta_pct": cpu_delta,
                    "within": verdict(rps_delta, cpu_delta, not (cur.flagged or base.flagged))})
    return out


def comparison_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(nothing to compare)"
    table = [[r["target"], r["mode"], r["concurrency"], c.fmt_num(r["rps"]), c.fmt_num(r["rps_base"]),
              fmt_pct(r["rps_delta_pct"]), c.fmt_num(r["cpu_us"], 1), c.fmt_num(r["cpu_us_base"], 1),
              fmt_pct(r["cpu_delta_pct"]), r["within"]] for r in rows]
    headers = ["target", "mode", "c", "req/s", "req/s base", "Δ req/s", "CPU µs/req", "CPU base", "Δ CPU",
               f"within {WITHIN_PCT:g} %"]
    return c.markdown_table(headers, table, right=tuple(range(2, 9)))


RATIO_PAIRS = (("gateway", "litellm"), ("gateway", "direct"), ("gateway", "thin"), ("thin", "litellm"),
               ("thin", "direct"))


def ratios(cells: list[Cell], concs: list[int]) -> dict[str, dict[str, float | None]]:
    """Each comparison → {"chat c=1": value, ...}; comparisons with no data at all are left out."""
    out: dict[str, dict[str, float | None]] = {}
    keys = [(m, n) for m in MODES for n in concs]

    def rps(t: str, m: str, n: int) -> float | None:
        r = find(cells, t, m, n)
        return r.rps if r else None

    def p50(t: str, m: str, n: int) -> float | None:
        r = find(cells, t, m, n)
        return r.p50_ms if r else None

    for a, b in RATIO_PAIRS:
        out[f"{a}/{b} req/s (x)"] = {f"{m} c={n}": ratio(rps(a, m, n), rps(b, m, n)) for m, n in keys}
    for a in ("gateway", "thin", "litellm"):
        out[f"{a} added p50 ms (vs direct)"] = {f"{m} c={n}": diff(p50(a, m, n), p50("direct", m, n))
                                                for m, n in keys}
    return {name: vals for name, vals in out.items() if any(v is not None for v in vals.values())}


def ratios_table(table: dict[str, dict[str, float | None]]) -> str:
    if not table:
        return "(nothing to compare)"
    cols = list(next(iter(table.values())).keys())
    rows = [[name, *(c.fmt_num(v, 3 if "ms" in name else 2) for v in vals.values())]
            for name, vals in table.items()]
    return c.markdown_table(["comparison", *cols], rows, right=tuple(range(1, len(cols) + 1)))


def ttfb_table(ttfb: dict[str, dict[str, Any]]) -> str:
    base = ttfb.get("direct", {}).get("p50_ms")
    rows = [[name, v["n"], c.fmt_num(v["p50_ms"], 3), c.fmt_num(v["p99_ms"], 3),
             c.fmt_num(diff(v["p50_ms"], base), 3) if name != "direct" else "", v["errors"]]
            for name, v in ttfb.items()]
    return c.markdown_table(["target", "n", "TTFB p50 ms", "TTFB p99 ms", "added p50 ms", "errors"],
                            rows, right=(1, 2, 3, 4, 5))


@dataclass
class Goal:
    name: str
    value: float | None
    threshold: float
    higher_is_better: bool
    unit: str
    clean: bool = True  # the cells behind the value had no errors

    @property
    def status(self) -> str:
        if self.value is None:
            return "N/A"
        ok = self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold
        return "PASS" if ok and self.clean else "FAIL"

    def row(self) -> list[str]:
        op = ">=" if self.higher_is_better else "<="
        if self.value is None:
            val = "n/a"
        else:
            val = f"{c.fmt_num(self.value, 3)} {self.unit}" + ("" if self.clean else " (cell had errors)")
        return [self.name, val, f"{op} {self.threshold:g} {self.unit}", self.status]


def goals(cells: list[Cell], ttfb: dict[str, dict[str, Any]], hi: int) -> list[Goal]:
    def clean(*keys: tuple[str, str, int]) -> bool:
        return not any(cell.flagged for cell in cells if (cell.target, cell.mode, cell.conc) in keys)

    g_chat = find(cells, "gateway", "chat", hi)
    g_stream = find(cells, "gateway", "stream", hi)
    l_chat = find(cells, "litellm", "chat", hi)
    g1, d1 = find(cells, "gateway", "chat", 1), find(cells, "direct", "chat", 1)
    t_g, t_d = ttfb.get("gateway", {}), ttfb.get("direct", {})
    return [
        Goal(f"gateway non-stream req/s at c={hi}", g_chat.rps if g_chat else None, GOAL_RPS, True, "req/s",
             clean(("gateway", "chat", hi))),
        Goal(f"gateway / LiteLLM non-stream req/s at c={hi}",
             ratio(g_chat.rps if g_chat else None, l_chat.rps if l_chat else None), GOAL_X_LITELLM, True, "x",
             clean(("gateway", "chat", hi), ("litellm", "chat", hi))),
        Goal("added p50 at c=1, non-stream (gateway - direct)",
             diff(g1.p50_ms if g1 else None, d1.p50_ms if d1 else None), GOAL_ADDED_P50_MS, False, "ms",
             clean(("gateway", "chat", 1), ("direct", "chat", 1))),
        Goal(f"gateway stream (4 chunks) req/s at c={hi}", g_stream.rps if g_stream else None, GOAL_RPS, True,
             "req/s", clean(("gateway", "stream", hi))),
        Goal("added stream TTFB p50 at c=1 (gateway - direct)", diff(t_g.get("p50_ms"), t_d.get("p50_ms")),
             GOAL_ADDED_TTFB_MS, False, "ms", not t_g.get("errors") and not t_d.get("errors")),
        *chain_goals(cells, hi, clean),
    ]


def chain_goals(cells: list[Cell], hi: int, clean: Callable[..., bool]) -> list[Goal]:
    out = []
    for name in ("gateway+auth", "gateway+auth+redis"):
        found = find(cells, name, "chat", hi)
        if found is not None:
            out.append(Goal(f"{name} non-stream req/s at c={hi} (issue 3)", found.rps, GOAL_CHAIN_RPS, True,
                            "req/s", clean((name, "chat", hi))))
    return out


def print_report(cells: list[Cell], targets: dict[str, Target], concs: list[int],
                 ttfb: dict[str, dict[str, Any]], goal_list: list[Goal]) -> dict[str, Any]:
    print("\n## Results\n")
    print(results_table(cells))
    print("CPU µs/req: the server's user+sys CPU time (its process tree, /proc) over the measured run, "
          "divided by the requests wrk completed" + ("; for `direct`, nginx's" if "direct" in targets else ""))
    print("\n## Memory (RSS of the server's process group)\n")
    rows = [[t.name, f"{t.rss_idle_kib / 1024:.1f}", f"{t.rss_max_kib / 1024:.1f}"]
            for t in targets.values() if t.child is not None or t.rss_max_kib]
    headers = ["target", "idle MiB", "max under load MiB"]
    print(c.markdown_table(headers, rows, right=(1, 2)) if rows else "(none)")
    table = ratios(cells, concs)
    print("\n## Ratios\n")
    print(ratios_table(table))
    if ttfb:
        print("\n## Stream time to first body byte (c=1, one keep-alive connection)\n")
        print(ttfb_table(ttfb))
    print("\n## Goals\n")
    print(c.markdown_table(["goal", "measured", "target", "result"], [g.row() for g in goal_list]))
    problems = {n: t.checks for n, t in targets.items()
                if any(not v.startswith("ok") for v in t.checks.values())}
    for name, checks in problems.items():
        print(f"\nNOTE {name} answer checks: {checks}")
    return table


# --------------------------------------------------------------------------- baseline worktree


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise c.BenchError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Tree]:
    """`git worktree add --detach` of `rev` in a temp dir for the run; removed on the way out, error or not."""
    try:
        commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except c.BenchError:
        raise c.BenchError(f"--baseline {rev}: no such commit in {REPO}") from None
    tmp = Path(tempfile.mkdtemp(prefix="core-bench-base-"))
    path = tmp / "tree"
    try:
        with c.progress(f"git worktree add --detach {path} {rev} ({commit[:10]})"):
            git("worktree", "add", "--detach", "--quiet", str(path), commit)
        yield Tree(BASE_TAG, path, f"{rev} ({commit[:10]})")
    finally:
        with contextlib.suppress(c.BenchError, OSError, subprocess.SubprocessError):
            if path.exists():
                git("worktree", "remove", "--force", str(path))
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(c.BenchError, OSError, subprocess.SubprocessError):
            git("worktree", "prune")
        print(f"baseline worktree {path} removed", flush=True)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=None, help="seconds per measured cell (default 10)")
    p.add_argument("--quick", action="store_true", help="3 s per cell and 200 TTFB requests")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of wrk warm-up before each cell (0: none)")
    p.add_argument("--concurrency", default="1,64", help="comma-separated wrk connection counts")
    p.add_argument("--litellm", action="store_true", help=f"also measure LiteLLM proxy {LITELLM_VERSION} "
                   "(installs it once into bench/.venv-litellm)")
    p.add_argument("--chain", action="store_true",
                   help="also measure the gateway with the authn/authz/limits chain, in process and on Redis")
    p.add_argument("--no-thin", action="store_true", help="skip the thin-proxy reference rows")
    p.add_argument("--no-gateway", action="store_true", help="skip the gateway rows")
    p.add_argument("--gateway-cmd", default=None,
                   help="command that starts the gateway, before --config/--port (default: this python "
                   "-m gateway.cli serve); run with cwd and PYTHONPATH set to the tree under test")
    p.add_argument("--baseline", metavar="REV", default=None,
                   help="also measure the gateway rows from a temporary git worktree of REV (e.g. HEAD~1), "
                   "interleaved cell by cell with the working tree's, and print the comparison")
    p.add_argument("--repeat", type=int, default=1,
                   help="measured runs per cell (A/B pairs with --baseline); the report shows medians")
    p.add_argument("--ttfb-requests", type=int, default=None,
                   help="requests for the TTFB probe (default 500, --quick 200)")
    p.add_argument("--strict", action="store_true", help="exit 1 unless every goal PASSes")
    p.add_argument("--load-cpus", default="0", help="cpus for wrk, nginx and this driver (taskset list)")
    p.add_argument("--server-cpus", default="1", help="cpus for the server under test (taskset list)")
    p.add_argument("--upstream-cpus", default=None,
                   help="cpus for nginx (default: the load cpus; give it its own core if you have one)")
    p.add_argument("--wrk-timeout", type=float, default=10.0, help="wrk per-request timeout, seconds")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, server logs)")
    p.add_argument("--no-json", action="store_true", help="do not write bench/results/core-*.json")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.baseline and args.no_gateway:
        p.error("--baseline compares the gateway rows: drop --no-gateway")
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    if args.ttfb_requests is None:
        args.ttfb_requests = 200 if args.quick else 500
    args.concs = sorted({int(x) for x in args.concurrency.split(",") if x.strip()})
    if (os.cpu_count() or 1) < 2:
        c.eprint("WARNING: fewer than 2 cpus: server and load share a core, numbers are not comparable")
        args.load_cpus = args.server_cpus = "0"
    args.upstream_cpus = args.upstream_cpus or args.load_cpus
    return args


def selected_targets(args: argparse.Namespace) -> list[str]:
    names = ["direct"]
    if not args.no_thin:
        names.append("thin")
    gateways = [] if args.no_gateway else ["gateway"]
    if args.chain:
        gateways += ["gateway+auth", "gateway+auth+redis"]
    for name in gateways:
        names += [name, f"{name}@{BASE_TAG}"] if args.baseline else [name]
    if args.litellm:
        names.append("litellm")
    return names


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "nginx": c.tool_version(["nginx", "-v"]), "wrk": c.tool_version(["wrk", "-v"]),
            "git": c.git_revision(REPO), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_start": os.getloadavg()}


def run_all(args: argparse.Namespace, workdir: Path, trees: dict[str, Tree], names: list[str],
            cells: list[Cell]) -> tuple[dict[str, Target], dict[str, dict[str, Any]]]:
    """Start the upstream, then measure every target (the gateway rows in A/B pairs with --baseline)."""
    with c.progress("starting nginx upstream"):
        upstream = c.start_nginx(workdir, args.upstream_cpus)
    ctx = Ctx(args, workdir, upstream, trees)
    counter = Counter(len(cells) * args.repeat)
    targets: dict[str, Target] = {}
    for name in names:
        if "@" in name:
            continue  # measured with its working-tree pair
        if ctx.baseline and name in GATEWAY_ROWS:
            targets.update((t.name, t) for t in bench_pair(ctx, name, cells, counter))
        else:
            targets[name] = bench_target(ctx, name, cells, counter)
    c.stop(upstream.child)
    return targets, ctx.ttfb


def measure_all(args: argparse.Namespace, workdir: Path, names: list[str],
                cells: list[Cell]) -> tuple[dict[str, Target], dict[str, dict[str, Any]], dict[str, Tree]]:
    """run_all inside the baseline worktree's lifetime; every server is stopped before it is removed."""
    with contextlib.ExitStack() as stack:
        trees = {"": Tree("", REPO, c.git_revision(REPO))}
        if args.baseline:
            trees[BASE_TAG] = stack.enter_context(baseline_tree(args.baseline))
            stack.callback(c.stop_all)
        for tree in trees.values():
            print(f"tree {tree.suffix or '(working)'}: {tree.path} at {tree.rev}", flush=True)
        targets, ttfb = run_all(args, workdir, trees, names, cells)
        return targets, ttfb, trees


def print_comparison(cells: list[Cell], args: argparse.Namespace, trees: dict[str, Tree]) -> list[dict[str, Any]]:
    rows = comparison(cells)
    runs = f"median of {args.repeat} A/B pairs" if args.repeat > 1 else "one A/B pair"
    print(f"\n## Working tree vs baseline {trees[BASE_TAG].rev} ({runs} per cell, order alternating)\n")
    print(comparison_table(rows))
    print(f"Δ = (working - baseline) / baseline; within {WITHIN_PCT:g} %: req/s at most {WITHIN_PCT:g} % lower "
          f"and CPU µs/req at most {WITHIN_PCT:g} % higher")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    c.install_cleanup()
    c.pin_self(args.load_cpus)
    names = selected_targets(args)
    cells = [Cell(t, m, n) for t in names for m in MODES for n in args.concs]
    workdir = Path(tempfile.mkdtemp(prefix="core-bench-"))
    env = environment()
    print(f"core bench: {', '.join(names)}; {args.duration:g}s per cell (+{args.warmup:g}s warm-up)"
          f"{f' x {args.repeat} runs' if args.repeat > 1 else ''}; "
          f"wrk on cpu {args.load_cpus}, nginx on cpu {args.upstream_cpus}, "
          f"server on cpu {args.server_cpus}; workdir {workdir}")
    print(f"load average now {env['loadavg_start'][0]:.2f} (other work on these cores skews the numbers)")
    targets: dict[str, Target] = {}
    ttfb: dict[str, dict[str, Any]] = {}
    trees: dict[str, Tree] = {}
    failed = False
    try:
        targets, ttfb, trees = measure_all(args, workdir, names, cells)
    except KeyboardInterrupt:
        print(f"\ninterrupted: stopping children (logs in {workdir})", flush=True)
        c.stop_all()
        return 130
    except c.BenchError as e:
        print(f"\nERROR: {e}", flush=True)
        failed = True
    finally:
        c.stop_all()
    if failed:
        print(f"logs kept in {workdir}")
        return 1
    goal_list = goals(cells, ttfb, max(args.concs))
    table = print_report(cells, targets, args.concs, ttfb, goal_list)
    compared = print_comparison(cells, args, trees) if BASE_TAG in trees else []
    env["loadavg_end"] = os.getloadavg()
    print(f"\nload average: {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end "
          "(above ~0.5 other work shared the cores: rerun before trusting a FAIL)")
    if not args.no_json:
        path = c.write_results("core", {
            "environment": env, "args": {k: v for k, v in vars(args).items()},
            "trees": {t.suffix or "working": {"path": str(t.path), "rev": t.rev} for t in trees.values()},
            "cells": [cell.to_json() for cell in cells],
            "targets": {n: {"rss_idle_kib": t.rss_idle_kib, "rss_max_kib": t.rss_max_kib, "checks": t.checks,
                            "error": t.error} for n, t in targets.items()},
            "ttfb": ttfb, "ratios": table, "comparison": compared,
            "goals": [{"goal": g.name, "value": g.value, "threshold": g.threshold, "status": g.status}
                      for g in goal_list],
        })
        print(f"\nresults: {path.relative_to(REPO)}")
    if any(t.error for t in targets.values()) or args.keep_tmp:
        print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.strict and any(g.status != "PASS" for g in goal_list):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
