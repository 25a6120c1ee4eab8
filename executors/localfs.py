"""Node-local files the node trusts: private directories, sized tmpfs mounts, and the mount syscalls.

Everything a node keeps between jobs (workspaces, the compiled wasm cache) lives in a directory the
node's user owns and nobody else can write. ``private_dir`` creates one or refuses an existing one
that is a symlink, owned by another user, or writable by group or others; its parents are not
trusted for anything but lookup. Mounts go through ``mount(2)``/``umount2(2)`` directly (tens of
microseconds, no ``mount`` process per job).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from executors.errors import SandboxError

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2
TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
_libc = ctypes.CDLL(None, use_errno=True)


class UnsafeDirectory(SandboxError):
    """A node-local state directory is not exclusively the node's (owner, mode or a symlink)."""


def private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` (mode ``mode``) or check an existing one; return it.

    Raises ``UnsafeDirectory`` if it is a symlink or not a directory, belongs to another user, or
    is writable by group or others. An existing safe directory is narrowed to ``mode``.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    fd = open_private_dir(path)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return path


def open_private_dir(path: Path) -> int:
    """An ``O_DIRECTORY|O_NOFOLLOW`` descriptor of ``path`` after the ownership and mode checks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UnsafeDirectory(f"{path}: not a plain directory ({exc.strerror})") from exc
    info = os.fstat(fd)
    problem = ""
    if info.st_uid != os.geteuid():
        problem = f"owned by uid {info.st_uid}, not {os.geteuid()}"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    if problem:
        os.close(fd)
        raise UnsafeDirectory(f"refusing {path}: {problem}")
    return fd


def mount(source: str, target: Path, fstype: str, flags: int, options: str) -> None:
    """``mount(2)``; raises ``SandboxError`` with the errno text."""
    if _libc.mount(source.encode(), os.fsencode(target), fstype.encode(), flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Detach the mount at ``target`` (lazily: a process still inside keeps it until it leaves)."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"umount {target}: {os.strerror(err)}")


def can_mount() -> str:
    """Empty when this process may mount filesystems, else why not."""
    return "" if os.geteuid() == 0 else "mounting a size-capped filesystem needs root"


@contextlib.contextmanager
def sized_tmpfs(target: Path, size_mb: int, uid: int | None = None) -> Iterator[Path]:
    """A fresh tmpfs of ``size_mb`` MiB at ``target`` (created, mode 0700) for the ``with`` block."""
    target.mkdir(mode=0o700)
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={size_mb}m,mode=0700{owner}")
    try:
        yield target
    finally:
        unmount(target)
        target.rmdir()


def chown_tree(top: Path, uid: int) -> None:
    """Give every entry below ``top`` to ``uid``, race-free in a tree a sandbox may be changing.

    ``os.fwalk`` opens each directory ``O_NOFOLLOW`` relative to its parent's descriptor and the
    chown is ``fchownat(..., AT_SYMLINK_NOFOLLOW)`` on a name in that directory, so a swapped-in
    symlink is never followed out of the tree.
    """
    for _, dirs, files, dir_fd in os.fwalk(top, follow_symlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, uid, dir_fd=dir_fd, follow_symlinks=False)


def run_tool(argv: Sequence[str]) -> None:
    """Run a host tool (mkfs, mount) to completion; ``SandboxError`` with its stderr if it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=TOOL_ENV)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise SandboxError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[:300]}")
