"""Egress policy for ``http_request``: resolve first (an IP literal is taken as is), then check every address.

A target is allowed when its host is granted by name (``api.example.com`` or ``*.example.com``) or
its address lies in a granted CIDR. Whatever the name grant says, an address in an IANA
special-purpose range (``SPECIAL_PURPOSE`` below, IPv4 hidden in IPv6 included) is refused unless a
granted CIDR contains it and lies within that range: naming ``10.0.0.0/8`` (or ``10.1.2.3``) is the
only way to reach 10.x, ``0.0.0.0/0`` unlocks no special address, and granting a NAT64 or 6to4
prefix still refuses the refused IPv4 addresses inside it. The caller must then connect to
the returned addresses only (no second lookup), which closes the DNS-rebinding gap; ``http_request``
does this again for every redirect hop.

The table is ours rather than ``ipaddress``'s ``is_global``: Python 3.11 calls 192.0.0.192 and
NAT64/6to4/Teredo addresses global, and knows nothing of cloud metadata endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from executors.errors import EgressDenied
from executors.spec import grant_networks, host_granted

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
Embedded = Callable[[ipaddress.IPv6Address], tuple[ipaddress.IPv4Address, ...]]


def _low32(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 address in the last 32 bits (IPv4-compatible, SIIT, NAT64 /96)."""
    return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)


