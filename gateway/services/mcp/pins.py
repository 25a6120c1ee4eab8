"""Pinned upstream tool definitions: a ``DefinitionGuard`` (``ports.py``) shared by all replicas in PostgreSQL.

Each (server, tool) keeps the approved definition's hash (``UpstreamTool.definition_hash``: name,
description, input schema) and, when a listing shows something else, the pending definition with what the
scanner found in it. ``judge`` is the whole state machine, a pure function:

===============================  ===========================================================================
the listed definition            verdict
===============================  ===========================================================================
never approved                   ``approval: first_use``: pinned and offered (unless the scanner blocks it);
                                 ``approval: admin``: held until approved (``POST .../approve``)
the approved one                 offered (flagged if the scanner finds something: an admin approved it)
changed since approved           the server's ``on_change``: ``block`` holds it, ``flag`` offers it flagged,
                                 until the change is approved; a blocking scan finding holds it either way
revoked by an admin              held until approved again
===============================  ===========================================================================

Reads are cached per server for ``mcp.pins_ttl_s``; an approval on another replica is seen within that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg.types.json import Jsonb

from gateway.kernel.errors import InvalidRequest, NotFound
from gateway.kernel.mcp import UpstreamTool
from gateway.kernel.observability.logging import JsonLog
from gateway.services.mcp.pool import Connection, McpPool
from gateway.services.mcp.ports import Admitted
from gateway.services.mcp.scan import Finding, scan_tool, summary

Approval = Literal["first_use", "admin"]
ScanMode = Literal["block", "flag", "off"]
OnChange = Literal["block", "flag"]
Write = Literal["pin", "pending", "settled", ""]

_COLUMNS = ("server, tool, approved_hash, approved, approved_at, approved_by, pending_hash, pending, pending_at, "
            "findings, revoked")


@dataclass(frozen=True, slots=True)
class Pin:
    """One (server, tool) row: the approved definition, the pending one, whether an admin revoked it."""

    server: str
    tool: str
    approved_hash: str | None = None
    approved: Mapping[str, Any] | None = None
    approved_at: int | None = None
    approved_by: str | None = None
    pending_hash: str | None = None
    pending: Mapping[str, Any] | None = None
    pending_at: int | None = None
    findings: tuple[Mapping[str, str], ...] = ()
    revoked: bool = False

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        if self.pending_hash is not None:
            return "changed" if self.approved_hash is not None else "pending"
        return "approved"

    def to_json(self) -> dict[str, Any]:
        approved = None if self.approved is None else {
            "hash": self.approved_hash, **_shown(self.approved), "approved_at": self.approved_at,
            "approved_by": self.approved_by}
        pending = None if self.pending is None else {
            "hash": self.pending_hash, **_shown(self.pending), "seen_at": self.pending_at,
            "findings": list(self.findings), "changes": changes(self.approved or {}, self.pending)}
        return {"object": "mcp.tool_definition", "server": self.server, "tool": self.tool, "status": self.status,
                "approved": approved, "pending": pending}


@dataclass(frozen=True, slots=True)
class Verdict:
    offer: bool
    reason: str = ""  # why it is held, or why it is flagged
    write: Write = ""  # what the store must record: a first pin, a pending definition, a settled pending


@dataclass
class _Cached:
    expires: float
    pins: dict[str, Pin] = field(default_factory=dict)


def definition(tool: UpstreamTool) -> dict[str, Any]:
    """What the hash covers, as stored and shown."""
    return {"name": tool.name, "description": tool.description, "inputSchema": dict(tool.input_schema)}


def judge(digest: str, pin: Pin | None, findings: Sequence[Finding], *, approval: Approval, scan: ScanMode,
          on_change: OnChange) -> Verdict:
    """Offer, flag or hold one listed definition (its hash ``digest``) given its pin; see the module's table."""
    found = summary(findings) if findings else ""
    if pin is not None and pin.revoked:
        return Verdict(False, "revoked by an admin: approve it to offer it again",
                       "pending" if pin.pending_hash != digest else "")
    if pin is not None and pin.approved_hash == digest:
        return Verdict(True, found, "settled" if pin.pending_hash is not None else "")
    record: Write = "pending" if pin is None or pin.pending_hash != digest else ""
    if found and scan == "block":
        return Verdict(False, found, record)
    if pin is not None and pin.approved_hash is not None:
        change = f"definition changed since approved ({pin.approved_hash[:12]} -> {digest[:12]})"
        if on_change == "block":
            return Verdict(False, change + ": approve the change to offer it", record)
        return Verdict(True, "; ".join(x for x in (change, found) if x), record)
    if approval == "admin":
        return Verdict(False, "awaiting approval (mcp.approval: admin)", record)
    return Verdict(True, found, "pin")


