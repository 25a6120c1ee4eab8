"""Containers through the Docker Engine API, with a warm pool of single-use containers.

Every container is hardened: ``cap_drop=ALL``, ``no-new-privileges``, read-only rootfs, a sized
tmpfs at /scratch, pids/memory/CPU limits, ``network_mode=none``, ``ipc_mode=none``, uid 65534,
Docker's default seccomp profile, no log driver (outputs never land in container logs). A warm
container runs the runner (``docker_runner.py``) blocked on its attached stdin; a job is one JSON
line in and one JSON line out over that socket, so no ``docker exec`` is paid. Each container
serves one job and is then removed, while the pool refills in the background. Jobs whose limits
differ from the pool's profile get a cold container with exactly their limits.

CPU: ``--cpus`` caps the rate; CPU time is summed over all of a job's processes and the job is
killed at ``cpu_seconds``: by the runner, from the container's cgroup, for python and shell jobs;
by the driver, from the container's cgroup on the host, for image tools (no runner inside).

The result channel cannot be forged by the job: the host sends a fresh random token after the
job frame, which the runner reads only after forking the job, and accepts only the answer line
that starts with it (``docker_runner.py`` says why the job can neither read the token nor write
to the runner's stdout).

Secrets never enter a container's environment, command or inspect output. A secret the policy
grants inside (``Grants.secret_files``) is a 0400 file owned by the sandbox user in a root-only
0700 directory on the host's tmpfs (``secrets_root``), bind-mounted read-only at
``/run/secrets/NAME`` of a cold container and removed after the job.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.drivers.base import (
    EGRESS_MOUNT,
    SANDBOX_UID,
    SCRATCH,
    SECRETS_DIR,
    SandboxDriver,
    Stopwatch,
    decode_output,
    job_env,
)
from executors.drivers.cgroup import Cgroup
from executors.drivers.docker_image import RUNNER_PATH, build_image, image_tag
from executors.errors import DriverUnavailable, JobRejected, SandboxError
from executors.spec import Job, Limits, Result
from executors.workspaces import Workspaces, workspace_for

log = logging.getLogger(__name__)
SOCKET = "/var/run/docker.sock"
LABEL = "llmops.sandbox"
GRACE_SECONDS = 5.0
RUNNER_COMMAND = ["/usr/bin/python3", "-I", RUNNER_PATH]
SECRETS_ROOT = Path("/dev/shm")
Binds = dict[str, dict[str, str]]


def write_secret_files(job: Job, root: Path) -> Path | None:
    """A fresh root-only dir under ``root`` holding each granted secret file (0400, sandbox uid)."""
    if not job.grants.secret_files:
        return None
    directory = Path(tempfile.mkdtemp(prefix="llmops-secrets-", dir=root))
    for name in job.grants.secret_files:
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
        try:
            os.write(fd, job.grants.secrets[name].encode())
            with contextlib.suppress(PermissionError):
                os.fchown(fd, SANDBOX_UID, SANDBOX_UID)
        finally:
            os.close(fd)
    return directory


def secret_binds(job: Job, directory: Path | None) -> Binds:
    """Read-only bind mounts of the secret files at ``SECRETS_DIR/NAME`` (paths only, no values)."""
    if directory is None:
        return {}
    return {str(directory / n): {"bind": f"{SECRETS_DIR}/{n}", "mode": "ro"} for n in job.grants.secret_files}


def answer_line(stdout: bytes, token: bytes) -> bytes | None:
    """The runner's answer: the complete line that starts with ``token`` (None until it is there)."""
    start = stdout.find(b"\n" + token + b" ")
    if start < 0:
        return None
    start += len(token) + 2
    end = stdout.find(b"\n", start)
    return stdout[start:end] if end >= 0 else None


@dataclass(frozen=True, slots=True)
class Profile:
    """The container-level limits a warm container is created with (a workspace: never warm)."""

    memory_mb: int
    pids: int
    scratch_mb: int
    workspace: str | None = None  # host path of the mounted, size-capped workspace

    @classmethod
    def of(cls, limits: Limits, workspace: Path | None = None) -> Profile:
        return cls(limits.memory_mb, limits.pids, limits.scratch_mb, str(workspace) if workspace else None)


def scratch_mount(profile: Profile) -> dict[str, Any]:
    """/scratch: a sized tmpfs, or the workspace's filesystem (sized when created) bound read-write."""
    if profile.workspace is not None:
        return {"binds": {profile.workspace: {"bind": SCRATCH, "mode": "rw"}}}
    options = f"rw,nosuid,nodev,size={profile.scratch_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700"
    return {"tmpfs": {SCRATCH: options}}


