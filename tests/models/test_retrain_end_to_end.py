"""Retraining over HTTP with a real training worker: jobs, promotion, refusals and faults."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from classifier import save_model
from classifier.training import train
from service.core.db import session_scope
from service.models.labels import import_labels
from service.sites.sites import get_site
from tests.factories import comment, site_texts, write_base_corpus
from tests.stack import Stack, StackSpec, wait_until

pytestmark = pytest.mark.integration

MODERATION = str(Path(sys.executable).parent / "moderation")
TERMINAL = ("succeeded", "failed")


def _write_labels(
    path: Path, rows: list[tuple[str, dict[str, int]]], *, comment_id: str = ""
) -> Path:
    # service.models.labels reads the comment_id column even when no row ties itself to a comment.
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["comment_id", "comment_text", "toxic", "insult"])
        for text, values in rows:
            writer.writerow([comment_id, text, values["toxic"], values["insult"]])
    return path


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "COLUMNS": "300"}
    return subprocess.run([MODERATION, *args], env=env, capture_output=True, text=True, timeout=60)


def _start_training_worker(stack: Stack, name: str = "training") -> None:
    stack.start_worker(name, queue="training")


def _first_model(directory: Path) -> dict[str, str]:
    """The deployment's first model: the same recipe on the base data only."""
    base = write_base_corpus(directory / "base", full_mix=True)
    first, _ = train(base)
    return {
        "MODERATION_MODEL_DIR": str(save_model(first, directory / "first-model")),
        "MODERATION_TRAINING_DATA_DIR": str(base),
    }


STACK = StackSpec(
    env={
        "MODERATION_RETRAIN_HEARTBEAT_SECONDS": "0.5",
        "MODERATION_RETRAIN_STALE_SECONDS": "3",
        # Beat runs the sweep of dead jobs every second; no retraining on a schedule here.
        "MODERATION_RETRAIN_CHECK_SECONDS": "1",
        "MODERATION_RETRAIN_MIN_NEW_LABELS": "0",
    },
    beat=True,
    workers=("training",),
    prepare=_first_model,
)


def _job(admin: httpx.Client, job_id: str) -> dict[str, Any]:
    response = admin.get(f"/v1/models/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _follow(admin: httpx.Client, job_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    seen = [_job(admin, job_id)]
    deadline = time.monotonic() + timeout
    while seen[-1]["status"] not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.05)
        seen.append(_job(admin, job_id))
    return seen


def test_a_site_admins_retrain_waits_for_an_operator_whose_promotion_the_worker_follows(
    stack: Stack,
) -> None:
    labels = _write_labels(stack.directory / "labels.csv", site_texts(100))
    imported = _cli(stack, "labels", "import", str(labels), "--site", "news")
    assert imported.returncode == 0, imported.stderr
    assert "imported 100 labels" in imported.stdout
    with (
        stack.client("news-site_admin") as admin,
        stack.client("news-operator") as operator,
        stack.client() as submitter,
    ):
        first = admin.get("/v1/models").json()["active"]
        started = admin.post("/v1/models/retrain", json={})
        assert started.status_code == 202, started.text
        job = started.json()
        assert started.headers["location"] == f"/v1/models/jobs/{job['id']}"
        assert (job["site"], job["status"]) == ("news", "queued")

        second = admin.post("/v1/models/retrain")
        assert second.status_code == 409, second.text
        assert second.json()["error"] == "training_job_in_progress"
        assert job["id"] in second.json()["detail"]

        seen = _follow(admin, job["id"])
        done = seen[-1]
        assert done["status"] == "succeeded", done
        percents = [s["percent"] for s in seen]
        assert percents == sorted(percents) and percents[-1] == 100
        assert any(s["stage"].startswith("training") for s in seen), [s["stage"] for s in seen]
        # The stack has two sites: news's labels alone must not move other's model.
        assert not done["promoted"], done
        assert any("only an operator" in r for r in done["result"]["reasons"]), done["result"]
        candidate = done["candidate_version"]
        assert admin.get("/v1/models").json()["active"] == first
        refused = admin.post(f"/v1/models/{candidate}/promote", json={"reason": "mine"})
        assert refused.status_code == 403, refused.text
        promoted = operator.post(f"/v1/models/{candidate}/promote", json={"reason": "reviewed"})
        assert promoted.status_code == 200, promoted.text
        promoted_at = time.monotonic()

        registry = admin.get("/v1/models").json()
        assert registry["active"] == candidate
        version = admin.get(f"/v1/models/{candidate}").json()
        assert version["parent"] == first
        assert set(version["metrics"]["evaluations"]) == {"base_test", "site_holdout"}
        assert version["data"]["site"]["trained_rows"] == 80
        assert version["bias"]["summary"]["identities_over_limit"] == 0
        assert version["params"]["label_weight"] == 5.0
        event = admin.get("/v1/models/events").json()["events"][0]
        assert (event["action"], event["to"], event["reason"]) == ("promote", candidate, "reviewed")
        assert "operator key" in event["actor"]

        def decided_by_candidate() -> bool:
            posted = submitter.post(
                "/v1/comments?wait_ms=2000", json=comment(f"after-{time.monotonic()}", "Thanks!")
            )
            return bool((posted.json()["decision"] or {}).get("model_version") == candidate)

        assert wait_until(decided_by_candidate, timeout=5, interval=0.2)
        assert time.monotonic() - promoted_at < 5

        again = admin.post("/v1/models/retrain", json={"site": "news"})
        assert again.status_code == 409
        assert again.json()["error"] == "no_new_labels"
        assert "no labels" in again.json()["detail"] and "news" in again.json()["detail"]


