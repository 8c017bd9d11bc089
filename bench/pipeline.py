"""Benchmark the whole pipeline through the running API, against a no-op pipeline in the same run.

    python -m bench.pipeline [--comments 2000] [--concurrency 32] [--database sqlite|postgresql]

For each pipeline (the real one, and one whose task only publishes an approval) it starts a
fresh Redis, worker and API, drives N comments at concurrency C with `wait_ms`, and reports
decisions/s and decision latency percentiles; then it offers the real pipeline half its peak
rate, open loop, and reports the latency there. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.factories import CIVIL, TOXIC
from tests.stack import NO_QUOTA, Stack

TEXTS = TOXIC + CIVIL


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _post(client: httpx.AsyncClient, index: int, run: str) -> float:
    payload = {
        "external_id": f"{run}-{index}",
        "article_id": "peace-talks",
        "author_id": f"reader-{index % 97}",
        "text": TEXTS[index % len(TEXTS)],
    }
    started = time.perf_counter()
    response = await client.post("/v1/comments?wait_ms=5000", json=payload)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"not decided in time: {response.status_code} {response.text}")
    return elapsed * 1000


async def closed_loop(stack: Stack, n: int, concurrency: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {stack.keys['news-submitter']}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=headers, limits=limits, timeout=30
    ) as client:
        await asyncio.gather(*(_post(client, -i - 1, run) for i in range(50)))  # warm up
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)
        latencies: list[float] = []

        async def drive() -> None:
            while not queue.empty():
                latencies.append(await _post(client, queue.get_nowait(), run))

        started = time.perf_counter()
        await asyncio.gather(*(drive() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "rate": n / wall,
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 0.95),
        "p99": _percentile(latencies, 0.99),
    }


async def open_loop(stack: Stack, rate: float, seconds: float) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    headers = {"Authorization": f"Bearer {stack.keys['news-submitter']}"}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=30) as client:
        tasks = []
        started = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(client, i, run)))
        latencies = await asyncio.gather(*tasks)
    return {
        "rate": rate,
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 0.95),
        "p99": _percentile(latencies, 0.99),
    }


def _fresh_postgres(admin_url: str, name: str) -> str:
    """An empty database per pipeline, so neither sees the other's comments."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _run(mode: str, args: argparse.Namespace, workdir: Path) -> Stack:
    directory = workdir / mode
    if args.database == "postgresql":
        url = _fresh_postgres(args.postgres_url, f"moderation_bench_{mode}")
    else:
        url = f"sqlite:///{directory / 'moderation.db'}"
    # One key sends every comment, faster than its default quota allows.
    env = {"MODERATION_PIPELINE_TASK": mode, **NO_QUOTA}
    return Stack(directory, url, env).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--pipelines", default="noop,score", help="comma-separated: noop,score")
    parser.add_argument("--open-loop-seconds", type=float, default=10.0)
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for mode in args.pipelines.split(","):
            stack = _run(mode, args, Path(tmp))
            try:
                results[mode] = asyncio.run(closed_loop(stack, args.comments, args.concurrency))
                if mode == "score":
                    half = results[mode]["rate"] / 2
                    results["score@half"] = asyncio.run(
                        open_loop(stack, half, args.open_loop_seconds)
                    )
                    memory = {n: _rss_mb(p.pid) for n, p in stack.processes.items()}
            finally:
                stack.stop()

    print(f"\n{args.comments} comments, concurrency {args.concurrency}, {args.database}")
    print(f"{'pipeline':<12}{'decisions/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, r in results.items():
        print(f"{name:<12}{r['rate']:>12.0f}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}")
    if memory:
        print("RSS after the run: " + ", ".join(f"{n} {mb:.0f} MB" for n, mb in memory.items()))
    if "score" in results and "noop" in results:
        ratio = results["score"]["rate"] / results["noop"]["rate"]
        print(f"throughput ratio score/noop: {ratio:.2f}")


if __name__ == "__main__":
    main()
