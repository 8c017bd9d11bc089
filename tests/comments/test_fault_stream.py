"""The promise under a stream of comments and every fault in turn (bench/faults.py, short):
the scoring worker, Redis (append-only file on) and the API killed, PostgreSQL stopped as
in a crash; every comment that got a 2xx is decided exactly once, none is left pending."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.faults import PG_BIN, run
from tests.factories import CIVIL, TOXIC

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None,
    reason="PostgreSQL's server programs are needed to run a server of the test's own",
)
def test_no_accepted_comment_is_lost_or_decided_twice_through_every_fault(
    tmp_path: Path,
) -> None:
    texts = CIVIL + TOXIC  # the suite needs no data set
    outcome = run(tmp_path, comments=240, rate=30, rounds=1, pause=1.0, texts=texts)
    assert outcome.faults == ["worker", "redis", "postgresql", "api"]
    assert len(outcome.accepted) == outcome.submitted == 240, "every comment got a 2xx"
    assert (outcome.lost, outcome.pending, outcome.decided_twice) == (0, 0, 0)
