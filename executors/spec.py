"""Value types that cross every boundary: ``Limits``, ``Grants``, ``Job``, ``Result``.

All are frozen dataclasses. ``job_from_dict``/``result_from_dict`` are the only way in from JSON
and raise ``JobRejected`` on anything malformed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from executors.errors import JobRejected, LimitExceeded, Timeout

# ``mcp_stdio``: ``argv`` is a stdio MCP server's command; ``stdin`` the one operation the node's bridge
# (executors/mcp_bridge.py) makes over MCP with it, inside the sandbox.
Runtime = Literal["python", "shell", "wasm", "image", "http", "code", "mcp_stdio"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
# A workspace name is one path component on the node (``workspace_root/<tenant>/<name>``); the
# gateway checks the same pattern when it parses ``llmops.workspace`` (gateway/kernel/extension.py).
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_TENANT = "default"
# The granted secret an ``mcp_stdio`` job's bridge hands its server as an environment variable (from the
# read-only file /run/secrets/mcp_token; executors/mcp_bridge.py TOKEN_FILE).
MCP_TOKEN_SECRET = "mcp_token"
MAX_TENANT_CHARS = 256


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-job resource limits. Units: seconds, MiB, processes, bytes (stdout and stderr each)."""

    cpu_seconds: float = 5.0
    memory_mb: int = 256
    wall_seconds: float = 10.0
    pids: int = 64
    output_bytes: int = 1_000_000
    scratch_mb: int = 64

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "wall_seconds", "pids", "output_bytes", "scratch_mb"):
            if getattr(self, name) <= 0:
                raise JobRejected(f"limits.{name} must be > 0")


def host_granted(host: str, grants: Sequence[str]) -> bool:
    """True when a grant names ``host``: ``api.example.com``, ``*.example.com`` (a subdomain), or,
    for an IP literal, a CIDR containing it (``127.0.0.1/32``). Names never match IP literals."""
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return any(_name_matches(host, grant.lower().rstrip(".")) for grant in grants)
    return any(address in network for network in grant_networks(grants) if network.version == address.version)


def _name_matches(host: str, grant: str) -> bool:
    return host == grant or (grant.startswith("*.") and host.endswith(grant[1:]))


