"""Benchmark the moderators' queue on PostgreSQL with 100,000 held comments.

    python -m bench.queue [--held 100000] [--requests 200] [--postgres-url URL]

Fills a fresh database (held comments with decisions over 2,000 authors and 300 articles, plus
approved comments and another site's queue), starts the real API, and reports per-page latency
(p50/p99) of `GET /v1/queue` for the first page by score, pages deep in the queue by cursor, by
age, and filtered by article and by attribute; then the time of bulk reviews of 500 comments.
Last, the same first-page query with and without the queue's score index, as a ratio measured
in this run. The database is vacuumed and analysed after filling, as autovacuum would have.
Figures are printed, never asserted.
"""

from __future__ import annotations

if __name__ == "queue":  # pragma: no cover - only when run the wrong way
    # `python bench/x.py` puts bench/ first on sys.path, where this file hides the standard
    # library's queue (Redis, Celery and concurrent.futures import it).
    raise ImportError("run the benchmarks as modules from the repository: python -m bench.NAME")

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from classifier import ATTRIBUTES
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.tables import Author, Comment, Decision, Site, utcnow
from service.moderation.review_queue import list_queue
from service.rules.reasons import reason_tags
from tests.stack import NO_QUOTA, Stack


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fresh_postgres(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _fill(url: str, *, site: str, held: int, approved: int, rng: random.Random) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with session_scope(sessions) as session:
        site_id = session.scalar(select(Site.id).where(Site.name == site))
        if site_id is None:
            site_row = Site(name=site, policy={})
            session.add(site_row)
            session.flush()
            site_id = site_row.id
        session.execute(
            insert(Author),
            [
                {"site_id": site_id, "external_id": f"{site}-author-{i}", "trust": "normal",
                 "created_at": now}
                for i in range(2000)
            ],
        )  # fmt: skip
        authors = session.scalars(select(Author.id).where(Author.site_id == site_id)).all()
    chunk = 5000
    total = held + approved
    for start in range(0, total, chunk):
        comments, decisions = [], []
        for i in range(start, min(total, start + chunk)):
            is_held = i < held
            scores = {a: round(rng.random() * (1.0 if is_held else 0.19), 4) for a in ATTRIBUTES}
            top = max(scores, key=scores.__getitem__)
            reasons = (
                [{"code": "attribute_over_threshold", "attribute": top, "score": scores[top],
                  "threshold": 0.2, "spans": [{"text": "idiot", "start": 0, "end": 5,
                                               "weight": 1.2}]}]
                if is_held else [{"code": "all_below_threshold", "attribute": top}]
            )  # fmt: skip
            comment_id = uuid.uuid4().hex
            created = now - timedelta(seconds=rng.randrange(0, 30 * 86400))
            comments.append(
                {
                    "id": comment_id,
                    "site_id": site_id,
                    "external_id": f"{site}-{i}",
                    "article_id": f"article-{rng.randrange(300)}",
                    "section": rng.choice(["world", "politics", "sport"]),
                    "author_id": rng.choice(authors),
                    "text": "You are an idiot and this article about the peace talks is a joke. "
                    * rng.randint(1, 4),
                    "metadata": {},
                    "status": "held" if is_held else "approved",
                    "created_at": created,
                    "updated_at": created,
                    "version": 2,
                    "score": max(scores.values()),
                    "reason_tags": reason_tags(reasons),
                }
            )
            decisions.append(
                {
                    "comment_id": comment_id,
                    "action": "hold" if is_held else "approve",
                    "scores": scores,
                    "reasons": reasons,
                    "model_version": "bench",
                    "latency_ms": 5.0,
                    "decided_at": created,
                }
            )
        with session_scope(sessions) as session:
            session.execute(insert(Comment), comments)
            session.execute(insert(Decision), decisions)
    # What autovacuum does on a live database: statistics, and the visibility map that lets the
    # author-history counts be answered from the index alone.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def _timed(call: Any, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _row(name: str, times: list[float]) -> None:
    print(
        f"{name:<44} p50 {statistics.median(times):7.2f} ms"
        f"   p99 {_percentile(times, 0.99):7.2f} ms   (n={len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    rng = random.Random(0)
    url = _fresh_postgres(args.postgres_url, "moderation_bench_queue")
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), url, NO_QUOTA)
        stack.start()  # migrates, creates the keys, starts Redis, a worker and the API
        try:
            started = time.perf_counter()
            _fill(url, site="news", held=args.held, approved=args.held // 5, rng=rng)
            _fill(url, site="other", held=args.held // 10, approved=0, rng=rng)
            print(
                f"filled {args.held:,} held + {args.held // 5:,} approved comments (and "
                f"{args.held // 10:,} of another site) in {time.perf_counter() - started:.0f} s"
            )
            _measure(stack, url, args.requests)
        finally:
            stack.stop()


def _measure(stack: Stack, url: str, n: int) -> None:
    print(f"\nGET /v1/queue through the API, 50 items per page ({n} requests each):")
    with stack.client("news-moderator") as client:

        def get(params: dict[str, Any]) -> dict[str, Any]:
            response = client.get("/v1/queue", params=params)
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

        get({})  # warm the connection pool
        _row("first page by score", _timed(lambda: get({"limit": 50}), n))
        cursors, cursor = [], None
        for _ in range(40):
            page = get({"limit": 50, **({"cursor": cursor} if cursor else {})})
            cursor = page["next_cursor"]
            cursors.append(cursor)
        deep = iter(cursors * (n // len(cursors) + 1))
        _row(
            "pages 2-41 by score (cursor)",
            _timed(lambda: get({"limit": 50, "cursor": next(deep)}), n),
        )
        _row("first page by age", _timed(lambda: get({"limit": 50, "sort": "age"}), n))
        _row(
            "filtered by article", _timed(lambda: get({"limit": 50, "article_id": "article-7"}), n)
        )
        _row(
            "filtered by attribute (threat)",
            _timed(lambda: get({"limit": 50, "attribute": "threat"}), n),
        )

        print("\nPOST /v1/reviews, 500 comments, one action (all or nothing):")
        bulk = []
        for _ in range(10):
            page_ids: list[str] = []
            cur = None
            while len(page_ids) < 500:
                page = get({"limit": 100, "sort": "age", **({"cursor": cur} if cur else {})})
                page_ids += [item["id"] for item in page["items"]]
                cur = page["next_cursor"]
            started = time.perf_counter()
            response = client.post(
                "/v1/reviews", json={"ids": page_ids[:500], "action": "reject", "reason": "ABUSIVE"}
            )
            bulk.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        print(
            f"{'bulk review of 500':<44} median {statistics.median(bulk):7.1f} ms"
            f"   max {max(bulk):7.1f} ms   (n={len(bulk)})"
        )

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        site_id = session.scalar(select(Site.id).where(Site.name == "news"))
    assert site_id is not None, "the benchmark's database has no site 'news'"

    def first_page() -> None:
        with session_scope(sessions) as session:
            list_queue(session, site_id, limit=50)

    with_index = _timed(first_page, n)
    with engine.connect() as connection:
        connection.execute(text("DROP INDEX ix_comments_site_status_score"))
        connection.commit()
    without = _timed(first_page, max(10, n // 10))
    print("\nfirst page by score, domain function only (no HTTP):")
    _row("with ix_comments_site_status_score", with_index)
    _row("without it (same run)", without)
    print(
        "ratio without/with (medians): "
        f"{statistics.median(without) / statistics.median(with_index):.1f}x"
    )
    engine.dispose()


if __name__ == "__main__":
    main()
