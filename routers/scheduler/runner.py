"""The real ``NodeRunner``: one ``NodeClient`` per node URL over one shared aiohttp session."""

from __future__ import annotations

import aiohttp

from executors.node.client import NodeClient
from executors.spec import Job, Result
from routers.scheduler.nodes import NodeInfo


class NodeClients:
    """Owns the session; ``aclose()`` closes it. Deadlines are applied by the scheduler."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=5))
        self._clients: dict[str, NodeClient] = {}

    async def run(self, node: NodeInfo, job: Job) -> Result:
        client = self._clients.get(node.url)
        if client is None:
            client = self._clients[node.url] = NodeClient(node.url, self._secret, session=self._session)
        return await client.run(job)

    async def aclose(self) -> None:
        await self._session.close()
