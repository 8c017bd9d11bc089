"""Benchmark the whole pipeline through the API, as a ratio to the bare floor in the same run.

    python -m bench.pipeline [--concurrency 1,4,16] [--rounds 3] [--comments 750]
        [--database sqlite|postgresql] [--systems floor,durable,service,noop]
        [--open-loop-seconds 10] [--quick]

Up to four systems, each started fresh for each round, the order rotated from round to round:
- `floor`: bench/floor.py, FastAPI → Celery → Redis → worker → wake-up doing no work (no
  database, auth or model), under the same server and worker flags as the service;
- `durable` (only when asked for): the floor plus the two SQLite commits a comment's promise
  costs at least (stored before it is queued, decided before it is published), one each;
- `service`: every process `make run` starts (API, scoring, webhook and training workers, beat),
  quotas out of reach;
- `rules` (only when asked for): the service with every rule of its site on (two word lists of
  10,000 entries, links, floods counted in Redis, new commenters, recent rejections, a reject
  band, a section override), each set loose enough that news comments pass: what the rules
  cost a decision, beside `service` (rules off) in the same run;
- `noop`: the same service whose task only publishes an approval, a second reference that keeps
  all of the API's costs.
Each is driven closed loop with real news comments (the Civil Comments sample in ../shared/data,
each comment once per level, `wait_ms=5000`) at every concurrency; the service is then offered
half its peak rate, open loop. It prints decisions/s, p50 and p99 as medians across rounds, the
ratio to the floor of each round (the machine is shared: only ratios from one run compare), and
per process (Redis and this load generator included) its RSS and the CPU it spent per decision
at the highest concurrency: where a decision's time goes. `--quick` is 200 comments a level, one
round, 5 s open loop, about a minute. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.floor import FloorStack
from service.core.embedded_redis import EmbeddedRedis
from service.core.settings import Settings
from tests.stack import NO_QUOTA, Stack

SYSTEMS = ("floor", "durable", "service", "rules", "noop")
DEFAULT_SYSTEMS = "floor,service,noop"
DATA = Path(__file__).resolve().parents[2] / "shared/data/civil_comments_sample_train.csv.gz"
WAIT = "wait_ms=5000"


class Running(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def processes(self) -> Mapping[str, subprocess.Popen[bytes]]: ...

    @property
    def redis(self) -> EmbeddedRedis | None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Target:
    base_url: str
    headers: dict[str, str]
    texts: list[str]
    pids: dict[str, int] = field(default_factory=dict)  # the system's processes, by name


@dataclass(frozen=True)
class Figures:
    rate: float
    p50: float
    p99: float
    # CPU milliseconds per decision, by process ("client" is this load generator).
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class Measured:
    closed: dict[int, Figures]
    half: Figures | None = None
    rss: dict[str, float] = field(default_factory=dict)


def load_texts(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return [row["comment_text"] for row in csv.DictReader(handle)]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    # utime and stime, fields 14 and 15 of /proc/PID/stat, after the parenthesised name.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(pids: Mapping[str, int]) -> dict[str, float]:
    return {"client": time.process_time()} | {n: _cpu_seconds(p) for n, p in pids.items()}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(
    latencies: list[float], rate: float, *, cpu: dict[str, float] | None = None
) -> Figures:
    return Figures(rate, statistics.median(latencies), _percentile(latencies, 0.99), cpu or {})


async def _post(client: httpx.AsyncClient, target: Target, index: int, run: str) -> float:
    payload = {
        "external_id": f"{run}-{index}",
        "article_id": "peace-talks",
        "section": "politics",
        "author_id": f"reader-{index % 97}",
        "text": target.texts[index % len(target.texts)],
    }
    started = time.perf_counter()
    response = await client.post(f"/v1/comments?{WAIT}", json=payload)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"not decided in time: {response.status_code} {response.text}")
    return elapsed * 1000


def _settle_collector() -> None:
    """Collect, then freeze what the load generator holds, before a timed run.

    Its heap (the service's modules, the texts, the clients) made full collections of 50-60 ms,
    during which no request was sent or read: tens of requests then looked that much slower,
    which is the generator's stall, not the system's.
    """
    gc.collect()
    gc.freeze()


async def closed_loop(target: Target, n: int, concurrency: int) -> Figures:
    run = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=target.base_url, headers=target.headers, limits=limits, timeout=30
    ) as client:
        await asyncio.gather(*(_post(client, target, -i - 1, run) for i in range(50)))  # warm up
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)
        latencies: list[float] = []

        async def drive() -> None:
            while not queue.empty():
                latencies.append(await _post(client, target, queue.get_nowait(), run))

        _settle_collector()
        cpu, started = _cpu_snapshot(target.pids), time.perf_counter()
        await asyncio.gather(*(drive() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        used = {k: (v - cpu[k]) * 1000 / n for k, v in _cpu_snapshot(target.pids).items()}
    return _figures(latencies, n / wall, cpu=used)


async def open_loop(target: Target, rate: float, seconds: float) -> Figures:
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(
        base_url=target.base_url, headers=target.headers, timeout=30
    ) as client:
        tasks = []
        _settle_collector()
        started = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(client, target, i, run)))
        latencies = await asyncio.gather(*tasks)
    return _figures(list(latencies), rate)


def _fresh_postgres(admin_url: str, name: str) -> str:
    """An empty database per system and round, so none sees another's comments."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _pids(running: Running) -> dict[str, int]:
    pids = {name: process.pid for name, process in running.processes.items()}
    if running.redis is not None and running.redis.process is not None:
        pids["redis"] = running.redis.process.pid
    return pids


def start(system: str, args: argparse.Namespace, directory: Path) -> tuple[Running, Target]:
    texts: list[str] = args.texts
    if system in ("floor", "durable"):
        floor = FloorStack(directory, durable=system == "durable").start()
        return floor, Target(floor.base_url, {}, texts, _pids(floor))
    if args.database == "postgresql":
        url = _fresh_postgres(args.postgres_url, f"moderation_bench_{system}")
    else:
        url = f"sqlite:///{directory / 'moderation.db'}"
    # One key sends every comment, faster than its default quota allows.
    env = {"MODERATION_PIPELINE_TASK": "noop" if system == "noop" else "score", **NO_QUOTA}
    stack = Stack(directory, url, env)
    try:
        # The process set of `make run`: beat and the webhook and training workers too.
        stack.start(
            beat=True, workers=("webhooks", "training"), scoring_workers=args.scoring_workers
        )
    except BaseException:
        stack.stop()
        raise
    if system == "rules":
        all_rules_on(stack, texts)
    headers = {"Authorization": f"Bearer {stack.keys['news-submitter']}"}
    return stack, Target(stack.base_url, headers, texts, _pids(stack))


def all_rules_on(stack: Stack, texts: list[str]) -> None:
    """Every rule of the site on, loose enough that news comments are still decided by the
    model: their cost is paid, their holds do not change what is measured."""
    from bench.rules import rare_entries
    from service.core.db import session_scope
    from service.rules.overrides import put_policy
    from service.rules.policy_body import PolicyBody
    from service.rules.word_lists import set_list

    site = {
        "reject_thresholds": {"toxic": 0.99},
        "rules": {
            "links": {"max_links": 3, "allowed_domains": ["example.com"], "min_approved": 1},
            "flood": {"max_repeats": 50, "max_per_minute": 10_000},
            "new_commenter": {"approved_comments": 1},
            "recent_rejections": {"rate": 0.9, "min_decided": 50},
        },
    }
    thresholds = Settings().thresholds
    with session_scope(stack.sessions) as session:
        for scope, key, body in (
            ("site", None, site),
            ("section", "politics", {"thresholds": {"insult": 0.3}}),
        ):
            put_policy(
                session,
                "news",
                scope,
                key,
                PolicyBody.model_validate(body),
                actor="bench",
                defaults=thresholds,
            )
        for kind, seed in (("banned", 3), ("suspect", 4)):
            set_list(session, "news", kind, rare_entries(texts, 10_000, seed), actor="bench")


def measure(system: str, args: argparse.Namespace, directory: Path) -> Measured:
    running, target = start(system, args, directory)
    try:
        closed = {c: asyncio.run(closed_loop(target, args.comments, c)) for c in args.concurrency}
        measured = Measured(closed)
        if system == "service":
            half = max(f.rate for f in closed.values()) / 2
            measured.half = asyncio.run(open_loop(target, half, args.open_loop_seconds))
        measured.rss = {name: _rss_mb(pid) for name, pid in target.pids.items()}
    finally:
        running.stop()
    return measured


def _progress(round_no: int, system: str, measured: Measured) -> None:
    levels = "  ".join(
        f"c{c} {f.rate:.0f}/s {f.p50:.1f}/{f.p99:.1f} ms" for c, f in measured.closed.items()
    )
    half = measured.half
    extra = f"  half {half.rate:.0f}/s p99 {half.p99:.1f} ms" if half else ""
    print(f"round {round_no + 1} {system:<8}{levels}{extra}", flush=True)


def run_rounds(args: argparse.Namespace) -> list[dict[str, Measured]]:
    rounds: list[dict[str, Measured]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        for r in range(args.rounds):
            # Rotated, so no system always runs first (cold caches) or last (a warm machine).
            shift = r % len(args.systems)
            order = args.systems[shift:] + args.systems[:shift]
            results: dict[str, Measured] = {}
            for system in order:
                results[system] = measure(system, args, Path(tmp) / f"{system}-{r}")
                _progress(r, system, results[system])
            rounds.append(results)
    return rounds


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _medians(runs: list[Figures]) -> Figures:
    rate, p50, p99 = ([getattr(f, k) for f in runs] for k in ("rate", "p50", "p99"))
    return Figures(_median(rate), _median(p50), _median(p99))


def _closed_table(rounds: list[dict[str, Measured]], args: argparse.Namespace) -> None:
    header = f"{'conc':>4}  {'system':<8}{'dec/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'÷floor':>8}"
    print(f"{header}  per round")
    for c in args.concurrency:
        for system in args.systems:
            m = _medians([r[system].closed[c] for r in rounds])
            row = f"{c:>4}  {system:<8}{m.rate:>7.0f}{m.p50:>8.1f}{m.p99:>8.1f}"
            if system != "floor" and "floor" in args.systems:
                ratios = [r[system].closed[c].rate / r["floor"].closed[c].rate for r in rounds]
                per_round = " ".join(f"{x:.2f}" for x in ratios)
                row += f"{_median(ratios):>8.2f}  {per_round}"
            print(row)


def report(rounds: list[dict[str, Measured]], args: argparse.Namespace) -> None:
    lengths = sorted(len(t) for t in args.texts)
    print(
        f"\n{args.comments} comments a level from {len(args.texts)} Civil Comments news comments "
        f"(median {lengths[len(lengths) // 2]} chars), closed loop, {WAIT}, {args.database}, "
        f"{len(rounds)} round(s); medians across rounds"
    )
    _closed_table(rounds, args)
    halves = [r["service"].half for r in rounds if "service" in r and r["service"].half]
    if halves:
        m, p99s = _medians(halves), " ".join(f"{h.p99:.1f}" for h in halves)
        print(
            f"service at half its peak, open loop {args.open_loop_seconds:g} s: "
            f"{m.rate:.0f}/s offered, p50 {m.p50:.1f} ms, p99 {m.p99:.1f} ms "
            f"(per round p99: {p99s})"
        )
    _processes_table(rounds, args)


def _processes_table(rounds: list[dict[str, Measured]], args: argparse.Namespace) -> None:
    """Per process: RSS after the run, and CPU ms per decision at the highest concurrency,
    which says where a decision's time goes (the client shares the machine's cores)."""
    top = max(args.concurrency)
    print(f"per process (medians): RSS MB after the run / CPU ms a decision at concurrency {top}")
    for system in args.systems:
        cpu = {
            n: _median([r[system].closed[top].cpu[n] for r in rounds])
            for n in rounds[0][system].closed[top].cpu
        }
        parts = [
            f"{n} {_median([r[system].rss[n] for r in rounds]):.0f}/{cpu[n]:.2f}"
            for n in rounds[0][system].rss
        ]
        print(f"  {system:<8}" + ", ".join(parts) + f", client -/{cpu['client']:.2f}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--comments", type=int, default=750, help="per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", default=DEFAULT_SYSTEMS, help="of " + ",".join(SYSTEMS))
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--open-loop-seconds", type=float, default=10.0)
    parser.add_argument("--data", type=Path, default=DATA, help="the Civil Comments sample")
    parser.add_argument(
        "--scoring-workers",
        type=int,
        default=Settings().scoring_workers,
        help="as `make run` starts them (MODERATION_SCORING_WORKERS)",
    )
    parser.add_argument("--quick", action="store_true", help="200 comments, 1 round, 5 s")
    args = parser.parse_args()
    if args.quick:
        args.comments, args.rounds, args.open_loop_seconds = 200, 1, 5.0
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    args.texts = load_texts(args.data)
    return args


def main() -> None:
    args = _arguments()
    report(run_rounds(args), args)


if __name__ == "__main__":
    main()
