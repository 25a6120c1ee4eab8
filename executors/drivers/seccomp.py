"""A seccomp deny-list for bubblewrap, compiled to BPF with Debian's ``python3-seccomp``.

The binding lives in the system interpreter (``/usr/bin/python3``), so the filter is exported
once by running that interpreter; bwrap then loads the file with ``--seccomp FD``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"

# Kernel attack surface a tool never needs; denied with EPERM (allow-by-default otherwise).
DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "swapon",
    "swapoff",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    "clock_settime",
    "settimeofday",
    "adjtimex",
    "syslog",
    "vhangup",
    "move_mount",
    "fsopen",
    "fsmount",
    "fsconfig",
    "open_tree",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)

_EXPORT = """
import errno, sys, seccomp
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
for name in sys.argv[2:]:
    try:
        f.add_rule(seccomp.ERRNO(errno.EPERM), name)
    except Exception:
        pass
with open(sys.argv[1], "wb") as out:
    f.export_bpf(out)
"""


def export_bpf(path: Path, python: str = SYSTEM_PYTHON) -> bool:
    """Write the BPF program to ``path``; False if ``python3-seccomp`` is missing."""
    try:
        done = subprocess.run(
            [python, "-I", "-c", _EXPORT, str(path), *DENIED_SYSCALLS],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0 and path.exists() and path.stat().st_size > 0
