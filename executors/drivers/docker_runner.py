"""The long-lived runner baked into the sandbox image (stdlib only; runs as uid 65534 inside).

It starts with the warm container and blocks on stdin. It reads ONE job as a JSON line, runs it in
a forked child (python code is executed in the forked interpreter, so no interpreter start-up is
paid per job; shell and argv jobs are exec'd), enforces output size, wall and CPU limits, writes
ONE JSON result line to stdout and exits. The container is then discarded: one job per container.
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


def _collect(
    pid: int, out_fd: int, err_fd: int, limit: int, wall: float
) -> tuple[bytes, bytes, int, bool, bool]:
    buffers: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    open_fds = [out_fd, err_fd]
    deadline = time.monotonic() + wall
    truncated = timed_out = False
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(open_fds, [], [], left)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
                continue
            buffers[fd] += chunk
            if len(buffers[fd]) > limit:
                truncated = True
        if truncated:
            break
    if open_fds:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    return (
        bytes(buffers[out_fd][: limit + 1]),
        bytes(buffers[err_fd][: limit + 1]),
        status,
        truncated,
        timed_out,
    )


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
    limits = job["limits"]
    out, err, status, truncated, timed_out = _collect(
        pid, out_r, err_r, limits["output_bytes"], limits["wall_seconds"]
    )
    code = os.waitstatus_to_exitcode(status)
    limit = _limit_hit() if code < 0 else None
    if limit is None and code in (-signal.SIGXCPU, -signal.SIGKILL) and not (timed_out or truncated):
        limit = "cpu"
    limit = "wall" if timed_out else (limit or ("output" if truncated else None))
    return {
        "exit_code": code,
        "stdout": base64.b64encode(out).decode(),
        "stderr": base64.b64encode(err).decode(),
        "truncated": truncated,
        "timed_out": timed_out,
        "limit": limit,
    }


def main() -> None:
    line = sys.stdin.buffer.readline()
    if not line:
        return
    try:
        answer = run(json.loads(line))
    except Exception as exc:  # report any runner failure to the host instead of dying silently
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
