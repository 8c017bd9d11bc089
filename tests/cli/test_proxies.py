"""X-Forwarded-For and X-Forwarded-Proto are believed only from `trusted_proxies`, with the API
run as `moderation api` (and `moderation up`) runs it: uvicorn with the flags the settings make."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from service.cli.up import api_command, proxy_options
from service.core.embedded_redis import EmbeddedRedis
from service.core.migrate import upgrade_database
from service.core.settings import Settings
from tests.stack import free_port

pytestmark = pytest.mark.integration

MODERATION = str(Path(sys.executable).parent / "moderation")
CLIENT = "203.0.113.9"
# What a TLS-terminating proxy in front of the service adds to a browser's request.
FORWARDED = {"x-forwarded-proto": "https", "x-forwarded-for": CLIENT}


@contextmanager
def _api(directory: Path, trusted: list[str]) -> Iterator[tuple[str, Path]]:
    """`moderation api` with these trusted proxies; its base URL and its log."""
    database = f"sqlite:///{directory / 'moderation.db'}"
    upgrade_database(database)
    redis = EmbeddedRedis(directory, port=free_port()).start()
    port = free_port()
    env = {
        **os.environ,
        "MODERATION_DATABASE_URL": database,
        "MODERATION_REDIS_URL": redis.url,
        "MODERATION_VAR_DIR": str(directory),
        "MODERATION_API_PORT": str(port),
        "MODERATION_LOG_LEVEL": "WARNING",
        "MODERATION_TRUSTED_PROXIES": json.dumps(trusted),
        # uvicorn's own knob, set as loosely as it goes: the settings must win over it.
        "FORWARDED_ALLOW_IPS": "*",
    }
    log = directory / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen([MODERATION, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(api, base, log)
        yield base, log
    finally:
        api.terminate()
        try:
            api.wait(timeout=15)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
        redis.stop()


def _wait_ready(api: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert api.poll() is None, log.read_text()
        try:
            # The API alone, no worker: ready to take comments is what this test needs.
            if httpx.get(f"{base}/readyz?scope=intake", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the API did not become ready:\n{log.read_text()}")


def _failed_auth_addresses(log: Path) -> list[str]:
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [event["address"] for event in events if event.get("event") == "auth_failed"]


def _seen_by_the_service(base: str, log: Path) -> tuple[bool, str]:
    """Whether the sign-in cookie came back Secure, and the client address a failed
    authentication was logged with, for one request from 127.0.0.1 through a "proxy"."""
    with httpx.Client(base_url=base, headers=FORWARDED, timeout=30) as client:
        cookie = client.get("/moderate/login").headers["set-cookie"]
        wrong = client.post("/v1/comments", headers={"authorization": "Bearer mk_wrong"}, json={})
        assert wrong.status_code == 401
    deadline = time.monotonic() + 10
    while not _failed_auth_addresses(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    (address,) = _failed_auth_addresses(log)
    return "secure" in cookie.lower(), address


@pytest.mark.parametrize(
    ("trusted", "believed"),
    [
        ([], False),  # the default: nobody is a proxy
        (["192.0.2.0/24"], False),  # proxies are configured, but 127.0.0.1 is not one
        (["127.0.0.1"], True),
        (["127.9.9.9/8"], True),  # host bits set: still the network 127.0.0.0/8
    ],
)
def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: list[str], believed: bool
) -> None:
    with _api(tmp_path, trusted) as (base, log):
        secure, address = _seen_by_the_service(base, log)
    assert secure is believed, "X-Forwarded-Proto: https makes the cookie Secure"
    assert address == (CLIENT if believed else "127.0.0.1")


def test_proxy_flags_name_networks_the_way_uvicorn_parses_them() -> None:
    assert proxy_options(Settings(trusted_proxies=[])) == ["--no-proxy-headers"]
    flags = proxy_options(Settings(trusted_proxies=["10.1.2.3/8", "::1", "2001:db8::/32"]))
    assert flags == ["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8,::1,2001:db8::/32"]


def test_the_api_runs_as_many_processes_as_the_setting_says() -> None:
    assert "--workers" not in api_command(Settings())
    command = api_command(Settings(api_workers=2))
    assert command[command.index("--workers") + 1] == "2"
