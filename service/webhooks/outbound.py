"""Where webhooks may go and how they get there: resolve a URL's host, refuse internal
addresses unless allowed, and POST to the very address checked, within one deadline.

The POST goes to the checked IP with the URL's Host header and, for https, its name as SNI
and as the name the certificate is verified against, so DNS cannot change between the check
and the connection, and TLS proves the receiver is the name the site configured.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "BLOCKED",
    "METADATA_ADDRESSES",
    "Blocked",
    "IPAddress",
    "IPNetwork",
    "Unresolvable",
    "check_host",
    "parse_networks",
    "post",
    "refusal",
    "resolve",
    "webhook_client",
]

# The start of an attempt's error when the address policy refused its destination.
BLOCKED = "blocked:"

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


# --- sending ---------------------------------------------------------------------------------


def webhook_client(*, ca_file: Path | None = None) -> httpx.Client:
    """The client deliveries go through (thread-safe, redirects not followed).

    Receivers' certificates are checked against `ca_file`, a PEM bundle for receivers with a
    private CA, or without one against httpx's default bundle (certifi's).
    """
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        # Only this bundle: a deployment that names its CAs means those, not the public ones.
        verify = ssl.create_default_context(cafile=str(ca_file))
    return httpx.Client(verify=verify, follow_redirects=False)


class _Deadline:
    """Shuts the attempt's socket when its time is up.

    httpx's timeouts bound each phase (connect, each write, each read), not the whole call:
    a receiver sending one byte a second would hold a worker for as long as it liked.
    httpcore's trace hook hands over each stream it opens, and shutting the socket from a
    timer ends whatever read or write is waiting on it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._at = time.monotonic() + seconds
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return self._at - time.monotonic()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith(("connect_tcp.complete", "start_tls.complete")):
            with self._lock:
                self._streams.append(info["return_value"])
                if self.expired:
                    _shut(info["return_value"])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for stream in self._streams:
                _shut(stream)


def _shut(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    # Already closed, or detached when TLS wrapped it: nothing left to wake.
    with contextlib.suppress(OSError, TypeError):
        # The plain socket's shutdown, also for a TLS one: it only needs to wake the reader.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _pinned_request(
    client: httpx.Client,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    allowed: Sequence[IPNetwork],
    deadline: _Deadline,
) -> httpx.Request:
    """The POST, addressed to the IP just checked, with the URL's Host header and TLS name.

    Raises Blocked or Unresolvable. `Connection: close`: a pooled connection is keyed by the
    IP, and must not carry another host's request over a TLS session verified for this one.
    """
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    address = check_host(host, port, allowed=allowed)
    extensions: dict[str, Any] = {"trace": deadline.trace}
    if target.scheme == "https":
        # httpcore sends this name as SNI and verifies the certificate against it, not
        # against the IP the URL now holds.
        extensions["sni_hostname"] = host
    headers = {**headers, "Host": target.netloc.decode("ascii"), "Connection": "close"}
    return client.build_request(
        "POST",
        target.copy_with(host=str(address)),
        content=body,
        headers=headers,
        timeout=max(deadline.remaining(), 0.001),
        extensions=extensions,
    )


def post(
    client: httpx.Client,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    allowed_networks: Iterable[str] = (),
) -> int | str:
    """The receiver's status code, or a description of why there was none (one starting with
    BLOCKED when the address policy refused the destination)."""
    allowed = parse_networks(allowed_networks)
    with _Deadline(timeout_seconds) as deadline:
        try:
            request = _pinned_request(
                client, url, body=body, headers=headers, allowed=allowed, deadline=deadline
            )
            # Streamed and closed unread: only the status matters, whatever the body's size.
            response = client.send(request, stream=True, follow_redirects=False)
            response.close()
        except Blocked as exc:
            # Never the address itself: the site's admins must not map the network with it.
            return f"{BLOCKED} the URL resolves to {exc.reason}"
        except Unresolvable:
            return "ConnectError: the URL's host does not resolve"
        except Exception as exc:  # whatever stopped the POST is this attempt's outcome: retried
            if deadline.expired:
                return f"Timeout: no complete answer within {deadline.seconds:g} s"
            return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
    return response.status_code
