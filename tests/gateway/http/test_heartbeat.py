"""The node channel through the front door's ``node`` mode: enrollment (join token + proof of key possession)
and heartbeats signed by each node's own enrolled key; ids are never taken over; revocation is immediate."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette

from executors.signing import CONTROL_PLANE, public_text, sign
from gateway.http.front_door import Door, FrontDoor
from gateway.http.heartbeat import NodeChannel
from gateway.http.openapi import Api
from gateway.kernel.config.sections.auth import AuthSettings
from gateway.kernel.config.sections.limits import LimitsSettings
from gateway.kernel.config.sections.tools import SchedulerSettings
from gateway.kernel.observability.logging import JsonLog
from gateway.services.identity.authenticator import Authenticator
from gateway.services.identity.memory import MemoryKeyStore
from gateway.services.identity.secrets import KeyHasher
from gateway.services.policy.gate import PolicyGate
from routers.scheduler import MemoryNodeRegistry, Scheduler
from routers.scheduler.enrollment import NodeBook
from tests.routers.scheduler.fakes import FakeRunner
from tests.routers.scheduler.test_registry import PATH, beat

ENROLL = "/internal/nodes/enroll"
CERT = "ab" * 32


def client_for(channel: NodeChannel) -> httpx.AsyncClient:
    door = FrontDoor(authenticator=Authenticator(AuthSettings(), MemoryKeyStore(), KeyHasher(None)), authn=False,
                     admin_role="admin", gate=PolicyGate(None), limiter=None, limits=LimitsSettings(),
                     node_auth=channel.verify)
    app = Starlette(routes=[
        door.json(PATH, "POST", Door("node", "node_heartbeat", "node_heartbeat"), channel.heartbeat, Api("beat")),
        door.json(ENROLL, "POST", Door("node", "node_enroll", "node_enroll"), channel.enroll,
                  Api("enroll", status=201)),
    ])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cp")


def setup() -> tuple[NodeBook, Scheduler, httpx.AsyncClient]:
    book = NodeBook(Ed25519PrivateKey.generate())
    s = Scheduler(MemoryNodeRegistry(15.0), FakeRunner(), SchedulerSettings(), book=book)
    return book, s, client_for(NodeChannel(book, s, JsonLog(io.BytesIO())))


def enrollment(token: str, node_id: str, key: Ed25519PrivateKey, *, signer: Ed25519PrivateKey | None = None,
               ) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"token": token, "node_id": node_id, "public_key": public_text(key),
                       "cert_sha256": CERT}).encode()
    return body, sign(signer or key, "POST", ENROLL, body, signer=node_id, audience=CONTROL_PLANE)


def heartbeat(key: Ed25519PrivateKey, node_id: str = "n1", *, signer: str | None = None,
              now: float | None = None, **extra: Any) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({**beat(node_id), "url": "https://127.0.0.1:9", "interval_s": 0.5, **extra}).encode()
    return body, sign(key, "POST", PATH, body, signer=signer or node_id, audience=CONTROL_PLANE, now=now)


async def test_enrollment_needs_a_live_single_use_token_and_the_key_itself() -> None:
    book, _, http = setup()
    key = Ed25519PrivateKey.generate()
    token, _ = book.issue({"tier": "secure"}, None, 600)
    async with http:
        body, headers = enrollment(token, "n1", key, signer=Ed25519PrivateKey.generate())
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 401  # no proof of possession
        body, headers = enrollment(token.replace(".", ".0", 1), "n1", key)
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 401  # unknown token
        body, headers = enrollment(token, "n1", key)
        ok = await http.post(ENROLL, content=body, headers=headers)
        assert ok.status_code == 201, ok.text
        assert ok.json() == {"node_id": "n1", "labels": {"tier": "secure"}, "control_plane_key": book.public_key}
        body, headers = enrollment(token, "n2", Ed25519PrivateKey.generate())
        used = await http.post(ENROLL, content=body, headers=headers)
        assert used.status_code == 401 and used.json()["error"]["code"] == "node_enrollment_refused"
        expired, _ = book.issue({}, None, 0.001)
        time.sleep(0.01)
        body, headers = enrollment(expired, "n3", Ed25519PrivateKey.generate())
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 401


async def test_a_node_id_cannot_be_taken_over() -> None:
    book, s, http = setup()
    first, second = book.issue({}, None, 600)[0], book.issue({}, None, 600)[0]
    thief = Ed25519PrivateKey.generate()
    async with http:
        body, headers = enrollment(first, "n1", Ed25519PrivateKey.generate())
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 201
        body, headers = enrollment(second, "n1", thief)
        taken = await http.post(ENROLL, content=body, headers=headers)
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "node_id_taken"
        body, headers = heartbeat(thief)
        stolen = await http.post(PATH, content=body, headers=headers)  # heartbeating as n1 with another key
        assert stolen.status_code == 401 and "bad signature" in stolen.text
    assert await s.refresh() == []
    enrolled = book.get("n1")
    assert enrolled is not None and enrolled.public_key != public_text(thief)


async def test_signed_heartbeat_registers_with_the_token_labels_and_bad_ones_are_refused() -> None:
    book, s, http = setup()
    key = Ed25519PrivateKey.generate()
    async with http:
        body, headers = enrollment(book.issue({"region": "us", "tier": "secure"}, "n1", 600)[0], "n1", key)
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 201
        body, headers = heartbeat(key)
        assert (await http.post(PATH, content=body)).status_code == 401
        stale = heartbeat(key, now=time.time() - 600)
        assert (await http.post(PATH, content=stale[0], headers=stale[1])).status_code == 401
        unknown = heartbeat(Ed25519PrivateKey.generate(), "n9")
        assert (await http.post(PATH, content=unknown[0], headers=unknown[1])).status_code == 401
        assert await s.refresh() == []
        ok = await http.post(PATH, content=body, headers=headers)
        assert ok.status_code == 200 and ok.json()["node_id"] == "n1"
        replay = await http.post(PATH, content=body, headers=headers)
        assert replay.status_code == 401 and "replayed" in replay.text
        other = heartbeat(key, "n2", signer="n1")  # n1's key, a body about n2
        assert (await http.post(PATH, content=other[0], headers=other[1])).status_code == 401
        plain = heartbeat(key, url="http://127.0.0.1:9")
        assert (await http.post(PATH, content=plain[0], headers=plain[1])).status_code == 400
    [node] = await s.refresh()
    assert node.id == "n1" and dict(node.labels) == {"region": "us", "tier": "secure"}  # not the node's own claim
    assert node.interval_s == 0.5


async def test_a_revoked_node_is_refused_at_once_and_offered_nothing() -> None:
    book, s, http = setup()
    key = Ed25519PrivateKey.generate()
    async with http:
        body, headers = enrollment(book.issue({}, "n1", 600)[0], "n1", key)
        assert (await http.post(ENROLL, content=body, headers=headers)).status_code == 201
        body, headers = heartbeat(key)
        assert (await http.post(PATH, content=body, headers=headers)).status_code == 200
        assert [n.id for n in await s.refresh()] == ["n1"]
        book.revoke("n1")
        assert await s.refresh() == []
        body, headers = heartbeat(key)
        revoked = await http.post(PATH, content=body, headers=headers)
        assert revoked.status_code == 401 and "revoked" in revoked.text
