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


# IPv4 hidden in IPv6: each form refused, whatever IPv4 address it carries, unless granted.
EMBEDDED_FORMS = [
    "64:ff9b::7f00:1",  # NAT64 (RFC 6052) of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: still refused unless the prefix is granted
    "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215) of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "::7f00:1",  # IPv4-compatible ::127.0.0.1
    "::a9fe:a9fe",  # IPv4-compatible ::169.254.169.254
    "::ffff:0:7f00:1",  # SIIT ::ffff:0:127.0.0.1
    "::ffff:0:a9fe:a9fe",  # SIIT ::ffff:0:169.254.169.254
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo (client 192.0.2.45)
]


@pytest.mark.parametrize("address", EMBEDDED_FORMS)
def test_ipv4_hidden_in_ipv6_is_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(EgressDenied, match="refused address"):
        check_addresses("api.example.com", [address], ["api.example.com"])


def test_192_0_0_192_is_refused_though_python_calls_it_global() -> None:
    with pytest.raises(EgressDenied, match="refused address"):
        check_addresses("api.example.com", ["192.0.0.192"], ["api.example.com"])


# One sample per IANA special-purpose range (IPv4 and IPv6 registries) and multicast.
SPECIAL_SAMPLES = [
    "0.1.2.3", "10.255.0.1", "100.127.255.254", "127.8.9.10", "169.254.0.1", "172.31.255.255",
    "192.0.0.8", "192.0.0.170", "192.0.2.200", "192.31.196.1", "192.52.193.1", "192.88.99.1",
    "192.168.255.1", "192.175.48.1", "198.19.255.255", "198.51.100.1", "203.0.113.254", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "::", "::1", "::ffff:10.0.0.1", "100::1", "100:0:0:1::1", "2001:2::1", "2001:10::1", "2001:20::1",
    "2001:db8::1", "2620:4f:8000::1", "3fff::1", "5f00::1", "fc00::1", "fe80::1", "fec0::1", "ff02::1",
]


@pytest.mark.parametrize("address", SPECIAL_SAMPLES)
def test_every_special_purpose_range_is_refused_for_a_name_grant(address: str) -> None:
    with pytest.raises(EgressDenied, match="refused address"):
        check_addresses("api.example.com", [address], ["api.example.com"])


def test_public_addresses_pass_including_ipv4_mapped_ones() -> None:
    for address in ("8.8.8.8", "::ffff:8.8.8.8", "2606:4700:4700::1111", "192.0.1.1", "198.20.0.1"):
        assert is_public(ipaddress.ip_address(address)), address


def test_an_exact_grant_allows_a_special_address() -> None:
    assert check_addresses("x", ["192.0.0.192"], ["192.0.0.192/32"]) == ["192.0.0.192"]
    assert check_addresses("x", ["fd00:ec2::254"], ["fd00:ec2::254"]) == ["fd00:ec2::254"]
    assert check_addresses("x", ["::ffff:10.1.2.3"], ["10.0.0.0/8"]) == ["::ffff:10.1.2.3"]


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "127.0.0.1", "fd00:ec2::254", "::1"])
def test_a_grant_of_any_address_unlocks_no_special_range(address: str) -> None:
    assert check_addresses("x", ["8.8.8.8"], ["0.0.0.0/0"]) == ["8.8.8.8"]
    with pytest.raises(EgressDenied, match="refused address"):
        check_addresses("x", [address], ["0.0.0.0/0", "::/0", "169.254.0.0/15"])


def test_a_granted_translation_prefix_still_refuses_the_refused_ipv4_inside() -> None:
    grants = ["api.example.com", "64:ff9b::/96", "2002::/16"]
    assert check_addresses("api.example.com", ["64:ff9b::808:808"], grants) == ["64:ff9b::808:808"]
    for address in ("64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a00:1::1"):
        with pytest.raises(EgressDenied, match="carries"):
            check_addresses("api.example.com", [address], grants)


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254", "10.9.8.7", "fd00:ec2::254", "64:ff9b::7f00:1"])
async def test_an_ip_literal_is_checked_as_it_is_without_the_resolver(host: str) -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("an IP literal must not be resolved")

    with pytest.raises(EgressDenied):
        await resolve_allowed(host, 80, ["api.example.com", "10.1.0.0/16"], never)
    assert await resolve_allowed("10.1.2.3", 80, ["10.1.0.0/16"], never) == ["10.1.2.3"]
