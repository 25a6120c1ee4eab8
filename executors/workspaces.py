"""Tenant-scoped, size-capped workspaces that expire: what ``Job.workspace`` names on a node.

Layout under the node's ``workspace_root`` (root's; a sandbox only ever sees a mounted filesystem)::

    workspace_root/            0711  (search only: bwrap, running as uid 65534, binds below it)
      <tenant>/                0711  the job's tenant, or "~" + SHA-256 when it is not path-safe
        .<name>.ext4           0600  sparse ext4 image of ``limits.scratch_mb`` MiB: the size cap
        <name>/                      its mount point (loop, nosuid, nodev); the fs root is uid 65534

Another tenant's job with the same name gets another directory. Names are ``WORKSPACE_NAME``
(checked by ``Job``), so a name is always one path component and never starts with a dot.

**Why a filesystem image per workspace.** The cap is the filesystem's size, so every write past it
fails with ENOSPC for every driver (bwrap binds the mount, Docker bind-mounts it, wasm preopens it),
for any number of files and processes, and it survives node restarts. It costs one ``mkfs.ext4``
(tens of ms) when a workspace is created and one mount while it lives, nothing per job. Rejected:
RLIMIT_FSIZE caps one file, not their sum; counting usage after a job lets the job write past the
limit first; tmpfs keeps the data in RAM; quotas need the host filesystem prepared for them.
The size is fixed when the workspace is created (the creating job's ``scratch_mb``): a later job
never gets more room than that, and a later job with a smaller limit sees the workspace's size.

**Expiry.** The image's mtime is the last use (touched when a job takes and when it returns the
workspace). A sweep every ``sweep_s`` removes workspaces unused for ``ttl_s`` and not in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from executors.drivers.base import SANDBOX_UID
from executors.errors import JobRejected, SandboxError
from executors.localfs import TOOL_ENV, UnsafeDirectory, can_mount, private_dir, run_tool, unmount
from executors.spec import WORKSPACE_NAME, Job

log = logging.getLogger(__name__)
DEFAULT_ROOT = Path("/var/lib/llmops-node/workspaces")
DEFAULT_TTL_S = 3600.0
IMAGE_SUFFIX = ".ext4"
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"
Key = tuple[str, str]  # (tenant directory, workspace name)


def tenant_dir(tenant: str) -> str:
    """The directory name of ``tenant``: itself when path-safe, else ``~`` + its SHA-256 (no clash)."""
    if WORKSPACE_NAME.fullmatch(tenant):
        return tenant
    return "~" + hashlib.sha256(tenant.encode()).hexdigest()[:40]


class Workspaces:
    """The workspaces of one node, shared by its drivers (``start``/``aclose`` are reference-counted)."""

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        sweep_s: float | None = None,
        owner_uid: int = SANDBOX_UID,
    ) -> None:
        self.root = root
        self.ttl_s = ttl_s
        self._sweep_s = sweep_s if sweep_s is not None else max(0.05, min(ttl_s / 2, 60.0))
        self._owner_uid = owner_uid
        self._lock = threading.Lock()
        self._users: Counter[Key] = Counter()
        self._mounted: set[Key] = set()
        self._starts = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._refused = ""  # why the root directory was refused, if it was

    def unavailable_reason(self) -> str:
        missing = [tool for tool in ("mkfs.ext4", "mount") if shutil.which(tool, path=TOOL_ENV["PATH"]) is None]
        return can_mount() or (f"missing {', '.join(missing)}" if missing else "") or self._refused

    async def start(self) -> None:
        """Check the root, begin sweeping. Each ``start`` needs its ``aclose``.

        A root that is not the node's alone (``localfs.private_dir``) turns workspaces off, with the
        reason in every refused job; the drivers keep running jobs without one.
        """
        self._starts += 1
        if self._sweeper is not None or self.unavailable_reason():
            return
        try:
            await asyncio.to_thread(private_dir, self.root, 0o711)
        except UnsafeDirectory as exc:
            self._refused = str(exc)
            log.error("workspaces disabled: %s", exc)
            return
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def aclose(self) -> None:
        """The last ``aclose`` stops the sweep and unmounts what this store mounted and nobody uses."""
        self._starts = max(0, self._starts - 1)
        if self._starts or self._sweeper is None:
            return
        self._sweeper.cancel()
        await asyncio.gather(self._sweeper, return_exceptions=True)
        self._sweeper = None
        await asyncio.to_thread(self._unmount_idle)

    @contextlib.asynccontextmanager
    async def use(self, job: Job) -> AsyncIterator[Path]:
        """The mounted directory of ``job``'s workspace for the ``async with`` block.

        Raises ``JobRejected`` when this node cannot keep workspaces, ``SandboxError`` when creating
        or mounting one fails.
        """
        if job.workspace is None:
            raise JobRejected("the job names no workspace")
        if reason := self.unavailable_reason():
            raise JobRejected(f"this node keeps no workspaces: {reason}")
        key = (tenant_dir(job.tenant), job.workspace)
        path = await asyncio.to_thread(self._acquire, key, job.limits.scratch_mb)
        try:
            yield path
        finally:
            await asyncio.to_thread(self._release, key)

    def path_of(self, tenant: str, name: str) -> Path:
        """Where ``tenant``'s workspace ``name`` is mounted."""
        return self.root / tenant_dir(tenant) / name

    def _image(self, key: Key) -> Path:
        return self.root / key[0] / f".{key[1]}{IMAGE_SUFFIX}"

    def _acquire(self, key: Key, size_mb: int) -> Path:
        mountpoint = self.root / key[0] / key[1]
        with self._lock:
            if not os.path.ismount(mountpoint):
                private_dir(self.root, 0o711)
                private_dir(self.root / key[0], 0o711)
                self._mount(key, mountpoint, size_mb)
            self._users[key] += 1
            os.utime(self._image(key))
        return mountpoint

    def _release(self, key: Key) -> None:
        with self._lock:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
            with contextlib.suppress(FileNotFoundError):
                os.utime(self._image(key))

    def _mount(self, key: Key, mountpoint: Path, size_mb: int) -> None:
        image = self._image(key)
        fresh = not image.exists()
        if fresh:
            self._make_image(image, size_mb)
        with contextlib.suppress(FileExistsError):
            mountpoint.mkdir(mode=0o700)
        run_tool(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(mountpoint)])
        self._mounted.add(key)
        if fresh:  # an empty workspace: no lost+found, only its owner may enter
            (mountpoint / "lost+found").rmdir()
            os.chmod(mountpoint, 0o700)

    def _make_image(self, image: Path, size_mb: int) -> None:
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size_mb * 1024 * 1024)
        finally:
            os.close(fd)
        owner = f"root_owner={self._owner_uid}:{self._owner_uid}"
        try:  # no journal and no reserved blocks: the whole size is the job's
            run_tool(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", owner, str(image)])
        except SandboxError:
            image.unlink(missing_ok=True)
            raise

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                await asyncio.to_thread(self.sweep)
            except (OSError, SandboxError) as exc:  # keep sweeping: the next round retries
                log.warning("workspace sweep failed: %s", exc)

    def sweep(self, now: float | None = None) -> list[Path]:
        """Remove every workspace unused for ``ttl_s`` and not in use; return their paths."""
        now = time.time() if now is None else now
        removed: list[Path] = []
        with self._lock:
            for key in self._on_disk():
                try:
                    idle = now - self._image(key).stat().st_mtime
                except FileNotFoundError:
                    continue
                if idle >= self.ttl_s and not self._users[key]:
                    removed.append(self._remove(key))
            self._remove_empty_tenants()
        return removed

    def _on_disk(self) -> list[Key]:
        keys: list[Key] = []
        with contextlib.suppress(FileNotFoundError):
            for tenant in os.scandir(self.root):
                if tenant.is_dir(follow_symlinks=False):
                    keys += [(tenant.name, n[1 : -len(IMAGE_SUFFIX)]) for n in os.listdir(tenant.path)
                             if n.startswith(".") and n.endswith(IMAGE_SUFFIX)]
        return keys

    def _remove(self, key: Key) -> Path:
        mountpoint = self.root / key[0] / key[1]
        if os.path.ismount(mountpoint):
            unmount(mountpoint)
        self._mounted.discard(key)
        self._image(key).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            mountpoint.rmdir()
        return mountpoint

    def _remove_empty_tenants(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            for tenant in os.scandir(self.root):
                if tenant.is_dir(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(tenant.path)  # only succeeds when empty

    def _unmount_idle(self) -> None:
        with self._lock:
            for key in list(self._mounted):
                mountpoint = self.root / key[0] / key[1]
                if not self._users[key] and os.path.ismount(mountpoint):
                    unmount(mountpoint)
                self._mounted.discard(key)


@contextlib.asynccontextmanager
async def workspace_for(store: Workspaces | None, job: Job) -> AsyncIterator[Path | None]:
    """``job``'s mounted workspace, or ``None`` (the driver's own sized scratch) when it names none
    or the driver keeps no workspaces."""
    if store is None or job.workspace is None:
        yield None
        return
    async with store.use(job) as path:
        yield path
