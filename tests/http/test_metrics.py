"""/metrics on a running stack, read with prometheus-client's own parser: what the API and the
scoring worker counted, what a scrape computes, and the token that guards it."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import CIVIL, TOXIC, comment
from tests.stack import Stack, StackSpec, wait_until

pytestmark = pytest.mark.integration

TOKEN = "scrape-token-for-tests"
STACK = StackSpec(env={"MODERATION_METRICS_TOKEN": TOKEN}, databases=("sqlite", "postgresql"))

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(stack: Stack) -> Samples:
    response = httpx.get(
        f"{stack.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def test_metrics_are_answered_only_with_the_token_when_one_is_set(stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{stack.base_url}/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json()["field"] == "Authorization"
        assert "metrics token" in response.json()["detail"]


def test_a_scrape_counts_comments_decisions_requests_and_the_worker_s_batches(
    stack: Stack,
) -> None:
    before = _scrape(stack)
    with stack.client() as client:
        held = client.post("/v1/comments?wait_ms=5000", json=comment("m-toxic", TOXIC[0]))
        approved = [
            client.post("/v1/comments?wait_ms=5000", json=comment(f"m-civil-{i}", text))
            for i, text in enumerate(CIVIL[:2])
        ]
        assert held.json()["status"] == "held"
        assert [r.json()["status"] for r in approved] == ["approved", "approved"]
        assert client.get(f"/v1/comments/{held.json()['id']}").status_code == 200
        assert client.get("/v1/no-such-route").status_code == 404

    # The worker's figures reach the files a moment after its wake-up was published.
    def counted() -> bool:
        return _value(_scrape(stack), "moderation_decision_latency_seconds_count") >= 3 + (
            _value(before, "moderation_decision_latency_seconds_count")
        )

    assert wait_until(counted, timeout=10)
    after = _scrape(stack)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("moderation_comments_submitted_total", site="news") == 3
    assert grew("moderation_comments_decided_total", site="news", action="hold") == 1
    assert grew("moderation_comments_decided_total", site="news", action="approve") == 2
    assert grew("moderation_scoring_batch_size_count") >= 1
    assert grew("moderation_scoring_batch_size_sum") == 3
    assert grew("moderation_task_duration_seconds_count", task="moderation.score_comments") >= 1
    post = {"route": "/v1/comments", "method": "POST", "status": "200"}
    assert grew("moderation_http_requests_total", **post) == 3
    # Route templates, never raw paths: the labels stay few whatever callers send.
    assert grew("moderation_http_requests_total", route="/v1/comments/{comment_id}") == 1
    assert grew("moderation_http_requests_total", route="unmatched", status="404") == 1
    assert grew("moderation_http_request_duration_seconds_count", route="/v1/comments") == 3
    assert not any("m-toxic" in str(labels) for _, labels in after)


def test_a_scrape_reads_the_queues_the_backlog_and_the_model_in_use(stack: Stack) -> None:
    samples = _scrape(stack)
    assert _value(samples, "moderation_queue_messages", queue="scoring") >= 0
    assert ("moderation_queue_messages", frozenset({("queue", "scoring")})) in samples
    assert _value(samples, "moderation_queue_consumers", queue="scoring") >= 1
    assert ("moderation_pending_comments", frozenset()) in samples
    assert ("moderation_oldest_pending_seconds", frozenset()) in samples
    active = {
        dict(labels)["version"]: v
        for (name, labels), v in samples.items()
        if name == "moderation_model_active"
    }
    assert any(version.startswith("tfidf-lr-") and v == 1 for version, v in active.items())
