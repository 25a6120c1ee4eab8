"""Workspaces are tenant-scoped, size-capped for every driver, expire, and have strict names.

The driver tests run the same attack on bwrap, Docker and wasm (missing prerequisites skip locally
and fail on CI, as in ``conftest.py``): another tenant using the same workspace name, and a job
writing past ``limits.scratch_mb`` in many files (so a per-file cap alone would not hold).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from executors.drivers import load_driver
from executors.drivers.base import SANDBOX_UID, SandboxDriver
from executors.errors import JobRejected
from executors.localfs import chown_tree, unmount
from executors.node.agent import NodeAgent
from executors.node.app import create_app
from executors.node.identity import NodeIdentity
from executors.signing import CONTROL_PLANE, audience, sign
from executors.spec import Job, Limits, Result, job_from_dict
from executors.workspaces import Workspaces, tenant_dir
from tests.executors.conftest import DRIVER_NAMES, require

MIB = 1024 * 1024
SCRATCH_MB = 16
FILL = f"""
import os
written = 0
try:
    for i in range(20):  # 20 files of 4 MiB: 80 MiB asked, {SCRATCH_MB} MiB allowed
        with open("/scratch/fill-%d" % i, "wb") as f:
            for _ in range(4):
                f.write(b"x" * {MIB})
                written += {MIB}
except OSError as exc:
    print("STOPPED", exc.errno)
total = sum(os.stat("/scratch/" + n).st_size for n in os.listdir("/scratch") if n.startswith("fill-"))
print("TOTAL", total)
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def workspace_root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="llmops-ws-test-"))  # not under pytest's 0700 tmp: bwrap runs as 65534
    base.chmod(0o711)
    yield base / "workspaces"
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        target = line.split()[1]
        if target.startswith(str(base)):
            unmount(Path(target))
    shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=DRIVER_NAMES)
async def ws_driver(
    request: pytest.FixtureRequest, workspace_root: Path
) -> AsyncIterator[tuple[SandboxDriver, Workspaces]]:
    store = Workspaces(workspace_root / request.param)
    options: dict[str, object] = {"workspaces": store}
    if request.param == "docker":
        options["pool_size"] = 0
    instance = load_driver(request.param, **options)
    require(instance)
    async with instance:
        yield instance, store


async def python(
    driver: SandboxDriver, code: str, *, tenant: str = "default", workspace: str | None = None, scratch_mb: int = 64
) -> Result:
    job = Job(
        id=unique("ws"), tool="python", runtime="python", code=code, tenant=tenant, workspace=workspace,
        limits=Limits(scratch_mb=scratch_mb, wall_seconds=60, cpu_seconds=20),
    )
    return await driver.run(job)


LOOK = """
import os
print("LIST", sorted(os.listdir("/scratch")))
try:
    print("READ", open("/scratch/note.txt").read())
except OSError as exc:
    print("NOREAD", type(exc).__name__)
"""


@pytest.mark.asyncio(loop_scope="session")
async def test_another_tenant_with_the_same_name_cannot_list_read_or_overwrite(
    ws_driver: tuple[SandboxDriver, Workspaces],
) -> None:
    driver, store = ws_driver
    name = unique("shared")
    wrote = await python(driver, "open('/scratch/note.txt', 'w').write('acme-only')", tenant="acme", workspace=name)
    assert wrote.exit_code == 0, wrote

    other = await python(driver, LOOK + "open('/scratch/note.txt', 'w').write('globex')", tenant="globex",
                         workspace=name)
    assert other.exit_code == 0, other
    assert "LIST []" in other.stdout and "NOREAD" in other.stdout and "acme-only" not in other.stdout

    again = await python(driver, LOOK, tenant="acme", workspace=name)
    assert "LIST ['note.txt']" in again.stdout and "READ acme-only" in again.stdout, again
    assert store.path_of("acme", name) != store.path_of("globex", name)
    assert store.path_of("acme", name).parent.name == "acme"
    assert (store.path_of("acme", name) / "note.txt").stat().st_uid == SANDBOX_UID  # whichever driver wrote it


@pytest.mark.asyncio(loop_scope="session")
async def test_workspace_writes_stop_at_scratch_mb(ws_driver: tuple[SandboxDriver, Workspaces]) -> None:
    driver, _ = ws_driver
    name = unique("big")
    result = await python(driver, FILL, workspace=name, scratch_mb=SCRATCH_MB)
    assert "STOPPED" in result.stdout, result
    total = int(result.stdout.split("TOTAL")[1].split()[0])
    assert SCRATCH_MB * MIB // 2 < total <= SCRATCH_MB * MIB, result.stdout
    kept = await python(driver, "import os; print(len(os.listdir('/scratch')))", workspace=name,
                        scratch_mb=SCRATCH_MB)
    assert int(kept.stdout.strip()) > 0, kept  # the same (persistent, capped) workspace, not a fresh tmpfs


@pytest.mark.asyncio(loop_scope="session")
async def test_scratch_writes_stop_at_scratch_mb(ws_driver: tuple[SandboxDriver, Workspaces]) -> None:
    driver, _ = ws_driver
    result = await python(driver, FILL, scratch_mb=SCRATCH_MB)
    assert "STOPPED" in result.stdout, result
    assert int(result.stdout.split("TOTAL")[1].split()[0]) <= SCRATCH_MB * MIB, result.stdout


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "a.b", "x" * 65, "", "sp ace", "é"])
def test_invalid_workspace_names_are_rejected_by_the_node(name: str) -> None:
    with pytest.raises(JobRejected, match="workspace"):
        job_from_dict({"id": "j", "tool": "python", "runtime": "python", "code": "1", "workspace": name})


