"""The containment suite, run against every driver (bwrap, docker, wasm).

Each attack is Python code that prints ``RAN`` first (so a pass is never vacuous) and ``ESCAPED``
only if containment failed. Drivers whose prerequisite is missing skip locally and fail on CI.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from executors.drivers.base import SandboxDriver
from executors.spec import Grants, Job, Limits, Result

pytestmark = pytest.mark.asyncio(loop_scope="session")

ATTEMPT = """
print("RAN", flush=True)
def attempt(label, action):
    try:
        action()
    except BaseException as exc:
        print("denied", label, type(exc).__name__)
        return
    print("ESCAPED", label)
"""


async def run(driver: SandboxDriver, code: str, **limits: float) -> Result:
    job = Job(
        id=f"sec-{secrets.token_hex(4)}",
        tool="python",
        runtime="python",
        code=ATTEMPT + code,
        limits=Limits(**limits) if limits else Limits(wall_seconds=20),  # type: ignore[arg-type]
    )
    return await driver.run(job)


def contained(result: Result) -> None:
    assert "RAN" in result.stdout, result
    assert "ESCAPED" not in result.stdout, result.stdout


@pytest.fixture
def host_secret(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    value = f"host-secret-{secrets.token_hex(8)}"
    path = Path("/tmp") / f"llmops-host-secret-{secrets.token_hex(4)}"
    path.write_text(value)
    yield path, value
    path.unlink()


async def test_host_files_and_secrets_are_unreadable(
    driver: SandboxDriver, host_secret: tuple[Path, str]
) -> None:
    path, value = host_secret
    result = await run(
        driver,
        f"""
for target in ("/etc/shadow", {str(path)!r}, "/root/.bash_history", "/etc/passwd-", "/var/run/secrets/x"):
    attempt("read " + target, lambda: open(target).read())
""",
    )
    contained(result)
    assert value not in result.stdout and "root:" not in result.stdout


async def test_writes_outside_scratch_fail(driver: SandboxDriver) -> None:
    result = await run(
        driver,
        """
for target in ("/x", "/usr/x", "/etc/x", "/tmp/x", "/bin/x", "/opt/x"):
    attempt("write " + target, lambda: open(target, "w").write("pwned"))
open("/scratch/ok", "w").write("ok")
print("SCRATCH", open("/scratch/ok").read())
""",
    )
    contained(result)
    assert "SCRATCH ok" in result.stdout


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


async def test_no_network_egress(driver: SandboxDriver, listener: tuple[int, list[object]]) -> None:
    port, accepted = listener
    result = await run(
        driver,
        f"""
import socket
attempt("tcp loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
""",
    )
    contained(result)
    assert accepted == []


async def test_no_dns_or_route_to_private_ranges(driver: SandboxDriver) -> None:
    # UDP connect() only picks a route: it sends nothing, so a broken sandbox leaks no packet.
    result = await run(
        driver,
        """
import socket
def udp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, 53))
for host in ("10.0.0.53", "192.168.0.1", "169.254.169.254"):
    attempt("route " + host, lambda: udp(host))
attempt("resolve", lambda: socket.getaddrinfo("metadata.google.internal", 80))
""",
    )
    contained(result)


async def test_fork_bomb_is_contained(driver: SandboxDriver) -> None:
    result = await run(
        driver,
        """
import os
children = 0
try:
    while True:
        try:
            if os.fork() == 0:
                while True:
                    pass
            children += 1
        except BlockingIOError:
            pass
except AttributeError:
    print("no fork here")
""",
        wall_seconds=4,
        cpu_seconds=2,
        pids=16,
    )
    assert "RAN" in result.stdout
    assert result.duration_ms < 20_000
    assert "no fork here" in result.stdout or (
        result.exit_code != 0 and result.limit in ("pids", "cpu", "wall")
    )


async def test_memory_bomb_is_killed(driver: SandboxDriver) -> None:
    result = await run(
        driver,
        """
chunks = []
for _ in range(64):
    chunks.append(bytearray(32 * 1024 * 1024))
print("ESCAPED allocated 2 GiB")
""",
        memory_mb=128,
        wall_seconds=20,
    )
    contained(result)
    assert result.exit_code != 0
    assert result.limit == "memory", result


async def test_cpu_spin_is_killed_at_the_limit(driver: SandboxDriver) -> None:
    result = await run(driver, "while True:\n    pass\n", cpu_seconds=1, wall_seconds=15)
    assert result.exit_code != 0
    assert result.limit in ("cpu", "wall")
    assert result.duration_ms < 10_000


async def test_no_privilege_escalation(driver: SandboxDriver) -> None:
    result = await run(
        driver,
        """
import os
if hasattr(os, "setuid"):
    attempt("setuid", lambda: os.setuid(0))
    attempt("setgid", lambda: os.setgid(0))
    print("uid", os.getuid())
    assert os.getuid() != 0, "ESCAPED root"
try:
    status = open("/proc/self/status").read()
except OSError:
    status = ""
for line in status.splitlines():
    if line.startswith("CapEff:") and int(line.split()[1], 16) != 0:
        print("ESCAPED caps", line)
    if line.startswith("NoNewPrivs:") and line.split()[1] != "1":
        print("ESCAPED new privs allowed")
""",
    )
    contained(result)


async def test_docker_socket_is_unreachable(driver: SandboxDriver) -> None:
    result = await run(
        driver,
        """
import socket
def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
for path in ("/var/run/docker.sock", "/run/docker.sock"):
    attempt("docker socket " + path, lambda: connect(path))
""",
    )
    contained(result)


async def test_environment_does_not_leak(driver: SandboxDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv("LLMOPS_NODE_SECRET", canary)
    monkeypatch.setenv("HOST_CANARY", canary)
    result = await run(driver, "import os\nprint(sorted(os.environ.items()))\n")
    contained(result)
    assert canary not in result.stdout
    assert "LLMOPS_NODE_SECRET" not in result.stdout and "HOST_CANARY" not in result.stdout


async def test_granted_secret_never_enters_the_environment(driver: SandboxDriver) -> None:
    # Secrets stay with the node (its broker); tests/executors/test_secrets_in_sandbox.py has the
    # host-wide /proc and docker-inspect scans and the explicit file mode.
    code = "import os\nprint('KEY=' + os.environ.get('API_KEY', 'absent'), sorted(os.environ.values()))\n"
    granted = Job(
        id="g", tool="python", runtime="python", code=code, grants=Grants(secrets={"API_KEY": "v-123456789"})
    )
    stdout = (await driver.run(granted)).stdout
    assert "KEY=absent" in stdout and "v-123456789" not in stdout


async def test_output_is_capped(driver: SandboxDriver) -> None:
    result = await run(driver, "print('x' * 100000)\n", output_bytes=1000, wall_seconds=20)
    assert result.truncated and len(result.stdout) <= 1000
