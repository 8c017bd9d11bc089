"""Where webhooks may go: resolve a URL's host and refuse internal addresses unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = [
    "METADATA_ADDRESSES",
    "Blocked",
    "IPAddress",
    "IPNetwork",
    "Unresolvable",
    "check_host",
    "parse_networks",
    "refusal",
    "resolve",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata (AWS, GCP, Azure, OpenStack; AWS's IPv6 one): credentials live there.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class Unresolvable(Exception):
    """The host has no address (or the resolver failed)."""


class Blocked(Exception):
    """The host resolves to an address webhooks may not reach; `reason` names its kind."""

    def __init__(self, address: IPAddress, reason: str) -> None:
        super().__init__(f"{address} is {reason}")
        self.address = address
        self.reason = reason


@lru_cache(maxsize=64)
def _parsed(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs such as "10.0.0.0/8" as networks; a ValueError names a malformed one."""
    return _parsed(tuple(cidrs))


def _kind(address: IPAddress) -> str | None:
    """What makes an address internal, or None for a public one. Order: most specific first."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:  # shared (100.64/10) and other special-purpose ranges
        return "a non-public address"
    return None


def _inner_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 one tunnels to (6to4, Teredo server and client)."""
    inner = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        inner.extend(address.teredo)
    return inner


def refusal(address: IPAddress, *, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a webhook may not go to this address ("a loopback address" ...), or None.

    An IPv4-mapped IPv6 address is its IPv4 address on the wire, so it is judged as one;
    the IPv4 ends of 6to4 and Teredo addresses are judged too. An address inside an allowed
    network passes.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates.extend(_inner_ipv4(address))
    for candidate in candidates:
        if any(candidate in network for network in allowed):
            continue
        kind = _kind(candidate)
        if kind is not None:
            return kind
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to, as the system resolver (inet_aton included) sees it.

    Short and numeric IPv4 forms ("127.1", "2130706433", "0x7f000001") come back as the
    address they mean, which is why only resolved addresses are ever judged.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(host) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # An IPv6 link-local answer may carry a zone ("fe80::1%eth0").
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolvable(host)
    return addresses


def check_host(host: str, port: int, *, allowed: Sequence[IPNetwork] = ()) -> IPAddress:
    """The address to connect to, once every address the host resolves to is acceptable.

    Raises Unresolvable, or Blocked for the first refused address: one bad answer among
    good ones refuses the host, since the connection could land on any of them.
    """
    addresses = resolve(host, port)
    for address in addresses:
        reason = refusal(address, allowed=allowed)
        if reason is not None:
            raise Blocked(address, reason)
    return addresses[0]
