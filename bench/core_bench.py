"""Core speed benchmark (issue 2): the gateway's own overhead against a C-speed upstream.

One run starts nginx with canned OpenAI answers as the upstream, then measures with wrk, one server
at a time, each pinned alone to its own core (wrk, nginx and this driver share the load core):

  direct   nginx itself (the floor)
  thin     bench/thin_proxy.py, the thinnest Starlette + aiohttp proxy (the ceiling for Python)
  gateway  `llmops serve --config FILE --port N`
  litellm  LiteLLM proxy 1.106.12 (only with --litellm; installed once into bench/.venv-litellm)
  gateway+auth        the gateway with the authn → authz (Rego) → limits chain, in-process state
  gateway+auth+redis  the same chain with limits and budgets in a real Redis (with --chain)

for non-stream and stream (4 chunks) chat at c=1 and c=64, plus a c=1 time-to-first-byte probe for
streams, then prints req/s, p50, p99, RSS, ratios and PASS/FAIL against the issue's goals, and
writes bench/results/core-<timestamp>.json.

    python bench/core_bench.py              # 10 s per cell
    python bench/core_bench.py --quick      # 3 s per cell
    python bench/core_bench.py --litellm    # add the LiteLLM rows and ratios
    python bench/core_bench.py --chain      # add the gateway with the auth + policy + limits chain
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from collections.abc import Callable
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


@dataclass
class Ctx:
    args: argparse.Namespace
    workdir: Path
    upstream: c.Upstream
    ttfb: dict[str, dict[str, Any]] = field(default_factory=dict)


def direct_target(ctx: Ctx) -> Target:
    up = ctx.upstream
    return Target("direct", {"chat": up.chat_base_url + "/chat/completions",
                             "stream": up.sse_base_url + "/chat/completions"})


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


def start_chain_gateway(ctx: Ctx, redis: bool) -> Target:
    port = c.free_port()
    cfg = ctx.workdir / f"gateway-chain{'-redis' if redis else ''}.yaml"
    redis_url = c.start_redis(ctx.workdir, ctx.args.load_cpus) if redis else None
    cfg.write_text(gateway_config(ctx.upstream, port) + chain_config(redis_url))
    cmd = [*gateway_command(ctx.args), "--config", str(cfg), "--port", str(port)]
    child = c.start_pinned(cfg.stem, cmd, ctx.args.server_cpus, ctx.workdir / f"{cfg.stem}.log", cwd=REPO)
    c.wait_http_ready(f"http://127.0.0.1:{port}/healthz", child, timeout=60)
    name = "gateway+auth+redis" if redis else "gateway+auth"
    return Target(name, proxy_urls(port), headers={"Authorization": f"Bearer {CHAIN_KEY}"}, child=child)


def gateway_command(args: argparse.Namespace) -> list[str]:
    if args.gateway_cmd:
        return shlex.split(args.gateway_cmd)
    local = Path(sys.executable).parent / "llmops"
    exe = str(local) if local.exists() else shutil.which("llmops")
    if not exe:
        raise c.BenchError("`llmops` not found: activate the project venv (pip install -e .)")
    return [exe, "serve"]


def start_gateway(ctx: Ctx) -> Target:
    port = c.free_port()
    cfg = ctx.workdir / "gateway.yaml"
    cfg.write_text(gateway_config(ctx.upstream, port))
    cmd = [*gateway_command(ctx.args), "--config", str(cfg), "--port", str(port)]
    child = c.start_pinned("gateway", cmd, ctx.args.server_cpus, ctx.workdir / "gateway.log", cwd=REPO)
    # 404: no /healthz route, but the server answers HTTP, so it is up.
    c.wait_http_ready(f"http://127.0.0.1:{port}/healthz", child, timeout=60, also_ok=(404,))
    return Target("gateway", proxy_urls(port), child=child)


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
    "direct": direct_target, "thin": start_thin, "gateway": start_gateway, "litellm": start_litellm,
    "gateway+auth": lambda ctx: start_chain_gateway(ctx, redis=False),
    "gateway+auth+redis": lambda ctx: start_chain_gateway(ctx, redis=True),
}


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
class Cell:
    target: str
    mode: str
    conc: int
    result: c.WrkResult | None = None
    error: str | None = None

    @property
    def flagged(self) -> bool:
        return self.error is not None or (self.result is not None and self.result.errors > 0)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "mode": self.mode, "concurrency": self.conc, "error": self.error,
                **(self.result.to_json() if self.result else {})}


def run_cell(ctx: Ctx, target: Target, mode: str, conc: int) -> c.WrkResult:
    args = ctx.args
    script = c.write_wrk_script(ctx.workdir / f"{target.name}-{mode}.lua", request_body(mode), target.headers)
    url = target.urls[mode]
    if args.warmup > 0:
        c.run_wrk(url, script, conc, args.warmup, args.load_cpus, timeout_s=args.wrk_timeout)
    return c.run_wrk(url, script, conc, args.duration, args.load_cpus, timeout_s=args.wrk_timeout)


def describe(res: c.WrkResult) -> str:
    text = f"{c.fmt_num(res.rps)} req/s, p50 {c.fmt_num(res.p50_ms, 3)} ms, p99 {c.fmt_num(res.p99_ms, 3)} ms"
    return text + (f", {res.errors} ERRORS" if res.errors else "")


def bench_target(ctx: Ctx, name: str, cells: list[Cell], counter: list[int], total: int) -> Target:
    """Start one target, probe it, run its cells and its TTFB probe, stop it."""
    mine = [cell for cell in cells if cell.target == name]
    try:
        with c.progress(f"starting {name}"):
            target = STARTERS[name](ctx)
    except c.BenchError as e:
        for cell in mine:
            counter[0] += 1
            cell.error = "did not start"
        print(f"  {name} skipped: {e}", flush=True)
        return Target(name, {}, error=str(e))
    try:
        if target.child:
            target.rss_idle_kib = c.group_rss_kib(target.child.pid)
        for mode in MODES:
            target.checks[mode] = check_answer(target, mode)
            if target.checks[mode] != "ok":
                kind = "note" if target.checks[mode].startswith("ok") else "WARNING"
                print(f"  {kind}: {name} {mode} answer: {target.checks[mode]}", flush=True)
        for cell in mine:
            counter[0] += 1
            print(f"[{counter[0]}/{total}] {name} {cell.mode} c={cell.conc} ...", end="", flush=True)
            sampler = c.RssSampler(target.child) if target.child else None
            try:
                with sampler or contextlib.nullcontext():
                    cell.result = run_cell(ctx, target, cell.mode, cell.conc)
                print(" " + describe(cell.result), flush=True)
            except c.BenchError as e:
                cell.error = str(e).splitlines()[0]
                print(f" FAILED: {cell.error}", flush=True)
            if sampler:
                target.rss_max_kib = max(target.rss_max_kib, sampler.max_kib)
            if target.child and not target.child.alive():
                print(f"  {name} died:\n{target.child.log_tail()}", flush=True)
                break
        if ctx.args.ttfb_requests > 0 and (not target.child or target.child.alive()):
            with c.progress(f"  {name} stream TTFB, c=1, {ctx.args.ttfb_requests} requests"):
                ttfb = measure_ttfb(target, ctx.args.ttfb_requests)
            ctx.ttfb[name] = ttfb
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        target.error = f"{type(e).__name__}: {e}"
        print(f"  {name} error: {target.error}", flush=True)
    finally:
        if target.child:
            c.stop(target.child)
    return target


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
            rows.append([cell.target, cell.mode, cell.conc, "", "", "", "", cell.error or "not run"])
            continue
        errs = str(r.errors) + (" FLAGGED" if r.errors else "")
        rows.append([cell.target, cell.mode, cell.conc, c.fmt_num(r.rps), c.fmt_num(r.p50_ms, 3),
                     c.fmt_num(r.p99_ms, 3), r.requests, errs])
    return c.markdown_table(["target", "mode", "c", "req/s", "p50 ms", "p99 ms", "requests", "errors"],
                            rows, right=(2, 3, 4, 5, 6))


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
                   help="command that starts the gateway, before --config/--port (default: llmops serve)")
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
    if not args.no_gateway:
        names.append("gateway")
    if args.chain:
        names += ["gateway+auth", "gateway+auth+redis"]
    if args.litellm:
        names.append("litellm")
    return names


def environment() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "nginx": c.tool_version(["nginx", "-v"]), "wrk": c.tool_version(["wrk", "-v"]),
            "git": c.git_revision(REPO), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    c.install_cleanup()
    c.pin_self(args.load_cpus)
    names = selected_targets(args)
    cells = [Cell(t, m, n) for t in names for m in MODES for n in args.concs]
    workdir = Path(tempfile.mkdtemp(prefix="core-bench-"))
    env = environment()
    print(f"core bench: {', '.join(names)}; {args.duration:g}s per cell (+{args.warmup:g}s warm-up); "
          f"wrk on cpu {args.load_cpus}, nginx on cpu {args.upstream_cpus}, "
          f"server on cpu {args.server_cpus}; workdir {workdir}")
    print(f"load average now {env['loadavg_start'][0]:.2f} (other work on these cores skews the numbers)")
    targets: dict[str, Target] = {}
    ttfb: dict[str, dict[str, Any]] = {}
    failed = False
    try:
        with c.progress("starting nginx upstream"):
            upstream = c.start_nginx(workdir, args.upstream_cpus)
        ctx = Ctx(args, workdir, upstream)
        ttfb = ctx.ttfb
        counter = [0]
        for name in names:
            targets[name] = bench_target(ctx, name, cells, counter, len(cells))
        c.stop(upstream.child)
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
    env["loadavg_end"] = os.getloadavg()
    print(f"\nload average: {env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end "
          "(above ~0.5 other work shared the cores: rerun before trusting a FAIL)")
    if not args.no_json:
        path = c.write_results("core", {
            "environment": env, "args": {k: v for k, v in vars(args).items()},
            "cells": [cell.to_json() for cell in cells],
            "targets": {n: {"rss_idle_kib": t.rss_idle_kib, "rss_max_kib": t.rss_max_kib, "checks": t.checks,
                            "error": t.error} for n, t in targets.items()},
            "ttfb": ttfb, "ratios": table,
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
