"""The real ``NodeRunner``: one ``NodeClient`` per enrolled node over one shared aiohttp session.

A node is sent a job only while the book trusts it (enrolled, not revoked), only at the URL its
signed heartbeat gave, only over TLS with the certificate pinned at enrollment, and its answer is
accepted only with its enrolled key's signature, checked again against the book when it arrives.
"""

from __future__ import annotations

import aiohttp

from executors.errors import AuthError
from executors.inner import Answerer
from executors.node.client import NodeClient
from executors.spec import Job, Result
from routers.scheduler.enrollment import NodeBook
from routers.scheduler.nodes import NodeInfo


class NodeClients:
    """Owns the session; ``aclose()`` closes it. Deadlines are applied by the scheduler."""

    def __init__(self, book: NodeBook) -> None:
        self._book = book
        # connect covers TCP and the TLS handshake: a node that accepts and never answers fails in 2 s.
        # No pool limit, so waiting for a pooled connection never counts against that budget.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=2, sock_connect=2),
                                              connector=aiohttp.TCPConnector(limit=0))
        self._clients: dict[tuple[str, str, str], NodeClient] = {}

    async def run(self, node: NodeInfo, job: Job, answer: Answerer | None = None) -> Result:
        enrolled = self._book.trusted(node.id)
        if enrolled is None or not node.url.startswith("https://"):
            raise AuthError(f"node {node.id} is not an enrolled, unrevoked node reachable over TLS")
        client = self._clients.get((node.id, node.url, node.boot))
        if client is None:
            client = NodeClient(node.url, self._book.key, enrolled.pin(), boot=node.boot, session=self._session)
            self._clients[(node.id, node.url, node.boot)] = client
        result = await client.run(job, answer)
        if self._book.trusted(node.id) is None:
            raise AuthError(f"node {node.id} was revoked while running job {job.id}: its result is refused")
        return result

    async def aclose(self) -> None:
        await self._session.close()
