"""The production shape in docker-compose.yml and the Dockerfile, checked without Docker:
every command is one the CLI has, every setting one the service reads, and the same processes
(two API processes, two scoring workers, beat, PostgreSQL, Redis with AOF) run and decide."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from sqlalchemy import create_engine, func, select

from service.core.broker import QUEUES
from service.core.embedded_redis import redis_server_executable
from service.core.settings import Settings
from service.core.tables import Comment, Decision
from tests.conftest import postgres_database
from tests.factories import CIVIL, TOXIC, comment
from tests.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = {n: s for n, s in COMPOSE["services"].items() if s.get("image") == "moderation:latest"}
BIN = Path(sys.executable).parent


def test_every_service_of_ours_runs_a_command_the_cli_has() -> None:
    assert {"migrate", "api", "worker", "beat"} <= set(OURS)
    for name, service in OURS.items():
        command = service["command"]
        if command[0] == "celery":
            assert command[1:4] == ["-A", "workers.app", "beat"], name
            continue
        assert command[0] == "moderation", name
        if "--queue" in command:
            assert command[command.index("--queue") + 1] in QUEUES, name
        helped = subprocess.run(
            [str(BIN / "moderation"), *command[1:2], "--help"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert helped.returncode == 0, f"{name}: {helped.stderr}"
        for option in (word for word in command[2:] if word.startswith("--")):
            assert option in helped.stdout, f"{name}: `moderation {command[1]}` has no {option}"


def test_every_setting_the_compose_file_gives_is_one_the_service_reads() -> None:
    fields = set(Settings.model_fields)
    for name, service in OURS.items():
        for key in service["environment"]:
            if key.startswith("MODERATION_"):
                assert key.removeprefix("MODERATION_").lower() in fields, f"{name}: {key}"
    assert OURS["worker"]["deploy"]["replicas"] >= 2, "one restart must not stop decisions"
    redis_service = COMPOSE["services"]["redis"]
    assert redis_service["command"][-2:] == ["--appendonly", "yes"]


def test_the_dockerfile_copies_what_exists_and_installs_the_runtime_only() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for line in lines:
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), line
    (install,) = [line for line in lines if "pip install" in line]
    assert install.rstrip().endswith(" .") and "[dev]" not in install


def _env(service: dict[str, Any], **local: str) -> dict[str, str]:
    """A compose service's environment, with this machine's addresses and no ${...} left."""
    values = {k: str(v) for k, v in service["environment"].items()}
    values = {k: v for k, v in values.items() if not re.fullmatch(r"\$\{.*\}", v)}
    return {**os.environ, **values, **local}


@pytest.fixture
def redis_with_aof(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    args = COMPOSE["services"]["redis"]["command"][1:]
    server = subprocess.Popen(
        [redis_server_executable(), *args, "--port", str(port), "--dir", str(tmp_path),
         "--save", "", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


class Shape:
    """The compose file's processes, started here as docker would start them."""

    def __init__(self, directory: Path, local: dict[str, str]) -> None:
        self.directory, self.local = directory, local
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: dict[str, Path] = {}

    def start(self, name: str, service: str) -> subprocess.Popen[bytes]:
        command = [
            arg.replace("/tmp/celerybeat-schedule", str(self.directory / "beat-schedule"))
            for arg in OURS[service]["command"]
        ]
        log = self.directory / f"{name}.log"
        metrics = self.directory / f"metrics-{name}"
        metrics.mkdir()
        env = _env(OURS[service], **self.local, PROMETHEUS_MULTIPROC_DIR=str(metrics))
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(BIN / command[0]), *command[1:]], env=env, stdout=out, stderr=out,
                cwd=self.directory,
            )  # fmt: skip
        self.processes.append(process)
        self.logs[name] = log
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _ready(base: str, workers: int) -> bool:
    try:
        body = httpx.get(f"{base}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body["status"] == "ready" and body["checks"]["scoring_workers"] >= workers)


@pytest.mark.integration
def test_the_compose_shape_runs_without_docker_and_decides_every_comment_once(
    tmp_path: Path, redis_with_aof: str
) -> None:
    with postgres_database() as database:
        port = free_port()
        local = {
            "MODERATION_DATABASE_URL": database,
            "MODERATION_REDIS_URL": redis_with_aof,
            "MODERATION_API_HOST": "127.0.0.1",
            "MODERATION_API_PORT": str(port),
            "MODERATION_SECRET_KEY": secrets.token_urlsafe(32),
            "MODERATION_VAR_DIR": str(tmp_path / "var"),
            # One host here, where docker gives each container its own: no shared port.
            "MODERATION_METRICS_PORT": "0",
            "MODERATION_LOG_LEVEL": "INFO",
        }
        shape = Shape(tmp_path, local)
        try:
            assert shape.start("migrate", "migrate").wait(timeout=120) == 0
            shape.start("api", "api")
            replicas = OURS["worker"]["deploy"]["replicas"]
            for replica in range(1, replicas + 1):
                shape.start(f"worker-{replica}", "worker")
            shape.start("worker-webhooks", "worker-webhooks")
            shape.start("beat", "beat")
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while not _ready(base, replicas):
                assert time.monotonic() < deadline, shape.logs["api"].read_text()[-3000:]
                time.sleep(0.2)
            _comments_flow(shape, base, database, local)
        finally:
            shape.stop()


def _comments_flow(shape: Shape, base: str, database: str, local: dict[str, str]) -> None:
    created = subprocess.run(
        [str(BIN / "moderation"), "keys", "create", "--site", "news", "--role", "submitter"],
        env={**os.environ, **local}, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    texts = [(CIVIL + TOXIC)[i % len(CIVIL + TOXIC)] for i in range(40)]

    def send(i: int) -> httpx.Response:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            return client.post("/v1/comments?wait_ms=5000", json=comment(f"shape-{i}", texts[i]))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(len(texts))))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers][:3]
    assert {a.json()["status"] for a in answers} <= {"approved", "held"}
    started = shape.logs["api"].read_text().count("Started server process")
    assert started == 2, "two uvicorn processes, as the compose file asks"
    engine = create_engine(database)
    with engine.connect() as connection:
        decided = connection.scalar(select(func.count(func.distinct(Decision.comment_id))))
        decisions = connection.scalar(select(func.count()).select_from(Decision))
        comments = connection.scalar(select(func.count()).select_from(Comment))
    engine.dispose()
    assert comments == decisions == decided == len(texts), "each comment decided once"