def host_config(profile: Profile, cpus: float) -> dict[str, Any]:
    """Hardened ``create_host_config`` keyword arguments for ``profile``."""
    from docker.types import LogConfig, Ulimit

    fsize = profile.scratch_mb * 1024 * 1024
    return {
        "read_only": True,
        "network_mode": "none",
        "ipc_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": profile.pids,
        "mem_limit": f"{profile.memory_mb}m",
        "memswap_limit": f"{profile.memory_mb}m",
        "nano_cpus": int(cpus * 1e9),
        **scratch_mount(profile),
        "ulimits": [
            Ulimit(name="nofile", soft=256, hard=256),
            Ulimit(name="fsize", soft=fsize, hard=fsize),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "log_config": LogConfig(type=LogConfig.types.NONE),
    }


CREATE_OPTIONS: dict[str, Any] = {
    "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
    "working_dir": SCRATCH,
    "hostname": "sandbox",
    "labels": {LABEL: "1"},
    "stdin_open": True,
    "network_disabled": True,
}


@dataclass(slots=True)
class _Attached:
    """A started container and the stream of its attached stdin/stdout/stderr."""

    container_id: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    keepalive: Any  # the SDK's socket wrapper: dropping it would close the socket

    def close(self) -> None:
        self.writer.close()


async def _read_frames(
    reader: asyncio.StreamReader, cap: int, token: bytes | None
) -> tuple[bytes, bytes, bool]:
    """Demultiplex Docker's attach stream into (stdout, stderr, overflow).

    Stops at EOF, once a stream passes ``cap`` bytes, or (with ``token``) at the runner's answer.
    """
    streams = {1: bytearray(), 2: bytearray()}
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            break
        payload = await reader.readexactly(int.from_bytes(header[4:8], "big"))
        buffer = streams.get(header[0], streams[2])
        buffer += payload
        if len(buffer) > cap:
            return bytes(streams[1][: cap + 1]), bytes(streams[2][: cap + 1]), True
        if token is not None and b"\n" in payload and answer_line(bytes(streams[1]), token) is not None:
            break
    return bytes(streams[1]), bytes(streams[2]), False


class DockerDriver(SandboxDriver):
    """Docker sandboxes. ``pool_size`` warm containers are kept for the ``default_limits`` profile."""

    name = "docker"
    runtimes = frozenset({"python", "shell", "image"})

    def __init__(
        self,
        *,
        pool_size: int = 2,
        default_limits: Limits | None = None,
        cpus: float = 1.0,
        image: str | None = None,
        base_url: str = f"unix://{SOCKET}",
        workspaces: Workspaces | None = None,
        secrets_root: Path = SECRETS_ROOT,
    ) -> None:
        self._secrets_root = secrets_root
        self._pool_size = pool_size
        self._profile = Profile.of(default_limits or Limits())
        self._cpus = cpus
        self._image = image or image_tag()
        self._base_url = base_url
        self._workspaces = workspaces
        self._client: Any = None
        self._pool: asyncio.Queue[_Attached] = asyncio.Queue()
        self._refill_wanted = asyncio.Event()
        self._refiller: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._closing = False

    @staticmethod
    def build(client: Any, tag: str | None = None) -> str:
        """Build the sandbox image (``llmops node build-image``); returns its tag."""
        return build_image(client, tag)

    async def ready(self, timeout: float = 30.0) -> None:
        """Wait until the warm pool is full and no container removal is pending (for benches/tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._pool.qsize() < self._pool_size or self._background) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def available(self) -> bool:
        return not self.unavailable_reason()

    def unavailable_reason(self) -> str:
        try:
            import docker  # noqa: F401
        except ImportError:
            return "the docker SDK is not installed (pip install docker)"
        path = self._base_url.removeprefix("unix://")
        if self._base_url.startswith("unix://") and not os.path.exists(path):
            return f"no Docker socket at {path} (start dockerd)"
        return ""

    async def start(self) -> None:
        if self._client is not None:
            return
        self._closing = False
        if not self.available():
            raise DriverUnavailable(self.unavailable_reason())
        self._client = await asyncio.to_thread(self._connect)
        if self._workspaces is not None:
            await self._workspaces.start()
        if self._pool_size > 0:
            self._refiller = asyncio.create_task(self._refill_loop())
            self._refill_wanted.set()

    def _connect(self) -> Any:
        import docker

        try:
            client = docker.DockerClient(base_url=self._base_url, timeout=60)
            client.ping()
            self._ensure_image(client)
        except docker.errors.DockerException as exc:
            raise DriverUnavailable(f"Docker engine unusable: {exc}") from exc
        for stale in client.containers.list(all=True, filters={"label": LABEL, "status": "exited"}):
            with contextlib.suppress(docker.errors.DockerException):
                stale.remove(force=True)
        return client

    def _ensure_image(self, client: Any) -> None:
        import docker

        try:
            client.images.get(self._image)
        except docker.errors.ImageNotFound:
            build_image(client, self._image)

    async def aclose(self) -> None:
        if self._refiller is not None:
            self._closing = True  # let an in-flight launch finish so its container is not orphaned
            self._refill_wanted.set()
            await self._refiller
            self._refiller = None
        while not self._pool.empty():
            self._discard(self._pool.get_nowait())
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None
            if self._workspaces is not None:
                await self._workspaces.aclose()

    @property
    def warm(self) -> int:
        """Warm containers ready right now."""
        return self._pool.qsize()

    async def _refill_loop(self) -> None:
        while not self._closing:
            await self._refill_wanted.wait()
            self._refill_wanted.clear()
            while self._pool.qsize() < self._pool_size and not self._closing:
                try:
                    self._pool.put_nowait(await self._launch(self._profile, RUNNER_COMMAND))
                except SandboxError as exc:
                    log.warning("docker warm pool refill failed: %s", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._refill_wanted.wait(), 1.0)

    async def _launch(
        self,
        profile: Profile,
        command: list[str],
        env: dict[str, str] | None = None,
        image: str | None = None,
        *,
        stdin_once: bool = False,
        binds: Binds | None = None,
    ) -> _Attached:
        """Create, attach to and start a hardened container (``stdin_once``: EOF after the first input)."""
        created = await asyncio.to_thread(
            self._create, profile, command, env or {}, image or self._image, stdin_once, binds or {}
        )
        container_id, wrapper = created
        raw = wrapper._sock
        reader, writer = await asyncio.open_unix_connection(sock=raw)
        await asyncio.to_thread(self._client.api.start, container_id)
        return _Attached(container_id, reader, writer, wrapper)

    def _create(
        self, profile: Profile, command: list[str], env: dict[str, str], image: str, stdin_once: bool, binds: Binds
    ) -> tuple[str, Any]:
        import docker

        api = self._client.api
        try:
            options = host_config(profile, self._cpus)
            all_binds = {**options.pop("binds", {}), **binds}  # the workspace and the secret files
            config = api.create_host_config(**options, binds=all_binds or None)
            spec = api.create_container_config(
                image, command, environment=env, host_config=config, **CREATE_OPTIONS
            )
            spec["StdinOnce"] = stdin_once  # a tool image sees EOF once its input is sent
            container = api.create_container_from_config(spec)
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            return container["Id"], api.attach_socket(container["Id"], params=params)
        except docker.errors.DockerException as exc:
            raise SandboxError(f"cannot create a container: {exc}") from exc

    def _discard(self, attached: _Attached) -> None:
        attached.close()
        task = asyncio.create_task(asyncio.to_thread(self._remove, attached.container_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _remove(self, container_id: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.DockerException):
            self._client.api.remove_container(container_id, force=True)

    async def _take(self, profile: Profile, binds: Binds) -> _Attached:
        if profile == self._profile and not binds and not self._pool.empty():
            attached = self._pool.get_nowait()
            self._refill_wanted.set()
            return attached
        return await self._launch(profile, RUNNER_COMMAND, binds=binds)

    async def run(self, job: Job) -> Result:
        if job.runtime not in self.runtimes:
            raise JobRejected(f"docker cannot run runtime {job.runtime!r}")
        await self.start()
        watch = Stopwatch()
        secret_dir = write_secret_files(job, self._secrets_root)
        try:
            binds = secret_binds(job, secret_dir)
            if job.egress_dir is not None:  # the node's egress proxy socket (a cold container)
                binds[job.egress_dir] = {"bind": EGRESS_MOUNT, "mode": "rw"}
            async with workspace_for(self._workspaces, job) as workspace:
                profile = Profile.of(job.limits, workspace)
                if job.runtime == "image":
                    return await self._run_image(job, watch, profile, binds)
                attached = await self._take(profile, binds)
                try:
                    return await self._exchange(attached, job, watch)
                finally:
                    self._discard(attached)
        finally:
            if secret_dir is not None:
                shutil.rmtree(secret_dir, ignore_errors=True)

    async def _exchange(self, attached: _Attached, job: Job, watch: Stopwatch) -> Result:
        """Send the job frame, then the answer token (read by the runner only after it forked the job)."""
        token = secrets.token_hex(16).encode()
        frame = json.dumps(self._frame(job)).encode()
        attached.writer.write(b"%d\n" % len(frame) + frame + token + b"\n")
        cap = 3 * job.limits.output_bytes + 65536
        try:
            await attached.writer.drain()
            out, err, _ = await asyncio.wait_for(
                _read_frames(attached.reader, cap, token), job.limits.wall_seconds + GRACE_SECONDS
            )
        except (TimeoutError, ConnectionError):
            return Result(-9, "", "", self.name, watch.ms(), timed_out=True, limit="wall")
        return self._decode(answer_line(out, token), err, job, watch)

    @staticmethod
    def _frame(job: Job) -> dict[str, Any]:
        return {
            "runtime": job.runtime,
            "code": job.code,
            "argv": list(job.argv),
            "stdin": job.stdin,
            "env": job_env(job),
            "limits": {
                "cpu_seconds": job.limits.cpu_seconds,
                "wall_seconds": job.limits.wall_seconds,
                "output_bytes": job.limits.output_bytes,
            },
        }

    def _decode(self, line: bytes | None, err: bytes, job: Job, watch: Stopwatch) -> Result:
        try:
            if line is None:
                raise ValueError("no authenticated answer")
            answer = json.loads(line)
            if "error" in answer:
                raise SandboxError(f"runner failed: {answer['error']}")
            stdout, cut_out = decode_output(base64.b64decode(answer["stdout"]), job.limits.output_bytes)
            stderr, cut_err = decode_output(base64.b64decode(answer["stderr"]), job.limits.output_bytes)
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxError(f"bad runner answer ({err[:200]!r})") from exc
        return Result(
            exit_code=int(answer["exit_code"]),
            stdout=stdout,
            stderr=stderr,
            driver=self.name,
            duration_ms=watch.ms(),
            truncated=bool(answer["truncated"]) or cut_out or cut_err,
            timed_out=bool(answer["timed_out"]),
            limit=answer["limit"],
        )

    async def _run_image(self, job: Job, watch: Stopwatch, profile: Profile, binds: Binds) -> Result:
        """A user-defined tool image: cold container running ``job.argv``, stdin then EOF."""
        if not job.image or not job.argv:
            raise JobRejected("an image job needs image and argv")
        attached = await self._launch(profile, list(job.argv), job_env(job), job.image, stdin_once=True, binds=binds)
        group = await self._group_of(attached.container_id)
        watchdog = asyncio.create_task(group.enforce_cpu(job.limits.cpu_seconds)) if group else None
        try:
            attached.writer.write(job.stdin.encode())
            await attached.writer.drain()
            if attached.writer.can_write_eof():
                attached.writer.write_eof()
            cap = job.limits.output_bytes
            out, err, overflow = await asyncio.wait_for(
                _read_frames(attached.reader, cap, None), job.limits.wall_seconds
            )
            code = -9 if overflow else await self._exit_code(attached.container_id)
        except TimeoutError:
            return Result(-9, "", "", self.name, watch.ms(), timed_out=True, limit="wall")
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self._discard(attached)
        stdout, cut_out = decode_output(out, cap)
        stderr, cut_err = decode_output(err, cap)
        truncated = overflow or cut_out or cut_err
        cpu = group is not None and group.cpu_exceeded
        return Result(
            code,
            stdout,
            stderr,
            self.name,
            watch.ms(),
            truncated=truncated,
            limit="cpu" if cpu else ("output" if truncated else None),
        )

    async def _group_of(self, container_id: str) -> Cgroup | None:
        """The container's cgroup on the host, to sum its CPU time (None if it cannot be read)."""
        import docker

        try:
            state = await asyncio.to_thread(self._client.api.inspect_container, container_id)
        except docker.errors.DockerException:
            return None
        pid = int(state.get("State", {}).get("Pid") or 0)
        group = Cgroup.of_process(pid) if pid > 0 else None
        return group if group is not None and group.accounts_cpu else None

    async def _exit_code(self, container_id: str) -> int:
        state = await asyncio.to_thread(self._client.api.wait, container_id, timeout=5)
        return int(state.get("StatusCode", -1))
