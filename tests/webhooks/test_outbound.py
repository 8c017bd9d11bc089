"""Where webhooks may go, and how long an attempt may take: real receivers on 127.0.0.1.

No mock transport here: each delivery goes through a real `httpx.Client` to a real socket,
so what is proved is what the network saw (or did not).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pydantic
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import InvalidInput
from service.core.settings import Settings
from service.core.tables import Site, WebhookAttempt
from service.sites.keys import get_or_create_site
from service.webhooks.config import COMMENT_DECIDED, record_event, set_webhook
from service.webhooks.delivery import RetryPolicy, attempt_delivery
from service.webhooks.outbound import Blocked, check_host, parse_networks, refusal, resolve

OWN = [("moderation.example", 443)]
LOOPBACK = ("127.0.0.0/8", "::1/128")


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# --- the address policy (no network, no database) ----------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a private address"),  # "reserved", which Python counts as private too
        ("100.64.0.1", "a non-public address"),  # carrier-grade NAT
        ("::ffff:169.254.169.254", "a cloud metadata address"),  # IPv4-mapped
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", "a cloud metadata address"),  # 6to4 of 169.254.169.254
        ("2002:c0a8:101::1", "a private address"),  # 6to4 of 192.168.1.1
    ],
)
def test_every_internal_address_is_refused_with_its_kind(address: str, reason: str) -> None:
    assert refusal(ip(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_a_public_address_passes(address: str) -> None:
    assert refusal(ip(address)) is None


def test_an_allowed_network_lets_its_addresses_through_and_no_others() -> None:
    allowed = parse_networks(["10.0.0.0/8", " fd00::/8 "])
    assert refusal(ip("10.9.8.7"), allowed=allowed) is None
    assert refusal(ip("::ffff:10.9.8.7"), allowed=allowed) is None, "mapped is the same address"
    assert refusal(ip("fd00::5"), allowed=allowed) is None
    assert refusal(ip("192.168.1.1"), allowed=allowed) == "a private address"
    assert refusal(ip("127.0.0.1"), allowed=allowed) == "a loopback address"
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "localhost"])
def test_short_and_numeric_ipv4_forms_resolve_to_loopback_and_are_blocked(host: str) -> None:
    assert ip("127.0.0.1") in resolve(host, 80)
    with pytest.raises(Blocked) as blocked:
        check_host(host, 80)
    assert blocked.value.reason == "a loopback address"
    assert check_host(host, 80, allowed=parse_networks(LOOPBACK)) == ip("127.0.0.1")


def test_the_allowed_networks_setting_is_read_as_json_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODERATION_WEBHOOK_ALLOWED_NETWORKS", '["10.0.0.0/8", "fd00::/8"]')
    assert Settings().webhook_allowed_networks == ["10.0.0.0/8", "fd00::/8"]
    monkeypatch.setenv("MODERATION_WEBHOOK_ALLOWED_NETWORKS", '["10.0.0.0/99"]')
    with pytest.raises(pydantic.ValidationError):
        Settings()
    assert (
        Settings.model_fields["webhook_allowed_networks"].get_default(call_default_factory=True)
        == []
    ), "nothing internal is allowed by default"


# --- at configuration (a real database) --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/",
        "http://[::1]:9000/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:7f00:1::]/",
        "http://127.1:9000/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://0.0.0.0:9000/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ],
)
def test_a_webhook_url_reaching_inside_the_network_is_refused_naming_the_reason(
    sessions: sessionmaker[Session], url: str
) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
    with pytest.raises(InvalidInput) as error, session_scope(sessions) as session:
        set_webhook(
            session, "news", url=url, secret=None, actor="a", service_origins=OWN, api_port=8000
        )
    assert error.value.field == "url"
    assert "MODERATION_WEBHOOK_ALLOWED_NETWORKS" in str(error.value)
    with session_scope(sessions) as session:
        assert session.scalar(select(Site.webhook_url)) is None


def test_a_host_that_does_not_resolve_is_refused(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
    for url in ("http://no-such-host.invalid/hook", "http://redis-that-is-not-here.invalid:6379/"):
        with pytest.raises(InvalidInput) as error, session_scope(sessions) as session:
            set_webhook(
                session, "news", url=url, secret=None, actor="a", service_origins=OWN, api_port=8000
            )
        assert error.value.field == "url" and "does not resolve" in str(error.value)


def test_the_service_own_port_stays_refused_even_on_an_allowed_network() -> None:
    from service.webhooks.config import check_webhook_url

    for url in ("http://127.1:8000/", "http://2130706433:8000/", "http://[::ffff:127.0.0.1]:8000/"):
        with pytest.raises(InvalidInput, match="this moderation service itself"):
            check_webhook_url(url, service_origins=OWN, api_port=8000, allowed_networks=LOOPBACK)


# --- at delivery (a real receiver on 127.0.0.1) ------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(dict(self.headers.items()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def _configured(sessions: sessionmaker[Session], url: str) -> str:
    """A site whose webhook was accepted under the loopback allow-list, and one delivery."""
    with session_scope(sessions) as session:
        site = get_or_create_site(session, "news")
        set_webhook(
            session,
            "news",
            url=url,
            secret="s" * 20,
            actor="a",
            service_origins=OWN,
            api_port=8000,
            allowed_networks=LOOPBACK,
        )
        return record_event(
            session, site_id=site.id, url=url, event=COMMENT_DECIDED, comment_id="c1", data={}
        )


def test_a_delivery_to_an_allowed_loopback_name_keeps_its_host_header(
    sessions: sessionmaker[Session], receiver: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = receiver
    delivery_id = _configured(sessions, f"http://localhost:{port}/hook")
    policy = RetryPolicy(timeout_seconds=2, allowed_networks=LOOPBACK)
    with httpx.Client() as client:
        result = attempt_delivery(sessions, delivery_id, client=client, policy=policy)
    assert result is not None and (result.status, result.status_code) == ("delivered", 200)
    [headers] = seen
    assert headers["Host"] == f"localhost:{port}", "connected to the IP, addressed to the name"


def test_without_the_allow_list_nothing_reaches_a_loopback_receiver(
    sessions: sessionmaker[Session], receiver: tuple[int, list[dict[str, str]]]
) -> None:
    port, seen = receiver
    for url in (f"http://localhost:{port}/hook", f"http://127.1:{port}/hook"):
        delivery_id = _configured(sessions, url)
        with httpx.Client() as client:
            result = attempt_delivery(
                sessions, delivery_id, client=client, policy=RetryPolicy(timeout_seconds=2)
            )
        assert result is not None and result.status == "failed", "blocked is final"
        assert result.error == "blocked: the URL resolves to a loopback address"
    assert seen == [], "the receiver saw nothing"
    with session_scope(sessions) as session:
        errors = session.scalars(select(WebhookAttempt.error)).all()
    assert len(errors) == 2
    assert all(e is not None and "127.0.0.1" not in e and str(port) not in e for e in errors)


def _trickle(conn: socket.socket) -> None:
    with conn:
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + b"X-Slow: " + b"." * 60:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return  # the service hung up, as it should
            time.sleep(1)


@pytest.fixture
def trickler() -> Iterator[int]:
    """A receiver that answers one byte a second for a minute, status line and all."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline(
    sessions: sessionmaker[Session], trickler: int
) -> None:
    delivery_id = _configured(sessions, f"http://127.0.0.1:{trickler}/hook")
    policy = RetryPolicy(timeout_seconds=1.5, allowed_networks=LOOPBACK)
    started = time.monotonic()
    with httpx.Client() as client:
        result = attempt_delivery(sessions, delivery_id, client=client, policy=policy)
    elapsed = time.monotonic() - started
    assert elapsed < policy.timeout_seconds + 1, elapsed
    assert result is not None and result.status == "pending", "a slow receiver is retried"
    assert result.error is not None and result.error.startswith("Timeout"), result.error
    assert policy.lease.total_seconds() > policy.timeout_seconds + 1
