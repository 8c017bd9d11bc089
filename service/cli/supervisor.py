"""Keep `moderation up`'s children running: a child that exits is started again, with backoff.

Each child writes to `var/log/<name>.log`, so the console holds one line per start, exit,
restart and stop. A child that dies is restarted after 1 s, then 2, 4 ... at most 60 s while it
keeps dying young; one that ran for `steady_seconds` before it died starts again at 1 s. Every
child dies with the runner, even when the runner is killed (`die_with_parent`). The state of
the children is kept in `var/run/up.json` for `moderation status`.

A child added with `standby=True` has a spare: the same command, started and warm, waiting at
a gate file (`START_GATE_ENV`) before it takes any work. When the child exits, its spare's gate
is opened and the spare carries on at once in its place, and a new spare is started behind it.
For the scoring worker this keeps decisions flowing through a crash, at the cost of one idle
process's memory rather than the CPU that a second active worker costs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client import multiprocess

from service.core.processes import die_with_parent

__all__ = ["START_GATE_ENV", "Child", "Supervisor", "read_state"]

STATE_FILE = Path("run") / "up.json"
START_GATE_ENV = "MODERATION_START_GATE"  # a spare waits while the file at this path exists


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    started_wall: float = 0.0
    restarts: int = 0
    dying_young: int = 0  # exits in a row that came before `steady_seconds`
    restart_at: float | None = None  # monotonic; set while it waits to be started again
    last_exit: int | None = None
    spare_of: str | None = None  # a spare: the name of the child it stands in for
    gate: Path | None = None  # a spare's gate file, one of its own each start
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    """Starts, watches and stops the children, in the order they were added."""

    var_dir: Path
    env: Mapping[str, str]
    say: Callable[[str], None]
    steady_seconds: float = 30.0
    first_delay: float = 1.0
    max_delay: float = 60.0
    stop_timeout: float = 15.0
    children: list[Child] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    def add(self, name: str, args: list[str], *, standby: bool = False) -> None:
        self.children.append(Child(name, args))
        if standby:
            self.children.append(Child(f"{name} (standby)", args, spare_of=name))

    def start_all(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for child in self.children:
            self._start(child)
            self.say(f"started {child.name} (pid {self._pid(child)}, log {self._log_path(child)})")
        self._write_state()

    def watch(self) -> None:
        """One look at every child: note who exited, start again who is due."""
        now = self.clock()
        changed = False
        for child in self.children:
            if child.restart_at is None and child.process is not None:
                code = child.process.poll()
                if code is not None:
                    self._exited(child, code, now)
                    changed = True
            if child.restart_at is not None and child.restart_at <= now:
                child.restart_at = None
                child.restarts += 1
                try:
                    self._start(child)
                except OSError as exc:  # fork or exec failed (out of memory, say): try later
                    child.process, child.restart_at = None, now + self.max_delay
                    self.say(f"could not start {child.name} ({exc}); trying again later")
                    continue
                pid, count = self._pid(child), child.restarts
                self.say(f"restarted {child.name} (pid {pid}, restart {count})")
                changed = True
        if changed:
            self._write_state()

    def _spare(self, child: Child) -> Child | None:
        return next((c for c in self.children if c.spare_of == child.name), None)

    def _exited(self, child: Child, code: int, now: float) -> None:
        lived = now - child.started_at
        child.dying_young = 0 if lived >= self.steady_seconds else child.dying_young + 1
        delay = min(self.first_delay * 2 ** max(child.dying_young - 1, 0), self.max_delay)
        child.last_exit = code
        self._forget(child)
        spare = self._spare(child)
        if spare is not None and spare.running:
            self._take_over(child, spare, now + delay)
            self.say(
                f"{child.name} exited with code {code} after {lived:.0f} s; its standby "
                f"(pid {self._pid(child)}) took over; a new standby starts in {delay:.0f} s"
            )
            return
        child.restart_at = now + delay
        self.say(
            f"{child.name} exited with code {code} after {lived:.0f} s; "
            f"restarting in {delay:.0f} s (log {self._log_path(child)})"
        )

    def _take_over(self, child: Child, spare: Child, next_spare_at: float) -> None:
        """The spare, already started, becomes `child`; a new spare follows at `next_spare_at`."""
        if spare.gate is not None:
            spare.gate.unlink(missing_ok=True)
        child.process, child._log = spare.process, spare._log
        # Its run as `child` starts now: time spent waiting at the gate is no steady run.
        child.started_at, child.started_wall = self.clock(), time.time()
        child.restarts += 1
        spare.process, spare._log, spare.gate = None, None, None
        spare.restart_at = next_spare_at

    def _forget(self, child: Child) -> None:
        self._close_log(child)
        if child.process is not None and self.env.get("PROMETHEUS_MULTIPROC_DIR"):
            # Its live gauges (the model it held) stop counting; its counters stay.
            multiprocess.mark_process_dead(child.process.pid, self.env["PROMETHEUS_MULTIPROC_DIR"])

    def _new_gate(self, spare: Child) -> Path:
        """A gate of this start's own: a former spare, still on its way to its gate when it
        was called to take over, must never find a later spare's gate in its path."""
        gate = self.var_dir / "run" / f"{spare.spare_of}.{os.getpid()}.{spare.restarts}.gate"
        gate.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        gate.touch()
        return gate

    def stop_all(self) -> None:
        """Signal every child, the last started first (the API before the workers it feeds),
        then wait for each. Nothing is lost by the overlap: an accepted comment is stored."""
        for child in reversed(self.children):
            child.restart_at = None
            if child.running and child.process is not None:
                # A spare behind its gate has taken nothing: it has nothing to finish.
                child.process.send_signal(signal.SIGKILL if child.spare_of else signal.SIGTERM)
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            self._close_log(child)
            if child.gate is not None:
                child.gate.unlink(missing_ok=True)
            self.say(f"stopped {child.name}")
        (self.var_dir / STATE_FILE).unlink(missing_ok=True)

    def _start(self, child: Child) -> None:
        env = dict(self.env)
        if child.spare_of is not None:
            child.gate = self._new_gate(child)
            env[START_GATE_ENV] = str(child.gate)
        child._log = open(self._log_path(child), "ab")  # noqa: SIM115 - lives with the child
        try:
            child.process = self._spawn(child, env)
        except OSError:
            self._close_log(child)
            raise
        child.started_at, child.started_wall = self.clock(), time.time()

    def _spawn(self, child: Child, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            child.args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child._log,
            stderr=subprocess.STDOUT,
            # A session of its own: Ctrl-C reaches only the runner, which stops the children
            # in order instead of all at once.
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def _close_log(self, child: Child) -> None:
        if child._log is not None:
            child._log.close()
            child._log = None

    def _log_path(self, child: Child) -> Path:
        # A spare writes where the child it stands in for does: it may become that child.
        return self.log_dir / f"{child.spare_of or child.name}.log"

    @staticmethod
    def _pid(child: Child) -> int | None:
        return child.process.pid if child.process is not None else None

    def _write_state(self) -> None:
        """What `moderation status` shows of the children (written whole, then moved)."""
        path = self.var_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = {
            "runner_pid": os.getpid(),
            "children": [
                {
                    "name": c.name,
                    "pid": self._pid(c),
                    "started_at": c.started_wall,
                    "restarts": c.restarts,
                    "last_exit": c.last_exit,
                    "waiting_to_restart": c.restart_at is not None,
                    "standby": c.spare_of is not None,
                    "log": str(self._log_path(c)),
                }
                for c in self.children
            ],
        }
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(state, indent=2))
        scratch.replace(path)


def read_state(var_dir: Path) -> dict[str, Any] | None:
    """The runner's last written state, if a runner is alive to stand behind it."""
    path = var_dir / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["runner_pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None  # left behind by a runner that was killed
    return state
