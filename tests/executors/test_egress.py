from __future__ import annotations

import ipaddress

import pytest

from executors.egress import check_addresses, is_public, resolve_allowed
from executors.errors import EgressDenied


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "fd00:ec2::254",
        "::1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "fe80::1",
        "100.100.100.200",
    ],
)
def test_private_loopback_link_local_and_metadata_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(EgressDenied, match="refused address"):
        check_addresses("api.example.com", [address], ["api.example.com"])


def test_public_address_of_a_granted_name_is_allowed() -> None:
    assert check_addresses("api.example.com", ["93.184.216.34"], ["api.example.com"]) == ["93.184.216.34"]
    assert check_addresses("x.example.com", ["93.184.216.34"], ["*.example.com"]) == ["93.184.216.34"]


def test_ungranted_host_is_refused() -> None:
    with pytest.raises(EgressDenied, match="not granted"):
        check_addresses("evil.test", ["93.184.216.34"], ["api.example.com"])


def test_one_bad_address_refuses_the_host() -> None:
    with pytest.raises(EgressDenied):
        check_addresses("api.example.com", ["93.184.216.34", "10.0.0.1"], ["api.example.com"])


def test_exact_cidr_grant_allows_a_private_range() -> None:
    assert check_addresses("db.internal", ["10.1.2.3"], ["10.1.0.0/16"]) == ["10.1.2.3"]
    with pytest.raises(EgressDenied):
        check_addresses("db.internal", ["10.2.0.1"], ["10.1.0.0/16"])


async def test_resolution_is_checked_after_dns() -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["169.254.169.254"]

    with pytest.raises(EgressDenied, match="refused address"):
        await resolve_allowed("api.example.com", 443, ["api.example.com"], rebinding)


async def test_ungranted_host_is_refused_before_resolving() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve")

    with pytest.raises(EgressDenied, match="not granted"):
        await resolve_allowed("evil.test", 80, [], never)