def test_jobs_carry_their_tenant_over_the_wire() -> None:
    job = job_from_dict({"id": "j", "tool": "python", "runtime": "python", "tenant": "acme", "workspace": "w-1"})
    assert (job.tenant, job.workspace) == ("acme", "w-1")
    assert job_from_dict({"id": "j", "tool": "python", "runtime": "python"}).tenant == "default"


async def test_the_node_answers_a_bad_workspace_name_with_400(tmp_path: Path) -> None:
    control_plane = Ed25519PrivateKey.generate()
    identity = NodeIdentity("n", Ed25519PrivateKey.generate(), control_plane.public_key(),
                            tmp_path / "cert.pem", tmp_path / "key.pem")
    app = create_app(NodeAgent("n", []), identity=identity, boot="b1")
    body = json.dumps({"id": "j", "tool": "python", "runtime": "python", "code": "1", "workspace": "x" * 200})
    headers = sign(control_plane, "POST", "/v1/jobs", body.encode(), signer=CONTROL_PLANE,
                   audience=audience("n", "b1"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node") as client:
        response = await client.post("/v1/jobs", content=body, headers=headers)
    assert response.status_code == 400 and "workspace" in response.json()["error"]


def test_tenant_directories_are_one_safe_component() -> None:
    assert tenant_dir("acme") == "acme"
    for odd in ("../..", "a/b", ".", "acme corp", "x" * 300):
        mapped = tenant_dir(odd)
        assert mapped.startswith("~") and "/" not in mapped and len(mapped) <= 64
    assert tenant_dir("a/b") != tenant_dir("a_b")


@pytest.fixture
def store_root() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="llmops-ws-ttl-"))
    yield base / "ws"
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        if line.split()[1].startswith(str(base)):
            unmount(Path(line.split()[1]))
    shutil.rmtree(base, ignore_errors=True)


def skip_unless_mountable(store: Workspaces) -> None:
    if store.unavailable_reason():
        pytest.skip(store.unavailable_reason())


def ws_job(name: str, tenant: str = "acme") -> Job:
    return Job(id=unique("ttl"), tool="python", runtime="python", tenant=tenant, workspace=name,
               limits=Limits(scratch_mb=8))


async def test_idle_workspaces_are_swept_after_the_ttl(store_root: Path) -> None:
    store = Workspaces(store_root, ttl_s=0.5, sweep_s=0.1)
    skip_unless_mountable(store)
    await store.start()
    try:
        async with store.use(ws_job("old")) as path:
            (path / "data").write_text("x")
            assert os.path.ismount(path)
        for _ in range(100):
            if not (store_root / "acme").exists():  # removed last, once its workspaces are gone
                break
            await asyncio.sleep(0.05)
        assert not path.exists() and not os.path.ismount(path)
        assert not (store_root / "acme").exists()
    finally:
        await store.aclose()


async def test_a_workspace_in_use_is_not_swept_and_use_renews_it(store_root: Path) -> None:
    store = Workspaces(store_root, ttl_s=0.3, sweep_s=3600)
    skip_unless_mountable(store)
    await store.start()
    try:
        async with store.use(ws_job("busy")) as path:
            await asyncio.sleep(0.4)
            assert store.sweep() == [] and os.path.ismount(path)
        assert store.sweep() == []  # returning it counts as a use
        await asyncio.sleep(0.4)
        assert store.sweep() == [path] and not path.exists()
    finally:
        await store.aclose()


async def test_a_workspace_keeps_the_size_it_was_created_with(store_root: Path) -> None:
    store = Workspaces(store_root)
    skip_unless_mountable(store)
    await store.start()
    try:
        async with store.use(ws_job("sized")) as path:
            usable = shutil.disk_usage(path).total
        assert 6 * MIB < usable <= 8 * MIB
        assert (path.parent / ".sized.ext4").stat().st_mode & 0o777 == 0o600
        assert (store_root.stat().st_mode & 0o777) == 0o711
    finally:
        await store.aclose()
    assert not os.path.ismount(path)  # closing the store unmounts what it mounted


def test_chown_tree_never_follows_a_symlink_out_of_the_tree(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("host file")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    (tree / "link").symlink_to(victim)
    (tree / "dirlink").symlink_to(tmp_path)
    chown_tree(tree, SANDBOX_UID)
    assert victim.stat().st_uid == os.geteuid() and tmp_path.stat().st_uid == os.geteuid()
    assert (tree / "sub" / "file").stat().st_uid == SANDBOX_UID and (tree / "sub").stat().st_uid == SANDBOX_UID
    assert (tree / "link").lstat().st_uid == SANDBOX_UID


async def test_a_workspace_root_others_can_write_is_refused(store_root: Path) -> None:
    store_root.mkdir(parents=True)
    store_root.chmod(0o777)
    store = Workspaces(store_root)
    skip_unless_mountable(store)
    await store.start()
    try:
        with pytest.raises(JobRejected, match="writable by group or others"):
            async with store.use(ws_job("planted")):
                pass
        assert list(store_root.iterdir()) == []
    finally:
        await store.aclose()
