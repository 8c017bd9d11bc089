"""Webhooks end to end: a real receiver on 127.0.0.1, real Redis, workers, beat and the API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.core.broker import WEBHOOK_QUEUE
from service.webhooks.config import verify
from tests.factories import comment
from tests.stack import Stack, StackSpec, free_port, wait_until

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 1.0
FAST_RETRIES = {
    "MODERATION_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "MODERATION_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "MODERATION_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
    "MODERATION_WEBHOOK_RETRY_INTERVAL_SECONDS": "0.3",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A site backend: /ok answers 200, /flaky 500 to a delivery's first try, /slow hangs."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests_for(self, comment_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.payload["comment"]["id"] == comment_id]


def _start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen = Received(self.path, dict(self.headers.items()), body)
            with receiver.lock:
                delivery = seen.headers.get("X-Moderation-Delivery")
                earlier = [
                    r
                    for r in receiver.received
                    if r.headers.get("X-Moderation-Delivery") == delivery
                ]
                receiver.received.append(seen)
            status = 200
            if self.path == "/flaky" and not earlier:
                status = 500
            elif self.path == "/slow":
                time.sleep(3 * TIMEOUT_SECONDS)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the service gave up waiting, as it should

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = _start_receiver()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


# A webhook worker beside the scoring one, as `moderation up` runs. SQLite only: it is the
# harder case here (one writer shared by the scoring worker and eight webhook threads), and
# every database step runs on PostgreSQL in tests/webhooks/test_webhooks.py. Adding
# "postgresql" costs about 20 s.
# The receiver is on 127.0.0.1: the stack allows loopback, as a deployment opts in to a range.
ALLOW_LOOPBACK = {"MODERATION_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]'}
STACK = StackSpec(env={**FAST_RETRIES, **ALLOW_LOOPBACK}, beat=True, workers=(WEBHOOK_QUEUE,))


def _set_webhook(stack: Stack, url: str, secret: str | None = None) -> dict[str, Any]:
    body = {"url": url} if secret is None else {"url": url, "secret": secret}
    with stack.client("news-site_admin") as admin:
        response = admin.put("/v1/sites/news/webhook", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _deliveries(stack: Stack, comment_id: str) -> list[dict[str, Any]]:
    with stack.client("news-moderator") as moderator:
        response = moderator.get("/v1/webhooks/deliveries", params={"comment_id": comment_id})
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]  # type: ignore[no-any-return]


def _post(stack: Stack, external_id: str, text: str, key: str = "news-submitter") -> Any:
    with stack.client(key) as client:
        response = client.post("/v1/comments?wait_ms=5000", json=comment(external_id, text))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_decided_comment_is_posted_signed_to_the_site_backend(
    stack: Stack, receiver: Receiver
) -> None:
    config = _set_webhook(stack, f"{receiver.base_url}/ok")
    secret = config["secret"]
    assert secret and config["secret_set"], "a generated secret is shown once"
    decided = _post(stack, "hook-1", "You are a pathetic idiot.")
    [request] = wait_until(lambda: receiver.requests_for(decided["id"]), timeout=15)
    headers = request.headers
    assert verify(
        secret, headers["X-Moderation-Timestamp"], headers["X-Moderation-Signature"], request.body
    )
    assert headers["X-Moderation-Event"] == "comment.decided"
    payload = request.payload
    assert payload["id"] == headers["X-Moderation-Delivery"]
    assert (payload["event"], payload["site"]) == ("comment.decided", "news")
    assert payload["comment"]["external_id"] == "hook-1"
    assert payload["comment"]["status"] == decided["status"] == "held"
    assert payload["comment"]["decision"]["reasons"] == decided["decision"]["reasons"]
    [delivery] = wait_until(
        lambda: [d for d in _deliveries(stack, decided["id"]) if d["status"] == "delivered"],
        timeout=10,
    )
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    with stack.client("news-site_admin") as admin:
        shown = admin.get("/v1/sites/news/webhook").json()
    assert shown == {
        "site": "news",
        "url": f"{receiver.base_url}/ok",
        "secret_set": True,
        "secret": None,
    }


def test_a_moderators_review_is_posted_signed_and_shows_in_the_history(
    stack: Stack, receiver: Receiver
) -> None:
    secret = "r" * 32
    _set_webhook(stack, f"{receiver.base_url}/ok", secret)
    held = _post(stack, "hook-review", "Shut up, you stupid moron.")
    with stack.client("news-moderator") as moderator:
        response = moderator.post(
            f"/v1/comments/{held['id']}/review",
            json={"action": "reject", "reason": "ABUSIVE", "note": "insult"},
        )
        assert response.status_code == 200, response.text

        def reviewed() -> list[Received]:
            return [
                r
                for r in receiver.requests_for(held["id"])
                if r.payload["event"] == "comment.reviewed"
            ]

        [request] = wait_until(reviewed, timeout=15)
        events = wait_until(
            lambda: [
                e
                for e in moderator.get(f"/v1/comments/{held['id']}/history").json()["events"]
                if e["event"] == "webhook" and e["data"]["status"] == "delivered"
            ],
            timeout=10,
        )
    headers = request.headers
    assert verify(
        secret, headers["X-Moderation-Timestamp"], headers["X-Moderation-Signature"], request.body
    )
    payload = request.payload
    assert payload["comment"]["status"] == "rejected"
    assert payload["review"]["action"] == "reject" and payload["review"]["reason"] == "ABUSIVE"
    assert payload["review"]["note"] == "insult"
    assert {e["data"]["event"] for e in events} == {"comment.decided", "comment.reviewed"}


def test_a_receiver_that_fails_at_first_gets_the_delivery_again_with_a_fresh_signature(
    stack: Stack, receiver: Receiver
) -> None:
    secret = "a-secret-of-our-own-choosing"
    _set_webhook(stack, f"{receiver.base_url}/flaky", secret)
    decided = _post(stack, "hook-2", "Thanks for covering the council meeting.")

    def delivered() -> list[dict[str, Any]]:
        return [d for d in _deliveries(stack, decided["id"]) if d["status"] == "delivered"]

    [delivery] = wait_until(delivered, timeout=20)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert [a["number"] for a in delivery["attempts"]] == [1, 2]
    assert delivery["last_status_code"] == 200
    first, second = receiver.requests_for(decided["id"])
    assert first.headers["X-Moderation-Delivery"] == second.headers["X-Moderation-Delivery"]
    for request in (first, second):
        assert verify(
            secret,
            request.headers["X-Moderation-Timestamp"],
            request.headers["X-Moderation-Signature"],
            request.body,
        )


def test_a_dead_or_hanging_receiver_does_not_hold_up_decisions(
    stack: Stack, receiver: Receiver
) -> None:
    _set_webhook(stack, f"{receiver.base_url}/slow")
    with stack.client("news-operator") as admin:
        dead = admin.put(
            "/v1/sites/other/webhook", json={"url": f"http://127.0.0.1:{free_port()}/"}
        )
    assert dead.status_code == 200, dead.text
    # More deliveries than the webhook worker has threads, each hanging past its timeout.
    statuses = [
        _post(stack, f"hang-{i}", f"Reply number {i} to the editor.")["status"] for i in range(10)
    ]
    statuses += [
        _post(stack, f"dead-{i}", f"Reply number {i}.", key="other-submitter")["status"]
        for i in range(5)
    ]
    assert set(statuses) <= {"approved", "held"}, "every comment decided within its wait"
    hanging = _post(stack, "hang-last", "One more reply.")

    def timed_out() -> list[dict[str, Any]]:
        return [
            a
            for d in _deliveries(stack, hanging["id"])
            for a in d["attempts"]
            if a["error"] and "Timeout" in a["error"]
        ]

    assert wait_until(timed_out, timeout=30), "the hanging receiver's attempt is on record"
    # Fixed by the admin: the waiting deliveries go to the new URL on their next retry.
    _set_webhook(stack, f"{receiver.base_url}/ok")
    assert wait_until(
        lambda: [d for d in _deliveries(stack, hanging["id"]) if d["status"] == "delivered"],
        timeout=30,
    )
    with stack.client("news-operator") as admin:
        assert admin.delete("/v1/sites/other/webhook").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://news.example/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://127.0.0.1:{port}/v1/hook"}, "url"),  # this service itself
        ({"url": "http://localhost:{port}/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),  # not even when allowed
        ({"url": "http://[::ffff:10.0.0.1]/"}, "url"),
        ({"url": "http://0x0a000001/"}, "url"),  # 10.0.0.1
        ({"url": "http://no-such-host.invalid/"}, "url"),
        ({"url": "http://127.0.0.1:9/hook", "secret": "too-short"}, "secret"),
        ({"secret": "long-enough-secret-1234"}, "url"),
        ({"url": "https://news.example/hook", "token": "x"}, "token"),
    ],
)
def test_a_bad_webhook_is_refused_with_422_and_changes_nothing(
    stack: Stack, body: dict[str, str], field: str
) -> None:
    with stack.client("news-site_admin") as admin:
        before = admin.get("/v1/sites/news/webhook").json()
        sent = {k: v.format(port=stack.port) for k, v in body.items()}
        response = admin.put("/v1/sites/news/webhook", json=sent)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert admin.get("/v1/sites/news/webhook").json() == before


def test_only_admins_configure_webhooks_each_its_own_and_keys_see_their_own_deliveries(
    stack: Stack,
) -> None:
    body = {"url": "https://news.example/hook"}
    with stack.client("news-moderator") as moderator:
        assert moderator.put("/v1/sites/news/webhook", json=body).status_code == 403
        assert moderator.get("/v1/sites/news/webhook").status_code == 403
    with stack.client("news-submitter") as submitter:
        assert submitter.get("/v1/webhooks/deliveries").status_code == 403
    with stack.client("news-operator") as operator:
        assert operator.put("/v1/sites/nowhere/webhook", json=body).status_code == 404
        assert operator.get("/v1/sites/nowhere/webhook").status_code == 404
    with stack.client("news-site_admin") as admin:
        assert admin.put("/v1/sites/other/webhook", json=body).status_code == 403
        deliveries = admin.get("/v1/webhooks/deliveries", params={"limit": 200}).json()
    assert deliveries["deliveries"], "an admin reads its own site's deliveries"
    assert {d["payload"]["site"] for d in deliveries["deliveries"]} == {"news"}


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_the_webhook_worker_does_not_load_the_model(stack: Stack) -> None:
    scoring = _rss_kb(stack.processes["worker"].pid)
    webhooks = _rss_kb(stack.processes["webhooks"].pid)
    # The model and its language detector are most of a scoring worker's memory.
    assert webhooks < 0.8 * scoring, (webhooks, scoring)
