"""Benchmark the compatibility routes, which score inline, at a steady request rate.

    python -m bench.compat [--rate 50] [--seconds 20] [--chars 1000]

Starts a stack (Redis, a worker, the API on SQLite) and offers each route the same open-loop
rate of real news-site comments from ../shared/data (Civil Comments and Toxic Spans, joined in
their order and cut to `--chars` characters), as its callers send them: Perspective's analyze
as Coral asks it, Coral's external moderation phase (signed), OpenAI's moderation endpoint.
`GET /healthz` at the same rate is the floor: the same FastAPI process doing no work. Reports
p50 and p99 latency per route. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.stack import NO_QUOTA, Stack

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SECRET = "bench-coral-signing-secret"
Request = Callable[[str], tuple[str, dict[str, Any]]]


def news_comments(chars: int, *, limit: int = 400) -> list[str]:
    """Real news comments joined in file order and cut into texts of `chars` characters."""
    texts: list[str] = []
    for name in ("civil_comments_sample_train.csv.gz", "toxic_spans_train.csv.gz"):
        with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
            texts += [row["comment_text"] for row in csv.DictReader(handle)]
    out, current = [], ""
    for text in texts:
        current = f"{current} {text}".strip()
        if len(current) >= chars:
            out.append(current[:chars])
            current = ""
        if len(out) == limit:
            break
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_loop(
    client: httpx.AsyncClient, request: Request, texts: list[str], *, rate: float, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    failures = 0

    async def one(text: str) -> None:
        nonlocal failures
        path, kwargs = request(text)
        started = time.perf_counter()
        response = await client.post(path, **kwargs) if kwargs else await client.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        failures += response.status_code >= 400

    tasks = []
    started = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(texts[i % len(texts)])))
    await asyncio.gather(*tasks)
    return {
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "failures": failures,
    }


def _routes(stack: Stack) -> dict[str, Request]:
    key = stack.keys["news-submitter"]

    def analyze(text: str) -> tuple[str, dict[str, Any]]:
        body = {
            "comment": {"text": text},
            "doNotStore": True,
            "requestedAttributes": {"TOXICITY": {}},
            "languages": ["en"],
        }
        return f"/v1alpha1/comments:analyze?key={key}", {"json": body}

    def coral(text: str) -> tuple[str, dict[str, Any]]:
        body = {
            "action": "NEW",
            "comment": {"body": f"<p>{text}</p>", "parentID": None},
            "author": {"id": "bench-author", "role": "COMMENTER"},
            "story": {"id": "story-1", "url": "https://news.example/peace-talks"},
            "site": {"id": "site-1"},
            "tenantID": "tenant-1",
            "tenantDomain": "news.example",
        }
        raw = json.dumps(body, indent=2).encode()
        signature = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"X-Coral-Signature": f"sha256={signature}", "Content-Type": "application/json"}
        return f"/v1/coral/external-moderation?key={key}", {"content": raw, "headers": headers}

    def moderations(text: str) -> tuple[str, dict[str, Any]]:
        body = {"input": text, "model": "omni-moderation-latest"}
        return "/v1/moderations", {"json": body, "headers": {"Authorization": f"Bearer {key}"}}

    return {
        "floor: GET /healthz": lambda _: ("/healthz", {}),
        "perspective analyze": analyze,
        "coral external phase": coral,
        "openai moderations": moderations,
    }


async def _run(stack: Stack, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {stack.keys['news-site_admin']}"}
        await client.put("/v1/sites/news/coral", json={"signing_secret": SECRET}, headers=admin)
        for name, request in _routes(stack).items():
            await open_loop(client, request, texts, rate=args.rate, seconds=2)  # warm up
            results[name] = await open_loop(
                client, request, texts, rate=args.rate, seconds=args.seconds
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--chars", type=int, default=1000)
    args = parser.parse_args()
    texts = news_comments(args.chars)
    with tempfile.TemporaryDirectory(prefix="bench-compat-") as tmp:
        directory = Path(tmp)
        with Stack(directory, f"sqlite:///{directory / 'moderation.db'}", NO_QUOTA) as stack:
            stack.start()
            results = asyncio.run(_run(stack, texts, args))
    print(
        f"\n{args.rate:g} requests/s for {args.seconds:g} s, {args.chars}-character news comments"
    )
    print(f"{'route':<24}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for name, r in results.items():
        print(f"{name:<24}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['failures']:>8}")


if __name__ == "__main__":
    main()