def grant_networks(grants: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDR grants among ``grants`` (a bare address is its /32 or /128)."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for grant in grants:
        try:
            networks.append(ipaddress.ip_network(grant, strict=False))
        except ValueError:
            continue
    return networks


@dataclass(frozen=True, slots=True)
class BrokeredSecret:
    """A secret the node itself puts into an outbound ``http_request``; no sandbox or model sees it.

    Exactly one of ``header`` (set to ``format`` with ``{value}`` replaced, e.g. ``"Bearer {value}"``)
    or ``query`` (a query parameter). ``hosts``: the egress grants (names, ``*.`` wildcards, CIDRs)
    the value may be sent to, on the first request and on every redirect hop.
    """

    value: str = field(repr=False)
    hosts: tuple[str, ...]
    header: str | None = None
    query: str | None = None
    format: str = "{value}"

    def __post_init__(self) -> None:
        if (self.header is None) == (self.query is None):
            raise JobRejected("a brokered secret needs exactly one of header or query")
        if self.header is not None and not _HEADER_NAME.match(self.header):
            raise JobRejected(f"invalid header name {self.header!r} for a brokered secret")
        if not self.value or "{value}" not in self.format or not self.hosts:
            raise JobRejected("a brokered secret needs a value, hosts and a format containing {value}")
        if any(c in self.rendered() for c in "\r\n\0"):
            raise JobRejected("a brokered secret may not contain CR, LF or NUL")

    def rendered(self) -> str:
        """The text injected: ``format`` with ``{value}`` replaced (no other placeholder is read)."""
        return self.format.replace("{value}", self.value)


@dataclass(frozen=True, slots=True)
class Grants:
    """What a job may reach: egress hosts/CIDRs (``http_request`` only) and secrets by name.

    ``secrets`` maps a secret's name to its value; ``repr=False`` keeps the values out of reprs
    and logs. By default no secret enters a sandbox (env, argv or files): the node uses them
    itself (the broker) and the redactor scrubs them from outputs. ``secret_files`` names the
    secrets the policy grants *inside* the sandbox: each is delivered as a read-only file at
    ``/run/secrets/NAME`` on a tmpfs, readable only by the sandbox user, never as env or argv.
    ``brokered`` maps a secret's name to what the node injects into ``http_request`` calls and to
    which hosts.
    """

    egress: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    brokered: Mapping[str, BrokeredSecret] = field(default_factory=dict, repr=False)
    secret_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """One tool call. ``code`` is the program for python/shell/code; ``argv`` the command for image/wasm.

    Runtime ``code`` is a Python script that may call the request's other tools through the stub
    ``llmops_tools`` (see ``executors/inner.py``); each call goes back to the control plane."""

    id: str
    tool: str
    runtime: Runtime
    code: str = ""
    argv: tuple[str, ...] = ()
    stdin: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    grants: Grants = field(default_factory=Grants)
    workspace: str | None = None
    image: str | None = None
    module: str | None = None
    driver: str | None = None
    tenant: str = DEFAULT_TENANT
    # Node-local, never read from the wire: the directory of the job's egress proxy socket.
    egress_dir: str | None = None
    # Node-local: the directory of a code job's tools socket (executors/node/code_session.py).
    tools_dir: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise JobRejected(f"unknown runtime {self.runtime!r}")
        if not self.id or not set(self.id) <= _NAME_CHARS or self.id[0] == ".":
            raise JobRejected(f"invalid job id {self.id!r}")
        if self.workspace is not None and not WORKSPACE_NAME.fullmatch(self.workspace):
            raise JobRejected(f"invalid workspace name {self.workspace[:80]!r}: 1-64 of A-Z a-z 0-9 _ -")
        if not self.tenant or len(self.tenant) > MAX_TENANT_CHARS or "\0" in self.tenant:
            raise JobRejected("invalid tenant")
        if self.runtime == "mcp_stdio" and (not self.argv or self.code):
            raise JobRejected("an mcp_stdio job needs the server's argv and no code")
        for key in (*self.env, *self.grants.secrets):
            if not key or "=" in key or "\0" in key:
                raise JobRejected(f"invalid env name {key!r}")
        for name in self.grants.secret_files:
            if name not in self.grants.secrets or not set(name) <= _NAME_CHARS or name[0] == ".":
                raise JobRejected(f"secret file {name!r} is not a granted secret with a valid name")


@dataclass(frozen=True, slots=True)
class Result:
    """What a sandbox returns. ``limit`` names the limit that stopped the job, if any."""

    exit_code: int
    stdout: str
    stderr: str
    driver: str
    duration_ms: float
    truncated: bool = False
    timed_out: bool = False
    limit: str | None = None

    def raise_for_limit(self) -> Result:
        """Return self, or raise ``Timeout``/``LimitExceeded`` if a limit stopped the job."""
        if self.timed_out:
            raise Timeout(f"job exceeded its wall-clock limit after {self.duration_ms:.0f} ms")
        if self.limit is not None:
            raise LimitExceeded(self.limit)
        return self


def job_to_dict(job: Job) -> dict[str, Any]:
    """JSON-ready dict of a job, secrets included (only for the signed node channel)."""
    data = asdict(job)
    data["grants"]["secrets"] = dict(job.grants.secrets)
    data["grants"]["brokered"] = {name: asdict(secret) for name, secret in job.grants.brokered.items()}
    del data["egress_dir"], data["tools_dir"]  # node-local
    return data


def result_to_dict(result: Result) -> dict[str, Any]:
    return asdict(result)


def _typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is not default and not isinstance(value, kind):
        raise JobRejected(f"field {key!r} has the wrong type")
    return value


def _str_map(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise JobRejected(f"field {key!r} must map strings to strings")
    return dict(value)


def _str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise JobRejected(f"field {key!r} must be a list of strings")
    return tuple(value)


def _brokered(value: Any) -> dict[str, BrokeredSecret]:
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise JobRejected("field 'grants.brokered' must map names to objects")
    return {
        str(name): BrokeredSecret(
            value=_typed(spec, "value", str, ""),
            hosts=_str_tuple(spec.get("hosts", ()), "grants.brokered.hosts"),
            header=_typed(spec, "header", str, None),
            query=_typed(spec, "query", str, None),
            format=_typed(spec, "format", str, "{value}"),
        )
        for name, spec in value.items()
    }


def limits_from_dict(data: Mapping[str, Any]) -> Limits:
    known = {k: v for k, v in data.items() if k in Limits.__dataclass_fields__}
    if any(not isinstance(v, int | float) or isinstance(v, bool) for v in known.values()):
        raise JobRejected("limits must be numbers")
    try:
        return Limits(**known)
    except TypeError as exc:
        raise JobRejected(f"bad limits: {exc}") from exc


def job_from_dict(data: Any) -> Job:
    """Validate and build a ``Job`` from decoded JSON. Raises ``JobRejected``."""
    if not isinstance(data, Mapping):
        raise JobRejected("job must be an object")
    grants = _typed(data, "grants", Mapping, {})
    optional = {k: _typed(data, k, str, None) for k in ("workspace", "image", "module", "driver")}
    tenant = _typed(data, "tenant", str, DEFAULT_TENANT)
    return Job(
        id=_typed(data, "id", str, ""),
        tool=_typed(data, "tool", str, ""),
        runtime=_typed(data, "runtime", str, ""),
        code=_typed(data, "code", str, ""),
        argv=_str_tuple(data.get("argv", ()), "argv"),
        stdin=_typed(data, "stdin", str, ""),
        env=_str_map(data.get("env", {}), "env"),
        limits=limits_from_dict(_typed(data, "limits", Mapping, {})),
        grants=Grants(
            egress=_str_tuple(grants.get("egress", ()), "grants.egress"),
            secrets=_str_map(grants.get("secrets", {}), "grants.secrets"),
            brokered=_brokered(grants.get("brokered", {})),
            secret_files=_str_tuple(grants.get("secret_files", ()), "grants.secret_files"),
        ),
        tenant=tenant,
        **optional,
    )


def result_from_dict(data: Any) -> Result:
    """Build a ``Result`` from decoded JSON (a node's answer)."""
    if not isinstance(data, Mapping):
        raise JobRejected("result must be an object")
    try:
        return Result(**{k: v for k, v in data.items() if k in Result.__dataclass_fields__})
    except TypeError as exc:
        raise JobRejected(f"bad result: {exc}") from exc
