"""The supervisor of `moderation up`, on real child processes: restarts with backoff, logs to
files, stops in order, and never leaves a child behind when it is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service.cli.supervisor import Supervisor, read_state

PY = sys.executable
SLEEPER = [PY, "-c", "import time; print('up', flush=True); time.sleep(600)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie of ours is gone for every purpose but its table entry.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1].startswith("Z")


@pytest.fixture
def said() -> list[str]:
    return []


def _supervisor(tmp_path: Path, said: list[str], clock: Clock) -> Supervisor:
    return Supervisor(tmp_path, dict(os.environ), say=said.append, clock=clock)


def test_a_child_that_exits_is_started_again_after_a_backoff_that_doubles(
    tmp_path: Path, said: list[str]
) -> None:
    clock = Clock()
    supervisor = _supervisor(tmp_path, said, clock)
    supervisor.add("flaky", [PY, "-c", "print('trying', flush=True); raise SystemExit(3)"])
    supervisor.start_all()
    child = supervisor.children[0]
    delays = []
    for _ in range(3):
        assert child.process is not None
        child.process.wait(timeout=10)
        clock.now += 0.5  # died young
        supervisor.watch()
        assert child.restart_at is not None and child.last_exit == 3
        delays.append(child.restart_at - clock.now)
        clock.now = child.restart_at
        supervisor.watch()
    assert delays == [1.0, 2.0, 4.0]
    assert child.restarts == 3 and child.process is not None
    child.process.wait(timeout=10)
    assert any("flaky exited with code 3" in line for line in said), said
    assert (tmp_path / "log" / "flaky.log").read_text().count("trying") == 4
    supervisor.stop_all()


def test_a_child_that_ran_steadily_is_restarted_at_the_first_delay(
    tmp_path: Path, said: list[str]
) -> None:
    clock = Clock()
    supervisor = _supervisor(tmp_path, said, clock)
    supervisor.add("sleeper", SLEEPER)
    supervisor.start_all()
    child = supervisor.children[0]
    child.dying_young = 5  # as if it had died young five times before this run
    assert child.process is not None
    child.process.kill()
    child.process.wait(timeout=10)
    clock.now += supervisor.steady_seconds + 1
    supervisor.watch()
    assert child.restart_at == clock.now + supervisor.first_delay
    clock.now += supervisor.first_delay
    supervisor.watch()
    assert child.running and child.restarts == 1
    state = read_state(tmp_path)
    assert state is not None and state["children"][0]["restarts"] == 1
    assert state["children"][0]["pid"] == child.process.pid
    supervisor.stop_all()


def test_stop_all_stops_the_children_in_the_reverse_order_and_forgets_the_state(
    tmp_path: Path, said: list[str]
) -> None:
    supervisor = _supervisor(tmp_path, said, Clock())
    for name in ("first", "second", "third"):
        supervisor.add(name, SLEEPER)
    supervisor.start_all()
    assert read_state(tmp_path) is not None
    pids = [c.process.pid for c in supervisor.children if c.process is not None]
    supervisor.stop_all()
    assert [line for line in said if line.startswith("stopped")] == [
        "stopped third",
        "stopped second",
        "stopped first",
    ]
    assert all(_gone(pid) for pid in pids)
    assert read_state(tmp_path) is None


GATED = [
    PY,
    "-c",
    "import os, time; print('warm', flush=True)\n"
    "while os.path.exists(os.environ.get('MODERATION_START_GATE', '')): time.sleep(0.01)\n"
    "print('working', os.getpid(), flush=True); time.sleep(600)",
]


def test_a_standby_waits_at_its_gate_and_takes_over_the_moment_its_child_exits(
    tmp_path: Path, said: list[str]
) -> None:
    clock = Clock()
    supervisor = _supervisor(tmp_path, said, clock)
    supervisor.add("scorer", GATED, standby=True)
    supervisor.start_all()
    active, spare = supervisor.children
    assert spare.name == "scorer (standby)" and spare.process is not None
    log = tmp_path / "log" / "scorer.log"
    _until(lambda: log.read_text().count("warm") == 2)
    assert log.read_text().count("working") == 1, "the standby waits at its gate"
    state = read_state(tmp_path)
    assert state is not None and [c["standby"] for c in state["children"]] == [False, True]

    standby_pid, first_gate = spare.process.pid, spare.gate
    assert first_gate is not None and first_gate.exists()
    assert active.process is not None
    active.process.kill()
    active.process.wait(timeout=10)
    clock.now += 0.5
    supervisor.watch()
    assert active.process is not None and active.process.pid == standby_pid
    _until(lambda: f"working {standby_pid}" in log.read_text())
    assert any("its standby" in line and "took over" in line for line in said), said
    # A new standby follows after the backoff, and waits at the gate in turn.
    assert spare.process is None and spare.restart_at is not None
    clock.now = spare.restart_at
    supervisor.watch()
    assert spare.running and not first_gate.exists()
    assert spare.gate is not None and spare.gate != first_gate, "a gate of its own each start"
    _until(lambda: log.read_text().count("warm") == 3)
    assert log.read_text().count("working") == 2
    supervisor.stop_all()
    assert said[-2:] == ["stopped scorer (standby)", "stopped scorer"]


RUNNER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from service.cli.supervisor import Supervisor
    supervisor = Supervisor(Path(sys.argv[1]), dict(os.environ), say=print)
    supervisor.add("sleeper", {sleeper!r})
    supervisor.start_all()
    print("ready", flush=True)
    while True:
        supervisor.watch()
        time.sleep(0.1)
    """
)


def test_children_die_with_a_runner_that_is_killed(tmp_path: Path) -> None:
    script = RUNNER.format(sleeper=SLEEPER)
    runner = subprocess.Popen([PY, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        while "ready" not in runner.stdout.readline():
            assert runner.poll() is None, "the runner exited"
        state = json.loads((tmp_path / "run" / "up.json").read_text())
        child = int(state["children"][0]["pid"])
        assert not _gone(child)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        _until(lambda: _gone(child))
        assert read_state(tmp_path) is None, "a dead runner's state is not believed"
    finally:
        if runner.poll() is None:
            runner.kill()
