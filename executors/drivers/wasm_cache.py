"""The on-disk cache of compiled wasm modules: node-local state, owned by the node and checked before use.

Loading a compiled artifact runs its native code in the node, so the cache is never in a shared
place and nothing in it is trusted on sight:

- the directory (default ``/var/cache/llmops-node/wasm``) is created 0700, or used only if it is a
  real directory of the node's user that group and others cannot write (``localfs.private_dir``);
  otherwise the cache is off and modules are compiled in memory;
- ``<stem>-<source sha256>-wasmtime<version>.cwasm`` sits beside ``<same>.sha256``, the SHA-256 of
  the artifact as written; both are opened with ``O_NOFOLLOW`` relative to the checked directory's
  descriptor, must be regular files of the node's user not writable by others, and the artifact is
  deserialized from the bytes just hashed (no second open, no window to swap the file);
- a write goes to ``<name>.tmp`` opened ``O_CREAT|O_EXCL|O_NOFOLLOW`` (a stale file or a symlink
  there is unlinked, never followed), is fsynced, then renamed over the name.

A missing, foreign or mismatching entry is recompiled and rewritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from executors.errors import SandboxError
from executors.localfs import open_private_dir, private_dir

log = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = Path("/var/cache/llmops-node/wasm")
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def entry_name(source: bytes, stem: str, version: str) -> str:
    """The cache file name of ``source`` compiled by wasmtime ``version``."""
    return f"{stem}-{hashlib.sha256(source).hexdigest()[:32]}-wasmtime{version}.cwasm"


class ModuleCache:
    """Compiled modules on disk in ``directory``; ``load(engine, path, version)`` is the one entry."""

    def __init__(self, directory: Path = DEFAULT_CACHE_DIR) -> None:
        self.directory = directory

    def load(self, engine: Any, path: Path, version: str) -> Any:
        """The compiled module of the wasm file ``path``: from a verified cache entry, else compiled."""
        import wasmtime

        source = path.read_bytes()
        name = entry_name(source, path.stem, version)
        with self._dir() as dir_fd:
            data = _read_verified(dir_fd, name) if dir_fd is not None else None
            if data is not None:
                with contextlib.suppress(wasmtime.WasmtimeError):
                    return wasmtime.Module.deserialize(engine, data)
                log.warning("wasm cache entry %s does not deserialize: recompiling", name)
            module = wasmtime.Module(engine, source)
            if dir_fd is not None:
                _store(dir_fd, name, bytes(module.serialize()))
        return module

    @contextlib.contextmanager
    def _dir(self) -> Iterator[int | None]:
        try:
            private_dir(self.directory, 0o700)
            fd: int | None = open_private_dir(self.directory)
        except (OSError, SandboxError) as exc:
            log.warning("wasm module cache disabled: %s", exc)
            fd = None
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)


def _read_private(dir_fd: int, name: str) -> bytes | None:
    """The bytes of ``name`` if it is a regular file of ours that others cannot write, else None."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError:  # missing, or a symlink (ELOOP)
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
            log.warning("wasm cache entry %s is not the node's own file: ignored", name)
            return None
        return handle.read()


def _read_verified(dir_fd: int, name: str) -> bytes | None:
    artifact = _read_private(dir_fd, name)
    recorded = _read_private(dir_fd, name + ".sha256")
    if artifact is None or recorded is None:
        return None
    if not hmac.compare_digest(hashlib.sha256(artifact).hexdigest().encode(), recorded.strip()):
        log.warning("wasm cache entry %s does not match its recorded SHA-256: recompiling", name)
        return None
    return artifact


def _store(dir_fd: int, name: str, artifact: bytes) -> None:
    """Write the artifact, then its hash; a failure leaves the cache without the entry."""
    try:
        _write_atomic(dir_fd, name, artifact)
        _write_atomic(dir_fd, name + ".sha256", hashlib.sha256(artifact).hexdigest().encode() + b"\n")
    except OSError as exc:
        log.warning("cannot write wasm cache entry %s: %s", name, exc)


def _write_atomic(dir_fd: int, name: str, data: bytes) -> None:
    partial = name + ".tmp"
    try:
        fd = os.open(partial, _CREATE, 0o600, dir_fd=dir_fd)
    except FileExistsError:  # a leftover or a planted symlink: remove the link itself, then create
        os.unlink(partial, dir_fd=dir_fd)
        fd = os.open(partial, _CREATE, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=dir_fd)
        raise
