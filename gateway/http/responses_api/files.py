"""Files by id in a Responses input (``input_file``/``input_image`` with ``file_id``): read from the
gateway's Files (the caller's tenant; the policy's ``files`` action) and inlined as data URLs, so any
backend can be given them (chat backends get a file's text,
``gateway/services/responses_wire/responses_request.py``)."""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

from gateway.kernel.context import RequestContext, tenant_of
from gateway.kernel.responses import is_message
from gateway.services.policy.gate import PolicyGate, denied
from gateway.services.vectorstores.service import VectorStoreService

_RESOURCE: dict[str, Any] = {"model": "", "modality": "", "tools": [], "secrets": [], "egress": [],
                             "vector_stores": []}


class InputFiles:
    def __init__(self, files: VectorStoreService, gate: PolicyGate) -> None:
        self._files = files
        self._gate = gate

    async def inline(self, ctx: RequestContext, items: list[Any]) -> list[Any]:
        """``items`` with every file reference replaced by its content (items without one untouched)."""
        return [await self._message(ctx, item) if _refers(item) else item for item in items]

    async def _message(self, ctx: RequestContext, item: dict[str, Any]) -> dict[str, Any]:
        parts = [await self._part(ctx, p) if _by_id(p) else p for p in item["content"]]
        return {**item, "content": parts}

    async def _part(self, ctx: RequestContext, part: dict[str, Any]) -> dict[str, Any]:
        file_id = str(part["file_id"])
        decision = await self._gate.decide("files", ctx.principal, {**_RESOURCE, "file_id": file_id},
                                           ctx.request_id)
        if not decision.allow:
            raise denied(decision)
        filename, data = await self._files.file_content(tenant_of(ctx.principal), file_id)
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        url = f"data:{kind};base64,{base64.b64encode(data).decode()}"
        rest = {k: v for k, v in part.items() if k != "file_id"}
        if part["type"] == "input_image":
            return {**rest, "image_url": url}
        return {**rest, "filename": filename, "file_data": url}


def _by_id(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in ("input_file", "input_image") and "file_id" in part \
        and isinstance(part["file_id"], str) and not (part.get("image_url") or part.get("file_data"))


def _refers(item: Any) -> bool:
    return is_message(item) and isinstance(item.get("content"), list) and any(_by_id(p) for p in item["content"])