def _sixtofour(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    return (address.sixtofour,) if address.sixtofour is not None else ()


def _teredo(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Teredo's server and (de-obfuscated) client addresses."""
    return address.teredo if address.teredo is not None else ()


@dataclass(frozen=True, slots=True)
class SpecialRange:
    """One row of the refused table: the range, why it is refused, and the IPv4 it may carry."""

    network: IPNetwork
    why: str
    embedded: Embedded | None = None


def _row(cidr: str, why: str, embedded: Embedded | None = None) -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(cidr), why, embedded)


# The IANA IPv4 and IPv6 Special-Purpose Address Registries, plus multicast and the cloud metadata
# endpoints they contain. The first row that contains an address names it, so the more specific
# rows come first. ``::ffff:0:0/96`` (IPv4-mapped, RFC 4291) is not a row: a mapped address IS its
# IPv4 address and is decided as that address (``_unwrap``).
SPECIAL_PURPOSE: tuple[SpecialRange, ...] = (
    # --- IPv4 ---
    _row("0.0.0.0/8", "'this network' (RFC 791)"),
    _row("10.0.0.0/8", "private-use (RFC 1918)"),
    _row("100.64.0.0/10", "shared address space / CGNAT (RFC 6598; Alibaba metadata 100.100.100.200)"),
    _row("127.0.0.0/8", "loopback (RFC 1122)"),
    _row("169.254.0.0/16", "link-local (RFC 3927; cloud metadata 169.254.169.254)"),
    _row("172.16.0.0/12", "private-use (RFC 1918)"),
    _row("192.0.0.0/24", "IETF protocol assignments (RFC 6890; Python 3.11 calls 192.0.0.192 global)"),
    _row("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    _row("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    _row("192.52.193.0/24", "AMT (RFC 7450)"),
    _row("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    _row("192.168.0.0/16", "private-use (RFC 1918)"),
    _row("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
    _row("198.18.0.0/15", "benchmarking (RFC 2544)"),
    _row("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    _row("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    _row("224.0.0.0/4", "multicast (RFC 5771)"),
    _row("255.255.255.255/32", "limited broadcast (RFC 919)"),
    _row("240.0.0.0/4", "reserved (RFC 1112)"),
    # --- IPv6 ---
    _row("::/128", "the unspecified address (RFC 4291)"),
    _row("::1/128", "loopback (RFC 4291)"),
    _row("::/96", "IPv4-compatible ::a.b.c.d (deprecated, RFC 4291)", _low32),
    _row("::ffff:0:0:0/96", "SIIT ::ffff:0:a.b.c.d (RFC 7915)", _low32),
    _row("64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)", _low32),
    _row("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)", _low32),
    _row("100::/64", "discard-only (RFC 6666)"),
    _row("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    _row("2001::/32", "Teredo (RFC 4380)", _teredo),
    _row("2001::/23", "IETF protocol assignments (RFC 2928: benchmarking, ORCHID, AMT, AS112, ...)"),
    _row("2001:db8::/32", "documentation (RFC 3849)"),
    _row("2002::/16", "6to4 (RFC 3056)", _sixtofour),
    _row("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
    _row("3fff::/20", "documentation (RFC 9637)"),
    _row("5f00::/16", "segment routing SIDs (RFC 9602)"),
    _row("fc00::/7", "unique local (RFC 4193; AWS metadata fd00:ec2::254)"),
    _row("fe80::/10", "link-local (RFC 4291)"),
    _row("fec0::/10", "deprecated site-local (RFC 3879)"),
    _row("ff00::/8", "multicast (RFC 4291)"),
)


async def system_resolve(host: str, port: int) -> list[str]:
    """Addresses for ``host`` from the system resolver (deduplicated, in order)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EgressDenied(f"cannot resolve {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is an IP literal (as ``yarl`` gives it: no brackets), else ``None``."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def special_range(address: IPAddress) -> SpecialRange | None:
    """The first row of ``SPECIAL_PURPOSE`` containing ``address`` (after unwrapping IPv4-mapped)."""
    address = _unwrap(address)
    return next((r for r in SPECIAL_PURPOSE if r.network.version == address.version and address in r.network), None)


def _in(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in net for net in networks if net.version == address.version)


def _granted_within(address: IPAddress, row: SpecialRange, networks: Sequence[IPNetwork]) -> bool:
    """A grant that contains ``address`` and lies inside its special range: ``10.1.0.0/16`` unlocks
    10.1.x, but ``0.0.0.0/0`` ("anywhere") unlocks no special-purpose address."""
    inside = (net for net in networks if net.network_address in row.network and net.broadcast_address in row.network)
    return any(address in net for net in inside)


def refusal(address: IPAddress, networks: Sequence[IPNetwork] = ()) -> str | None:
    """Why ``address`` is refused under the CIDR grants ``networks``, or ``None`` when it may be reached.

    A special-purpose address is refused unless a granted CIDR within its range contains it; an
    IPv4 address it carries (NAT64, 6to4, Teredo, SIIT, IPv4-compatible) must pass on its own as well.
    """
    address = _unwrap(address)
    row = special_range(address)
    if row is None:
        return None
    inner = _embedded(row, address)
    if not _granted_within(address, row, networks):
        carrying = f", carrying {', '.join(map(str, inner))}" if inner else ""
        return f"{address}: {row.why}{carrying}"
    for v4 in inner:
        why = refusal(v4, networks)
        if why is not None:
            return f"{address} carries {why}"
    return None


def _embedded(row: SpecialRange, address: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    if row.embedded is None or not isinstance(address, ipaddress.IPv6Address):
        return ()
    return row.embedded(address)


def is_public(address: IPAddress) -> bool:
    """True for an address in no special-purpose range (what a name grant alone may reach)."""
    return refusal(address) is None


def check_addresses(host: str, addresses: Sequence[str], grants: Sequence[str]) -> list[str]:
    """The addresses ``host`` may be reached at, or raise ``EgressDenied``.

    Every address must pass: one refused address refuses the host (no partial allow).
    """
    networks = grant_networks(grants)
    by_name = ip_literal(host) is None and host_granted(host, grants)
    if not addresses:
        raise EgressDenied(f"{host!r} resolved to no address")
    for text in addresses:
        address = ipaddress.ip_address(text)
        if not by_name and not _in(_unwrap(address), networks):
            raise EgressDenied(f"egress to {host!r} is not granted")
        why = refusal(address, networks)
        if why is not None:
            raise EgressDenied(f"{host!r} is a refused address: {why}")
    return list(addresses)


async def resolve_allowed(
    host: str, port: int, grants: Sequence[str], resolve: Resolver = system_resolve
) -> list[str]:
    """The checked addresses of ``host`` (``EgressDenied`` otherwise).

    An IP literal is checked as it is, without asking ``resolve``; a name is refused before any
    lookup unless a grant could allow it (by name, or by a CIDR its addresses may fall in).
    """
    literal = ip_literal(host)
    if literal is not None:
        return check_addresses(host, [str(literal)], grants)
    if not grant_networks(grants) and not host_granted(host, grants):
        raise EgressDenied(f"egress to {host!r} is not granted")
    return check_addresses(host, await resolve(host, port), grants)
