"""How soon a scoring worker decides after it starts: the gap a crash or a restart leaves.

    python -m bench.start [--runs 5]

A stack (Redis, SQLite, API) runs without a scoring worker; each run starts one
(`moderation up`'s command line) and at once submits a comment with `wait_ms=5000`, polling
until it is decided. It prints the time from spawn to the worker's "ready" line and to the
first decision, as medians (and the spread) of the runs; the worker is stopped between runs,
so each start is a process start, with the machine's file cache warm as after a crash.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from service.cli.up import worker_command
from tests.stack import Stack

__all__ = ["main"]


def _one(stack: Stack, run: int) -> tuple[float, float]:
    name = f"worker-{run}"
    began = time.monotonic()
    stack._spawn(name, worker_command(loglevel="INFO"))
    ready = decided = 0.0
    with stack.client() as client:
        body = {
            "external_id": f"start-{run}",
            "article_id": "peace-talks",
            "author_id": "reader-1",
            "text": "Thank you for explaining what the ceasefire terms would mean.",
        }
        view = client.post("/v1/comments?wait_ms=5000", json=body).json()
        while view["status"] == "pending":
            if not ready and "ready" in stack.log(name):
                ready = time.monotonic() - began
            time.sleep(0.01)
            view = client.get(f"/v1/comments/{view['id']}").json()
        decided = time.monotonic() - began
    while not ready:
        ready = time.monotonic() - began if "ready" in stack.log(name) else 0.0
    stack.kill(name)
    return ready, decided


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        stack = Stack(Path(tmp), f"sqlite:///{Path(tmp) / 'moderation.db'}", {})
        try:
            stack.start()
            stack.kill("worker")
            runs = [_one(stack, r) for r in range(args.runs)]
        finally:
            stack.stop()
    figures = {"ready": [r for r, _ in runs], "first decision": [d for _, d in runs]}
    for label, values in figures.items():
        print(
            f"{label:>15}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} starts)"
        )


if __name__ == "__main__":
    main()