class PinnedDefinitions:
    """The guard: ``admit`` decides each listing; ``pins``, ``approve`` and ``revoke`` serve the admin API."""

    def __init__(self, pool: McpPool, *, approval: Approval, scan: ScanMode,
                 on_change: Callable[[str], OnChange], ttl_s: float,
                 clock: Callable[[], float] = time.monotonic, log: JsonLog | None = None) -> None:
        self._pool = pool
        self._log = log
        self._approval: Approval = approval
        self._scan: ScanMode = scan
        self._on_change = on_change
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    async def admit(self, server: str, tools: Sequence[UpstreamTool]) -> Admitted:
        pins = await self._cached(server)
        offered: list[UpstreamTool] = []
        held: dict[str, str] = {}
        flagged: dict[str, str] = {}
        writes: list[tuple[UpstreamTool, str, Write, tuple[Finding, ...]]] = []
        for tool in tools:
            digest, findings = tool.definition_hash(), self._findings(tool)
            verdict = judge(digest, pins.get(tool.name), findings, approval=self._approval, scan=self._scan,
                            on_change=self._on_change(server))
            if verdict.write == "pin" and not await self._pin_first(tool, digest):
                verdict = Verdict(False, "pinned concurrently with another definition: listed again shortly")
            if verdict.write:
                writes.append((tool, digest, verdict.write, findings))
            if verdict.write == "pending" and self._log is not None:  # logged once per new definition
                self._log.warning("mcp_definition_held" if not verdict.offer else "mcp_definition_flagged",
                                  server=server, tool=tool.name, hash=digest, reason=verdict.reason)
            if not verdict.offer:
                held[tool.name] = verdict.reason
            else:
                offered.append(tool)
                if verdict.reason:
                    flagged[tool.name] = verdict.reason
        await self._record([w for w in writes if w[2] != "pin"])
        if writes:
            self._cache.pop(server, None)
        return Admitted(tuple(offered), held, flagged)

    def _findings(self, tool: UpstreamTool) -> tuple[Finding, ...]:
        return () if self._scan == "off" else scan_tool(tool.description, tool.input_schema)

    async def pins(self, server: str) -> list[Pin]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM llmops_mcp_pins WHERE server = %s ORDER BY tool",
                                     (server,))
            return [_pin(row) for row in await cur.fetchall()]

    async def approve(self, server: str, tool: str, by: str, expected: str | None = None) -> Pin:
        """Pin the pending definition (or lift a revocation); ``expected``: only if the pending hash is that."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE llmops_mcp_pins SET approved_hash = coalesce(pending_hash, approved_hash), "
                "approved = coalesce(pending, approved), approved_at = %s, approved_by = %s, pending_hash = NULL, "
                "pending = NULL, pending_at = NULL, findings = '[]', revoked = false "
                "WHERE server = %s AND tool = %s AND (pending_hash IS NOT NULL OR revoked) "
                "AND (%s::text IS NULL OR coalesce(pending_hash, approved_hash) = %s) "
                f"RETURNING {_COLUMNS}", (int(time.time()), by, server, tool, expected, expected))
            row = await cur.fetchone()
            if row is None:
                await self._why_not(conn, server, tool, expected)
        self._cache.pop(server, None)
        assert row is not None
        return _pin(row)

    async def revoke(self, server: str, tool: str) -> Pin:
        """Withhold the tool until approved again (its pin is kept, to show what was approved)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(f"UPDATE llmops_mcp_pins SET revoked = true "
                                     f"WHERE server = %s AND tool = %s RETURNING {_COLUMNS}", (server, tool))
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No definition of {tool!r} has been seen on MCP server {server!r}.",
                           code="mcp_tool_not_found")
        self._cache.pop(server, None)
        return _pin(row)

    async def _why_not(self, conn: Connection, server: str, tool: str, expected: str | None) -> None:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM llmops_mcp_pins WHERE server = %s AND tool = %s",
                                 (server, tool))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No definition of {tool!r} has been seen on MCP server {server!r}.",
                           code="mcp_tool_not_found")
        pin = _pin(row)
        if pin.pending_hash is None and not pin.revoked:
            raise InvalidRequest(f"{tool!r} has nothing awaiting approval.", code="nothing_pending", status=409)
        raise InvalidRequest(f"The definition awaiting approval is {pin.pending_hash or pin.approved_hash}, not "
                             f"{expected}: review it again.", param="hash", code="definition_changed", status=409)

    async def _cached(self, server: str) -> dict[str, Pin]:
        now = self._clock()
        hit = self._cache.get(server)
        if hit is not None and hit.expires > now:
            return hit.pins
        pins = {p.tool: p for p in await self.pins(server)}
        self._cache[server] = _Cached(now + self._ttl, pins)
        return pins

    async def _pin_first(self, tool: UpstreamTool, digest: str) -> bool:
        """Trust on first use: pin unless another replica pinned or an admin revoked in the meantime."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO llmops_mcp_pins (server, tool, approved_hash, approved, approved_at, approved_by) "
                "VALUES (%s, %s, %s, %s, %s, 'first_use') ON CONFLICT (server, tool) DO UPDATE SET "
                "approved_hash = EXCLUDED.approved_hash, approved = EXCLUDED.approved, "
                "approved_at = EXCLUDED.approved_at, approved_by = EXCLUDED.approved_by, pending_hash = NULL, "
                "pending = NULL, pending_at = NULL, findings = '[]' "
                "WHERE llmops_mcp_pins.approved_hash IS NULL AND NOT llmops_mcp_pins.revoked "
                "RETURNING approved_hash",
                (tool.server, tool.name, digest, Jsonb(definition(tool)), int(time.time())))
            return await cur.fetchone() is not None

    async def _record(self, writes: Sequence[tuple[UpstreamTool, str, Write, tuple[Finding, ...]]]) -> None:
        if not writes:
            return
        now = int(time.time())
        async with self._pool.connection() as conn:
            for tool, digest, write, findings in writes:
                if write == "settled":
                    await conn.execute(
                        "UPDATE llmops_mcp_pins SET pending_hash = NULL, pending = NULL, pending_at = NULL, "
                        "findings = '[]' WHERE server = %s AND tool = %s AND approved_hash = %s",
                        (tool.server, tool.name, digest))
                    continue
                await conn.execute(
                    "INSERT INTO llmops_mcp_pins (server, tool, pending_hash, pending, pending_at, findings) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (server, tool) DO UPDATE SET "
                    "pending_hash = EXCLUDED.pending_hash, pending = EXCLUDED.pending, "
                    "pending_at = EXCLUDED.pending_at, findings = EXCLUDED.findings "
                    "WHERE llmops_mcp_pins.pending_hash IS DISTINCT FROM EXCLUDED.pending_hash",
                    (tool.server, tool.name, digest, Jsonb(definition(tool)), now,
                     Jsonb([f.to_json() for f in findings])))


def _pin(row: Sequence[Any]) -> Pin:
    return Pin(server=row[0], tool=row[1], approved_hash=row[2], approved=row[3], approved_at=row[4],
               approved_by=row[5], pending_hash=row[6], pending=row[7], pending_at=row[8],
               findings=tuple(row[9] or ()), revoked=bool(row[10]))


def _shown(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": stored.get("description", ""), "input_schema": stored.get("inputSchema", {})}


def changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 20) -> list[str]:
    """Dotted paths where two definitions differ (``description``, ``inputSchema.properties.x.type``, ...)."""
    if not old:
        return []
    return list(_diff(old, new, ""))[:limit]


def _diff(old: Any, new: Any, path: str) -> Iterator[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield f"{where} (added)"
            elif key not in new:
                yield f"{where} (removed)"
            else:
                yield from _diff(old[key], new[key], where)
    elif old != new:
        yield path or "(definition)"