def test_bad_promotions_and_requests_are_refused_and_the_active_model_stays(
    stack: Stack,
) -> None:
    with stack.client("news-operator") as admin, stack.client("news-moderator") as moderator:
        active = admin.get("/v1/models").json()["active"]
        unknown = admin.post("/v1/models/tfidf-lr-000000000000/promote", json={"reason": "try"})
        assert unknown.status_code == 404
        assert (unknown.json()["error"], unknown.json()["field"]) == ("model_not_found", "version")
        no_reason = admin.post(f"/v1/models/{active}/promote", json={})
        assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
        unknown_site = admin.post("/v1/models/retrain", json={"site": "nowhere"})
        assert (unknown_site.status_code, unknown_site.json()["field"]) == (404, "site")
        assert moderator.post("/v1/models/retrain").status_code == 403
        assert moderator.post("/v1/models/rollback", json={"reason": "x"}).status_code == 403
        assert moderator.get("/v1/models").status_code == 200

        parent = admin.get(f"/v1/models/{active}").json()["parent"]
        if parent:  # after the retrain test: the first model is archived; retire it for good
            retired = admin.post(f"/v1/models/{parent}/retire", json={"reason": "superseded"})
            assert retired.status_code == 200, retired.text
            refused = admin.post(f"/v1/models/{parent}/promote", json={"reason": "back"})
            assert refused.status_code == 409 and "retired" in refused.json()["detail"]
            back = admin.post("/v1/models/rollback", json={"reason": "complaints"})
            assert back.status_code == 409 and "retired" in back.json()["detail"]
        assert admin.get("/v1/models").json()["active"] == active


def test_a_training_worker_killed_mid_job_fails_the_job_and_registers_nothing(
    stack: Stack,
) -> None:
    extra = _write_labels(stack.directory / "more.csv", site_texts(120)[100:])
    with session_scope(stack.sessions) as session:
        import_labels(session, get_site(session, "news").id, extra, actor="test")
    # A base corpus big enough that the job is still training when it is killed.
    stack.kill("training", signal.SIGTERM)
    big = write_base_corpus(stack.directory / "big-base", copies=400, full_mix=True)
    small = stack.extra_env["MODERATION_TRAINING_DATA_DIR"]
    stack.extra_env["MODERATION_TRAINING_DATA_DIR"] = str(big)
    _start_training_worker(stack, "training-big")
    with stack.client("news-operator") as admin, stack.client() as submitter:
        before = admin.get("/v1/models").json()
        job_id = admin.post("/v1/models/retrain").json()["id"]
        running = wait_until(
            lambda: _job(admin, job_id)["status"] == "running", timeout=30, interval=0.02
        )
        assert running
        stack.kill("training-big")  # SIGKILL: no chance to clean up or say anything
        failed = wait_until(
            lambda: _job(admin, job_id)["status"] == "failed", timeout=20, interval=0.2
        )
        assert failed, _job(admin, job_id)
        job = _job(admin, job_id)
        assert "no heartbeat" in job["error"] and "nothing was registered" in job["error"]
        assert job["candidate_version"] is None
        after = admin.get("/v1/models").json()
        assert [v["version"] for v in after["versions"]] == [
            v["version"] for v in before["versions"]
        ]
        assert after["active"] == before["active"]
        posted = submitter.post("/v1/comments?wait_ms=5000", json=comment("after-kill", "Hi"))
        assert posted.json()["decision"]["model_version"] == before["active"]
    stack.extra_env["MODERATION_TRAINING_DATA_DIR"] = small
    _start_training_worker(stack)


def test_the_cli_refuses_labels_for_unknown_comments_naming_the_line_and_retrains(
    stack: Stack,
) -> None:
    bad = _write_labels(
        stack.directory / "bad.csv", site_texts(3), comment_id="0123456789abcdef0123456789abcdef"
    )
    result = _cli(stack, "labels", "import", str(bad), "--site", "news")
    assert result.returncode != 0
    assert "line 2" in result.stderr and "0123456789abcdef" in result.stderr, result.stderr
    good = _write_labels(stack.directory / "good.csv", site_texts(140)[120:])
    with session_scope(stack.sessions) as session:
        import_labels(session, get_site(session, "news").id, good, actor="test")
    retrained = _cli(stack, "retrain", "--site", "news", "--wait")
    assert retrained.returncode == 0, retrained.stderr
    assert "succeeded: done" in retrained.stderr and "candidate tfidf-lr-" in retrained.stdout
    listed = _cli(stack, "models", "list")
    assert listed.returncode == 0 and "active" in listed.stdout, listed.stderr
