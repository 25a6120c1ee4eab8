"""The per-job cgroup, cgroup v1 and v2, each run for real where the kernel allows it.

This host mounts cgroup v1 controllers and a cgroup2 hierarchy (hybrid). v1 is tested on the host's
own hierarchies. v2 is tested on a cgroup2 filesystem mounted in a private mount namespace
(``unshare -m``): CPU-time accounting (``cpu.stat``), the budget kill (``cgroup.kill``) and cleanup
run for real. A controller the kernel has bound to a v1 hierarchy cannot be enabled in v2, so
on a hybrid host ``cpu.max``, ``memory.max`` and ``pids.max`` are absent in the real v2 group; the
v2 file-writing logic is then checked against a directory that mimics the v2 interface (labelled
MIMIC below).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from executors.drivers.cgroup import GROUP, ROOT, Cgroup, cgroup_version

SPIN = [sys.executable, "-c", "while True: pass"]


def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("cgroups need root")


@pytest.mark.asyncio(loop_scope="session")
async def test_v1_group_caps_the_rate_and_kills_at_the_summed_budget() -> None:
    _root_only()
    if cgroup_version() != 1:
        pytest.skip("the host does not run cgroup v1 (v2 is tested below)")
    group = Cgroup.create(1, f"t-{secrets.token_hex(4)}", 64, 16, cpus=0.5)
    try:
        assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (group.dirs["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert group.accounts_cpu
        spinners = [subprocess.Popen(SPIN, preexec_fn=group.join) for _ in range(2)]
        await asyncio.wait_for(group.enforce_cpu(0.4), 20)
        codes = [p.wait(5) for p in spinners]
        assert codes == [-9, -9]
        assert 0.4 <= group.cpu_seconds() < 0.8
        assert group.limit_hit() == "cpu"
    finally:
        group.destroy()
    assert not group.dirs["cpu"].exists()


V2_SCRIPT = """
import asyncio, json, subprocess, sys
from pathlib import Path
from executors.drivers.cgroup import Cgroup, cgroup_version
root = Path(sys.argv[1])
group = Cgroup.create(2, sys.argv[2], 64, 16, root, cpus=0.5)
spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=group.join) for _ in range(2)]
asyncio.run(asyncio.wait_for(group.enforce_cpu(0.3), 20))
report = {
    "version": cgroup_version(root),
    "codes": [p.wait(5) for p in spinners],
    "used": group.cpu_seconds(),
    "limit": group.limit_hit(),
    "controllers": (root / "cgroup.controllers").read_text().split(),
    "files": sorted(p.name for p in group.dirs["pids"].iterdir()),
}
group.destroy()
report["removed"] = not group.dirs["pids"].exists()
print(json.dumps(report))
"""


def test_v2_group_accounts_and_kills_for_real_in_a_private_cgroup2_mount(tmp_path: Path) -> None:
    _root_only()
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    mount = tmp_path / "cgroup2"
    mount.mkdir()
    name = f"t-{secrets.token_hex(4)}"
    shell = 'mount -t cgroup2 none "$1" && exec "$2" -c "$3" "$1" "$4"'
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", shell, "sh", str(mount), sys.executable,
         V2_SCRIPT, name],
        capture_output=True, text=True, timeout=60, check=False, cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == 2
    assert report["codes"] == [-9, -9]
    assert 0.3 <= report["used"] < 0.8
    assert report["limit"] == "cpu"
    assert {"cgroup.kill", "cpu.stat", "cgroup.procs"} <= set(report["files"])
    assert report["removed"]
    if "cpu" in report["controllers"]:  # a pure v2 host: the rate cap is real too
        assert "cpu.max" in report["files"]


def test_v2_limit_files_are_written_MIMIC(tmp_path: Path) -> None:
    """MIMIC: a plain directory shaped like a cgroup2 root, to check what the v2 path writes."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroup_version(tmp_path) == 2
    group = Cgroup.create(2, "job-1", 128, 32, tmp_path, cpus=1.5)
    directory = tmp_path / GROUP / "job-1"
    assert group.dirs == {c: directory for c in ("memory", "pids", "cpu", "cpuacct")}
    assert (directory / "memory.max").read_text() == str(128 * 1024 * 1024)
    assert (directory / "memory.swap.max").read_text() == "0"
    assert (directory / "pids.max").read_text() == "32"
    assert (directory / "cpu.max").read_text() == "150000 100000"
    (directory / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    assert group.accounts_cpu and group.cpu_seconds() == 2.5
    (directory / "memory.events").write_text("oom 0\noom_kill 1\n")
    assert group.limit_hit() == "memory"


def test_version_detection_MIMIC(tmp_path: Path) -> None:
    """MIMIC: v1 is per-controller directories; anything else is unusable."""
    assert cgroup_version(tmp_path) is None
    for controller in ("memory", "pids"):
        (tmp_path / controller).mkdir()
    assert cgroup_version(tmp_path) == 1
    assert ROOT == Path("/sys/fs/cgroup")
