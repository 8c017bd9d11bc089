"""https webhooks against real TLS receivers on 127.0.0.1, with certificates made here.

The URL names `localhost`; the connection goes to the address it was checked to resolve to,
while SNI, the Host header and the certificate check use the name. A leaf certificate names
only `DNS:localhost` (no IP), so a delivery that verified against the address would fail.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.broker import WEBHOOK_QUEUE
from service.core.db import session_scope
from service.core.tables import WebhookAttempt, WebhookDelivery
from service.sites.keys import get_or_create_site
from service.webhooks.config import COMMENT_DECIDED, record_event, set_webhook, verify
from service.webhooks.delivery import RetryPolicy, attempt_delivery
from service.webhooks.outbound import webhook_client
from tests.factories import comment
from tests.stack import Stack, StackSpec, wait_until

LOOPBACK = ("127.0.0.0/8", "::1/128")
SECRET = "s" * 20
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


# --- a certificate authority of the test's own ------------------------------------------------


@dataclass(frozen=True)
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, directory: Path, dns_name: str) -> tuple[Path, Path]:
        """A server certificate for `dns_name` (and nothing else), as (cert, key) files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        stem = directory / f"{self.name}-{dns_name}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def _authority(name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    now = dt.datetime.now(dt.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(name, key, cert)


@cache
def trusted() -> Authority:
    """The CA the deployment is told to trust (one per test session: the stack's too)."""
    return _authority("trusted")


@cache
def stranger() -> Authority:
    """A CA nobody was told about."""
    return _authority("stranger")


# --- a TLS receiver ---------------------------------------------------------------------------


@dataclass
class TLSReceiver:
    """An https site backend that records the TLS name it was asked for, the requests it got,
    and the handshakes that failed (a client that refused its certificate)."""

    server: ThreadingHTTPServer
    server_names: list[str | None] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failed_handshakes: int = 0

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    context: ssl.SSLContext
    receiver: TLSReceiver

    def get_request(self) -> tuple[Any, Any]:
        conn, address = self.socket.accept()
        conn.settimeout(10)
        try:
            return self.context.wrap_socket(conn, server_side=True), address
        except OSError:
            # socketserver drops a connection whose get_request raises OSError.
            self.receiver.failed_handshakes += 1
            conn.close()
            raise


def _start_receiver(cert: Path, key: Path) -> TLSReceiver:
    receiver: TLSReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _TLSServer(("127.0.0.1", 0), Handler)
    receiver = TLSReceiver(server)
    context.sni_callback = lambda _sock, name, _ctx: receiver.server_names.append(name)
    server.context, server.receiver = context, receiver
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


StartReceiver = Callable[[Authority, str], TLSReceiver]


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[StartReceiver]:
    """Starts receivers with a certificate from an authority for a name; stops them after."""
    started: list[TLSReceiver] = []

    def start(authority: Authority, dns_name: str) -> TLSReceiver:
        started.append(_start_receiver(*authority.issue(tmp_path, dns_name)))
        return started[-1]

    try:
        yield start
    finally:
        for receiver in started:
            receiver.server.shutdown()
            receiver.server.server_close()


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "webhook-ca.pem"
    path.write_bytes(trusted().pem())
    return path


# --- one attempt, through the client the worker builds ------------------------------------------


def _configured(sessions: sessionmaker[Session], url: str) -> str:
    with session_scope(sessions) as session:
        site = get_or_create_site(session, "news")
        set_webhook(
            session,
            "news",
            url=url,
            secret=SECRET,
            actor="a",
            service_origins=[],
            api_port=8000,
            allowed_networks=LOOPBACK,
        )
        return record_event(
            session, site_id=site.id, url=url, event=COMMENT_DECIDED, comment_id="c1", data={}
        )


POLICY = RetryPolicy(timeout_seconds=3, allowed_networks=LOOPBACK)


def test_an_https_delivery_is_verified_against_the_urls_name_at_the_checked_address(
    sessions: sessionmaker[Session], tls_receiver: StartReceiver, ca_file: Path
) -> None:
    receiver = tls_receiver(trusted(), "localhost")
    url = f"https://localhost:{receiver.port}/hook"
    delivery_id = _configured(sessions, url)
    with webhook_client(ca_file=ca_file) as client:
        result = attempt_delivery(sessions, delivery_id, client=client, policy=POLICY)
    assert result is not None and (result.status, result.status_code) == ("delivered", 200)
    assert receiver.server_names == ["localhost"], "SNI is the URL's name, not the address"
    [(headers, body)] = receiver.requests
    assert headers["Host"] == f"localhost:{receiver.port}"
    assert verify(
        SECRET, headers["X-Moderation-Timestamp"], headers["X-Moderation-Signature"], body
    )


