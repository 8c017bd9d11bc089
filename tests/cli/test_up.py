"""`moderation up` (what `make run` runs): everything starts, answers, and stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import comment
from tests.stack import free_port

pytestmark = pytest.mark.integration

MODERATION = str(Path(sys.executable).parent / "moderation")


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"no {pattern!r} in the output of moderation up:\n{seen}")


def test_up_starts_embedded_redis_worker_and_api_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MODERATION_REDIS_URL", "MODERATION_DATABASE_URL")
    }
    env |= {"MODERATION_VAR_DIR": str(tmp_path / "var"), "MODERATION_API_PORT": str(port),
            "COLUMNS": "400"}  # fmt: skip
    up = subprocess.Popen(
        [MODERATION, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        banner = _read_until(up, r"moderator key: mk_\S+", timeout=60)
        assert f"http://127.0.0.1:{port}/docs" in banner
        submitter = re.search(r"submitter key: (mk_\S+)", banner)
        assert submitter is not None
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {submitter.group(1)}"}
        response = httpx.post(
            f"{base}/v1/comments?wait_ms=5000",
            json=comment("up-1", "You are a pathetic idiot."),
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "held"

        created = subprocess.run(
            [MODERATION, "keys", "create", "--site", "demo", "--role", "submitter"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        new_key = created.stdout.strip()
        assert new_key.startswith("mk_")
        response = httpx.get(
            f"{base}/v1/comments/by-external-id/up-1",
            headers={"Authorization": f"Bearer {new_key}"},
        )
        assert response.json()["status"] == "held"

        status = subprocess.run(
            [MODERATION, "status"], env=env, capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stdout + status.stderr
        for name in ("worker", "webhooks", "training", "beat", "api"):
            assert re.search(rf"{name}\s+\d+\s+running", status.stdout), status.stdout
        assert re.search(r"worker \(standby\)\s+\d+\s+standby", status.stdout), status.stdout
        assert "pending comments: 0" in status.stdout and "active model: tfidf-lr-" in status.stdout

        _kill_the_worker_and_see_it_restarted(up, tmp_path / "var", base, headers)
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
        banner += rest or ""
    assert up.returncode == 0
    # The console holds the banner and one line per process event; Celery's and uvicorn's own
    # output is in var/log/<name>.log.
    assert "scoring1@" not in banner and "Uvicorn running" not in banner, banner
    assert "scoring1@" in (tmp_path / "var" / "log" / "worker.log").read_text()
    assert "stopped api" in banner and "stopped worker (standby)" in banner
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    assert not (tmp_path / "var" / "redis.sock").exists(), "the embedded Redis stopped too"


def _kill_the_worker_and_see_it_restarted(
    up: subprocess.Popen[str], var: Path, base: str, headers: dict[str, str]
) -> None:
    state = json.loads((var / "run" / "up.json").read_text())
    (worker,) = [c["pid"] for c in state["children"] if c["name"] == "worker"]
    os.kill(worker, signal.SIGKILL)
    said = _read_until(up, r"its standby \(pid \d+\) took over", timeout=30)
    assert "worker exited with code -9" in said
    # The standby, warm, decides at once: a crash never stops every decision.
    response = httpx.post(
        f"{base}/v1/comments?wait_ms=5000",
        json=comment("up-2", "Thanks for the thorough reporting on the talks."),
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved", response.text
    _read_until(up, r"restarted worker \(standby\) \(pid \d+", timeout=30)


def test_keys_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    env = {**os.environ, "MODERATION_VAR_DIR": str(tmp_path / "var")}
    env.pop("MODERATION_DATABASE_URL", None)
    result = subprocess.run(
        [MODERATION, "keys", "create", "--site", "demo", "--role", "owner"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "role must be one of" in result.stderr
    assert result.stdout == ""
