"""Containers through the Docker Engine API, with a warm pool of single-use containers.

Every container is hardened: ``cap_drop=ALL``, ``no-new-privileges``, read-only rootfs, a sized
tmpfs at /scratch, pids/memory/CPU limits, ``network_mode=none``, ``ipc_mode=none``, uid 65534,
Docker's default seccomp profile, no log driver (outputs never land in container logs). A warm
container runs the runner (``docker_runner.py``) blocked on its attached stdin; a job is one JSON
line in and one JSON line out over that socket, so no ``docker exec`` is paid. Each container
serves one job and is then removed, while the pool refills in the background. Jobs whose limits
differ from the pool's profile get a cold container with exactly their limits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from executors.drivers.base import SANDBOX_UID, SCRATCH, SandboxDriver, Stopwatch, decode_output, job_env
from executors.drivers.docker_image import RUNNER_PATH, build_image, image_tag
from executors.errors import DriverUnavailable, JobRejected, SandboxError
from executors.spec import Job, Limits, Result
from executors.workspaces import Workspaces, workspace_for

log = logging.getLogger(__name__)
SOCKET = "/var/run/docker.sock"
LABEL = "llmops.sandbox"
GRACE_SECONDS = 5.0
RUNNER_COMMAND = ["/usr/bin/python3", "-I", RUNNER_PATH]


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
    reader: asyncio.StreamReader, cap: int, until_newline: bool
) -> tuple[bytes, bytes, bool]:
    """Demultiplex Docker's attach stream into (stdout, stderr, overflow); stop at EOF or a stdout newline."""
    streams = {1: bytearray(), 2: bytearray()}
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            break
        payload = await reader.readexactly(int.from_bytes(header[4:8], "big"))
        buffer = streams.get(header[0], streams[2])
        if len(buffer) <= cap:
            buffer += payload
        if len(streams[1]) + len(streams[2]) > 2 * cap:
            return bytes(streams[1]), bytes(streams[2]), True
        if until_newline and b"\n" in streams[1]:
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
    ) -> None:
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
    ) -> _Attached:
        """Create, attach to and start a hardened container (``stdin_once``: EOF after the first input)."""
        created = await asyncio.to_thread(
            self._create, profile, command, env or {}, image or self._image, stdin_once
        )
        container_id, wrapper = created
        raw = wrapper._sock
        reader, writer = await asyncio.open_unix_connection(sock=raw)
        await asyncio.to_thread(self._client.api.start, container_id)
        return _Attached(container_id, reader, writer, wrapper)

    def _create(
        self, profile: Profile, command: list[str], env: dict[str, str], image: str, stdin_once: bool
    ) -> tuple[str, Any]:
        import docker

        api = self._client.api
        try:
            config = api.create_host_config(**host_config(profile, self._cpus))
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

    async def _take(self, profile: Profile) -> _Attached:
        if profile == self._profile and not self._pool.empty():
            attached = self._pool.get_nowait()
            self._refill_wanted.set()
            return attached
        return await self._launch(profile, RUNNER_COMMAND)

    async def run(self, job: Job) -> Result:
        if job.runtime not in self.runtimes:
            raise JobRejected(f"docker cannot run runtime {job.runtime!r}")
        await self.start()
        watch = Stopwatch()
        async with workspace_for(self._workspaces, job) as workspace:
            profile = Profile.of(job.limits, workspace)
            if job.runtime == "image":
                return await self._run_image(job, watch, profile)
            attached = await self._take(profile)
            try:
                return await self._exchange(attached, job, watch)
            finally:
                self._discard(attached)

    async def _exchange(self, attached: _Attached, job: Job, watch: Stopwatch) -> Result:
        frame = {
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
        attached.writer.write(json.dumps(frame).encode() + b"\n")
        cap = 3 * job.limits.output_bytes + 65536
        try:
            await attached.writer.drain()
            out, err, _ = await asyncio.wait_for(
                _read_frames(attached.reader, cap, True), job.limits.wall_seconds + GRACE_SECONDS
            )
        except (TimeoutError, ConnectionError):
            return Result(-9, "", "", self.name, watch.ms(), timed_out=True, limit="wall")
        return self._decode(out, err, job, watch)

    def _decode(self, out: bytes, err: bytes, job: Job, watch: Stopwatch) -> Result:
        try:
            answer = json.loads(out.split(b"\n", 1)[0])
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

    async def _run_image(self, job: Job, watch: Stopwatch, profile: Profile) -> Result:
        """A user-defined tool image: cold container running ``job.argv``, stdin then EOF."""
        if not job.image or not job.argv:
            raise JobRejected("an image job needs image and argv")
        attached = await self._launch(profile, list(job.argv), job_env(job), job.image, stdin_once=True)
        try:
            attached.writer.write(job.stdin.encode())
            await attached.writer.drain()
            if attached.writer.can_write_eof():
                attached.writer.write_eof()
            cap = job.limits.output_bytes
            out, err, overflow = await asyncio.wait_for(
                _read_frames(attached.reader, cap, False), job.limits.wall_seconds
            )
            state = await asyncio.to_thread(self._client.api.wait, attached.container_id, timeout=5)
        except TimeoutError:
            return Result(-9, "", "", self.name, watch.ms(), timed_out=True, limit="wall")
        finally:
            self._discard(attached)
        stdout, cut_out = decode_output(out, cap)
        stderr, cut_err = decode_output(err, cap)
        truncated = overflow or cut_out or cut_err
        return Result(
            int(state.get("StatusCode", -1)),
            stdout,
            stderr,
            self.name,
            watch.ms(),
            truncated=truncated,
            limit="output" if truncated else None,
        )