@pytest.mark.parametrize(
    ("issuer", "dns_name", "trust_ca_file"),
    [
        pytest.param(trusted, "receiver.example", True, id="certificate-for-another-name"),
        pytest.param(stranger, "localhost", True, id="issuer-not-in-the-ca-file"),
        pytest.param(trusted, "localhost", False, id="private-ca-without-the-ca-file"),
    ],
)
def test_a_receiver_whose_certificate_does_not_prove_the_name_is_sent_nothing(
    sessions: sessionmaker[Session],
    tls_receiver: StartReceiver,
    ca_file: Path,
    issuer: Callable[[], Authority],
    dns_name: str,
    trust_ca_file: bool,
) -> None:
    receiver = tls_receiver(issuer(), dns_name)
    delivery_id = _configured(sessions, f"https://localhost:{receiver.port}/hook")
    with webhook_client(ca_file=ca_file if trust_ca_file else None) as client:
        result = attempt_delivery(sessions, delivery_id, client=client, policy=POLICY)
    assert result is not None and result.status == "pending", "retried, like a refused connection"
    assert result.error is not None and VERIFY_FAILED in result.error, result.error
    assert wait_until(lambda: receiver.failed_handshakes == 1, timeout=5), "reached, refused"
    assert receiver.requests == [], "nothing was sent to it"
    with session_scope(sessions) as session:
        [attempt] = session.scalars(select(WebhookAttempt)).all()
    assert attempt.status_code is None and attempt.error == result.error


# --- end to end: the webhook worker trusts MODERATION_WEBHOOK_CA_FILE ----------------------------


def _trust_the_test_ca(directory: Path) -> dict[str, str]:
    path = directory / "webhook-ca.pem"
    path.write_bytes(trusted().pem())
    return {"MODERATION_WEBHOOK_CA_FILE": str(path)}


STACK = StackSpec(
    env={
        "MODERATION_WEBHOOK_TIMEOUT_SECONDS": "3",
        # One attempt is enough to see: no retry comes back within the test.
        "MODERATION_WEBHOOK_BACKOFF_BASE_SECONDS": "600",
        # The receivers are on 127.0.0.1 (`localhost`): the deployment opts in to loopback.
        "MODERATION_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
    },
    workers=(WEBHOOK_QUEUE,),
    keys={"news-hooks": ("news", "site_admin")},
    prepare=_trust_the_test_ca,
)


def _deliver_one(stack: Stack, url: str, external_id: str) -> str:
    """Point news's webhook at `url`, decide a comment; the id of its delivery."""
    with stack.client("news-hooks") as admin:
        response = admin.put("/v1/sites/news/webhook", json={"url": url, "secret": SECRET})
    assert response.status_code == 200, response.text
    with stack.client("news-submitter") as client:
        response = client.post("/v1/comments?wait_ms=5000", json=comment(external_id, "Thanks."))
    assert response.status_code == 200, response.text
    comment_id = response.json()["id"]
    with session_scope(stack.sessions) as session:
        delivery_id = session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.comment_id == comment_id)
        )
    assert delivery_id is not None
    return delivery_id


def _attempts(stack: Stack, delivery_id: str) -> list[WebhookAttempt]:
    with session_scope(stack.sessions) as session:
        return list(
            session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id))
        )


@pytest.mark.integration
def test_the_webhook_worker_checks_receivers_against_the_configured_ca_file(
    stack: Stack, tls_receiver: StartReceiver
) -> None:
    good = tls_receiver(trusted(), "localhost")
    delivered = _deliver_one(stack, f"https://localhost:{good.port}/hook", "tls-good")
    [(headers, body)] = wait_until(lambda: list(good.requests), timeout=15)
    assert good.server_names == ["localhost"]
    assert headers["Host"] == f"localhost:{good.port}"
    assert verify(
        SECRET, headers["X-Moderation-Timestamp"], headers["X-Moderation-Signature"], body
    )
    [attempt] = wait_until(lambda: _attempts(stack, delivered), timeout=10)
    assert attempt.status_code == 200

    wrong = tls_receiver(trusted(), "receiver.example")
    refused = _deliver_one(stack, f"https://localhost:{wrong.port}/hook", "tls-wrong-name")
    [attempt] = wait_until(lambda: _attempts(stack, refused), timeout=15)
    assert attempt.status_code is None and VERIFY_FAILED in (attempt.error or ""), attempt.error
    assert wait_until(lambda: wrong.failed_handshakes == 1, timeout=5)
    assert wrong.requests == [], "nothing was sent to it"
