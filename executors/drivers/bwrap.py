"""Linux namespaces through bubblewrap: the fast path (~15 ms a call).

Each job gets new user, pid, net, ipc, uts and cgroup namespaces (no network at all), the host's
``/usr`` read-only as its whole root (``/`` itself remounted read-only), a size-capped tmpfs (or
the job's size-capped workspace) at ``/scratch``, uid 65534, no capabilities, no-new-privs, nested user
namespaces disabled, and a seccomp deny-list when ``python3-seccomp`` is installed. Limits:
a per-sandbox cgroup for memory, pids, CPU rate (``cpus``) and CPU time summed over the job's
processes (killed at ``cpu_seconds``); RLIMIT_CPU/FSIZE/NOFILE/CORE per process as a backstop;
the wall clock and the output cap by the supervising coroutine.

Runtime ``code`` runs like ``python``, with the stub ``llmops_tools`` read-only at ``/job/lib`` and the
job's tools socket directory bound at ``/run/llmops-tools`` (``executors/node/code_session.py``).
An ``mcp_stdio`` job runs the MCP bridge as its program, with the server's command after it, and
also sees the node's MCP code directories read-only (``drivers/mcp_stdio.py``).

Secrets never enter the environment or argv (of the sandbox or of bwrap itself). A secret the
policy grants inside (``Grants.secret_files``) is written into a pipe that bwrap copies into a
0400 file at ``/run/secrets/NAME`` on its private tmpfs root (``--ro-bind-data``).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from executors.drivers.base import (
    EGRESS_MOUNT,
    SANDBOX_UID,
    SCRATCH,
    SECRETS_DIR,
    STUB_DIR,
    TOOLS_MOUNT,
    SandboxDriver,
    Stopwatch,
    decode_output,
    job_env,
)
from executors.drivers.cgroup import Cgroup, cgroup_version
from executors.drivers.mcp_stdio import bind_args, bridge_command, bridge_source, check_paths
from executors.drivers.proc import Captured, run_capped
from executors.drivers.seccomp import export_bpf
from executors.errors import DriverUnavailable, JobRejected
from executors.spec import Job, Limits, Result
from executors.stub import STUB_FILE
from executors.workspaces import Workspaces, workspace_for

ROOT_BINDS = (
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/sbin",
    "/sbin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
)
NOFILE = 256
SECRET_FILE_MAX = 65536  # one pipe buffer: the value is written before bwrap starts reading
# A code job runs its script as __main__ with the stub importable (``-I`` keeps PYTHONPATH out).
CODE_BOOT = f"import runpy, sys; sys.path.insert(0, {STUB_DIR!r}); runpy.run_path('/job/main', run_name='__main__')"


def secret_pipes(job: Job) -> list[tuple[str, int]]:
    """(name, read end) of a pipe holding each secret the job may read inside; close them after."""
    pipes: list[tuple[str, int]] = []
    try:
        for name in job.grants.secret_files:
            value = job.grants.secrets[name].encode()
            if len(value) > SECRET_FILE_MAX:
                raise JobRejected(f"secret {name!r} is over {SECRET_FILE_MAX} bytes")
            read, write = os.pipe()
            pipes.append((name, read))
            with os.fdopen(write, "wb") as out:
                out.write(value)
    except BaseException:
        for _, fd in pipes:
            os.close(fd)
        raise
    return pipes


def secret_args(pipes: Sequence[tuple[str, int]]) -> list[str]:
    """bwrap arguments that copy each pipe into a read-only 0400 file under ``SECRETS_DIR``."""
    args: list[str] = []
    for name, fd in pipes:
        args += ["--perms", "0400", "--ro-bind-data", str(fd), f"{SECRETS_DIR}/{name}"]
    return args


def rlimits(limits: Limits) -> list[tuple[int, tuple[int, int]]]:
    """The rlimits every sandboxed process starts with (CPU soft/hard gives SIGXCPU then SIGKILL)."""
    cpu = max(1, round(limits.cpu_seconds))
    scratch = limits.scratch_mb * 1024 * 1024
    return [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_FSIZE, (scratch, scratch)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (NOFILE, NOFILE)),
    ]


def _preexec(limits: Limits, cgroup: Cgroup | None, switch_user: bool) -> Callable[[], None]:
    settings = rlimits(limits)
    if cgroup is None:  # no cgroup: fall back to an address-space cap for memory
        space = limits.memory_mb * 1024 * 1024 * 4
        settings.append((resource.RLIMIT_AS, (space, space)))

    def child() -> None:  # runs between fork and exec: syscalls only
        if cgroup is not None:
            cgroup.join()
        for kind, value in settings:
            resource.setrlimit(kind, value)
        if switch_user:
            os.setgroups([])
            os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
            os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)

    return child


class BwrapDriver(SandboxDriver):
    """bubblewrap sandboxes. ``workspaces`` keeps the node's tenant workspaces (none: scratch only);
    ``mcp_paths`` are the directories of MCP server code ``mcp_stdio`` jobs may read."""

    name = "bwrap"
    runtimes = frozenset({"python", "shell", "code", "mcp_stdio"})

    def __init__(
        self,
        *,
        workspaces: Workspaces | None = None,
        bwrap: str = "bwrap",
        python: str = "/usr/bin/python3",
        shell: str = "/bin/sh",
        cpus: float = 1.0,
        mcp_paths: Sequence[str | Path] = (),
    ) -> None:
        self._bwrap = shutil.which(bwrap)
        self._mcp_paths = check_paths(mcp_paths, workspaces.root if workspaces is not None else None)
        self._cpus = cpus
        self._python = python
        self._shell = shell
        self._workspaces = workspaces
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._seccomp: Path | None = None
        self._cgroup_version = cgroup_version() if os.geteuid() == 0 else None

    def available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        if self._bwrap is None:
            return "bwrap not found (apt-get install bubblewrap)"
        try:
            if int(Path("/proc/sys/user/max_user_namespaces").read_text()) <= 0:
                return "user namespaces are disabled"
        except (OSError, ValueError):
            return "cannot read /proc/sys/user/max_user_namespaces"
        if not Path(self._python).exists():
            return f"{self._python} not found"
        return ""

    @property
    def seccomp_enabled(self) -> bool:
        return self._seccomp is not None

    async def start(self) -> None:
        if self._tmp is not None:
            return
        if not self.available():
            raise DriverUnavailable(self.unavailable_reason())
        self._tmp = tempfile.TemporaryDirectory(prefix="llmops-bwrap-")
        os.chmod(self._tmp.name, 0o711)
        bpf = Path(self._tmp.name) / "seccomp.bpf"
        self._seccomp = bpf if export_bpf(bpf) else None
        if self._workspaces is not None:
            await self._workspaces.start()

    async def aclose(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            if self._workspaces is not None:
                await self._workspaces.aclose()

    async def run(self, job: Job) -> Result:
        if job.runtime not in self.runtimes:
            raise JobRejected(f"bwrap cannot run runtime {job.runtime!r}")
        await self.start()
        assert self._tmp is not None
        watch = Stopwatch()
        run_id = f"{job.id}-{uuid.uuid4().hex[:8]}"
        program = Path(self._tmp.name) / f"{run_id}.src"
        program.write_text(bridge_source() if job.runtime == "mcp_stdio" else job.code)
        program.chmod(0o644)
        cgroup = self._make_cgroup(run_id, job.limits)
        try:
            async with workspace_for(self._workspaces, job) as workspace:
                captured = await self._supervise(job, program, cgroup, workspace)
            limit = cgroup.limit_hit() if cgroup is not None else None
        finally:
            if cgroup is not None:
                cgroup.destroy()
            program.unlink(missing_ok=True)
        return self._result(job, captured, limit, watch)

    def _make_cgroup(self, run_id: str, limits: Limits) -> Cgroup | None:
        if self._cgroup_version is None:
            return None
        return Cgroup.create(self._cgroup_version, run_id, limits.memory_mb, limits.pids, cpus=self._cpus)

    async def _supervise(self, job: Job, program: Path, cgroup: Cgroup | None, workspace: Path | None) -> Captured:
        """Run the job with a watchdog killing the group at its CPU-time budget (all processes)."""
        if cgroup is None or not cgroup.accounts_cpu:
            return await self._spawn(job, program, cgroup, workspace)
        watchdog = asyncio.create_task(cgroup.enforce_cpu(job.limits.cpu_seconds))
        try:
            return await self._spawn(job, program, cgroup, workspace)
        finally:
            watchdog.cancel()

    async def _spawn(self, job: Job, program: Path, cgroup: Cgroup | None, workspace: Path | None) -> Captured:
        pipes = secret_pipes(job)
        fds = [fd for _, fd in pipes]
        try:
            seccomp_fd = os.open(self._seccomp, os.O_RDONLY) if self._seccomp is not None else -1
            fds += [seccomp_fd] if seccomp_fd >= 0 else []
            argv = self.argv(job, str(program), seccomp_fd, pipes, workspace)
            return await run_capped(
                argv,
                env=job_env(job),
                stdin=job.stdin.encode(),
                output_limit=job.limits.output_bytes,
                wall_seconds=job.limits.wall_seconds,
                preexec=_preexec(job.limits, cgroup, os.geteuid() == 0),
                pass_fds=fds,
            )
        finally:
            for fd in fds:
                os.close(fd)

    @staticmethod
    def _scratch_args(job: Job, workspace: Path | None) -> list[str]:
        """A tmpfs of ``scratch_mb``, or the workspace (a mounted filesystem of that size) bound."""
        if workspace is None:
            return ["--size", str(job.limits.scratch_mb * 1024 * 1024), "--tmpfs", SCRATCH]
        return ["--bind", str(workspace), SCRATCH]

    def argv(
        self, job: Job, program: str, seccomp_fd: int = -1, secrets: Sequence[tuple[str, int]] = (),
        workspace: Path | None = None,
    ) -> list[str]:
        """The full bwrap command line for ``job`` (its program file bound at /job/main).

        ``secrets``: (name, fd) pairs from ``secret_pipes``; only fd numbers reach the argv.
        """
        assert self._bwrap is not None
        command = {"python": [self._python, "-I", "-S", "/job/main"], "shell": [self._shell, "/job/main"],
                   "code": [self._python, "-I", "-S", "-c", CODE_BOOT],
                   "mcp_stdio": bridge_command(self._python, job.argv)}
        tail = (
            list(job.argv) if job.runtime == "shell" and job.argv and not job.code else command[job.runtime]
        )
        args = [
            self._bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sandbox",
            *ROOT_BINDS,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            *self._scratch_args(job, workspace),
            "--ro-bind",
            program,
            "/job/main",
            *secret_args(secrets),
            *(bind_args(self._mcp_paths) if job.runtime == "mcp_stdio" else []),
            *(["--bind", job.egress_dir, EGRESS_MOUNT] if job.egress_dir else []),
            *self._code_args(job),
            "--remount-ro",
            "/",
            "--chdir",
            SCRATCH,
        ]
        if seccomp_fd >= 0:
            args += ["--seccomp", str(seccomp_fd)]
        return [*args, "--", *tail]

    @staticmethod
    def _code_args(job: Job) -> list[str]:
        """A code job: the stub read-only at ``STUB_DIR``, its tools socket's directory at ``TOOLS_MOUNT``."""
        if job.runtime != "code":
            return []
        stub = ["--ro-bind", str(STUB_FILE), f"{STUB_DIR}/{STUB_FILE.name}"]
        return stub + (["--bind", job.tools_dir, TOOLS_MOUNT] if job.tools_dir else [])

    def _result(self, job: Job, captured: Captured, limit: str | None, watch: Stopwatch) -> Result:
        stdout, cut_out = decode_output(captured.stdout, job.limits.output_bytes)
        stderr, cut_err = decode_output(captured.stderr, job.limits.output_bytes)
        truncated = captured.truncated or cut_out or cut_err
        code = captured.returncode
        if limit is None and code in (
            -signal.SIGXCPU,
            128 + signal.SIGXCPU,
            -signal.SIGKILL,
            128 + signal.SIGKILL,
        ):
            limit = "cpu" if not captured.timed_out and not truncated else None
        if limit is None and truncated:
            limit = "output"
        if captured.timed_out:
            limit = "wall"
        return Result(
            exit_code=code,
            stdout=stdout,
            stderr=stderr,
            driver=self.name,
            duration_ms=watch.ms(),
            truncated=truncated,
            timed_out=captured.timed_out,
            limit=limit,
        )
