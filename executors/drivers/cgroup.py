"""A per-sandbox cgroup: memory, pids, CPU rate and CPU time per job (cgroup v1 or v2).

bubblewrap has no limits of its own, RLIMIT_NPROC is ignored for a root outer uid and RLIMIT_CPU
counts per process (3 processes x 1 CPU-second used 2.9 CPU-seconds), so each bwrap sandbox gets
its own group. The child joins it before exec (``join()`` in a preexec hook), so the supervisor
and every process of the job are in it. Per job:

- CPU rate: ``cpu.max`` (v2) or ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1);
- CPU time: summed over the group (``cpu.stat`` ``usage_usec`` on v2, ``cpuacct.usage`` on v1)
  by ``enforce_cpu``, which kills the whole group at the budget (``cgroup.kill`` on v2);
- memory and pids: ``memory.max``/``pids.max`` (v2) or their v1 files.

The version is detected from what is mounted at the root: a cgroup2 root (``cgroup.controllers``)
is v2; per-controller directories (``memory``, ``pids``, optional ``cpu``, ``cpuacct``) are v1.
A v2 controller the kernel keeps on a v1 hierarchy (hybrid hosts) cannot be enabled: its files
are then absent, and only what exists is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
GROUP = "llmops-sandbox"
PERIOD_US = 100_000
V2_CONTROLLERS = ("memory", "pids", "cpu")
V1_REQUIRED = ("memory", "pids")
V1_OPTIONAL = ("cpu", "cpuacct")
POLL_SECONDS = 0.02


def cgroup_version(root: Path = ROOT) -> int | None:
    """2 for a unified hierarchy, 1 for v1 with memory and pids controllers, None if unusable."""
    if (root / "cgroup.controllers").exists():
        return 2 if os.access(root, os.W_OK) else None
    v1 = all((root / c).is_dir() and os.access(root / c, os.W_OK) for c in V1_REQUIRED)
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


def quota_us(cpus: float) -> int:
    """CFS quota (µs per ``PERIOD_US``) for a rate of ``cpus`` CPUs (at least 1 ms)."""
    return max(1000, round(cpus * PERIOD_US))


def _create_v2(root: Path, name: str, memory: str, pids: int, cpus: float | None) -> Path:
    for parent in (root, root / GROUP):
        parent.mkdir(exist_ok=True)
        for controller in V2_CONTROLLERS:  # one at a time: one unavailable must not veto the others
            _write(parent / "cgroup.subtree_control", f"+{controller}")
    group = root / GROUP / name
    group.mkdir()
    _write(group / "memory.max", memory)
    _write(group / "memory.swap.max", "0")
    _write(group / "pids.max", str(pids))
    if cpus is not None:
        _write(group / "cpu.max", f"{quota_us(cpus)} {PERIOD_US}")
    return group


def _create_v1(root: Path, name: str, memory: str, pids: int, cpus: float | None) -> dict[str, Path]:
    dirs = {c: root / c / GROUP / name for c in V1_REQUIRED}
    dirs |= {c: root / c / GROUP / name for c in V1_OPTIONAL if os.access(root / c, os.W_OK)}
    for directory in dirs.values():  # cpu and cpuacct may be one hierarchy (cpu,cpuacct)
        directory.mkdir(parents=True, exist_ok=True)
    _write(dirs["memory"] / "memory.limit_in_bytes", memory)
    _write(dirs["memory"] / "memory.memsw.limit_in_bytes", memory)
    _write(dirs["memory"] / "memory.swappiness", "0")
    _write(dirs["pids"] / "pids.max", str(pids))
    if cpus is not None and "cpu" in dirs:
        _write(dirs["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
        _write(dirs["cpu"] / "cpu.cfs_quota_us", str(quota_us(cpus)))
    return dirs


class Cgroup:
    """One sandbox's group. Create with ``Cgroup.create``, always ``destroy()`` it.

    ``dirs`` maps a controller to its directory (on v2 every controller maps to the one group).
    """

    def __init__(self, version: int, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs
        self.cpu_exceeded = False
        unique = dict.fromkeys(d.resolve() if d.exists() else d for d in dirs.values())
        self._procs = [str(d / "cgroup.procs") for d in unique]

    @classmethod
    def create(
        cls, version: int, name: str, memory_mb: int, pids: int, root: Path = ROOT, *, cpus: float | None = None
    ) -> Cgroup:
        """Make the group ``name`` with its limits; ``cpus`` caps the CPU rate (None: uncapped)."""
        memory = str(memory_mb * 1024 * 1024)
        if version == 2:
            group = _create_v2(root, name, memory, pids, cpus)
            return cls(2, {c: group for c in ("memory", "pids", "cpu", "cpuacct")})
        return cls(1, _create_v1(root, name, memory, pids, cpus))

    @classmethod
    def of_process(cls, pid: int, root: Path = ROOT) -> Cgroup | None:
        """The group ``pid`` already is in (a container's), to account and kill; never ``destroy()`` it."""
        version = cgroup_version(root)
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        dirs: dict[str, Path] = {}
        for line in lines:
            _, names, path = line.split(":", 2)
            if version == 2 and not names:
                return cls(2, dict.fromkeys(("memory", "pids", "cpu", "cpuacct"), root / path.lstrip("/")))
            for name in set(names.split(",")) & {*V1_REQUIRED, *V1_OPTIONAL}:
                dirs[name] = root / names / path.lstrip("/")
        return cls(1, dirs) if version == 1 and set(V1_REQUIRED) <= dirs.keys() else None

    def join(self) -> None:
        """Move the calling process in (runs in the child between fork and exec)."""
        pid = str(os.getpid())
        for procs in self._procs:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)

    @property
    def accounts_cpu(self) -> bool:
        """Whether the group's CPU time can be read (v2 core ``cpu.stat``, v1 ``cpuacct``)."""
        return self._usage_file() is not None

    def _usage_file(self) -> Path | None:
        directory = self.dirs.get("cpuacct")
        if directory is None:
            return None
        path = directory / ("cpu.stat" if self.version == 2 else "cpuacct.usage")
        return path if path.exists() else None

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process that ever ran in the group (0.0 if unknown)."""
        path = self._usage_file()
        if path is None:
            return 0.0
        if self.version == 2:
            return _read_counter(path, "usage_usec") / 1e6
        try:
            return int(path.read_text()) / 1e9
        except (OSError, ValueError):
            return 0.0

    async def enforce_cpu(self, seconds: float, interval: float = POLL_SECONDS) -> None:
        """Kill the whole group once its processes together used ``seconds`` of CPU time.

        Runs until then (cancel it when the job ends). The overshoot is at most ``interval`` times
        the CPU rate cap.
        """
        while self.cpu_seconds() < seconds:
            await asyncio.sleep(interval)
        self.cpu_exceeded = True
        self.kill()

    def limit_hit(self) -> str | None:
        """ "cpu", "memory" or "pids" if that limit stopped something in the group."""
        if self.cpu_exceeded:
            return "cpu"
        memory, pids = self.dirs["memory"], self.dirs["pids"]
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
            return [int(p) for p in (self.dirs["pids"] / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill(self) -> None:
        """SIGKILL every process in the group (``cgroup.kill`` where the kernel has it)."""
        kill_file = self.dirs["pids"] / "cgroup.kill"
        if self.version == 2 and kill_file.exists():
            _write(kill_file, "1")
        for _ in range(50):
            pids = self._pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def destroy(self) -> None:
        """Kill what is left in the group and remove it."""
        self.kill()
        for directory in dict.fromkeys(self.dirs.values()):
            with contextlib.suppress(OSError):
                directory.rmdir()
