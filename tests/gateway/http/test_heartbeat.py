"""The node heartbeat route: signed, fresh and never replayed, through the front door's ``node`` mode."""

from __future__ import annotations

import io
import json
import time

import httpx
from starlette.applications import Starlette

from executors.signing import sign
from gateway.http.front_door import Door, FrontDoor
from gateway.http.heartbeat import NodeHeartbeats
from gateway.kernel.config.sections.auth import AuthSettings
from gateway.kernel.config.sections.limits import LimitsSettings
from gateway.kernel.config.sections.tools import SchedulerSettings
from gateway.kernel.observability.logging import JsonLog
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher
from gateway.services.policy.gate import PolicyGate
from routers.scheduler import MemoryNodeRegistry, Scheduler
from tests.routers.scheduler.fakes import FakeRunner
from tests.routers.scheduler.test_registry import PATH, SECRET, beat


def client_for(scheduler: Scheduler) -> httpx.AsyncClient:
    beats = NodeHeartbeats(SECRET, scheduler, JsonLog(io.BytesIO()))
    door = FrontDoor(authenticator=Authenticator(AuthSettings(), MemoryKeyStore(), KeyHasher(None)), authn=False,
                     admin_role="admin", gate=PolicyGate(None), limiter=None, limits=LimitsSettings(),
                     node_auth=beats.verify)
    app = Starlette(routes=[door.json(PATH, "POST", Door("node", "node_heartbeat", "node_heartbeat"), beats.handle)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp")


async def test_signed_heartbeat_registers_and_bad_ones_are_401() -> None:
    s = Scheduler(MemoryNodeRegistry(15.0), FakeRunner(), SchedulerSettings())
    body = json.dumps(beat()).encode()
    async with client_for(s) as http:
        assert (await http.post(PATH, content=body)).status_code == 401
        assert (await http.post(PATH, content=body, headers=sign(b"wrong", "POST", PATH, body))).status_code == 401
        stale = sign(SECRET, "POST", PATH, body, now=time.time() - 600)
        assert (await http.post(PATH, content=body, headers=stale)).status_code == 401
        assert await s.refresh() == []
        headers = sign(SECRET, "POST", PATH, body)
        ok = await http.post(PATH, content=body, headers=headers)
        assert ok.status_code == 200 and ok.json()["node_id"] == "n1"
        replay = await http.post(PATH, content=body, headers=headers)
        assert replay.status_code == 401 and "replayed" in replay.text
        bad = b'{"node_id": 1}'
        assert (await http.post(PATH, content=bad, headers=sign(SECRET, "POST", PATH, bad))).status_code == 400
    assert [n.id for n in await s.refresh()] == ["n1"]
