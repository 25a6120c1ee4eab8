"""The long-lived runner baked into the sandbox image (stdlib only; runs as uid 65534 inside).

It starts with the warm container and blocks on stdin. It reads ONE job (a length line, then the
JSON frame), runs it in a forked child (python code is executed in the forked interpreter, so no
interpreter start-up is paid per job; shell and argv jobs are exec'd), enforces output size, wall
and CPU limits (CPU time summed over every process of the container, read from its cgroup), writes
ONE result line to stdout and exits. The container is then discarded: one job per container.

The result line cannot be forged by the job, although the job runs as the same uid:

- the runner is non-dumpable (``PR_SET_DUMPABLE`` 0), so the job can neither open
  ``/proc/1/fd/1`` (the runner's stdout, the attach stream) nor ptrace or read the runner; as PID 1
  of the container it ignores the job's signals;
- the host sends a random token after the frame. The runner reads the frame with exact-length
  ``os.read`` calls (no buffering), forks the job, and only then reads the token: it is in no
  memory the job's process was copied from, and the job's stdin is a pipe, not the attach stream.
  The host accepts only the line that starts with the token.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import select
import signal
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

CGROUP = "/sys/fs/cgroup"
PR_SET_DUMPABLE = 4
TOKEN_LINE = 33  # 32 hex characters and a newline
POLL_SECONDS = 0.02


def _counter(path: str, key: str) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _limit_hit() -> str | None:
    if _counter(CGROUP + "/memory/memory.oom_control", "oom_kill") or _counter(
        CGROUP + "/memory.events", "oom_kill"
    ):
        return "memory"
    if _counter(CGROUP + "/pids/pids.events", "max") or _counter(CGROUP + "/pids.events", "max"):
        return "pids"
    return None


def _cpu_seconds() -> float:
    """CPU time of the whole container (its cgroup, v1 or v2); 0.0 where it cannot be read."""
    try:
        with open(CGROUP + "/cpuacct/cpuacct.usage") as handle:
            return int(handle.read()) / 1e9
    except (OSError, ValueError):
        return _counter(CGROUP + "/cpu.stat", "usage_usec") / 1e6


def _set_dumpable(flag: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_job(pid: int) -> None:
    """Kill the job's processes: all of the container's but the runner when it is PID 1."""
    try:
        if os.getpid() == 1:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _run_python(code: str) -> NoReturn:
    import builtins
    import io

    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, closefd=False)))
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), write_through=True)
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), write_through=True)
    sys.argv = ["/job/main"]
    status = 0
    try:
        exec(compile(code, "/job/main", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # report like python would, without the runner's own frame
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    os._exit(status)


def _child(job: dict[str, Any], fds: tuple[int, int, int]) -> NoReturn:
    _set_dumpable(1)
    os.setsid()
    for fd, target in zip(fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
    os.closerange(3, 1024)
    cpu = max(1, round(job["limits"]["cpu_seconds"]))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir("/scratch")
    if job["runtime"] == "python" and job["code"]:
        _run_python(job["code"])
    argv = ["/bin/sh", "-c", job["code"]] if job["code"] else job["argv"]
    try:
        os.execvpe(argv[0], argv, job["env"])
    except OSError as exc:
        os.write(2, f"exec failed: {exc}\n".encode())
    os._exit(127)


def _feed(fd: int, data: bytes) -> None:
    try:
        _write_all(fd, data)
    except OSError:
        pass
    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Collected:
    """What the job left: capped outputs, wait status and which limit (if any) stopped it."""

    def __init__(self, out_fd: int, err_fd: int) -> None:
        self.buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
        self.open_fds = [out_fd, err_fd]
        self.status = 0
        self.truncated = self.timed_out = self.cpu = False

    def read(self, ready: list[int], limit: int) -> None:
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                self.open_fds.remove(fd)
                continue
            self.buffers[fd] += chunk
            if len(self.buffers[fd]) > limit:
                self.truncated = True


def _collect(pid: int, out_fd: int, err_fd: int, limits: dict[str, Any]) -> Collected:
    done = Collected(out_fd, err_fd)
    deadline = time.monotonic() + limits["wall_seconds"]
    cpu_budget = _cpu_seconds() + limits["cpu_seconds"]
    while done.open_fds and not done.truncated:
        left = deadline - time.monotonic()
        if left <= 0:
            done.timed_out = True
            break
        if _cpu_seconds() >= cpu_budget:
            done.cpu = True
            break
        ready, _, _ = select.select(done.open_fds, [], [], min(left, POLL_SECONDS))
        done.read(ready, limits["output_bytes"])
    if done.open_fds or done.cpu:
        _kill_job(pid)
    _, done.status = os.waitpid(pid, 0)
    return done


def _limit(code: int, done: Collected) -> str | None:
    if done.timed_out:
        return "wall"
    if done.cpu:
        return "cpu"
    limit = _limit_hit() if code < 0 else None
    if limit is None and code in (-signal.SIGXCPU, -signal.SIGKILL) and not done.truncated:
        limit = "cpu"
    return limit or ("output" if done.truncated else None)


def run(job: dict[str, Any]) -> dict[str, Any]:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _child(job, (in_r, out_w, err_w))
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    threading.Thread(target=_feed, args=(in_w, job["stdin"].encode()), daemon=True).start()
    limit = job["limits"]["output_bytes"]
    done = _collect(pid, out_r, err_r, job["limits"])
    code = os.waitstatus_to_exitcode(done.status)
    return {
        "exit_code": code,
        "stdout": base64.b64encode(done.buffers[out_r][: limit + 1]).decode(),
        "stderr": base64.b64encode(done.buffers[err_r][: limit + 1]).decode(),
        "truncated": done.truncated,
        "timed_out": done.timed_out,
        "limit": _limit(code, done),
    }


def _read_exact(fd: int, size: int) -> bytes:
    """Exactly ``size`` bytes from ``fd`` (fewer only at EOF), never more: nothing is buffered."""
    parts: list[bytes] = []
    while size > 0 and (chunk := os.read(fd, size)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _read_length(fd: int) -> int:
    digits = b""
    while (byte := os.read(fd, 1)) and byte != b"\n" and len(digits) < 20:
        digits += byte
    return int(digits) if digits else -1


def main() -> None:
    _set_dumpable(0)
    size = _read_length(0)
    if size < 0:
        return
    try:
        answer = run(json.loads(_read_exact(0, size)))
    except Exception as exc:  # report any runner failure to the host instead of dying silently
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    token = _read_exact(0, TOKEN_LINE).strip()  # only now: the job was forked without it
    _write_all(1, b"\n" + token + b" " + json.dumps(answer).encode() + b"\n")


if __name__ == "__main__":
    main()
