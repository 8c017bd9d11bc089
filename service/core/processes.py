"""Child processes that never outlive the process that started them."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A `subprocess.Popen(preexec_fn=...)` after which the child gets SIGTERM when this
    process dies, even by SIGKILL, which no handler of its own can catch.

    Linux only (prctl); elsewhere a no-op, and the parent's own stop is the only one. The
    child runs no Python between fork and exec but this one call, so other threads of the
    parent cannot hold a lock it needs. Linux sends the signal when the *thread* that started
    the child ends: start children from a thread that lives as long as they should.
    """
    parent = os.getpid()
    if not sys.platform.startswith("linux"):
        return lambda: None
    # Looked up here, before the fork: the child then runs one foreign call and no loader.
    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
