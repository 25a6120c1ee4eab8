"""Egress policy for ``http_request``: resolve first, then check every address.

A target is allowed when the host is granted by name (``api.example.com`` or ``*.example.com``)
or one of its addresses lies in a granted CIDR. Whatever the name grant says, an address that is
not globally routable (private, loopback, link-local, shared, reserved, multicast, unspecified,
cloud metadata such as 169.254.169.254 and fd00:ec2::254) is refused unless a granted CIDR
contains it: naming ``10.0.0.0/8`` is the only way to reach 10.x. The caller must then connect
to the returned addresses only (no second lookup), which closes the DNS-rebinding gap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

from executors.errors import EgressDenied

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


async def system_resolve(host: str, port: int) -> list[str]:
    """Addresses for ``host`` from the system resolver (deduplicated, in order)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EgressDenied(f"cannot resolve {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _split_grants(grants: Sequence[str]) -> tuple[list[str], list[IPNetwork]]:
    names: list[str] = []
    networks: list[IPNetwork] = []
    for grant in grants:
        try:
            networks.append(ipaddress.ip_network(grant, strict=False))
        except ValueError:
            names.append(grant.lower().rstrip("."))
    return names, networks


def _name_granted(host: str, names: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == n or (n.startswith("*.") and host.endswith(n[1:])) for n in names)


def _unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address that is not a metadata endpoint."""
    address = _unwrap(address)
    return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


def check_addresses(host: str, addresses: Sequence[str], grants: Sequence[str]) -> list[str]:
    """The addresses ``host`` may be reached at, or raise ``EgressDenied``.

    Every address must pass: one refused address refuses the host (no partial allow).
    """
    names, networks = _split_grants(grants)
    by_name = _name_granted(host, names)
    if not addresses:
        raise EgressDenied(f"{host!r} resolved to no address")
    for text in addresses:
        address = _unwrap(ipaddress.ip_address(text))
        in_cidr = any(address in net for net in networks if net.version == address.version)
        if in_cidr:
            continue
        if not by_name:
            raise EgressDenied(f"egress to {host!r} is not granted")
        if not is_public(address):
            raise EgressDenied(f"{host!r} resolves to a refused address {address}")
    return list(addresses)


async def resolve_allowed(
    host: str, port: int, grants: Sequence[str], resolve: Resolver = system_resolve
) -> list[str]:
    """Resolve ``host`` and return the addresses the grants allow (``EgressDenied`` otherwise)."""
    names, networks = _split_grants(grants)
    if not networks and not _name_granted(host, names):
        raise EgressDenied(f"egress to {host!r} is not granted")
    return check_addresses(host, await resolve(host, port), grants)
