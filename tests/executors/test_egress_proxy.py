"""HTTP from inside a sandbox goes through the node's egress proxy: the granted host is reached with the
brokered credential injected by the node, a host outside the grant is refused, and the credential is
nowhere the sandbox can look (its environment, its files, /proc). bwrap and Docker; wasm has no sockets."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from executors.drivers.base import SandboxDriver
from executors.node.agent import NodeAgent
from executors.spec import BrokeredSecret, Grants, Job, Limits
from tests.support.bearer_service import BearerService, bearer_service

TOKEN = "tok-proxy-" + secrets.token_hex(12)
ANSWER = "hello-from-behind-the-proxy"

CODE = r'''
import os, socket

def get(host, path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["LLMOPS_EGRESS_SOCKET"])
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Llmops-Scheme: http\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data.decode()
        data += chunk

print("GRANTED", get("127.0.0.1:PORT", "/data").split("\r\n\r\n", 1)[1])
print("REFUSED", get("10.1.2.3:80", "/x").split("\r\n")[0])
marker = MARKER
places = {"env": "\n".join(os.environ.values())}
for pid in ("self", "1"):
    for name in ("environ", "cmdline"):
        try:
            places[f"/proc/{pid}/{name}"] = open(f"/proc/{pid}/{name}", "rb").read().decode(errors="replace")
        except OSError:
            pass
for top in ("/run", "/scratch", "/tmp", "/etc"):
    for root, _, files in os.walk(top):
        for f in files:
            try:
                places[os.path.join(root, f)] = open(os.path.join(root, f), "rb").read(1 << 20).decode(errors="replace")
            except OSError:
                pass
print("LEAKS", [where for where, text in places.items() if marker in text])
'''



@pytest.fixture(scope="module")
def service() -> Iterator[BearerService]:
    with bearer_service(TOKEN, ANSWER) as running:
        yield running


def proxied_job(port: int) -> Job:
    secret = BrokeredSecret(value=TOKEN, hosts=("127.0.0.1/32",), header="Authorization", format="Bearer {value}")
    code = CODE.replace("PORT", str(port)).replace("MARKER", repr(TOKEN[4:20]))
    return Job(id="proxy-" + secrets.token_hex(4), tool="fetcher", runtime="python", code=code,
               limits=Limits(wall_seconds=30), grants=Grants(egress=("127.0.0.1/32",), brokered={"SVC": secret}))


async def test_the_sandbox_reaches_its_grant_through_the_proxy_and_never_holds_the_token(
    process_driver: SandboxDriver, service: BearerService
) -> None:
    agent = NodeAgent("n", [process_driver])
    await agent.start()
    result = await agent.run(proxied_job(service.port))
    assert result.exit_code == 0, result
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["GRANTED"] == ANSWER, result.stdout
    assert lines["REFUSED"].startswith("HTTP/1.1 403"), result.stdout
    assert lines["LEAKS"] == "[]", result.stdout
    assert f"Bearer {TOKEN}" in service.seen and TOKEN not in result.stdout + result.stderr


async def test_without_an_egress_grant_there_is_no_proxy(process_driver: SandboxDriver) -> None:
    agent = NodeAgent("n", [process_driver])
    await agent.start()
    code = "import os; print('SOCKET', os.environ.get('LLMOPS_EGRESS_SOCKET'), os.path.exists('/run/llmops'))"
    result = await agent.run(Job(id="noproxy", tool="python", runtime="python", code=code))
    assert "SOCKET None False" in result.stdout, result


async def test_redaction_cannot_push_output_past_its_cap() -> None:
    """``[REDACTED:LONG_NAME]`` is longer than the 8-character secret it replaces: the node caps again."""
    from executors.spec import Result

    class Echo(SandboxDriver):
        name = "bwrap"
        runtimes = frozenset({"python"})

        def available(self) -> bool:
            return True

        async def run(self, job: Job) -> Result:
            return Result(0, "s3cr3t!!" * 100, "", self.name, 1.0)

    agent = NodeAgent("n", [Echo()])
    await agent.start()
    job = Job(id="cap", tool="python", runtime="python", code="", limits=Limits(output_bytes=800),
              grants=Grants(secrets={"A_RATHER_LONG_SECRET_NAME": "s3cr3t!!"}))
    result = await agent.run(job)
    assert len(result.stdout.encode()) <= 800 and result.truncated and "s3cr3t!!" not in result.stdout
