"""The bwrap driver's ``mcp_stdio`` jobs: the operator's MCP code directories (checked, read-only, only for
MCP jobs), the bridge as the program, the credential as a file; and ``llmops node --mcp-path`` refusing a bad one."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from executors.drivers.bwrap import BwrapDriver
from executors.drivers.mcp_stdio import check_paths
from executors.errors import ExecutorError, JobRejected
from executors.spec import MCP_TOKEN_SECRET, Grants, Job, Limits
from tests.executors.conftest import require
from tests.executors.test_mcp_bridge import TINY
from tests.support.processes import ROOT, python_module

TOKEN = "tok-in-a-file-5e1a"


@pytest.fixture(scope="module")
def code() -> Iterator[Path]:
    """A directory of MCP server code the sandbox user may read (bwrap binds it as uid 65534)."""
    where = Path(tempfile.mkdtemp(prefix="mcp-code-"))
    where.chmod(0o755)
    shutil.copy(TINY, where / "tiny.py")
    (where / "tiny.py").chmod(0o644)
    yield where
    shutil.rmtree(where)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bwrap(code: Path) -> AsyncIterator[BwrapDriver]:
    driver = BwrapDriver(mcp_paths=[code])
    require(driver)
    async with driver:
        yield driver


def mcp_job(code: Path, op: dict[str, object], grants: Grants | None = None) -> Job:
    return Job(id="mcp-1", tool="mcp:tiny", runtime="mcp_stdio", argv=("/usr/bin/python3", str(code / "tiny.py")),
               stdin=json.dumps({**op, "token_env": "MCP_TOKEN"}), grants=grants or Grants(),
               limits=Limits(wall_seconds=20))


def test_the_operators_directories_are_checked(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "code").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "code")
    assert check_paths([str(tmp_path / "code") + "/"], tmp_path / "ws") == (str(tmp_path / "code"),)
    bad_paths: list[tuple[str | Path, str]] = [
        ("relative/dir", "absolute"), ("/", "absolute directory other than /"),
        (tmp_path / "missing", "not an existing directory"), (tmp_path / "link", "symlinks"),
        ("/proc/sys", "overlaps /proc"), ("/dev", "overlaps /dev"),
        (tmp_path / "ws", "workspace root"), (tmp_path, "workspace root"),
    ]
    for bad, why in bad_paths:
        with pytest.raises(ExecutorError, match=why):
            check_paths([bad], tmp_path / "ws")


def test_a_job_without_a_command_or_with_code_is_refused() -> None:
    with pytest.raises(JobRejected, match="needs the server's argv"):
        Job(id="j", tool="t", runtime="mcp_stdio")
    with pytest.raises(JobRejected, match="no code"):
        Job(id="j", tool="t", runtime="mcp_stdio", argv=("node",), code="print(1)")


def test_the_code_directories_are_bound_read_only_for_mcp_jobs_only(bwrap: BwrapDriver, code: Path) -> None:
    argv = bwrap.argv(mcp_job(code, {"op": "list_tools"}), "/tmp/program")
    where = argv.index(str(code))
    assert argv[where - 1:where + 2] == ["--ro-bind", str(code), str(code)]
    assert argv[argv.index("--") + 1:] == ["/usr/bin/python3", "-I", "-S", "/job/main", "--", "/usr/bin/python3",
                                           str(code / "tiny.py")]
    python = bwrap.argv(Job(id="p", tool="python", runtime="python", code="print(1)"), "/tmp/program")
    assert str(code) not in python


async def test_an_mcp_job_runs_the_server_and_sees_its_code(bwrap: BwrapDriver, code: Path) -> None:
    result = await bwrap.run(mcp_job(code, {"op": "call_tool", "name": "listdir", "arguments": {"path": str(code)}}))
    answer = json.loads(result.stdout)
    assert result.exit_code == 0 and answer["ok"] is True, result
    assert answer["result"]["content"][0]["text"] == "tiny.py"
    assert answer["server"] == {"name": "tiny", "version": "1"}


async def test_a_python_job_does_not_see_the_mcp_code(bwrap: BwrapDriver, code: Path) -> None:
    job = Job(id="p", tool="python", runtime="python", code=f"import os\nprint(os.path.exists({str(code)!r}))")
    result = await bwrap.run(job)
    assert result.exit_code == 0 and result.stdout.strip() == "False"


async def test_the_code_is_read_only_inside(bwrap: BwrapDriver, code: Path) -> None:
    job = mcp_job(code, {"op": "call_tool", "name": "read", "arguments": {"path": str(code / "tiny.py")}})
    assert "def main" in json.loads((await bwrap.run(job)).stdout)["result"]["content"][0]["text"]
    probe = Job(id="w", tool="mcp:w", runtime="mcp_stdio", argv=("/bin/sh", "-c", f"echo x > {code}/new; echo $?"),
                stdin=json.dumps({"op": "list_tools", "timeout_s": 5}))
    answer = json.loads((await bwrap.run(probe)).stdout)
    assert answer["error"] == "garbage" or answer["error"] == "exited"  # the shell is no MCP server ...
    assert not (code / "new").exists()  # ... and could not write the operator's directory


async def test_the_token_reaches_the_server_as_its_env_from_a_file_never_argv(bwrap: BwrapDriver, code: Path) -> None:
    grants = Grants(secrets={MCP_TOKEN_SECRET: TOKEN}, secret_files=(MCP_TOKEN_SECRET,))
    job = mcp_job(code, {"op": "call_tool", "name": "env_sha256", "arguments": {"name": "MCP_TOKEN"}}, grants)
    assert TOKEN not in json.dumps(bwrap.argv(job, "/tmp/program", secrets=[(MCP_TOKEN_SECRET, 99)]))
    answer = json.loads((await bwrap.run(job)).stdout)
    assert answer["result"]["content"][0]["text"] == hashlib.sha256(TOKEN.encode()).hexdigest()


def test_the_node_refuses_a_bad_mcp_path_before_enrolling(tmp_path: Path) -> None:
    run = subprocess.run(python_module("gateway.cli", "node", "--drivers", "bwrap", "--mcp-path", "relative/dir",
                                       "--state-dir", str(tmp_path / "state")),
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 1, run.stderr
    assert "--mcp-path relative/dir: must be an absolute directory" in run.stderr
    assert "not enrolled" not in run.stderr
