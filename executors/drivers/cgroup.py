"""A per-sandbox cgroup for memory and pid limits (cgroup v1 or v2, whichever the host has).

bubblewrap has no limits of its own, and RLIMIT_NPROC is ignored for a root outer uid, so each
bwrap sandbox gets its own group. The child joins it before exec (``join()`` in a preexec hook).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "llmops-sandbox"


def cgroup_version(root: Path = ROOT) -> int | None:
    """2 for a unified hierarchy, 1 for v1 with memory and pids controllers, None if unusable."""
    if (root / "cgroup.controllers").exists():
        return 2 if os.access(root, os.W_OK) else None
    v1 = all((root / c).is_dir() and os.access(root / c, os.W_OK) for c in ("memory", "pids"))
    return 1 if v1 else None


def _write(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(value)


def _read_counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class Cgroup:
    """One sandbox's group. Create with ``Cgroup.create``, always ``destroy()`` it."""

    def __init__(self, version: int, dirs: list[Path]) -> None:
        self.version = version
        self.dirs = dirs
        self._procs = [str(d / "cgroup.procs") for d in dirs]

    @classmethod
    def create(cls, version: int, name: str, memory_mb: int, pids: int, root: Path = ROOT) -> Cgroup:
        limit = str(memory_mb * 1024 * 1024)
        if version == 2:
            _write(root / "cgroup.subtree_control", "+memory +pids")
            (root / GROUP).mkdir(exist_ok=True)
            _write(root / GROUP / "cgroup.subtree_control", "+memory +pids")
            group = root / GROUP / name
            group.mkdir()
            _write(group / "memory.max", limit)
            _write(group / "memory.swap.max", "0")
            _write(group / "pids.max", str(pids))
            return cls(2, [group])
        memory, pid_dir = root / "memory" / GROUP / name, root / "pids" / GROUP / name
        memory.mkdir(parents=True)
        pid_dir.mkdir(parents=True)
        _write(memory / "memory.limit_in_bytes", limit)
        _write(memory / "memory.memsw.limit_in_bytes", limit)
        _write(memory / "memory.swappiness", "0")
        _write(pid_dir / "pids.max", str(pids))
        return cls(1, [memory, pid_dir])

    def join(self) -> None:
        """Move the calling process in (runs in the child between fork and exec)."""
        pid = str(os.getpid())
        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)

    def limit_hit(self) -> str | None:
        """ "memory" or "pids" if that limit stopped something in the group."""
        memory, pids = self.dirs[0], self.dirs[-1]
        if self.version == 2:
            oom = _read_counter(memory / "memory.events", "oom_kill")
        else:
            oom = _read_counter(memory / "memory.oom_control", "oom_kill")
        if oom > 0:
            return "memory"
        if _read_counter(pids / "pids.events", "max") > 0:
            return "pids"
        return None

    def _pids(self) -> list[int]:
        try:
            return [int(p) for p in Path(self._procs[-1]).read_text().split()]
        except (OSError, ValueError):
            return []

    def destroy(self) -> None:
        """Kill what is left in the group and remove it."""
        for _ in range(50):
            pids = self._pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        for directory in self.dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()
